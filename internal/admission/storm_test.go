package admission

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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
	// The storms are about concurrency: their requests come far faster
	// than the request rate allows, which rate_test.go covers.
	c.SetRequestRate(0)
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
// changing every setting at random: reservations put and removed, functions
// removed, provisioned concurrency configured, allocated and cleared, the
// account limit moved (never above 16). At every moment the invocations the
// test itself counts as running (from a successful Acquire to just before
// its Release) must be at most 16, whatever the settings did to the pools
// under them. Afterwards no count may have gone astray: every counter is
// zero after the last release and every pool admits exactly its capacity
// again.
func TestStormWithSettingsChanging(t *testing.T) {
	const (
		workers = 32
		changes = 2000
		limit   = 16
	)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	c := New(limit)
	stormConfig(c)
	functions := []string{"r", "p", "u0", "gone"}
	targets := []string{"$LATEST", "1", "live"}
	invocations := []struct{ function, target string }{
		{"r", "$LATEST"}, {"r", "live"}, {"p", "1"}, {"p", "$LATEST"}, {"u0", "$LATEST"}, {"gone", "1"},
		{"u0", "live"}, {"gone", "$LATEST"},
	}

	var (
		wg      sync.WaitGroup
		hammer  sync.WaitGroup
		failed  atomic.Bool
		done    atomic.Bool
		running atomic.Int64 // counted by the test around each admitted slot
		peak    atomic.Int64
		// attempts counts Acquire calls, so that changes keep pace with
		// them; admitted counts the successful ones.
		attempts, admitted atomic.Int64
	)
	for w := range workers {
		hammer.Go(func() {
			for i := 0; !done.Load() && !failed.Load(); i++ {
				inv := invocations[(w+i)%len(invocations)]
				s, err := c.Acquire(inv.function, inv.target)
				attempts.Add(1)
				if err != nil {
					if e, ok := awserr.As(err); !ok || e.Code != awserr.TooManyRequests {
						t.Errorf("Acquire(%q, %q): %v", inv.function, inv.target, err)
						failed.Store(true)
					}
					// Throttled: back off, so that the goroutine
					// changing the settings keeps its turn.
					runtime.Gosched()
					continue
				}
				admitted.Add(1)
				n := running.Add(1)
				if n > limit {
					t.Errorf("%d invocations running at once, account limit %d", n, limit)
					failed.Store(true)
				}
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				// Hold the slot so that settings change under it.
				for range (w + i) % 8 {
					runtime.Gosched()
				}
				running.Add(-1)
				s.Release()
			}
		})
	}
	wg.Go(func() {
		defer done.Store(true)
		rng := rand.New(rand.NewPCG(seed, 1))
		for range changes {
			if failed.Load() {
				return
			}
			f := functions[rng.IntN(len(functions))]
			tg := targets[1+rng.IntN(2)]
			switch rng.IntN(7) {
			case 0, 1:
				c.SetReserved(f, rng.IntN(7), true)
			case 2:
				c.SetReserved(f, 0, false)
			case 3:
				c.SetProvisionedConfigured(f, tg, rng.IntN(4))
			case 4:
				c.SetProvisioned(f, tg, rng.IntN(4))
			case 5:
				c.RemoveFunction(f)
			case 6:
				c.SetAccountLimit(limit - rng.IntN(7))
			}
			// Let some invocations be judged under the new settings
			// before the next change.
			for next := attempts.Load() + int64(rng.IntN(64)); attempts.Load() < next && !failed.Load(); {
				runtime.Gosched()
			}
		}
	})
	// Counts may pass a pool's limit that has just been lowered, but never
	// go below zero, and never take the account past its limit.
	wg.Go(func() {
		for !done.Load() {
			s := c.Snapshot()
			if s.UnreservedInFlight < 0 || s.InFlight > limit {
				t.Errorf("UnreservedInFlight = %d, InFlight = %d", s.UnreservedInFlight, s.InFlight)
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
	t.Logf("%d admitted, peak %d running", admitted.Load(), peak.Load())
	if failed.Load() {
		return
	}

	checkIdle(t, c)
	for _, f := range functions {
		c.RemoveFunction(f)
	}
	if s := c.Snapshot(); len(s.Functions) != 0 {
		t.Errorf("functions left after removing all with nothing running: %+v", s.Functions)
	}
	c.SetAccountLimit(limit)
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

// TestRemoveFunctionRacesWithAcquire removes a function while an Acquire of
// it is under way, over and over: an admitted slot must always be counted on
// the entry that holds the name afterwards, never on one taken out of the
// map, so that the name created again counts it.
func TestRemoveFunctionRacesWithAcquire(t *testing.T) {
	c := New(10)
	c.SetRequestRate(0) // about concurrency, not the request rate
	for i := range 3000 {
		var (
			wg   sync.WaitGroup
			s    *Slot
			err  error
			gate = make(chan struct{})
		)
		wg.Go(func() {
			<-gate
			s, err = c.Acquire("f", "$LATEST")
		})
		wg.Go(func() {
			<-gate
			c.RemoveFunction("f")
		})
		close(gate)
		wg.Wait()
		if err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		if fs, ok := c.Function("f"); !ok || fs.OnDemandInFlight != 1 {
			t.Fatalf("round %d: admitted slot not counted on the function's entry: %+v, %v", i, fs, ok)
		}
		c.SetReserved("f", 1, true)
		acquire(t, c, "f", "$LATEST", throttledReserved)
		s.Release()
		c.RemoveFunction("f")
		if _, ok := c.Function("f"); ok {
			t.Fatalf("round %d: entry kept with nothing running", i)
		}
	}
}
