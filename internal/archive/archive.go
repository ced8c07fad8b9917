// Package archive checks and unpacks the zip files that carry function code.
// It refuses what AWS refuses (unreadable archives, more than the unzipped
// size limit) and what would be unsafe on this host: entries that would land
// outside the function's directory, directly or through symbolic links, and
// archives whose bodies decompress to more than they declare.
package archive

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/lambdad/lambdad/internal/awserr"
)

// MaxUnzipped is AWS's limit on a function's code once unzipped (250 MB).
const MaxUnzipped = 262144000

// Bounds on what an entry may ask for. Longer paths could not be created on
// Linux anyway (PATH_MAX, NAME_MAX); refusing them up front keeps the work
// per entry linear in its name.
const (
	maxPathLen      = 4096
	maxComponentLen = 255
	// maxDepth bounds how many directories deep an entry may be. Making
	// an entry's directories costs the depth for each of them (every
	// path is resolved from the function's directory, safely, one
	// component at a time), so the bound keeps unpacking linear in the
	// archive's size; real packages (node_modules included) stay far
	// below it.
	maxDepth      = 128
	maxLinkTarget = 4096
	// maxLinkHops is how many links one resolution may follow, as Linux
	// allows; a longer chain would fail at run time anyway.
	maxLinkHops = 40
	// linkWorkBudget bounds the work spent resolving all the symbolic
	// links of one archive (components visited plus their bytes), so an
	// archive of many long, chained links cannot keep a request busy.
	// Real packages (node_modules/.bin) use a tiny fraction of it.
	linkWorkBudget = 64 << 20
)

// Check validates a zip without writing anything and returns its total
// uncompressed size. It must be a readable zip whose entries' declared sizes
// sum to at most max, with no entry that Unpack would refuse for its path or
// its symbolic link target, and whose every body decompresses to exactly
// the size and checksum its entry records: an archive that lies is refused
// at upload, as AWS does, rather than failing each time it is unpacked.
func Check(zipData []byte, max int64) (int64, error) {
	zr, err := openZip(zipData)
	if err != nil {
		return 0, err
	}
	total, err := declaredSize(zr, max)
	if err != nil {
		return 0, err
	}
	x := newExtractor(max, nil)
	for _, f := range zr.File {
		if err := x.entry(f); err != nil {
			return 0, err
		}
	}
	return total, nil
}

// Unpack extracts a zip into dir, which is created if absent and must
// otherwise be an empty directory. On top of Check's rules it counts the
// bytes actually decompressed and stops past max, whatever the entries
// declare. Files get mode 0755 if the entry has any execute bit, else 0644;
// directories 0755. On error nothing it wrote is left behind.
func Unpack(zipData []byte, dir string, max int64) (err error) {
	zr, err := openZip(zipData)
	if err != nil {
		return err
	}
	// Fail fast, before writing anything, on an archive that admits to
	// being too large.
	if _, err := declaredSize(zr, max); err != nil {
		return err
	}
	created, err := prepareDir(dir)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			if cerr := cleanDir(dir, created); cerr != nil {
				err = errors.Join(err, cerr)
			}
		}
	}()
	// Every write goes through root, so even a mistake in the checks
	// below cannot reach outside dir.
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	defer func() {
		if cerr := root.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("archive: %w", cerr)
		}
	}()
	x := newExtractor(max, root)
	for _, f := range zr.File {
		if err := x.entry(f); err != nil {
			return err
		}
	}
	return nil
}

func openZip(data []byte) (*zip.Reader, error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	// ErrInsecurePath (under GODEBUG=zipinsecurepath=0) still returns a
	// usable reader; the per-entry checks report the entry by name.
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return nil, errUnreadable()
	}
	return zr, nil
}

// declaredSize sums the sizes the entries declare, stopping as soon as the
// sum passes max (the sizes are attacker-chosen 64-bit values).
func declaredSize(zr *zip.Reader, max int64) (int64, error) {
	var total uint64
	for _, f := range zr.File {
		if isDirEntry(f) {
			continue
		}
		if max < 0 || f.UncompressedSize64 > uint64(max)-total {
			return 0, errTooLarge(max)
		}
		total += f.UncompressedSize64
	}
	return int64(total), nil
}

