package archive_test

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lambdad/lambdad/internal/archive"
	"github.com/lambdad/lambdad/internal/awserr"
)

// entry describes one zip entry to build.
type entry struct {
	name string
	body string
	mode fs.FileMode // 0: a regular 0644 file (or a directory if name ends in "/")
}

func file(name, body string) entry { return entry{name: name, body: body} }
func exe(name, body string) entry  { return entry{name: name, body: body, mode: 0o755} }
func dir(name string) entry        { return entry{name: name, mode: fs.ModeDir | 0o755} }
func symlink(name, target string) entry {
	return entry{name: name, body: target, mode: fs.ModeSymlink | 0o777}
}

func makeZip(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		if e.mode != 0 {
			h.SetMode(e.mode)
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(e.name, "/") {
			continue // zip stores no body for a directory
		}
		if _, err := w.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// rawEntry is an entry written with CreateRaw, so its header may lie.
type rawEntry struct {
	name               string
	method             uint16
	data               []byte // as stored (compressed for Deflate)
	crc                uint32
	uncompressed       uint64 // declared
	computeCRCFromBody []byte // if set, crc = CRC32 of this
	link               bool   // a symbolic link entry
}

func makeRawZip(t testing.TB, entries ...rawEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		crc := e.crc
		if e.computeCRCFromBody != nil {
			crc = crc32.ChecksumIEEE(e.computeCRCFromBody)
		}
		h := &zip.FileHeader{
			Name:               e.name,
			Method:             e.method,
			CRC32:              crc,
			CompressedSize64:   uint64(len(e.data)),
			UncompressedSize64: e.uncompressed,
		}
		if e.link {
			h.SetMode(fs.ModeSymlink | 0o777)
		}
		w, err := zw.CreateRaw(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func deflate(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	fw, err := flate.NewWriter(&buf, flate.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// listTree returns every path under base (relative, slash-separated) with
// a letter for its type and its permission bits, without following links.
func listTree(t testing.TB, base string) []string {
	t.Helper()
	var got []string
	err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == base {
			return nil
		}
		rel, _ := filepath.Rel(base, p)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			got = append(got, fmt.Sprintf("L %s -> %s", filepath.ToSlash(rel), target))
		case fi.IsDir():
			got = append(got, fmt.Sprintf("D %s %o", filepath.ToSlash(rel), fi.Mode().Perm()))
		default:
			got = append(got, fmt.Sprintf("F %s %o", filepath.ToSlash(rel), fi.Mode().Perm()))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func wantAWSErr(t *testing.T, call string, err error, wantMsg string) *awserr.Error {
	t.Helper()
	e, ok := awserr.As(err)
	if !ok {
		t.Fatalf("%s: error %v (%T), want *awserr.Error", call, err, err)
	}
	if e.Code != awserr.InvalidParameterValue {
		t.Errorf("%s: code %s, want %s", call, e.Code, awserr.InvalidParameterValue)
	}
	if wantMsg != "" && e.Message != wantMsg {
		t.Errorf("%s: message\n got %q\nwant %q", call, e.Message, wantMsg)
	}
	return e
}

const (
	unreadable = "Could not unzip uploaded file. Please check your file, then try to upload again."
	tooLarge   = "Unzipped size must be smaller than 1000 bytes"
)

func TestUnpack(t *testing.T) {
	data := makeZip(t,
		exe("bootstrap", "#!/bin/sh\necho hi\n"),
		dir("lib/"),
		file("lib/a.txt", "alpha"),
		file("x/y/z.txt", "implied directories"),
		entry{name: "ro.txt", body: "read only", mode: 0o400},
		entry{name: "grp-x", body: "group exec", mode: 0o610},
		file("./dot/./slashes//f", "cleaned"),
		dir("./"),
		file("dup", "first"),
		file("dup", "second wins"),
		symlink("lib/link", "a.txt"),
		symlink("up", "lib/../x/y"),
		symlink("dangling", "nowhere/yet"),
		symlink("chain", "up/z.txt"),
		symlink("via", "up/../y/z.txt"), // up is x/y, so up/.. is x
		dir("lib/"),                     // a repeated directory is harmless
	)
	total, err := archive.Check(data, archive.MaxUnzipped)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	// Declared sizes of files and link targets, directories excluded.
	if want := int64(len("#!/bin/sh\necho hi\n") + len("alpha") + len("implied directories") +
		len("read only") + len("group exec") + len("cleaned") + len("first") + len("second wins") +
		len("a.txt") + len("lib/../x/y") + len("nowhere/yet") + len("up/z.txt") + len("up/../y/z.txt")); total != want {
		t.Errorf("Check total = %d, want %d", total, want)
	}

	base := t.TempDir()
	out := filepath.Join(base, "fn", "code") // parents are created too
	if err := archive.Unpack(data, out, archive.MaxUnzipped); err != nil {
		t.Fatalf("Unpack: %v", err)
	}
	want := []string{
		"F bootstrap 755",
		"L chain -> up/z.txt",
		"L dangling -> nowhere/yet",
		"D dot 755",
		"D dot/slashes 755",
		"F dot/slashes/f 644",
		"F dup 644",
		"F grp-x 755",
		"D lib 755",
		"F lib/a.txt 644",
		"L lib/link -> a.txt",
		"F ro.txt 644",
		"L up -> lib/../x/y",
		"L via -> up/../y/z.txt",
		"D x 755",
		"D x/y 755",
		"F x/y/z.txt 644",
	}
	if got := listTree(t, out); !slices.Equal(got, want) {
		t.Errorf("tree:\n got %q\nwant %q", got, want)
	}
	for name, body := range map[string]string{
		"dup":           "second wins",
		"lib/link":      "alpha",
		"chain":         "implied directories",
		"via":           "implied directories",
		"dot/slashes/f": "cleaned",
	} {
		got, err := os.ReadFile(filepath.Join(out, name))
		if err != nil || string(got) != body {
			t.Errorf("%s: %q, %v; want %q", name, got, err, body)
		}
	}
}

func TestUnpackIntoExistingDir(t *testing.T) {
	data := makeZip(t, file("a", "1"))
	out := t.TempDir()
	if err := archive.Unpack(data, out, 1000); err != nil {
		t.Fatalf("Unpack into an empty directory: %v", err)
	}
	if got, want := listTree(t, out), []string{"F a 644"}; !slices.Equal(got, want) {
		t.Errorf("tree %q, want %q", got, want)
	}

	// Not empty any more: refused, and what is there stays.
	err := archive.Unpack(makeZip(t, file("b", "2")), out, 1000)
	if err == nil {
		t.Fatal("Unpack into a non-empty directory succeeded")
	}
	if _, ok := awserr.As(err); ok {
		t.Errorf("Unpack into a non-empty directory: %v is a client error; it is the server's", err)
	}
	if got, want := listTree(t, out), []string{"F a 644"}; !slices.Equal(got, want) {
		t.Errorf("tree after refusal %q, want %q", got, want)
	}

	// A file where the directory should be.
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := archive.Unpack(data, f, 1000); err == nil {
		t.Error("Unpack onto a file succeeded")
	}
}

// TestUnsafe checks that every archive that would write outside its
// directory, or through a link, is refused by both Check and Unpack, with
// a message naming the entry, and that Unpack leaves nothing behind.
func TestUnsafe(t *testing.T) {
	long := strings.Repeat("a", 256)
	tests := []struct {
		desc    string
		entries []entry
		names   string // the entry the message must name
	}{
		{"parent", []entry{file("../evil", "x")}, "../evil"},
		{"deep parent", []entry{file("a/../../x", "x")}, "a/../../x"},
		{"inner parent", []entry{file("a/../b", "x")}, "a/../b"},
		{"trailing parent", []entry{dir("a/..")}, "a/.."},
		{"absolute", []entry{file("/abs", "x")}, "/abs"},
		{"absolute dir", []entry{dir("/tmp/")}, "/tmp/"},
		{"backslash parent", []entry{file(`..\evil`, "x")}, `..\evil`},
		{"backslash deep", []entry{file(`a\..\..\x`, "x")}, `a\..\..\x`},
		{"empty name", []entry{file("", "x")}, ""},
		{"NUL", []entry{file("a\x00b", "x")}, "a\x00b"},
		{"component too long", []entry{file(long, "x")}, ""}, // clipped in the message
		{"path too long", []entry{file(strings.Repeat("a/", 2100)+"f", "x")}, ""},
		{"link absolute", []entry{symlink("l", "/etc")}, "l"},
		{"link parent", []entry{symlink("l", "..")}, "l"},
		{"link deep parent", []entry{dir("a/"), symlink("a/l", "../..")}, "a/l"},
		{"link empty", []entry{symlink("l", "")}, "l"},
		{"link NUL", []entry{symlink("l", "a\x00")}, "l"},
		{"link too long", []entry{symlink("l", strings.Repeat("a/", 2100))}, "l"},
		{"link through unknown", []entry{symlink("l", "x/../..")}, "l"},
		// d/e points at the root, so d/e/.. is above it at run time
		// though it reads as "d" on paper.
		{"link through link", []entry{dir("d/"), symlink("d/e", ".."), symlink("f", "d/e/..")}, "f"},
		// f is checked before d/e exists; the walk cannot know what
		// d/e will be, so it refuses the "..".
		{"link before link", []entry{symlink("f", "d/e/.."), dir("d/"), symlink("d/e", "..")}, "f"},
		// a/x is a directory the walk has not seen yet when f is
		// checked; it turns out to be a link to the root, so a/x/.. is
		// above it.
		{"link before deeper link", []entry{dir("a/"), symlink("f", "a/x/.."), symlink("a/x", "..")}, "f"},
		{"link via file", []entry{file("a", "x"), symlink("l", "a/../..")}, "l"},
		{"link loop", []entry{symlink("a", "b"), symlink("b", "a"), symlink("c", "a/x")}, "c"},
		{"write through link", []entry{dir("sub/"), symlink("l", "sub"), file("l/x", "x")}, "l/x"},
		{"dir through link", []entry{symlink("l", "."), dir("l/d/")}, "l/d/"},
		{"file over link", []entry{symlink("l", "."), file("l", "x")}, "l"},
		{"link over file", []entry{file("l", "x"), symlink("l", ".")}, "l"},
		{"link over link", []entry{symlink("l", "."), symlink("l", "a")}, "l"},
		{"file over dir", []entry{dir("a/"), file("a", "x")}, "a"},
		{"file under file", []entry{file("a", "x"), file("a/b", "y")}, "a/b"},
		{"dir over file", []entry{file("a", "x"), dir("a/")}, "a/"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			data := makeZip(t, tt.entries...)
			_, err := archive.Check(data, archive.MaxUnzipped)
			e := wantAWSErr(t, "Check", err, "")
			if !strings.Contains(e.Message, fmt.Sprintf("%q", tt.names)) && tt.names != "" {
				t.Errorf("Check: message %q does not name %q", e.Message, tt.names)
			}

			base := t.TempDir()
			out := filepath.Join(base, "code")
			err = archive.Unpack(data, out, archive.MaxUnzipped)
			e2 := wantAWSErr(t, "Unpack", err, "")
			if e2.Message != e.Message {
				t.Errorf("Unpack message %q, Check message %q", e2.Message, e.Message)
			}
			if got := listTree(t, base); len(got) != 0 {
				t.Errorf("left behind: %q", got)
			}
		})
	}
}

func TestUnreadable(t *testing.T) {
	// Text that deflates poorly, so the compressed body is long enough to
	// corrupt in the middle.
	rng := rand.New(rand.NewPCG(3, 4))
	text := make([]byte, 600)
	for i := range text {
		text[i] = 'a' + byte(rng.IntN(26))
	}
	good := makeZip(t, file("a.txt", string(text)))
	corrupt := bytes.Clone(good)
	// The body starts after the 30-byte local header and the name.
	for i := 100; i < 110; i++ {
		corrupt[i] ^= 0xff
	}
	body := []byte("some content")
	tests := []struct {
		desc string
		data []byte
		// checkOK: Check accepts the archive (it reads every body, so
		// only a broken directory listing gets past it); Unpack must
		// still refuse.
		checkOK bool
	}{
		{"empty", nil, false},
		{"not a zip", []byte("this is not a zip file at all, not even close"), false},
		{"truncated", good[:len(good)-10], false},
		// Check inflates every body, so it refuses these at upload.
		{"corrupt body", corrupt, false},
		{"bad crc", makeRawZip(t, rawEntry{name: "a", method: zip.Store, data: body,
			crc: 12345, uncompressed: uint64(len(body))}), false},
		{"unknown method", makeRawZip(t, rawEntry{name: "a", method: 99, data: body,
			computeCRCFromBody: body, uncompressed: uint64(len(body))}), false},
		{"short body", makeRawZip(t, rawEntry{name: "a", method: zip.Store, data: body,
			computeCRCFromBody: body, uncompressed: uint64(len(body)) + 5}), false},
		// Check reads link bodies, so it sees this one.
		{"unreadable link", makeRawZip(t, rawEntry{name: "l", method: 99, data: body, link: true,
			computeCRCFromBody: body, uncompressed: uint64(len(body))}), false},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			_, err := archive.Check(tt.data, archive.MaxUnzipped)
			if tt.checkOK {
				if err != nil {
					t.Errorf("Check: %v", err)
				}
			} else {
				wantAWSErr(t, "Check", err, unreadable)
			}
			base := t.TempDir()
			err = archive.Unpack(tt.data, filepath.Join(base, "code"), archive.MaxUnzipped)
			wantAWSErr(t, "Unpack", err, unreadable)
			if got := listTree(t, base); len(got) != 0 {
				t.Errorf("left behind: %q", got)
			}
		})
	}
}

func TestTooLarge(t *testing.T) {
	exact := makeZip(t, file("a", strings.Repeat("a", 600)), file("b", strings.Repeat("b", 400)))
	if total, err := archive.Check(exact, 1000); err != nil || total != 1000 {
		t.Errorf("Check(1000 bytes, max 1000) = %d, %v; want 1000, nil", total, err)
	}
	if err := archive.Unpack(exact, filepath.Join(t.TempDir(), "code"), 1000); err != nil {
		t.Errorf("Unpack(1000 bytes, max 1000): %v", err)
	}

	zeros := make([]byte, 1<<20)
	tests := []struct {
		desc    string
		data    []byte
		checkOK bool
		msg     string
	}{
		{"one byte over", makeZip(t, file("a", strings.Repeat("a", 600)), file("b", strings.Repeat("b", 401))),
			false, tooLarge},
		// A megabyte of zeros deflates to about a kilobyte.
		{"bomb", makeZip(t, file("zeros", string(zeros))), false, tooLarge},
		{"link counts", makeZip(t, file("a", strings.Repeat("a", 1000)), symlink("l", "a")), false, tooLarge},
		// Declared sizes whose sum wraps around in 64 bits.
		{"overflow", makeRawZip(t,
			rawEntry{name: "a", method: zip.Store, uncompressed: 1 << 63},
			rawEntry{name: "b", method: zip.Store, uncompressed: 1 << 63},
			rawEntry{name: "c", method: zip.Store, uncompressed: 10},
		), false, tooLarge},
		// Headers that declare 10 bytes for a body that inflates to a
		// megabyte: neither Check nor Unpack believes them.
		{"lying deflate", makeRawZip(t, rawEntry{name: "a", method: zip.Deflate, data: deflate(t, zeros),
			computeCRCFromBody: zeros, uncompressed: 10}), false, unreadable},
		{"lying store", makeRawZip(t, rawEntry{name: "a", method: zip.Store, data: zeros[:5000],
			computeCRCFromBody: zeros[:5000], uncompressed: 10}), false, unreadable},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			_, err := archive.Check(tt.data, 1000)
			if tt.checkOK {
				if err != nil {
					t.Errorf("Check: %v", err)
				}
			} else {
				wantAWSErr(t, "Check", err, tt.msg)
			}
			base := t.TempDir()
			err = archive.Unpack(tt.data, filepath.Join(base, "code"), 1000)
			wantAWSErr(t, "Unpack", err, tt.msg)
			if got := listTree(t, base); len(got) != 0 {
				t.Errorf("left behind: %q", got)
			}
		})
	}
}

// TestUnpackModesIgnoreUmask checks that modes come from the archive alone:
// the server's umask must not make a function's files unreadable to it.
func TestUnpackModesIgnoreUmask(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	data := makeZip(t, exe("bootstrap", "x"), file("lib/a.txt", "a"), dir("empty/"))
	out := filepath.Join(t.TempDir(), "code")
	if err := archive.Unpack(data, out, 1000); err != nil {
		t.Fatal(err)
	}
	want := []string{"F bootstrap 755", "D empty 755", "D lib 755", "F lib/a.txt 644"}
	if got := listTree(t, out); !slices.Equal(got, want) {
		t.Errorf("tree:\n got %q\nwant %q", got, want)
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("directory mode: %v, %v; want 755", fi.Mode(), err)
	}
}

// TestInsecurePathGODEBUG checks that archive/zip's own refusal of unsafe
// names (under GODEBUG=zipinsecurepath=0) still yields the message naming
// the entry, and does not break safe archives.
func TestInsecurePathGODEBUG(t *testing.T) {
	t.Setenv("GODEBUG", "zipinsecurepath=0")
	_, err := archive.Check(makeZip(t, file("ok", "x"), file("../evil", "x")), 1000)
	e := wantAWSErr(t, "Check", err, "")
	if !strings.Contains(e.Message, `"../evil"`) {
		t.Errorf("message %q does not name the entry", e.Message)
	}
	if _, err := archive.Check(makeZip(t, file("ok", "x")), 1000); err != nil {
		t.Errorf("Check of a safe archive: %v", err)
	}
}

// TestUnpackCleanupKeepsDir checks that a failed Unpack into a directory it
// did not create empties it but leaves it in place.
func TestUnpackCleanupKeepsDir(t *testing.T) {
	out := t.TempDir()
	data := makeZip(t, file("a/b/c", "x"), exe("bootstrap", "y"), symlink("l", "a"), file("../evil", "z"))
	err := archive.Unpack(data, out, 1000)
	wantAWSErr(t, "Unpack", err, "")
	if got := listTree(t, out); len(got) != 0 {
		t.Errorf("left behind: %q", got)
	}
	if fi, err := os.Stat(out); err != nil || !fi.IsDir() {
		t.Errorf("directory gone: %v", err)
	}
}

// checkContained fails t if anything under base other than keep and what is
// under dir exists, or if a link under dir leads outside dir.
func checkContained(t *testing.T, base, dir string, keep ...string) {
	t.Helper()
	entries, err := os.ReadDir(base)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if filepath.Join(base, e.Name()) != dir && !slices.Contains(keep, e.Name()) {
			t.Fatalf("written outside the directory: %s", e.Name())
		}
	}
	if _, err := os.Lstat(dir); err != nil {
		return
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink == 0 {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		// os.Root refuses to follow a link out of the directory; a
		// dangling link, a loop, a file used as a directory or a target
		// whose name is too long for the file system fail as they would
		// for the function.
		if _, err := root.Stat(rel); err != nil && !errors.Is(err, fs.ErrNotExist) &&
			!errors.Is(err, syscall.ELOOP) && !errors.Is(err, syscall.ENOTDIR) && !errors.Is(err, syscall.ENAMETOOLONG) {
			t.Errorf("link %s: %v", rel, err)
		}
		if resolved, err := filepath.EvalSymlinks(p); err == nil &&
			resolved != realDir && !strings.HasPrefix(resolved, realDir+string(filepath.Separator)) {
			t.Errorf("link %s resolves to %s, outside %s", rel, resolved, realDir)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// fuzzUnpack is the property both fuzz targets check: Unpack never panics,
// fails only with client errors, writes only inside its directory, leaves
// nothing behind on failure, and agrees with Check.
func fuzzUnpack(t *testing.T, data []byte) {
	const max = 1 << 20
	base := t.TempDir()
	if err := os.WriteFile(filepath.Join(base, "outside"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(base, "code")
	err := archive.Unpack(data, dir, max)
	_, checkErr := archive.Check(data, max)
	if err != nil {
		if _, ok := awserr.As(err); !ok {
			t.Fatalf("Unpack: %v is not a client error", err)
		}
		if _, statErr := os.Lstat(dir); !errors.Is(statErr, fs.ErrNotExist) {
			t.Fatalf("Unpack failed (%v) but left %s: %v", err, dir, statErr)
		}
		checkContained(t, base, dir, "outside")
		return
	}
	if checkErr != nil {
		t.Fatalf("Unpack succeeded but Check failed: %v", checkErr)
	}
	// Verify accepts exactly what Unpack made.
	zipPath := filepath.Join(t.TempDir(), "code.zip")
	if err := os.WriteFile(zipPath, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := archive.Verify(zipPath, dir); err != nil {
		t.Fatalf("Verify of what Unpack made: %v", err)
	}
	checkContained(t, base, dir, "outside")
	if fi, err := os.Stat(filepath.Join(base, "outside")); err != nil || fi.Size() != 0 {
		t.Fatalf("file outside changed: %v", err)
	}
}

func FuzzUnpack(f *testing.F) {
	f.Add(makeZip(f, exe("bootstrap", "#!/bin/sh\n"), file("lib/a.txt", "a"), symlink("l", "lib/a.txt")))
	f.Add(makeZip(f, file("../evil", "x")))
	f.Add(makeZip(f, dir("d/"), symlink("d/e", ".."), symlink("f", "d/e/..")))
	f.Fuzz(fuzzUnpack)
}

// FuzzUnpackEntries builds archives from a small script rather than raw
// bytes, so the fuzzer explores names and link targets instead of zip
// framing. Each line is "f name", "x name", "d name" or "l name target".
func FuzzUnpackEntries(f *testing.F) {
	for _, s := range []string{
		"d a/\nl a/l ..\nl f a/l/..",
		"l f d/e/..\nd d/\nl d/e ..",
		"l l sub\nf l/x",
		"f a/b/c\nl up a/b/../b\nl u2 up/../..",
		"l a b\nl b a\nl c a/x",
		"x bootstrap\nl lib .\nf lib/x",
		"d a\nl a/b ../a/./..\nf c",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, script string) {
		lines := strings.Split(script, "\n")
		if len(lines) > 20 {
			lines = lines[:20]
		}
		var entries []entry
		for _, line := range lines {
			op, rest, _ := strings.Cut(line, " ")
			switch op {
			case "f":
				entries = append(entries, file(rest, "data"))
			case "x":
				entries = append(entries, exe(rest, "#!/bin/sh\n"))
			case "d":
				entries = append(entries, dir(rest))
			case "l":
				name, target, _ := strings.Cut(rest, " ")
				entries = append(entries, symlink(name, target))
			}
		}
		fuzzUnpack(t, makeZip(t, entries...))
	})
}

func BenchmarkUnpack(b *testing.B) {
	// About 1 MB in 50 files: half text that compresses, half random
	// bytes that do not.
	rng := rand.New(rand.NewPCG(1, 2))
	var entries []entry
	var size int64
	for i := range 50 {
		body := make([]byte, 20<<10)
		if i%2 == 0 {
			for j := range body {
				body[j] = byte(rng.IntN(256))
			}
		} else {
			line := []byte(fmt.Sprintf("export const value%d = %q;\n", i, "some source text"))
			for j := range body {
				body[j] = line[j%len(line)]
			}
		}
		size += int64(len(body))
		entries = append(entries, file(fmt.Sprintf("pkg%d/file%d.js", i%5, i), string(body)))
	}
	data := makeZip(b, entries...)
	base := b.TempDir()
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out := filepath.Join(base, fmt.Sprint(i))
		if err := archive.Unpack(data, out, archive.MaxUnzipped); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := os.RemoveAll(out); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

func BenchmarkCheck(b *testing.B) {
	var entries []entry
	for i := range 50 {
		entries = append(entries, file(fmt.Sprintf("pkg%d/file%d.js", i%5, i), strings.Repeat("x", 20<<10)))
		entries = append(entries, symlink(fmt.Sprintf("pkg%d/link%d", i%5, i), fmt.Sprintf("../pkg%d/file%d.js", (i+1)%5, i)))
	}
	data := makeZip(b, entries...)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := archive.Check(data, archive.MaxUnzipped); err != nil {
			b.Fatal(err)
		}
	}
}

// An entry thousands of directories deep is refused at once; unpacking one
// as deep as allowed stays quick (making each directory resolves its path
// from the top, so the cost grows with the square of the depth).
func TestDepthBound(t *testing.T) {
	deep := strings.Repeat("d/", 2000) + "f"
	start := time.Now()
	_, err := archive.Check(makeZip(t, file(deep, "x")), archive.MaxUnzipped)
	if err == nil || !strings.Contains(err.Error(), "is more than 128 directories deep") {
		t.Errorf("Check: %v", err)
	}
	err = archive.Unpack(makeZip(t, file(deep, "x")), filepath.Join(t.TempDir(), "code"), archive.MaxUnzipped)
	if err == nil || !strings.Contains(err.Error(), "is more than 128 directories deep") {
		t.Errorf("Unpack: %v", err)
	}
	ok := strings.Repeat("d/", 127) + "f"
	if err := archive.Unpack(makeZip(t, file(ok, "x")), filepath.Join(t.TempDir(), "code"), archive.MaxUnzipped); err != nil {
		t.Fatalf("127 directories deep: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v", d)
	}
}
