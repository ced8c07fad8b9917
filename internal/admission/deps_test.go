package admission

import (
	"go/build"
	"strings"
	"testing"
)

// TestImports keeps the package a pure in-memory accountant: no network,
// no storage, no clock of its own (the request rate reads an injected
// clock.Clock) and no processes.
func TestImports(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	forbidden := []string{"net", "os", "time", "database/", "io/fs", "log", "go.etcd.io/"}
	for _, imp := range pkg.Imports {
		for _, f := range forbidden {
			if imp == f || strings.HasPrefix(imp, f+"/") || strings.HasSuffix(f, "/") && strings.HasPrefix(imp, f) {
				t.Errorf("admission imports %s", imp)
			}
		}
	}
	if len(pkg.Imports) == 0 {
		t.Fatal("no imports found: the check looked at the wrong directory")
	}
}