func isDirEntry(f *zip.File) bool {
	return strings.HasSuffix(f.Name, "/") || f.Mode().IsDir()
}

// prepareDir creates dir, or checks that it is an empty directory, and
// reports whether it created it.
func prepareDir(dir string) (bool, error) {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return false, fmt.Errorf("archive: %w", err)
	}
	err := os.Mkdir(dir, 0o755)
	if err == nil {
		// Mkdir's mode is cut by the umask; see extractor.mkdir.
		if err := os.Chmod(dir, 0o755); err != nil {
			os.Remove(dir)
			return false, fmt.Errorf("archive: %w", err)
		}
		return true, nil
	}
	if !errors.Is(err, fs.ErrExist) {
		return false, fmt.Errorf("archive: %w", err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return false, fmt.Errorf("archive: %w", err)
	}
	if !fi.IsDir() {
		return false, fmt.Errorf("archive: %s is not a directory", dir)
	}
	d, err := os.Open(dir)
	if err != nil {
		return false, fmt.Errorf("archive: %w", err)
	}
	defer d.Close()
	names, err := d.Readdirnames(1)
	if len(names) > 0 {
		return false, fmt.Errorf("archive: %s is not empty", dir)
	}
	if err != nil && err != io.EOF {
		return false, fmt.Errorf("archive: %w", err)
	}
	return false, nil
}

