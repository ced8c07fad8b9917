package store

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/lambdad/lambdad/internal/archive"
	"github.com/lambdad/lambdad/internal/function"
)

// Code archives live beside the database, one file per CodeSha256. A file
// is kept while anything may still need it:
//
//   - every configuration record that holds the code ($LATEST and each
//     published version) counts one reference in the coderefs bucket, kept
//     in the same transaction as the record, so the count is exact whatever
//     a write replaces, copies or drops;
//   - an upload is pinned from SaveCode until the transaction that refers
//     to it has committed or failed, so a file that is about to be
//     referenced is never removed under it.
//
// A file is removed only when both are zero, checked under codeFiles.mu
// against the committed references: after the commit of a transaction that
// dropped the last reference, and when the last pin goes. Deciding at that
// point, rather than when a reference drops inside a transaction, is what
// keeps a write that drops and re-adds the same code (an update of the
// configuration alone) from losing it.
//
// Each archive that runs is also unpacked, once, into a tree of its own
// under unpacked/, named like the archive (CodeDir). A tree is an artifact
// of its archive, not a cache: it survives restarts, and it goes with the
// archive, under the same rule and at the same points, with one more
// condition: nothing may be using it. Every environment running in a tree,
// and every invocation about to start one, holds it (CodeDir's release);
// a tree whose archive has lost its last reference stays until its last
// holder lets go, and is removed then. So the files of running code never
// vanish under it, even when its function is deleted mid-invocation.
//
// A tree is trusted only when it is complete and untouched:
//
//   - it is unpacked into a temporary directory beside its final place and
//     renamed there when whole, so a crash mid-unpack leaves only a
//     temporary directory, which no one uses and the next Open removes;
//   - whenever it comes into use with no other holder (the first use after
//     a start among them), it is checked against the archive's central
//     directory (archive.Verify: paths, types, sizes, modes; no inflating)
//     and unpacked again if it does not match. Function processes run as
//     the server's user and may have changed their own files; while any
//     holder remains, the tree is neither checked nor replaced.
//
// Open removes trees whose archive no record refers to, and what an
// interrupted unpack or removal left.
type codeFiles struct {
	dir string

	mu sync.Mutex // guards the maps, and serialises writing and removing files
	// pins counts the uploads in progress per CodeSha256.
	pins map[string]int
	// holders counts the holders of each unpacked tree (CodeDir).
	holders map[string]int
	// trees holds the state of the trees handed out since Open; a tree is
	// dropped from it when it is removed.
	trees map[string]*tree

	// unpacks counts the archives unpacked since Open (for tests).
	unpacks atomic.Int64
}

// tree is the state of one unpacked tree in this process.
type tree struct {
	dir     string     // where it lives (treePath)
	prepare sync.Mutex // held while the tree is checked or unpacked
	// ready is set once the tree has been checked or unpacked for its
	// current holders, and cleared when the last of them lets go. Guarded
	// by codeFiles.mu.
	ready bool
}

// Temporary names in the directory of trees start with a dot, which no
// tree's (hex) name does.
const (
	unpackPrefix = ".unpack-"
	trashPrefix  = ".removed-"
)

// path is where the archive with the given CodeSha256 (base64, as AWS
// reports it) lives; the file is named by the hex form, which is safe in a
// path.
func (c *codeFiles) path(sha string) string {
	raw, err := base64.StdEncoding.DecodeString(sha)
	if err != nil {
		raw = []byte(sha)
	}
	return filepath.Join(c.dir, hex.EncodeToString(raw)+".zip")
}

// treeRoot is the directory of the unpacked trees, beside the archives'.
func (c *codeFiles) treeRoot() string { return filepath.Join(filepath.Dir(c.dir), "unpacked") }

// treePath is where the tree of the archive with the given CodeSha256
// lives, named like the archive.
func (c *codeFiles) treePath(sha string) string {
	raw, err := base64.StdEncoding.DecodeString(sha)
	if err != nil {
		raw = []byte(sha)
	}
	return filepath.Join(c.treeRoot(), hex.EncodeToString(raw))
}

// SaveCode writes a code archive under its content hash, durably, before
// any transaction refers to it, and pins it there until release is called.
// The caller calls release exactly once, after the transaction that refers
// to the code has committed or failed; release removes the file if that
// transaction did not keep it. Writing the same archive twice is harmless:
// the content is the name.
func (d *DB) SaveCode(sha string, zip []byte) (release func(), err error) {
	c := &d.code
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.write(sha, zip); err != nil {
		return nil, err
	}
	if d.shared != nil {
		if err := d.shared.putCode(sha, zip); err != nil {
			return nil, err
		}
	}
	c.pins[sha]++
	var once sync.Once
	return func() { once.Do(func() { d.unpin(sha) }) }, nil
}

