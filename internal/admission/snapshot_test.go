package admission

import (
	"fmt"
	"testing"
)

// TestSnapshotTakesNoLock holds the setters' lock, as a setter in the
// middle of a change does, and checks that Snapshot and Function still
// answer: a scrape must never wait for the control plane, nor make it wait.
func TestSnapshotTakesNoLock(t *testing.T) {
	c := New(10)
	c.SetReserved("r", 3, true)
	s := acquire(t, c, "r", "$LATEST", onDemand)
	defer s.Release()

	c.mu.Lock()
	done := make(chan Snapshot)
	go func() { done <- c.Snapshot() }()
	got := <-done
	fs, ok := c.Function("r")
	c.mu.Unlock()

	if len(got.Functions) != 1 || got.Functions[0].Reserved != 3 || got.Functions[0].OnDemandInFlight != 1 {
		t.Errorf("Snapshot while a setter holds the lock = %+v, want r reserved 3 with 1 in flight", got.Functions)
	}
	if !ok || fs.Reserved != 3 {
		t.Errorf("Function(r) while a setter holds the lock = %+v, %v", fs, ok)
	}
}

func TestSnapshotSeesSettingsRemoved(t *testing.T) {
	c := New(10)
	c.SetReserved("r", 3, true)
	c.SetReserved("r", 0, false)
	if fs, _ := c.Function("r"); fs.HasReserved {
		t.Errorf("after the reservation was removed Function(r) = %+v", fs)
	}
	s := acquire(t, c, "r", "$LATEST", onDemand)
	c.RemoveFunction("r")
	if fs, ok := c.Function("r"); !ok || fs.HasReserved || fs.OnDemandInFlight != 1 {
		t.Errorf("a removed function still running: Function(r) = %+v, %v", fs, ok)
	}
	s.Release()
}

func TestSpillover(t *testing.T) {
	c := New(10)
	c.SetProvisionedConfigured("p", "live", 1)
	c.SetProvisioned("p", "live", 1)
	first := acquire(t, c, "p", "live", provisioned)
	defer first.Release()
	if first.Spillover() {
		t.Error("a slot on a provisioned environment reports spillover")
	}
	second := acquire(t, c, "p", "live", onDemand)
	defer second.Release()
	if !second.Spillover() {
		t.Error("an on-demand slot taken while the target's provisioned environments are busy does not report spillover")
	}
	other := acquire(t, c, "p", "$LATEST", onDemand)
	defer other.Release()
	if other.Spillover() {
		t.Error("a target without provisioned concurrency reports spillover")
	}
}

// BenchmarkSnapshot is the scrape's cost in admission with many functions
// that have settings.
func BenchmarkSnapshot(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			c := New(MaxConcurrency)
			for i := range n {
				c.SetReserved(fmt.Sprintf("fn-%05d", i), 1, true)
			}
			b.ReportAllocs()
			for b.Loop() {
				if s := c.Snapshot(); len(s.Functions) != n {
					b.Fatalf("%d functions, want %d", len(s.Functions), n)
				}
			}
		})
	}
}
