package archive

import (
	"archive/zip"
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/lambdad/lambdad/internal/awserr"
)

// TestCopyBodyCountsBytes checks the count Unpack keeps of the bytes it
// actually decompresses. archive/zip already refuses a body longer than
// its header declares, so no archive reaches this limit once the declared
// sizes pass; the count is there so that Unpack's bound does not rest on
// that.
func TestCopyBodyCountsBytes(t *testing.T) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, name := range []string{"a", "b", "c"} {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(w, strings.Repeat(name, 400)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}

	x := newExtractor(1000, nil)
	var out bytes.Buffer
	for i, f := range zr.File {
		err := x.copyBody(&out, f)
		if i < 2 {
			if err != nil {
				t.Fatalf("entry %d: %v", i, err)
			}
			continue
		}
		e, ok := awserr.As(err)
		if !ok || e.Code != awserr.InvalidParameterValue || e.Message != "Unzipped size must be smaller than 1000 bytes" {
			t.Fatalf("entry %d past the limit: %v", i, err)
		}
	}
	if x.written > 1000 || out.Len() > 1000 {
		t.Errorf("counted %d, wrote %d bytes; limit 1000", x.written, out.Len())
	}
	if out.Len() != 800 {
		t.Errorf("wrote %d bytes, want the 800 of the first two entries", out.Len())
	}
}