// cleanDir undoes a failed Unpack: it removes dir if Unpack created it,
// else what Unpack put in it. RemoveAll does not follow symbolic links.
func cleanDir(dir string, created bool) error {
	if created {
		return os.RemoveAll(dir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		errs = append(errs, os.RemoveAll(filepath.Join(dir, e.Name())))
	}
	return errors.Join(errs...)
}

type kind uint8

const (
	dirKind kind = iota + 1
	fileKind
	linkKind
)

// node is one path of the tree the archive builds, as far as the archive has
// got. Once a path exists its kind never changes (a file may only be
// rewritten as a file), which is what makes checking a link once, when it
// is created, enough.
type node struct {
	kind     kind
	target   string // for links
	children map[string]*node
}

func (n *node) add(name string, k kind) *node {
	if n.children == nil {
		n.children = make(map[string]*node)
	}
	c := &node{kind: k}
	n.children[name] = c
	return c
}

// extractor applies an archive's entries in order to the tree and, when
// root is set, to the disk.
type extractor struct {
	max     int64
	written int64    // bytes decompressed so far
	root    *os.Root // nil when only checking
	tree    node     // the function's directory
	work    int      // link resolution work so far, against linkWorkBudget
	buf     []byte

	// Scratch space reused from entry to entry.
	stack     []*node  // directories from the root to the entry's parent
	resolving []*node  // checkLink's walk
	pending   []string // checkLink's path still to walk, innermost link last
}

func newExtractor(max int64, root *os.Root) *extractor {
	return &extractor{max: max, root: root, tree: node{kind: dirKind}}
}

func (x *extractor) entry(f *zip.File) error {
	name, err := cleanName(f.Name)
	if err != nil {
		return err
	}
	if name == "" { // "./": the directory itself
		return nil
	}
	mode := f.Mode()
	k := fileKind
	switch {
	case isDirEntry(f):
		k = dirKind
	case mode&fs.ModeSymlink != 0:
		k = linkKind
	}

	// Walk to the parent, creating the directories the entry implies.
	// The walk never passes through a link or a file: writing through a
	// link the archive made is how archives usually escape.
	dir := &x.tree
	x.stack = append(x.stack[:0], dir)
	rest, end := name, 0
	for {
		c, after, more := strings.Cut(rest, "/")
		if !more {
			break
		}
		end += len(c)
		child := dir.children[c]
		switch {
		case child == nil:
			child = dir.add(c, dirKind)
			if err := x.mkdir(name[:end]); err != nil {
				return err
			}
		case child.kind == linkKind:
			return awserr.New(awserr.InvalidParameterValue,
				"Could not unzip uploaded file: entry %s is inside the symbolic link %s.",
				quote(f.Name), quote(name[:end]))
		case child.kind == fileKind:
			return errConflict(f.Name)
		}
		end++ // the slash
		dir = child
		x.stack = append(x.stack, dir)
		rest = after
	}

	existing := dir.children[rest]
	switch k {
	case dirKind:
		if existing == nil {
			dir.add(rest, dirKind)
			return x.mkdir(name)
		}
		if existing.kind != dirKind {
			return errConflict(f.Name)
		}
		return nil
	case fileKind:
		if existing == nil {
			dir.add(rest, fileKind)
		} else if existing.kind != fileKind {
			return errConflict(f.Name)
		}
		// A repeated file replaces the earlier one, as unzip does.
		return x.writeFile(f, name, mode, existing == nil)
	default:
		if existing != nil {
			return errConflict(f.Name)
		}
		target, err := x.readLink(f)
		if err != nil {
			return err
		}
		if err := x.checkLink(f.Name, target); err != nil {
			return err
		}
		dir.add(rest, linkKind).target = target
		if x.root != nil {
			if err := x.root.Symlink(target, name); err != nil {
				return fmt.Errorf("archive: %w", err)
			}
		}
		return nil
	}
}

// cleanName returns the entry's path relative to the function's directory,
// without "." components, repeated or trailing slashes; "" for the directory
// itself. It refuses any name that is absolute, has a ".." component or a
// backslash (a separator to Windows tools, a trick to everyone else), or
// that Linux could not create.
func cleanName(name string) (string, error) {
	switch {
	case name == "":
		return "", errUnsafePath(name, "has an empty name")
	case len(name) > maxPathLen:
		return "", errUnsafePath(name, "has a path that is too long")
	case strings.ContainsAny(name, "\\\x00"):
		return "", errUnsafePath(name, "has a backslash or NUL in its path")
	case name[0] == '/':
		return "", errUnsafePath(name, "has an absolute path")
	}
	depth := 0
	for rest := name; rest != ""; {
		var c string
		c, rest, _ = strings.Cut(rest, "/")
		if c != "" && c != "." {
			if depth++; depth > maxDepth {
				return "", errUnsafePath(name, fmt.Sprintf("is more than %d directories deep", maxDepth))
			}
		}
		if c == ".." {
			return "", errUnsafePath(name, "has a '..' component in its path")
		}
		if len(c) > maxComponentLen {
			return "", errUnsafePath(name, "has a path component that is too long")
		}
	}
	clean := path.Clean(name)
	if clean == "." {
		return "", nil
	}
	return clean, nil
}

// checkLink refuses target for a link whose parent directory is the top of
// x.stack if following it could lead above the function's directory. It
// walks the target through the tree as the kernel would, following the
// archive's earlier links.
//
// Paths not created yet may later become links, so once the walk reaches
// one it cannot tell where a following ".." would lead; it refuses that
// too. With no ".." after them, such paths only descend, and anything
// created there later is itself checked, so the link stays inside.
func (x *extractor) checkLink(entry, target string) error {
	switch {
	case target == "":
		return errBadLink(entry, target, "is empty")
	case strings.IndexByte(target, 0) >= 0:
		return errBadLink(entry, target, "contains NUL")
	case target[0] == '/':
		return errBadLink(entry, target, "is an absolute path")
	}
	stack := append(x.resolving[:0], x.stack...)
	pending := append(x.pending[:0], target)
	defer func() { x.resolving, x.pending = stack[:0], pending[:0] }()
	hops, unknown := 0, false
	for len(pending) > 0 {
		top := len(pending) - 1
		if pending[top] == "" {
			pending = pending[:top]
			continue
		}
		var c string
		c, pending[top], _ = strings.Cut(pending[top], "/")
		x.work += 1 + len(c)
		if x.work > linkWorkBudget {
			return errBadLink(entry, target, "takes too much work to resolve")
		}
		switch c {
		case "", ".":
			continue
		case "..":
			if unknown {
				return errBadLink(entry, target,
					"climbs out of a directory the archive has not created yet")
			}
			if len(stack) == 1 {
				return errBadLink(entry, target, "points outside the function's directory")
			}
			stack = stack[:len(stack)-1]
			continue
		}
		if unknown {
			continue
		}
		child := stack[len(stack)-1].children[c]
		switch {
		case child == nil || child.kind == fileKind:
			unknown = true
		case child.kind == linkKind:
			hops++
			if hops > maxLinkHops {
				return errBadLink(entry, target, "goes through too many symbolic links")
			}
			// The link's target is read from the directory holding
			// it, the current one, before the rest of the path.
			pending = append(pending, child.target)
		default:
			stack = append(stack, child)
		}
	}
	return nil
}

// readLink reads a link entry's target, bounded.
func (x *extractor) readLink(f *zip.File) (string, error) {
	var b strings.Builder
	if err := x.copyBody(&linkWriter{b: &b}, f); err != nil {
		if errors.Is(err, errLinkTooLong) {
			return "", errBadLink(f.Name, "", "is too long")
		}
		return "", err
	}
	return b.String(), nil
}

var errLinkTooLong = errors.New("link target too long")

// linkWriter collects a link target and fails past maxLinkTarget bytes.
type linkWriter struct{ b *strings.Builder }

func (w *linkWriter) Write(p []byte) (int, error) {
	if w.b.Len()+len(p) > maxLinkTarget {
		return 0, errLinkTooLong
	}
	return w.b.Write(p)
}

func (x *extractor) mkdir(name string) error {
	if x.root == nil {
		return nil
	}
	if err := x.root.Mkdir(name, 0o755); err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	// Mkdir's mode is cut by the umask; the function's directories are
	// 0755 whatever the server's umask.
	if err := x.root.Chmod(name, 0o755); err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	return nil
}

func (x *extractor) writeFile(f *zip.File, name string, mode fs.FileMode, isNew bool) error {
	if x.root == nil {
		// Checking: the body must still inflate to what the entry says
		// (archive/zip fails the read on a wrong size or checksum).
		return x.copyBody(io.Discard, f)
	}
	perm := fs.FileMode(0o644)
	if mode&0o111 != 0 {
		perm = 0o755
	}
	flag := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	if isNew {
		flag |= os.O_EXCL
	}
	out, err := x.root.OpenFile(name, flag, perm)
	if err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	err = x.copyBody(out, f)
	if err == nil {
		// As for directories: the umask must not change the mode.
		if cerr := out.Chmod(perm); cerr != nil {
			err = fmt.Errorf("archive: %w", cerr)
		}
	}
	if cerr := out.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("archive: %w", cerr)
	}
	return err
}

