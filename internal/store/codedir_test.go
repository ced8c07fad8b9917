package store

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"

	"github.com/lambdad/lambdad/internal/archive"
)

// codeZip is a real archive: a script, a module in a directory, a
// symbolic link, and a marker that makes each archive its own.
func codeZip(t testing.TB, marker string) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	add := func(name string, mode fs.FileMode, body string) {
		h := &zip.FileHeader{Name: name, Method: zip.Deflate}
		h.SetMode(mode)
		f, err := w.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	add("bootstrap", 0o755, "#!/bin/sh\nexit 0\n")
	add("lib/", fs.ModeDir|0o755, "")
	add("lib/module.py", 0o644, "def handler(event, context):\n    return event\n")
	add("lib/data/big.txt", 0o644, string(bytes.Repeat([]byte("0123456789"), 4000)))
	add("module.py", fs.ModeSymlink|0o777, "lib/module.py")
	add("marker.txt", 0o644, marker)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// codeDir calls CodeDir and checks that the tree it answers is the
// archive's.
func codeDir(t *testing.T, db *DB, sha, marker string) (string, func()) {
	t.Helper()
	dir, release, err := db.CodeDir(sha)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "marker.txt")); err != nil || string(got) != marker {
		t.Fatalf("marker in %s: %q %v, want %q", dir, got, err, marker)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "module.py")); err != nil || !bytes.HasPrefix(got, []byte("def handler")) {
		t.Fatalf("module.py through its link: %q %v", got, err)
	}
	return dir, release
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

// treeNames lists what the directory of trees holds.
func treeNames(t *testing.T, db *DB) []string {
	t.Helper()
	entries, err := os.ReadDir(db.code.treeRoot())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

func deleteFunction(t *testing.T, db *DB, name string) {
	t.Helper()
	update(t, db, func(tx *Tx) error { tx = tx.In(testAccount); return tx.DeleteFunction(name) })
}

// TestCodeDirSurvivesRestart: a tree unpacked before a restart is used as
// it is after it, not unpacked again.
func TestCodeDirSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	db := open(t, dir)
	code := codeZip(t, "kept")
	sha := shaOf(code)
	addFunction(t, db, "f", code, nil)
	tree, release := codeDir(t, db, sha, "kept")
	release()
	if n := db.code.unpacks.Load(); n != 1 {
		t.Fatalf("first use unpacked %d times", n)
	}
	before := inode(t, filepath.Join(tree, "bootstrap"))
	db.Close()

	for range 3 {
		db = open(t, dir)
		again, release := codeDir(t, db, sha, "kept")
		release()
		if again != tree {
			t.Fatalf("tree moved from %s to %s", tree, again)
		}
		if n := db.code.unpacks.Load(); n != 0 {
			t.Fatalf("a restart unpacked the code again (%d times)", n)
		}
		if after := inode(t, filepath.Join(tree, "bootstrap")); after != before {
			t.Fatalf("bootstrap was rewritten: inode %d, then %d", before, after)
		}
		db.Close()
	}
}

