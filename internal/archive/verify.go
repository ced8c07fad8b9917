package archive

import (
	"archive/zip"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// expected is what Unpack leaves at one path.
type expected struct {
	mode   fs.FileMode // type and permission bits, as Lstat reports them
	size   uint64      // for files
	target string      // for links
}

// Verify checks that dir holds exactly what Unpack makes of the archive in
// the file zipPath: the same paths, each of the same type, every file of
// the size its entry declares with the mode Unpack gives it, every link
// with its target, and nothing else. It reads the archive's central
// directory and the bodies of its links only: files are compared by their
// metadata, not their content, so the check costs one Lstat per entry. It
// is how a tree unpacked earlier, perhaps by another process that was
// killed, or since touched by the code running in it, is found complete or
// not. A nil error means the tree matches.
func Verify(zipPath, dir string) error {
	zr, err := zip.OpenReader(zipPath)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return fmt.Errorf("archive: %w", err)
	}
	defer zr.Close()
	want, err := expectedTree(&zr.Reader)
	if err != nil {
		return err
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	if fi.Mode() != want["."].mode {
		return fmt.Errorf("archive: %s has mode %v, want %v", dir, fi.Mode(), want["."].mode)
	}
	// The walk is of the real directory, not an fs.FS: names in an archive
	// need not be UTF-8, and fs.FS refuses paths that are not.
	seen := 0
	err = filepath.WalkDir(dir, func(full string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, full)
		if err != nil {
			return err
		}
		p := filepath.ToSlash(rel)
		w, ok := want[p]
		if !ok {
			return fmt.Errorf("%s is not in the archive", p)
		}
		seen++
		if p == "." {
			return nil // checked above, without following a link
		}
		// A DirEntry of os.ReadDir describes the path itself (Lstat).
		fi, err := d.Info()
		if err != nil {
			return err
		}
		got := fi.Mode()
		if w.mode.Type() == fs.ModeSymlink {
			got = got.Type() | w.mode.Perm() // a link's own mode means nothing
		}
		if got != w.mode {
			return fmt.Errorf("%s has mode %v, want %v", p, fi.Mode(), w.mode)
		}
		switch w.mode.Type() {
		case 0:
			if uint64(fi.Size()) != w.size {
				return fmt.Errorf("%s has %d bytes, want %d", p, fi.Size(), w.size)
			}
		case fs.ModeSymlink:
			target, err := os.Readlink(full)
			if err != nil {
				return err
			}
			if target != w.target {
				return fmt.Errorf("link %s points to %q, want %q", p, target, w.target)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("archive: %s does not match: %w", dir, err)
	}
	if seen != len(want) {
		return fmt.Errorf("archive: %s lacks %d of the archive's %d paths", dir, len(want)-seen, len(want))
	}
	return nil
}

// expectedTree is the tree Unpack builds from zr, by path relative to the
// function's directory ("." for the directory itself). An archive Unpack
// would refuse has no expected tree.
func expectedTree(zr *zip.Reader) (map[string]expected, error) {
	const dirMode = fs.ModeDir | 0o755
	want := map[string]expected{".": {mode: dirMode}}
	x := newExtractor(MaxUnzipped, nil)
	for _, f := range zr.File {
		name, err := cleanName(f.Name)
		if err != nil {
			return nil, err
		}
		if name == "" {
			continue
		}
		// The directories an entry implies.
		for i := range len(name) {
			if name[i] != '/' {
				continue
			}
			if w, ok := want[name[:i]]; !ok {
				want[name[:i]] = expected{mode: dirMode}
			} else if w.mode != dirMode {
				return nil, errConflict(f.Name)
			}
		}
		mode := f.Mode()
		w, exists := want[name]
		switch {
		case isDirEntry(f):
			if exists && w.mode != dirMode {
				return nil, errConflict(f.Name)
			}
			want[name] = expected{mode: dirMode}
		case mode&fs.ModeSymlink != 0:
			if exists {
				return nil, errConflict(f.Name)
			}
			target, err := x.readLink(f)
			if err != nil {
				return nil, err
			}
			want[name] = expected{mode: fs.ModeSymlink | 0o777, target: target}
		default:
			if exists && w.mode.Type() != 0 {
				return nil, errConflict(f.Name)
			}
			perm := fs.FileMode(0o644)
			if mode&0o111 != 0 {
				perm = 0o755
			}
			// A repeated file replaces the earlier one, as in Unpack.
			want[name] = expected{mode: perm, size: f.UncompressedSize64}
		}
	}
	return want, nil
}