// write stores the archive unless it is already there. Caller holds mu, so
// no removal can run between the check and the rename.
func (c *codeFiles) write(sha string, zip []byte) error {
	path := c.path(sha)
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	tmp, err := os.CreateTemp(c.dir, ".upload-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(zip); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	dir, err := os.Open(c.dir)
	if err != nil {
		return err
	}
	defer dir.Close()
	return dir.Sync()
}

func (d *DB) unpin(sha string) {
	c := &d.code
	c.mu.Lock()
	var removed string
	if c.pins[sha]--; c.pins[sha] <= 0 {
		delete(c.pins, sha)
		removed = d.collectLocked(sha)
	}
	c.mu.Unlock()
	removeTree(removed)
}

// collect removes the archive if nothing refers to it or pins it any more.
// It runs after the commit of a transaction that dropped the archive's last
// reference; a later transaction may have referred to it again by then,
// which the check against the committed references sees.
func (d *DB) collect(sha string) {
	c := &d.code
	c.mu.Lock()
	var removed string
	if c.pins[sha] == 0 {
		removed = d.collectLocked(sha)
	}
	c.mu.Unlock()
	removeTree(removed)
}

// collectLocked removes the archive if no committed record refers to it,
// and its tree too if nothing holds it. Caller holds code.mu and has
// checked that nothing pins it. The tree is only moved aside here; the
// caller removes what collectLocked returns once it has let go of the lock.
// A failed read keeps the files: an orphan is removed at the next Open, a
// lost archive is never found again.
func (d *DB) collectLocked(sha string) (removed string) {
	c := &d.code
	referenced := true
	err := d.kv.view(func(tx kvTx) error {
		referenced = tx.Bucket(bucketCodeRefs).Get([]byte(sha)) != nil
		return nil
	})
	if err != nil || referenced {
		return ""
	}
	if d.shared != nil {
		d.shared.dropCode(sha)
	}
	os.Remove(c.path(sha))
	if c.holders[sha] > 0 {
		return "" // the last holder's release comes back here
	}
	delete(c.trees, sha)
	return c.moveAside(c.treePath(sha))
}

// CodeDir returns the directory of the unpacked code of an archive, by its
// CodeSha256, unpacking it first if it is not there or does not match the
// archive (see codeFiles), and holds it there until release is called. The
// caller calls release exactly once (later calls do nothing), when nothing
// runs in the directory any more: an environment holds its code for as long
// as it lives. Concurrent calls for the same code unpack it once.
// ErrNotFound means the archive is gone.
func (d *DB) CodeDir(sha string) (dir string, release func(), err error) {
	c := &d.code
	c.mu.Lock()
	if c.trees == nil {
		c.trees, c.holders = map[string]*tree{}, map[string]int{}
	}
	c.holders[sha]++
	t := c.trees[sha]
	if t == nil {
		t = &tree{dir: c.treePath(sha)}
		c.trees[sha] = t
	}
	ready := t.ready
	c.mu.Unlock()
	var once sync.Once
	release = func() { once.Do(func() { d.letGo(sha) }) }
	if !ready {
		if err := d.ensureLocal(sha); err != nil {
			release()
			return "", nil, err
		}
		t.prepare.Lock()
		c.mu.Lock()
		ready = t.ready
		c.mu.Unlock()
		if !ready {
			err = c.prepare(sha)
			if err == nil {
				c.mu.Lock()
				t.ready = true
				c.mu.Unlock()
			}
		}
		t.prepare.Unlock()
		if err != nil {
			release()
			return "", nil, err
		}
	}
	return t.dir, release, nil
}

// letGo drops one holder of a tree. The last one clears the tree's check,
// so the next first holder checks it again, and removes it if its archive
// has lost its last reference meanwhile.
func (d *DB) letGo(sha string) {
	c := &d.code
	c.mu.Lock()
	var removed string
	if c.holders[sha]--; c.holders[sha] <= 0 {
		delete(c.holders, sha)
		if t := c.trees[sha]; t != nil {
			t.ready = false
		}
		if c.pins[sha] == 0 {
			removed = d.collectLocked(sha)
		}
	}
	c.mu.Unlock()
	removeTree(removed)
}

// prepare makes the tree of sha match its archive: it keeps a tree that
// passes archive.Verify, else unpacks the archive beside it and renames the
// result into place. The caller holds the tree's prepare lock, and while
// the tree is not ready no holder has been given its directory, so nothing
// runs in a tree replaced here.
func (c *codeFiles) prepare(sha string) error {
	zipPath, dir := c.path(sha), c.treePath(sha)
	if _, err := os.Stat(zipPath); errors.Is(err, os.ErrNotExist) {
		return ErrNotFound
	} else if err != nil {
		return err
	}
	if archive.Verify(zipPath, dir) == nil {
		return nil
	}
	zip, err := os.ReadFile(zipPath)
	if errors.Is(err, os.ErrNotExist) {
		return ErrNotFound
	} else if err != nil {
		return err
	}
	root := c.treeRoot()
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(root, unpackPrefix)
	if err != nil {
		return err
	}
	// MkdirTemp makes it 0700; a function's directory is 0755.
	if err := os.Chmod(tmp, 0o755); err != nil {
		removeTree(tmp)
		return err
	}
	if err := archive.Unpack(zip, tmp, archive.MaxUnzipped); err != nil {
		removeTree(tmp)
		return err
	}
	c.unpacks.Add(1)
	// rename cannot replace a directory that is not empty: a tree that
	// failed the check goes first.
	removeTree(c.moveAside(dir))
	if err := os.Rename(tmp, dir); err != nil {
		removeTree(tmp)
		return err
	}
	return syncDir(root)
}

// moveAside renames path to a temporary name in the directory of trees
// and returns that name, or "" when there is nothing at path. A tree is
// removed in two steps so that the slow one, removing the files, happens
// outside code.mu and never leaves a half-removed tree at a tree's name.
func (c *codeFiles) moveAside(path string) string {
	var b [8]byte
	rand.Read(b[:])
	aside := filepath.Join(c.treeRoot(), trashPrefix+hex.EncodeToString(b[:]))
	if err := os.Rename(path, aside); err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			removeTree(path) // cannot move it: remove it where it is
		}
		return ""
	}
	return aside
}