// TestCodeDirRepairsChangedTree changes an unpacked tree in the ways a
// crash or the code running in it could, before a restart: each change is
// found and the tree unpacked again.
func TestCodeDirRepairsChangedTree(t *testing.T) {
	changes := map[string]func(tree string) error{
		"truncated file": func(tree string) error { return os.Truncate(filepath.Join(tree, "lib/data/big.txt"), 100) },
		"grown file": func(tree string) error {
			f, err := os.OpenFile(filepath.Join(tree, "marker.txt"), os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = f.WriteString("!")
			return err
		},
		"removed file":      func(tree string) error { return os.Remove(filepath.Join(tree, "lib/module.py")) },
		"removed directory": func(tree string) error { return os.RemoveAll(filepath.Join(tree, "lib")) },
		"added file": func(tree string) error {
			return os.WriteFile(filepath.Join(tree, "lib/planted.py"), []byte("import os\n"), 0o644)
		},
		"mode changed":      func(tree string) error { return os.Chmod(filepath.Join(tree, "bootstrap"), 0o644) },
		"link retargeted":   func(tree string) error { return relink(filepath.Join(tree, "module.py"), "marker.txt") },
		"file made a link":  func(tree string) error { return relink(filepath.Join(tree, "marker.txt"), "bootstrap") },
		"directory locked":  func(tree string) error { return os.Chmod(filepath.Join(tree, "lib"), 0o500) },
		"tree is empty":     func(tree string) error { return emptyDir(tree) },
		"tree is gone":      func(tree string) error { return os.RemoveAll(tree) },
		"tree is a file":    func(tree string) error { return errors.Join(os.RemoveAll(tree), os.WriteFile(tree, nil, 0o644)) },
		"root mode changed": func(tree string) error { return os.Chmod(tree, 0o700) },
	}
	for name, change := range changes {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			db := open(t, dir)
			code := codeZip(t, "original")
			sha := shaOf(code)
			addFunction(t, db, "f", code, nil)
			tree, release := codeDir(t, db, sha, "original")
			release()
			db.Close()
			if err := change(tree); err != nil {
				t.Fatal(err)
			}

			db = open(t, dir)
			defer db.Close()
			again, release := codeDir(t, db, sha, "original")
			defer release()
			if n := db.code.unpacks.Load(); n != 1 {
				t.Fatalf("the changed tree was unpacked %d times, want once", n)
			}
			if err := verifyTree(db, sha); err != nil {
				t.Fatalf("tree after repair: %v", err)
			}
			if again != tree {
				t.Fatalf("tree moved from %s to %s", tree, again)
			}
			if names := treeNames(t, db); len(names) != 1 {
				t.Fatalf("trees directory holds %v, want only the tree", names)
			}
		})
	}
}

func relink(path, target string) error {
	return errors.Join(os.Remove(path), os.Symlink(target, path))
}

func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

func verifyTree(db *DB, sha string) error {
	dir, release, err := db.CodeDir(sha)
	if err != nil {
		return err
	}
	defer release()
	return archive.Verify(db.CodePath(sha), dir)
}

