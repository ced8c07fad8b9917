package admission

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/lambdad/lambdad/internal/awserr"
)

// watched is an in-flight count kept by the test itself, beside the
// Controller's, with the limit it must never pass.
type watched struct {
	name  string
	limit int64
	n     atomic.Int64
}

// enter counts one admission and reports whether the limit still holds.
func (w *watched) enter() bool { return w.n.Add(1) <= w.limit }
func (w *watched) leave()      { w.n.Add(-1) }

// stormConfig is the account the storm runs against:
//
//	L = 16
//	r: reservation 5, provisioned 2 on "live" → 3 left for on-demand
//	p: no reservation, provisioned 3 on "1"
//	u0..u2 and p's spillover share U = 16 − 5 − 3 = 8
func stormConfig(c *Controller) {
	c.SetAccountLimit(16)
	c.SetReserved("r", 5, true)
	c.SetProvisionedConfigured("r", "live", 2)
	c.SetProvisioned("r", "live", 2)
	c.SetProvisionedConfigured("p", "1", 3)
	c.SetProvisioned("p", "1", 3)
}

func TestStorm(t *testing.T) {
	const (
		workers    = 64
		iterations = 1500
	)
	c := New(16)
	stormConfig(c)
	if got := c.Unreserved(); got != 8 {
		t.Fatalf("Unreserved() = %d, want 8", got)
	}

	var (
		rOnDemand   = &watched{name: "r on-demand", limit: 3}
		rLive       = &watched{name: "r:live provisioned", limit: 2}
		pProv       = &watched{name: "p:1 provisioned", limit: 3}
		unreserved  = &watched{name: "unreserved pool", limit: 8}
		account     = &watched{name: "account", limit: 16}
		failed      atomic.Bool
		admitted    atomic.Int64
		invocations = []struct{ function, target string }{
			{"r", "$LATEST"}, {"r", "live"}, {"r", "2"},
			{"p", "1"}, {"p", "$LATEST"},
			{"u0", "$LATEST"}, {"u1", "$LATEST"}, {"u2", "7"},
		}
	)
	// pools tells which of the test's counts an admission belongs to.
	pools := func(function, target string, s *Slot) []*watched {
		switch {
		case function == "r" && s.Provisioned():
			return []*watched{rLive, account}
		case function == "r":
			return []*watched{rOnDemand, account}
		case s.Provisioned():
			return []*watched{pProv, account}
		default:
			return []*watched{unreserved, account}
		}
	}

	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range iterations {
				if failed.Load() {
					return
				}
				inv := invocations[(w+i)%len(invocations)]
				s, err := c.Acquire(inv.function, inv.target)
				if err != nil {
					if e, ok := awserr.As(err); !ok || e.Code != awserr.TooManyRequests {
						t.Errorf("Acquire(%q, %q): %v", inv.function, inv.target, err)
						failed.Store(true)
					}
					continue
				}
				admitted.Add(1)
				ws := pools(inv.function, inv.target, s)
				for _, p := range ws {
					if !p.enter() {
						t.Errorf("%s: %d in flight, limit %d", p.name, p.n.Load(), p.limit)
						failed.Store(true)
					}
				}
				// Hold the slot a little so the pools fill up.
				for range i % 4 {
					runtime.Gosched()
				}
				for _, p := range ws {
					p.leave()
				}
				s.Release()
				if i%3 == 0 {
					s.Release()
				}
			}
		})
	}
	wg.Wait()
	if failed.Load() {
		return
	}

	checkIdle(t, c)
	snap := c.Snapshot()
	t.Logf("admitted %d of %d; throttles %v", admitted.Load(), workers*iterations, snap.Throttles)
	// Throttles show each pool was full at some point, so the limits above
	// were reached, not merely respected.
	for _, reason := range []string{reasonReserved, reasonUnreserved} {
		if snap.Throttles[reason] == 0 {
			t.Errorf("no %s throttle: the storm never filled that pool", reason)
		}
	}
	checkFullCapacity(t, c)
}

// TestStormWithSettingsChanging runs the storm while the control plane keeps
// changing every setting, then checks that no count went astray: every
// counter is zero after the last release and every pool admits exactly its
// capacity again.
func TestStormWithSettingsChanging(t *testing.T) {
	const (
		workers    = 32
		iterations = 300
		changes    = 300
	)
	c := New(16)
	stormConfig(c)
	invocations := []struct{ function, target string }{
		{"r", "$LATEST"}, {"r", "live"}, {"p", "1"}, {"p", "$LATEST"}, {"u0", "$LATEST"}, {"gone", "1"},
	}

	var (
		wg     sync.WaitGroup
		hammer sync.WaitGroup
		failed atomic.Bool
	)
	for w := range workers {
		hammer.Go(func() {
			for i := range iterations {
				inv := invocations[(w+i)%len(invocations)]
				s, err := c.Acquire(inv.function, inv.target)
				if err != nil {
					continue
				}
				for range i % 3 {
					runtime.Gosched()
				}
				s.Release()
			}
		})
	}
	wg.Go(func() {
		for i := range changes {
			switch i % 7 {
			case 0:
				c.SetReserved("r", i%6, true)
			case 1:
				c.SetReserved("r", 0, false)
			case 2:
				c.SetProvisioned("p", "1", i%4)
			case 3:
				c.SetProvisionedConfigured("r", "live", i%3)
			case 4:
				c.SetAccountLimit(10 + i%10)
			case 5:
				c.RemoveFunction("gone")
			case 6:
				c.SetProvisioned("r", "live", i%3)
				c.SetReserved("gone", 1, true)
				c.SetProvisionedConfigured("gone", "1", 1)
				c.SetProvisioned("gone", "1", 1)
			}
			runtime.Gosched()
		}
	})
	// Counts may pass a limit that has just been lowered, but never go
	// below zero.
	wg.Go(func() {
		for range changes {
			s := c.Snapshot()
			if s.UnreservedInFlight < 0 {
				t.Errorf("UnreservedInFlight = %d", s.UnreservedInFlight)
				failed.Store(true)
			}
			for _, f := range s.Functions {
				if f.OnDemandInFlight < 0 || f.ProvisionedInFlight < 0 {
					t.Errorf("%s: in flight on-demand %d, provisioned %d", f.Name, f.OnDemandInFlight, f.ProvisionedInFlight)
					failed.Store(true)
				}
			}
			if failed.Load() {
				return
			}
			runtime.Gosched()
		}
	})
	hammer.Wait()
	wg.Wait()

	checkIdle(t, c)
	c.RemoveFunction("gone")
	stormConfig(c)
	checkFullCapacity(t, c)
}

// checkFullCapacity checks, on an idle Controller set up by stormConfig,
// that every pool admits exactly its capacity: nothing leaked in or out.
func checkFullCapacity(t *testing.T, c *Controller) {
	t.Helper()
	var slots []*Slot
	slots = append(slots, acquireN(t, c, "r", "live", 2, provisioned)...)
	slots = append(slots, acquireN(t, c, "r", "live", 3, onDemand)...)
	acquire(t, c, "r", "$LATEST", throttledReserved)
	slots = append(slots, acquireN(t, c, "p", "1", 3, provisioned)...)
	for i := range 8 {
		slots = append(slots, acquire(t, c, fmt.Sprintf("u%d", i%3), "$LATEST", onDemand))
	}
	acquire(t, c, "p", "1", throttledUnreserved)
	releaseAll(slots)
	checkIdle(t, c)
}
