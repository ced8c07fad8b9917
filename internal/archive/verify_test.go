package archive_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/lambdad/lambdad/internal/archive"
)

// richZip is an archive with every kind of entry Unpack handles: implied
// and explicit directories, modes, a repeated file, names to clean, links.
func richZip(t *testing.T) []byte {
	return makeZip(t,
		exe("bootstrap", "#!/bin/sh\necho hi\n"),
		dir("lib/"),
		file("lib/a.txt", "alpha"),
		file("x/y/z.txt", "implied directories"),
		entry{name: "ro.txt", body: "read only", mode: 0o400},
		file("./dot/./slashes//f", "cleaned"),
		dir("./"),
		file("dup", "first"),
		file("dup", "second wins"),
		symlink("lib/link", "a.txt"),
		symlink("up", "lib/../x/y"),
		symlink("dangling", "nowhere/yet"),
		dir("lib/"),
	)
}

// unpacked writes the archive to a file and unpacks it beside, returning
// both paths.
func unpacked(t *testing.T, data []byte) (zipPath, dir string) {
	t.Helper()
	base := t.TempDir()
	zipPath, dir = filepath.Join(base, "code.zip"), filepath.Join(base, "code")
	if err := os.WriteFile(zipPath, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := archive.Unpack(data, dir, archive.MaxUnzipped); err != nil {
		t.Fatal(err)
	}
	return zipPath, dir
}

func TestVerifyAcceptsUnpack(t *testing.T) {
	for name, data := range map[string][]byte{
		"rich":  richZip(t),
		"empty": makeZip(t),
		"one":   makeZip(t, exe("bootstrap", "x")),
	} {
		zipPath, dir := unpacked(t, data)
		if err := archive.Verify(zipPath, dir); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestVerifyFindsChanges changes the unpacked tree in every way Verify
// must see (the content of a file of unchanged size it does not read).
func TestVerifyFindsChanges(t *testing.T) {
	changes := map[string]func(dir string) error{
		"file truncated":     func(d string) error { return os.Truncate(filepath.Join(d, "lib/a.txt"), 2) },
		"file emptied":       func(d string) error { return os.Truncate(filepath.Join(d, "bootstrap"), 0) },
		"repeated file":      func(d string) error { return os.WriteFile(filepath.Join(d, "dup"), []byte("first"), 0o644) },
		"file removed":       func(d string) error { return os.Remove(filepath.Join(d, "x/y/z.txt")) },
		"implied dir gone":   func(d string) error { return os.RemoveAll(filepath.Join(d, "x")) },
		"empty dir gone":     func(d string) error { return os.RemoveAll(filepath.Join(d, "dot/slashes")) },
		"file added":         func(d string) error { return os.WriteFile(filepath.Join(d, "lib/new.py"), nil, 0o644) },
		"dir added":          func(d string) error { return os.Mkdir(filepath.Join(d, "__pycache__"), 0o755) },
		"exec bit lost":      func(d string) error { return os.Chmod(filepath.Join(d, "bootstrap"), 0o644) },
		"exec bit gained":    func(d string) error { return os.Chmod(filepath.Join(d, "ro.txt"), 0o755) },
		"dir mode":           func(d string) error { return os.Chmod(filepath.Join(d, "lib"), 0o700) },
		"unreadable dir":     func(d string) error { return os.Chmod(filepath.Join(d, "x"), 0o311) },
		"root mode":          func(d string) error { return os.Chmod(d, 0o750) },
		"link retargeted":    func(d string) error { return relinkTo(filepath.Join(d, "lib/link"), "b.txt") },
		"link made a file":   func(d string) error { return replace(filepath.Join(d, "up"), false) },
		"file made a link":   func(d string) error { return relinkTo(filepath.Join(d, "lib/a.txt"), "../bootstrap") },
		"file made a dir":    func(d string) error { return replace(filepath.Join(d, "ro.txt"), true) },
		"root emptied":       func(d string) error { return errors.Join(os.RemoveAll(d), os.Mkdir(d, 0o755)) },
		"root gone":          func(d string) error { return os.RemoveAll(d) },
		"root made a link":   func(d string) error { return errors.Join(os.Rename(d, d+".real"), os.Symlink(d+".real", d)) },
		"dangling link gone": func(d string) error { return os.Remove(filepath.Join(d, "dangling")) },
	}
	for name, change := range changes {
		t.Run(name, func(t *testing.T) {
			zipPath, dir := unpacked(t, richZip(t))
			if err := change(dir); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Chmod(filepath.Join(dir, "x"), 0o755) })
			if err := archive.Verify(zipPath, dir); err == nil {
				t.Fatal("Verify passed a changed tree")
			} else {
				t.Log(err)
			}
		})
	}
}

func TestVerifyUnreadableArchive(t *testing.T) {
	zipPath, dir := unpacked(t, richZip(t))
	if err := os.WriteFile(zipPath, []byte("not a zip"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := archive.Verify(zipPath, dir); err == nil {
		t.Fatal("Verify passed against an unreadable archive")
	}
	if err := archive.Verify(filepath.Join(filepath.Dir(zipPath), "missing.zip"), dir); err == nil {
		t.Fatal("Verify passed against a missing archive")
	}
}

func relinkTo(path, target string) error {
	return errors.Join(os.Remove(path), os.Symlink(target, path))
}

func replace(path string, withDir bool) error {
	if err := os.Remove(path); err != nil {
		return err
	}
	if withDir {
		return os.Mkdir(path, 0o755)
	}
	return os.WriteFile(path, nil, 0o644)
}
