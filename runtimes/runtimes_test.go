package runtimes

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func TestExtract(t *testing.T) {
	dir := t.TempDir()
	if err := Extract(dir); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{Python, Node} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		got, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := FS.ReadFile(name)
		if len(got) == 0 || string(got) != string(want) {
			t.Errorf("%s: extracted %d bytes, embedded %d", name, len(got), len(want))
		}
		if st, _ := os.Stat(p); st.Mode().Perm() != 0o444 {
			t.Errorf("%s: mode %v, want read-only", name, st.Mode().Perm())
		}
	}
}

// TestSyntax checks each bootstrap with its own interpreter, where installed
// (the execenv tests run them end to end).
func TestSyntax(t *testing.T) {
	dir := t.TempDir()
	if err := Extract(dir); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		interp string
		args   []string
	}{
		{"python3", []string{"-B", "-c", "import ast, sys; ast.parse(open(sys.argv[1]).read())", filepath.Join(dir, Python)}},
		{"node", []string{"--check", filepath.Join(dir, Node)}},
	} {
		p, err := exec.LookPath(c.interp)
		if err != nil {
			t.Logf("%s not installed; not checked", c.interp)
			continue
		}
		if out, err := exec.Command(p, c.args...).CombinedOutput(); err != nil {
			t.Errorf("%s: %v\n%s", c.interp, err, out)
		}
	}
}