// TestCodeDirRechecksUnusedTree: a tree is checked again when it comes
// into use with no one else using it, and is never replaced while in use.
func TestCodeDirRechecksUnusedTree(t *testing.T) {
	db := open(t, t.TempDir())
	defer db.Close()
	code := codeZip(t, "m")
	sha := shaOf(code)
	addFunction(t, db, "f", code, nil)
	tree, first := codeDir(t, db, sha, "m")
	marker := filepath.Join(tree, "marker.txt")
	before := inode(t, marker)
	// While held, a change is the holder's business: a second holder
	// shares the tree as it is.
	if err := os.WriteFile(marker, []byte("changed by the function"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, second, err := db.CodeDir(sha)
	if err != nil {
		t.Fatal(err)
	}
	if inode(t, marker) != before || db.code.unpacks.Load() != 1 {
		t.Fatal("a tree in use was replaced")
	}
	first()
	second()
	// Unused now: the next first holder finds the change and repairs it.
	_, third := codeDir(t, db, sha, "m")
	third()
	if n := db.code.unpacks.Load(); n != 2 {
		t.Fatalf("unpacked %d times, want 2", n)
	}
}

// TestCodeDirHalfUnpackIgnored leaves behind what a crash mid-unpack or
// mid-removal leaves (temporary directories beside the trees), and a tree
// of the old, in-place kind of unpack cut short: none of it is used, and
// Open removes the temporary directories.
func TestCodeDirHalfUnpackIgnored(t *testing.T) {
	dir := t.TempDir()
	db := open(t, dir)
	code := codeZip(t, "whole")
	sha := shaOf(code)
	addFunction(t, db, "f", code, nil)
	root := db.code.treeRoot()
	db.Close()

	// An unpack cut short: the temporary directory, with part of the tree.
	half := filepath.Join(root, unpackPrefix+"123")
	if err := os.MkdirAll(filepath.Join(half, "lib"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(half, "bootstrap"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A removal cut short.
	if err := os.MkdirAll(filepath.Join(root, trashPrefix+"456", "lib"), 0o755); err != nil {
		t.Fatal(err)
	}
	// An in-place unpack cut short at the tree's own name.
	tree := db.code.treePath(sha)
	if err := os.MkdirAll(tree, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tree, "bootstrap"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}

	db = open(t, dir)
	defer db.Close()
	if names := treeNames(t, db); !slices.Equal(names, []string{filepath.Base(tree)}) {
		t.Fatalf("after Open the trees directory holds %v, want only %s", names, filepath.Base(tree))
	}
	got, release := codeDir(t, db, sha, "whole")
	defer release()
	if got != tree || db.code.unpacks.Load() != 1 {
		t.Fatalf("tree %s after %d unpacks", got, db.code.unpacks.Load())
	}
	if err := archive.Verify(db.CodePath(sha), got); err != nil {
		t.Fatal(err)
	}
	if names := treeNames(t, db); len(names) != 1 {
		t.Fatalf("after the unpack the trees directory holds %v", names)
	}
}

// TestCodeDirOrphanTreeRemovedAtOpen: a tree whose archive nothing refers
// to (its function deleted while the server was down mid-removal, or a
// tree from before trees went with their archives) goes at Open.
func TestCodeDirOrphanTreeRemovedAtOpen(t *testing.T) {
	dir := t.TempDir()
	db := open(t, dir)
	code := codeZip(t, "orphan")
	sha := shaOf(code)
	addFunction(t, db, "f", code, nil)
	keep := codeZip(t, "kept")
	addFunction(t, db, "g", keep, nil)
	_, r1 := codeDir(t, db, sha, "orphan")
	_, r2 := codeDir(t, db, shaOf(keep), "kept")
	r1()
	r2()
	orphan := db.code.treePath(sha)
	// Keep a copy of the tree and put it back after the delete, as if
	// the removal had not happened.
	saved := orphan + ".saved"
	if err := os.Rename(orphan, saved); err != nil {
		t.Fatal(err)
	}
	deleteFunction(t, db, "f")
	db.Close()
	if err := os.Rename(saved, orphan); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(db.code.treeRoot(), "stray-file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}

	db = open(t, dir)
	defer db.Close()
	if names := treeNames(t, db); !slices.Equal(names, []string{filepath.Base(db.code.treePath(shaOf(keep)))}) {
		t.Fatalf("after Open the trees directory holds %v, want only g's tree", names)
	}
}

// TestCodeDirGoesWithLastReference: functions sharing an archive share one
// tree; the tree goes with the archive when the last of them is deleted,
// but not while something still holds it.
func TestCodeDirGoesWithLastReference(t *testing.T) {
	db := open(t, t.TempDir())
	defer db.Close()
	code := codeZip(t, "shared")
	sha := shaOf(code)
	addFunction(t, db, "a", code, nil)
	addFunction(t, db, "b", code, nil)
	treeA, releaseA := codeDir(t, db, sha, "shared")
	treeB, releaseB := codeDir(t, db, sha, "shared")
	if treeA != treeB || db.code.unpacks.Load() != 1 {
		t.Fatalf("two functions of one archive: trees %s and %s, %d unpacks", treeA, treeB, db.code.unpacks.Load())
	}
	releaseA()
	deleteFunction(t, db, "a")
	if !exists(treeA) || !exists(db.CodePath(sha)) {
		t.Fatal("deleting one of two functions sharing the code removed it")
	}

	// b's environment still runs in the tree when b is deleted.
	deleteFunction(t, db, "b")
	if exists(db.CodePath(sha)) {
		t.Fatal("the archive outlived its last reference")
	}
	if _, err := os.ReadFile(filepath.Join(treeB, "lib/data/big.txt")); err != nil {
		t.Fatalf("the tree went while held: %v", err)
	}
	releaseB()
	releaseB() // idempotent
	if exists(treeB) {
		t.Fatal("the tree outlived its last reference and its last holder")
	}
	if names := treeNames(t, db); len(names) != 0 {
		t.Fatalf("trees directory holds %v", names)
	}
	if _, _, err := db.CodeDir(sha); !errors.Is(err, ErrNotFound) {
		t.Fatalf("CodeDir of removed code: %v", err)
	}
	if names := treeNames(t, db); len(names) != 0 {
		t.Fatalf("a failed CodeDir left %v", names)
	}
}

// TestCodeDirConcurrentFirstUse: concurrent cold starts of the same code
// unpack it once and all get the same, whole tree.
func TestCodeDirConcurrentFirstUse(t *testing.T) {
	dir := t.TempDir()
	db := open(t, dir)
	code := codeZip(t, "once")
	sha := shaOf(code)
	addFunction(t, db, "f", code, nil)
	for round := range 2 { // before and after a restart
		var wg sync.WaitGroup
		dirs := make([]string, 16)
		releases := make([]func(), 16)
		for i := range dirs {
			wg.Go(func() {
				d, release, err := db.CodeDir(sha)
				if err != nil {
					t.Error(err)
					return
				}
				if err := archive.Verify(db.CodePath(sha), d); err != nil {
					t.Error(err)
				}
				dirs[i], releases[i] = d, release
			})
		}
		wg.Wait()
		for _, r := range releases {
			if r != nil {
				r()
			}
		}
		if want := int64(1 - round); db.code.unpacks.Load() != want {
			t.Fatalf("round %d: %d concurrent first uses unpacked %d times, want %d", round, len(dirs), db.code.unpacks.Load(), want)
		}
		if dirs[0] == "" || slices.ContainsFunc(dirs, func(d string) bool { return d != dirs[0] }) {
			t.Fatalf("round %d: different trees: %v", round, dirs)
		}
		db.Close()
		db = open(t, dir)
	}
	db.Close()
}

// TestCodeDirHeldThroughDeleteAndCreate races holders of a tree against
// deletes and re-creates of the only function holding its archive: a held
// tree is always whole, and nothing is left once all is deleted.
func TestCodeDirHeldThroughDeleteAndCreate(t *testing.T) {
	db := open(t, t.TempDir())
	defer db.Close()
	code := codeZip(t, "raced")
	sha := shaOf(code)
	for i := range 50 {
		name := fmt.Sprint("f", i)
		addFunction(t, db, name, code, nil)
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				d, release, err := db.CodeDir(sha)
				if errors.Is(err, ErrNotFound) {
					return // the delete came first
				}
				if err != nil {
					t.Error(err)
					return
				}
				defer release()
				if _, err := os.ReadFile(filepath.Join(d, "lib/data/big.txt")); err != nil {
					t.Errorf("round %d: a held tree lost a file: %v", i, err)
				}
			})
		}
		wg.Go(func() { deleteFunction(t, db, name) })
		wg.Wait()
	}
	if exists(db.CodePath(sha)) {
		t.Fatal("the archive outlived its references")
	}
	if names := treeNames(t, db); len(names) != 0 {
		t.Fatalf("trees left with nothing referring to them: %v", names)
	}
}

// BenchmarkCodeDirFirstUse is the cost of handing out a tree that is
// already unpacked but has no holder (the first use after a start, or a
// cold start with no other environment of the code): the check against
// the archive. Hot is the cost with another holder.
func BenchmarkCodeDirFirstUse(b *testing.B) {
	for _, files := range []int{1, 100, 2000} {
		var buf bytes.Buffer
		w := zip.NewWriter(&buf)
		for i := range files {
			f, err := w.Create(fmt.Sprintf("pkg%d/file%d.js", i%50, i))
			if err != nil {
				b.Fatal(err)
			}
			f.Write(bytes.Repeat([]byte("x"), 2000))
		}
		w.Close()
		code := buf.Bytes()
		db := open(b, b.TempDir())
		addFunction(b, db, "f", code, nil)
		sha := shaOf(code)
		b.Run(fmt.Sprintf("files=%d/check", files), func(b *testing.B) {
			for b.Loop() {
				_, release, err := db.CodeDir(sha)
				if err != nil {
					b.Fatal(err)
				}
				release()
			}
		})
		b.Run(fmt.Sprintf("files=%d/held", files), func(b *testing.B) {
			_, held, _ := db.CodeDir(sha)
			defer held()
			for b.Loop() {
				_, release, _ := db.CodeDir(sha)
				release()
			}
		})
		if n := db.code.unpacks.Load(); n > 1 {
			b.Fatalf("unpacked %d times", n)
		}
		db.Close()
	}
}
