package deps

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/lambdad/lambdad/"

// layer orders lambdad's packages: a package may import only packages of
// lower layers, so the edge calls the core and never the reverse. A new
// package must be given its place here.
var layer = map[string]int{
	"internal/awserr":     0,
	"internal/uuid":       0,
	"internal/clock":      0,
	"internal/account":    0,
	"internal/apimodel":   0,
	"runtimes":            0,
	"internal/function":   1,
	"internal/sigv4":      1,
	"internal/policy":     1,
	"internal/iam":        2,
	"internal/archive":    1,
	"internal/admission":  2,
	"internal/runtimeapi": 1,
	"internal/store":      2,
	"internal/execenv":    2,
	"internal/control":    3,
	"internal/invoke":     4,
	"internal/events":     5,
	"internal/provision":  5,
	"internal/api":        6,
	"internal/server":     7,
	"internal/bench":      8,
	"cmd/lambdad":         9,
}

// exempt are packages outside the layering: test fixtures and this one.
var exempt = map[string]bool{
	"internal/lambdatest":        true,
	"internal/storetest":         true,
	"internal/lambdatest/testfn": true,
	"internal/deps":              true,
}

// onlyIn names outside libraries and the one package that may import each.
var onlyIn = map[string]string{
	"go.etcd.io/bbolt": "internal/store",
}

func TestImportsPointOneWay(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("the go command is not on PATH")
	}
	// A package's tests count too: they may use the fixtures and the
	// package itself, and otherwise only what the package may import.
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}:{{join .Imports ","}},{{join .TestImports ","}},{{join .XTestImports ","}}`, module+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		path, imports, _ := strings.Cut(line, ":")
		pkg := strings.TrimPrefix(path, module)
		if exempt[pkg] {
			continue
		}
		own, ok := layer[pkg]
		if !ok {
			t.Errorf("%s has no layer: give it one in deps_test.go", pkg)
			continue
		}
		for _, imp := range strings.Split(imports, ",") {
			if owner, ok := onlyIn[imp]; ok && owner != pkg {
				t.Errorf("%s imports %s; only %s may", pkg, imp, owner)
			}
			dep, ours := strings.CutPrefix(imp, module)
			if !ours || dep == pkg || exempt[dep] {
				continue
			}
			if l, ok := layer[dep]; ok && l >= own {
				t.Errorf("%s (layer %d) imports %s (layer %d): imports must point to lower layers", pkg, own, dep, l)
			}
		}
	}
}
