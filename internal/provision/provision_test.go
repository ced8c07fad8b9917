package provision_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/lambdad/lambdad/internal/admission"
	"github.com/lambdad/lambdad/internal/archive"
	"github.com/lambdad/lambdad/internal/execenv"
	"github.com/lambdad/lambdad/internal/function"
	"github.com/lambdad/lambdad/internal/lambdatest"
	"github.com/lambdad/lambdad/internal/provision"
)

// codeDir unpacks the real Go test function once per test.
func codeDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "code")
	if err := archive.Unpack(lambdatest.GoFunction(t), dir, archive.MaxUnzipped); err != nil {
		t.Fatal(err)
	}
	return dir
}

// specs builds the environments of provisioned targets from one code
// directory, as the invoker does from each version's code.
type specs struct{ dir string }

func (s specs) ProvisionedSpec(_ context.Context, fn function.Key, qualifier, version string) (*execenv.Spec, error) {
	return &execenv.Spec{
		Function: fn.Name, Version: version, Revision: "r-" + version, Runtime: "provided.al2023",
		Handler: "bootstrap", CodeDir: s.dir, MemoryMB: 128, Timeout: 10 * time.Second,
		Region: "us-east-1", Account: "123456789012",
		InitType: execenv.InitProvisioned, Pool: qualifier,
	}, nil
}

func manager(t *testing.T) *execenv.Manager {
	t.Helper()
	m, err := execenv.NewManager(execenv.Config{Logger: lambdatest.Logger(t), TempRoot: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// gatedSlots is admission with a gate in front of the first allocation it
// is told of: that call waits until the test opens the gate, so the test
// can make another call happen while it is under way.
type gatedSlots struct {
	*admission.Controller
	entered chan struct{}
	open    chan struct{}
	passed  chan struct{} // closed once the gated call has gone through
	once    sync.Once
}

func (g *gatedSlots) SetProvisioned(fn function.Key, target string, allocated int) {
	gated := false
	if allocated > 0 {
		g.once.Do(func() {
			gated = true
			close(g.entered)
			<-g.open
		})
	}
	g.Controller.SetProvisioned(fn.Name, target, allocated)
	if gated {
		close(g.passed)
	}
}

func allocated(adm *admission.Controller, function, target string) int {
	for _, f := range adm.Snapshot().Functions {
		if f.Name != function {
			continue
		}
		for _, t := range f.Targets {
			if t.Target == target {
				return t.Allocated
			}
		}
	}
	return 0
}

// TestUnprovisionDuringAllocationLeavesNoSlots: the provisioner publishes
// an allocation to admission while an Unprovision of the same target comes
// in. The allocation must not land after the Unprovision: admission would
// then keep provisioned slots for a config that no longer exists. (Before,
// the allocation was published after the provisioner's lock was dropped,
// and this test saw 1 slot left.)
func TestUnprovisionDuringAllocationLeavesNoSlots(t *testing.T) {
	adm := admission.New(100)
	slots := &gatedSlots{Controller: adm, entered: make(chan struct{}), open: make(chan struct{}), passed: make(chan struct{})}
	p := provision.New(manager(t), slots, nil, lambdatest.Logger(t))
	p.Start(specs{codeDir(t)})
	defer p.Close()
	adm.SetProvisionedConfigured("f", "1", 1)
	p.Provision(fk, "1", "1", 1)

	select {
	case <-slots.entered:
	case <-time.After(30 * time.Second):
		t.Fatal("the environment never became ready")
	}
	// The allocation is being published. Unprovision now, and give it a
	// moment to finish if nothing holds it back.
	done := make(chan struct{})
	go func() {
		adm.SetProvisionedConfigured("f", "1", 0)
		p.Unprovision(fk, "1")
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(100 * time.Millisecond):
	}
	close(slots.open)
	<-done
	<-slots.passed
	if n := allocated(adm, "f", "1"); n != 0 {
		t.Fatalf("admission keeps %d provisioned slots of an unprovisioned target", n)
	}
	if got := p.Targets(); len(got) != 0 {
		t.Fatalf("targets after Unprovision: %+v", got)
	}
}

// TestProvisionLifecycle walks one target through its states with real
// environments: IN_PROGRESS while they start, READY with all allocated,
// resized down, moved to another version, and gone.
func TestProvisionLifecycle(t *testing.T) {
	accts := admission.NewAccounts(fk.Account, func(string) int { return 100 })
	adm := accts.For(fk.Account)
	envs := manager(t)
	p := provision.New(envs, accts, nil, lambdatest.Logger(t))
	p.Start(specs{codeDir(t)})
	defer p.Close()

	wait := func(what string, ok func(provision.Target) bool) provision.Target {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			ts := p.Targets()
			if len(ts) == 1 && ok(ts[0]) {
				return ts[0]
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: targets %+v", what, ts)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	adm.SetProvisionedConfigured("f", "live", 3)
	p.Provision(fk, "live", "1", 3)
	if st := p.Status(fk, "live"); st.Status != provision.InProgress && st.Status != provision.Ready {
		t.Fatalf("status right after Provision: %+v", st)
	}
	wait("ready", func(tg provision.Target) bool { return tg.Status == provision.Ready && tg.Allocated == 3 })
	if n := allocated(adm, "f", "live"); n != 3 {
		t.Fatalf("admission allocated %d, want 3", n)
	}
	spec1, _ := specs{}.ProvisionedSpec(context.Background(), fk, "live", "1")
	if n := envs.Live(spec1); n != 3 {
		t.Fatalf("%d environments of version 1 up, want 3", n)
	}

	p.Provision(fk, "live", "1", 1)
	wait("resized", func(tg provision.Target) bool { return tg.Status == provision.Ready && tg.Allocated == 1 })

	// The alias moves: version 1's environments go, version 2's come.
	p.Provision(fk, "live", "2", 1)
	wait("moved", func(tg provision.Target) bool {
		return tg.Version == "2" && tg.Status == provision.Ready && tg.Allocated == 1
	})
	spec2, _ := specs{}.ProvisionedSpec(context.Background(), fk, "live", "2")
	for deadline := time.Now().Add(10 * time.Second); envs.Live(spec1) != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("version 1 still has %d environments after the move", envs.Live(spec1))
		}
	}
	if n := envs.Live(spec2); n != 1 {
		t.Fatalf("%d environments of version 2, want 1", n)
	}

	p.Unprovision(fk, "live")
	if got := p.Targets(); len(got) != 0 || allocated(adm, "f", "live") != 0 {
		t.Fatalf("after Unprovision: targets %+v, allocated %d", got, allocated(adm, "f", "live"))
	}
}

// TestInitFailuresMakeTargetFailed: a function whose Init fails every
// time ends FAILED with AWS's reason, and nothing is allocated.
func TestInitFailuresMakeTargetFailed(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bootstrap"), []byte("#!/bin/sh\necho cannot start >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := provision.New(manager(t), admission.NewAccounts(fk.Account, func(string) int { return 100 }), nil, lambdatest.Logger(t))
	p.Start(specs{dir})
	defer p.Close()
	p.Provision(fk, "1", "1", 2)
	deadline := time.Now().Add(30 * time.Second)
	for p.Status(fk, "1").Status != provision.Failed {
		if time.Now().After(deadline) {
			t.Fatalf("status %+v, want FAILED", p.Status(fk, "1"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st := p.Status(fk, "1"); st.Reason != provision.ReasonInitFailure || st.Allocated != 0 {
		t.Fatalf("FAILED status %+v", st)
	}
}

// fk is the function the tests provision.
var fk = function.Key{Account: "123456789012", Name: "f"}