// removeTree removes a directory tree, also when the code that ran in it
// left directories without write permission. "" is nothing to remove.
func removeTree(dir string) {
	if dir == "" || os.RemoveAll(dir) == nil {
		return
	}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o700)
		}
		return nil
	})
	os.RemoveAll(dir)
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// Code reads a code archive by its CodeSha256.
func (d *DB) Code(sha string) ([]byte, error) {
	if err := d.ensureLocal(sha); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(d.code.path(sha))
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotFound
	}
	return b, err
}

// CodePath returns the file of a code archive, for readers that stream it.
// On a shared store the archive is fetched first if this node has none;
// a file that cannot be had is simply not there.
func (d *DB) CodePath(sha string) string {
	d.ensureLocal(sha)
	return d.code.path(sha)
}

// removeOrphanCode deletes archives no record refers to (uploads whose
// transaction never committed before a crash), the trees of archives that
// are not there, and what an interrupted unpack or removal of a tree left.
func (d *DB) removeOrphanCode() error {
	c := &d.code
	entries, err := os.ReadDir(c.dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(c.treeRoot(), 0o755); err != nil {
		return err
	}
	trees, err := os.ReadDir(c.treeRoot())
	if err != nil {
		return err
	}
	return d.kv.view(func(tx kvTx) error {
		refs := tx.Bucket(bucketCodeRefs)
		referenced := func(h string) bool {
			raw, err := hex.DecodeString(h)
			return err == nil && refs.Get([]byte(base64.StdEncoding.EncodeToString(raw))) != nil
		}
		for _, e := range entries {
			h, ok := strings.CutSuffix(e.Name(), ".zip")
			if !ok || !referenced(h) {
				os.Remove(filepath.Join(c.dir, e.Name()))
			}
		}
		for _, e := range trees {
			h := e.Name()
			_, err := os.Stat(filepath.Join(c.dir, h+".zip"))
			if !e.IsDir() || !referenced(h) || err != nil {
				removeTree(filepath.Join(c.treeRoot(), h))
			}
		}
		return nil
	})
}

func (t *Tx) addCodeRef(sha string) error {
	if et, ok := t.tx.(*etcdTx); ok {
		if err := et.requireCode(t.db, sha); err != nil {
			return err
		}
	}
	b := t.tx.Bucket(bucketCodeRefs)
	var n uint64
	if v := b.Get([]byte(sha)); v != nil {
		n = binary.BigEndian.Uint64(v)
	}
	return b.Put([]byte(sha), binary.BigEndian.AppendUint64(nil, n+1))
}

// addCodeRefs takes the references of a configuration: its code and
// each layer it uses.
func (t *Tx) addCodeRefs(c *function.Config) error {
	if err := t.addCodeRef(c.CodeSha256); err != nil {
		return err
	}
	for _, l := range c.Layers {
		if err := t.addCodeRef(l.CodeSha256); err != nil {
			return err
		}
	}
	return nil
}

// dropCodeRef releases the references of a configuration: its code and
// each layer it uses.
func (t *Tx) dropCodeRef(c *function.Config) error {
	what := c.Name + " " + c.Version
	if err := t.dropCode(c.CodeSha256, what); err != nil {
		return err
	}
	for _, l := range c.Layers {
		if err := t.dropCode(l.CodeSha256, what); err != nil {
			return err
		}
	}
	return nil
}

// dropCode releases one reference to an archive, held by what. The file
// itself is looked at only after the commit (see codeFiles): the same
// transaction may refer to the code again, and a transaction that fails
// must lose nothing.
func (t *Tx) dropCode(sha, what string) error {
	b := t.tx.Bucket(bucketCodeRefs)
	key := []byte(sha)
	v := b.Get(key)
	if v == nil {
		return fmt.Errorf("store: %s holds code %s that has no reference count", what, sha)
	}
	if n := binary.BigEndian.Uint64(v); n > 1 {
		return b.Put(key, binary.BigEndian.AppendUint64(nil, n-1))
	}
	t.tx.OnCommit(func() { t.db.collect(sha) })
	return b.Delete(key)
}
