package store

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/lambdad/lambdad/internal/function"
	bolt "go.etcd.io/bbolt"
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
type codeFiles struct {
	dir string

	mu sync.Mutex // guards pins, and serialises writing and removing files
	// pins counts the uploads in progress per CodeSha256.
	pins map[string]int
}

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
	defer c.mu.Unlock()
	if c.pins[sha]--; c.pins[sha] <= 0 {
		delete(c.pins, sha)
		d.collectLocked(sha)
	}
}

// collect removes the archive if nothing refers to it or pins it any more.
// It runs after the commit of a transaction that dropped the archive's last
// reference; a later transaction may have referred to it again by then,
// which the check against the committed references sees.
func (d *DB) collect(sha string) {
	d.code.mu.Lock()
	defer d.code.mu.Unlock()
	if d.code.pins[sha] == 0 {
		d.collectLocked(sha)
	}
}

// collectLocked removes the archive if no committed record refers to it.
// Caller holds code.mu and has checked that nothing pins it. A failed read
// keeps the file: an orphan is removed at the next Open, a lost archive is
// never found again.
func (d *DB) collectLocked(sha string) {
	referenced := true
	err := d.bolt.View(func(tx *bolt.Tx) error {
		referenced = tx.Bucket(bucketCodeRefs).Get([]byte(sha)) != nil
		return nil
	})
	if err == nil && !referenced {
		os.Remove(d.code.path(sha))
	}
}

// Code reads a code archive by its CodeSha256.
func (d *DB) Code(sha string) ([]byte, error) {
	b, err := os.ReadFile(d.code.path(sha))
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotFound
	}
	return b, err
}

// CodePath returns the file of a code archive, for readers that stream it.
func (d *DB) CodePath(sha string) string { return d.code.path(sha) }

// removeOrphanCode deletes archives no record refers to: uploads whose
// transaction never committed before a crash.
func (d *DB) removeOrphanCode() error {
	entries, err := os.ReadDir(d.code.dir)
	if err != nil {
		return err
	}
	return d.bolt.View(func(tx *bolt.Tx) error {
		refs := tx.Bucket(bucketCodeRefs)
		for _, e := range entries {
			h, ok := strings.CutSuffix(e.Name(), ".zip")
			raw, err := hex.DecodeString(h)
			if !ok || err != nil || refs.Get([]byte(base64.StdEncoding.EncodeToString(raw))) == nil {
				os.Remove(filepath.Join(d.code.dir, e.Name()))
			}
		}
		return nil
	})
}

func (t *Tx) addCodeRef(sha string) error {
	b := t.tx.Bucket(bucketCodeRefs)
	var n uint64
	if v := b.Get([]byte(sha)); v != nil {
		n = binary.BigEndian.Uint64(v)
	}
	return b.Put([]byte(sha), binary.BigEndian.AppendUint64(nil, n+1))
}

// dropCodeRef releases one reference to a configuration's code. The file
// itself is looked at only after the commit (see codeFiles): the same
// transaction may refer to the code again, and a transaction that fails
// must lose nothing.
func (t *Tx) dropCodeRef(c *function.Config) error {
	b := t.tx.Bucket(bucketCodeRefs)
	key := []byte(c.CodeSha256)
	v := b.Get(key)
	if v == nil {
		return fmt.Errorf("store: %s %s holds code %s that has no reference count", c.Name, c.Version, c.CodeSha256)
	}
	if n := binary.BigEndian.Uint64(v); n > 1 {
		return b.Put(key, binary.BigEndian.AppendUint64(nil, n-1))
	}
	sha := c.CodeSha256
	t.tx.OnCommit(func() { t.db.collect(sha) })
	return b.Delete(key)
}