// copyBody decompresses f into w, counting every byte against max: the
// sizes an entry declares are not trusted. A failure to decompress is the
// archive's fault; a failure to write is ours, and is returned as is.
func (x *extractor) copyBody(w io.Writer, f *zip.File) error {
	rc, err := f.Open()
	if err != nil {
		return errUnreadable()
	}
	defer rc.Close()
	if x.buf == nil {
		x.buf = make([]byte, 32<<10)
	}
	for {
		n, rerr := rc.Read(x.buf)
		if n > 0 {
			if int64(n) > x.max-x.written {
				return errTooLarge(x.max)
			}
			x.written += int64(n)
			if _, err := w.Write(x.buf[:n]); err != nil {
				if errors.Is(err, errLinkTooLong) {
					return err
				}
				return fmt.Errorf("archive: writing %s: %w", f.Name, err)
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return errUnreadable()
		}
	}
}

func errUnreadable() error {
	return awserr.New(awserr.InvalidParameterValue,
		"Could not unzip uploaded file. Please check your file, then try to upload again.")
}

func errTooLarge(max int64) error {
	return awserr.New(awserr.InvalidParameterValue, "Unzipped size must be smaller than %d bytes", max)
}

func errUnsafePath(name, why string) error {
	return awserr.New(awserr.InvalidParameterValue,
		"Could not unzip uploaded file: entry %s %s.", quote(name), why)
}

func errConflict(name string) error {
	return awserr.New(awserr.InvalidParameterValue,
		"Could not unzip uploaded file: entry %s conflicts with an earlier entry.", quote(name))
}

func errBadLink(name, target, why string) error {
	return awserr.New(awserr.InvalidParameterValue,
		"Could not unzip uploaded file: the target %s of symbolic link %s %s.", quote(target), quote(name), why)
}

// quote renders an entry name for a message: quoted, so odd bytes show, and
// clipped, so a long name cannot swell the response.
func quote(s string) string {
	const max = 200
	if len(s) > max {
		return fmt.Sprintf("%q...", s[:max])
	}
	return fmt.Sprintf("%q", s)
}
