package deps

import (
	"os/exec"
	"slices"
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
	"internal/s3code":     2,
	"internal/admission":  2,
	"internal/runtimeapi": 1,
	"internal/sandbox":    1,
	"internal/store":      2,
	"internal/execenv":    2,
	"internal/control":    3,
	"internal/cluster":    3,
	"internal/invoke":     4,
	"internal/events":     5,
	"internal/provision":  5,
	"internal/esm":        5,
	"internal/esm/filter": 1,
	"internal/api":        6,
	"internal/metrics":    6,
	// The console is a client of the HTTP API: it imports nothing of
	// lambdad (layer 0 admits no lambdad package below it).
	"internal/console": 0,
	"internal/server":  7,
	"internal/bench":   8,
	// The console's browser tests drive a whole node.
	"internal/consoletest": 8,
	"cmd/lambdad":          9,

	// The what-if simulator: admission and the control plane's checks
	// replayed in virtual time; its tests replay against a live server.
	"internal/simulate": 8,

	// Cluster-wide slots on etcd: below admission and the server.
	"internal/slots": 1,
}

// exempt are packages outside the layering: test fixtures and this one.
var exempt = map[string]bool{
	"internal/lambdatest":        true,
	"internal/storetest":         true,
	"internal/lambdatest/testfn": true,
	"internal/deps":              true,
}

// onlyIn names outside libraries and the packages that may import each
// (the SQS client also in the tests of the server, the binary and the
// console, which fill the queues their mappings read).
var onlyIn = map[string][]string{
	"go.etcd.io/bbolt":                               {"internal/store"},
	"github.com/aws/aws-sdk-go-v2/service/sqs":       {"internal/esm", "internal/server", "cmd/lambdad", "internal/consoletest"},
	"github.com/aws/aws-sdk-go-v2/config":            {"internal/esm", "internal/s3code"},
	"github.com/prometheus/client_golang/prometheus": {"internal/metrics"},
	"github.com/chromedp/chromedp":                   {"internal/consoletest"},
	"github.com/aws/aws-sdk-go-v2/service/s3":        {"internal/s3code"},
	// etcd: the store kept in etcd and the cluster-wide slots.
	"go.etcd.io/etcd/client/v3":             {"internal/slots", "internal/store"},
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes": {"internal/slots", "internal/store"},
	"go.uber.org/zap":                       {"internal/store"}, // to quiet etcd's client
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
			if owners, ok := onlyIn[imp]; ok && !slices.Contains(owners, pkg) {
				t.Errorf("%s imports %s; only %v may", pkg, imp, owners)
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
