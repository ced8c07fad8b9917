package admission

import (
	"fmt"
	"sync"
	"testing"

	"github.com/lambdad/lambdad/internal/awserr"
)

const (
	reasonReserved   = awserr.ReasonReservedFunctionConcurrentInvocationLimitExceeded
	reasonUnreserved = awserr.ReasonConcurrentInvocationLimitExceeded
)

// outcome is what one Acquire is expected to do.
type outcome int

const (
	onDemand outcome = iota
	provisioned
	throttledReserved
	throttledUnreserved
)

func (o outcome) String() string {
	return [...]string{"on-demand", "provisioned", "throttled (reserved)", "throttled (unreserved)"}[o]
}

// acquire runs one Acquire and checks its outcome, including the exact
// throttle error. It returns the slot when one was admitted.
func acquire(t *testing.T, c *Controller, function, target string, want outcome) *Slot {
	t.Helper()
	s, err := c.Acquire(function, target)
	var got outcome
	switch {
	case err == nil && s.Provisioned():
		got = provisioned
	case err == nil:
		got = onDemand
	default:
		if s != nil {
			t.Errorf("Acquire(%q, %q) returned a slot with error %v", function, target, err)
		}
		e, ok := awserr.As(err)
		if !ok {
			t.Fatalf("Acquire(%q, %q) error %v is not an *awserr.Error", function, target, err)
		}
		if e.Code != awserr.TooManyRequests || e.Status() != 429 || e.Message != "Rate Exceeded." || e.Type != "User" {
			t.Errorf("Acquire(%q, %q) error = %+v, want a 429 TooManyRequestsException, Type User, message %q", function, target, e, "Rate Exceeded.")
		}
		switch e.Reason {
		case reasonReserved:
			got = throttledReserved
		case reasonUnreserved:
			got = throttledUnreserved
		default:
			t.Fatalf("Acquire(%q, %q) Reason = %q", function, target, e.Reason)
		}
	}
	if got != want {
		t.Fatalf("Acquire(%q, %q) = %v, want %v", function, target, got, want)
	}
	return s
}

// acquireN runs n Acquires that must all have the outcome want.
func acquireN(t *testing.T, c *Controller, function, target string, n int, want outcome) []*Slot {
	t.Helper()
	var slots []*Slot
	for range n {
		slots = append(slots, acquire(t, c, function, target, want))
	}
	return slots
}

func releaseAll(slots []*Slot) {
	for _, s := range slots {
		s.Release()
	}
}

// checkIdle fails unless every in-flight counter is zero.
func checkIdle(t *testing.T, c *Controller) {
	t.Helper()
	s := c.Snapshot()
	if s.UnreservedInFlight != 0 {
		t.Errorf("UnreservedInFlight = %d after all releases, want 0", s.UnreservedInFlight)
	}
	for _, f := range s.Functions {
		if f.OnDemandInFlight != 0 || f.ProvisionedInFlight != 0 {
			t.Errorf("%s: in flight on-demand %d, provisioned %d after all releases, want 0", f.Name, f.OnDemandInFlight, f.ProvisionedInFlight)
		}
		for _, tg := range f.Targets {
			if tg.InFlight != 0 {
				t.Errorf("%s:%s: %d provisioned in flight after all releases, want 0", f.Name, tg.Target, tg.InFlight)
			}
		}
	}
}

func functionState(t *testing.T, c *Controller, function string) FunctionState {
	t.Helper()
	fs, ok := c.Function(function)
	if !ok {
		t.Fatalf("Function(%q): not known", function)
	}
	return fs
}

func TestAdmissionRules(t *testing.T) {
	type acq struct {
		function, target string
		n                int
		want             outcome
	}
	tests := []struct {
		name  string
		limit int
		setup func(c *Controller)
		// acquires run in order and hold their slots to the end of the case.
		acquires       []acq
		wantUnreserved int
	}{
		{
			name:  "unreserved pool is shared and capped at U",
			limit: 3,
			acquires: []acq{
				{"f", "$LATEST", 2, onDemand},
				{"g", "1", 1, onDemand},
				{"f", "$LATEST", 1, throttledUnreserved},
				{"g", "1", 1, throttledUnreserved},
			},
			wantUnreserved: 3,
		},
		{
			name:  "reservation of 0 throttles every invocation",
			limit: 10,
			setup: func(c *Controller) { c.SetReserved("f", 0, true) },
			acquires: []acq{
				{"f", "$LATEST", 1, throttledReserved},
				{"f", "7", 1, throttledReserved},
				{"g", "$LATEST", 10, onDemand},
			},
			wantUnreserved: 10,
		},
		{
			name:  "reservation caps the function and is taken out of U",
			limit: 10,
			setup: func(c *Controller) { c.SetReserved("f", 2, true) },
			acquires: []acq{
				{"f", "$LATEST", 1, onDemand},
				{"f", "3", 1, onDemand},
				{"f", "$LATEST", 1, throttledReserved},
				{"g", "$LATEST", 8, onDemand},
				{"g", "$LATEST", 1, throttledUnreserved},
			},
			wantUnreserved: 8,
		},
		{
			name:  "reserved function keeps its capacity when the unreserved pool is full",
			limit: 4,
			setup: func(c *Controller) { c.SetReserved("r", 2, true) },
			acquires: []acq{
				{"u", "$LATEST", 2, onDemand},
				{"u", "$LATEST", 1, throttledUnreserved},
				{"v", "$LATEST", 1, throttledUnreserved},
				{"r", "$LATEST", 2, onDemand},
				{"r", "$LATEST", 1, throttledReserved},
			},
			wantUnreserved: 2,
		},
		{
			name:  "unreserved pool keeps its capacity when a reservation is full",
			limit: 4,
			setup: func(c *Controller) { c.SetReserved("r", 2, true) },
			acquires: []acq{
				{"r", "$LATEST", 2, onDemand},
				{"r", "$LATEST", 1, throttledReserved},
				{"u", "$LATEST", 2, onDemand},
				{"u", "$LATEST", 1, throttledUnreserved},
			},
			wantUnreserved: 2,
		},
		{
			name:  "provisioned first, then R minus P on-demand, then throttle",
			limit: 100,
			setup: func(c *Controller) {
				c.SetReserved("f", 5, true)
				c.SetProvisionedConfigured("f", "1", 2)
				c.SetProvisioned("f", "1", 2)
			},
			acquires: []acq{
				{"f", "1", 2, provisioned},
				{"f", "1", 2, onDemand},
				{"f", "$LATEST", 1, onDemand},
				{"f", "1", 1, throttledReserved},
				{"f", "$LATEST", 1, throttledReserved},
			},
			wantUnreserved: 95,
		},
		{
			name:  "provisioned on one target does not serve another",
			limit: 100,
			setup: func(c *Controller) {
				c.SetReserved("f", 3, true)
				c.SetProvisionedConfigured("f", "live", 2)
				c.SetProvisioned("f", "live", 2)
			},
			acquires: []acq{
				{"f", "2", 1, onDemand},
				{"f", "2", 1, throttledReserved},
				{"f", "live", 2, provisioned},
				{"f", "live", 1, throttledReserved},
			},
			wantUnreserved: 97,
		},
		{
			name:  "configured but not yet allocated runs on-demand and still counts against R",
			limit: 100,
			setup: func(c *Controller) {
				c.SetReserved("f", 5, true)
				c.SetProvisionedConfigured("f", "1", 2)
			},
			acquires: []acq{
				{"f", "1", 3, onDemand},
				{"f", "1", 1, throttledReserved},
			},
			wantUnreserved: 95,
		},
		{
			name:  "provisioned without a reservation spills over into the unreserved pool",
			limit: 5,
			setup: func(c *Controller) {
				c.SetProvisionedConfigured("f", "live", 2)
				c.SetProvisioned("f", "live", 2)
			},
			acquires: []acq{
				{"f", "live", 2, provisioned},
				{"f", "live", 2, onDemand},
				{"g", "$LATEST", 1, onDemand},
				{"g", "$LATEST", 1, throttledUnreserved},
				{"f", "live", 1, throttledUnreserved},
			},
			wantUnreserved: 3,
		},
		{
			name:  "reservation below provisioned leaves no on-demand capacity",
			limit: 10,
			setup: func(c *Controller) {
				c.SetReserved("f", 2, true)
				c.SetProvisionedConfigured("f", "1", 3)
				c.SetProvisioned("f", "1", 3)
			},
			acquires: []acq{
				{"f", "1", 3, provisioned},
				{"f", "1", 1, throttledReserved},
			},
			wantUnreserved: 8,
		},
		{
			name:  "U leaves out every reservation and the provisioned concurrency of unreserved functions",
			limit: 10,
			setup: func(c *Controller) {
				c.SetReserved("a", 3, true)
				c.SetProvisionedConfigured("a", "1", 1) // inside a's reservation
				c.SetReserved("b", 0, true)
				c.SetProvisionedConfigured("c", "1", 1)
				c.SetProvisionedConfigured("c", "live", 1)
			},
			acquires: []acq{
				{"d", "$LATEST", 5, onDemand},
				{"c", "1", 1, throttledUnreserved},
				{"a", "1", 2, onDemand},
				{"a", "1", 1, throttledReserved},
			},
			wantUnreserved: 5,
		},
		{
			name:  "reservation removed: the function is unreserved again",
			limit: 10,
			setup: func(c *Controller) {
				c.SetReserved("f", 0, true)
				c.SetReserved("f", 0, false)
			},
			acquires: []acq{
				{"f", "$LATEST", 10, onDemand},
				{"f", "$LATEST", 1, throttledUnreserved},
			},
			wantUnreserved: 10,
		},
		{
			name:  "provisioned configuration removed returns its capacity to U",
			limit: 4,
			setup: func(c *Controller) {
				c.SetProvisionedConfigured("f", "1", 3)
				c.SetProvisioned("f", "1", 3)
				c.SetProvisioned("f", "1", 0)
				c.SetProvisionedConfigured("f", "1", 0)
			},
			acquires: []acq{
				{"f", "1", 4, onDemand},
				{"f", "1", 1, throttledUnreserved},
			},
			wantUnreserved: 4,
		},
		{
			name:  "account limit below what is reserved leaves U at 0 and caps the reservation at L",
			limit: 10,
			setup: func(c *Controller) {
				c.SetReserved("f", 6, true)
				c.SetAccountLimit(5)
			},
			acquires: []acq{
				{"g", "$LATEST", 1, throttledUnreserved},
				{"f", "$LATEST", 5, onDemand},
				{"f", "$LATEST", 1, throttledUnreserved},
			},
			wantUnreserved: 0,
		},
		{
			name:  "account limit raised grows U",
			limit: 1,
			setup: func(c *Controller) {
				c.SetReserved("f", 1, true)
				c.SetAccountLimit(3)
			},
			acquires: []acq{
				{"g", "$LATEST", 2, onDemand},
				{"g", "$LATEST", 1, throttledUnreserved},
			},
			wantUnreserved: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New(tt.limit)
			if tt.setup != nil {
				tt.setup(c)
			}
			if got := c.Unreserved(); got != tt.wantUnreserved {
				t.Errorf("Unreserved() = %d, want %d", got, tt.wantUnreserved)
			}
			var slots []*Slot
			for _, a := range tt.acquires {
				slots = append(slots, acquireN(t, c, a.function, a.target, a.n, a.want)...)
			}
			releaseAll(slots)
			checkIdle(t, c)
		})
	}
}

func TestSnapshotCounts(t *testing.T) {
	c := New(20)
	c.SetReserved("r", 6, true)
	c.SetProvisionedConfigured("r", "live", 2)
	c.SetProvisioned("r", "live", 1)
	c.SetProvisionedConfigured("p", "3", 4)
	c.SetProvisioned("p", "3", 4)

	var slots []*Slot
	slots = append(slots, acquireN(t, c, "r", "live", 1, provisioned)...)
	slots = append(slots, acquireN(t, c, "r", "live", 4, onDemand)...)
	acquire(t, c, "r", "live", throttledReserved)
	slots = append(slots, acquireN(t, c, "p", "3", 4, provisioned)...)
	slots = append(slots, acquireN(t, c, "p", "3", 2, onDemand)...)
	slots = append(slots, acquireN(t, c, "u", "$LATEST", 8, onDemand)...)
	acquire(t, c, "u", "$LATEST", throttledUnreserved)
	acquire(t, c, "p", "$LATEST", throttledUnreserved)

	got := c.Snapshot()
	want := Snapshot{
		AccountLimit:       20,
		OnDemandCapacity:   14,
		UnreservedCapacity: 10,
		InFlight:           19,
		OnDemandInFlight:   14,
		UnreservedInFlight: 10,
		Throttles: map[string]uint64{reasonReserved: 1, reasonUnreserved: 2,
			awserr.ReasonFunctionInvocationRateLimitExceeded: 0, awserr.ReasonReservedFunctionInvocationRateLimitExceeded: 0},
		Functions: []FunctionState{
			{Name: "p", ProvisionedConfigured: 4, OnDemandInFlight: 2, ProvisionedInFlight: 4, Throttles: 1,
				Targets: []TargetState{{Target: "3", Configured: 4, Allocated: 4, InFlight: 4}}},
			{Name: "r", HasReserved: true, Reserved: 6, ReservedCapacity: 4, ProvisionedConfigured: 2,
				OnDemandInFlight: 4, ProvisionedInFlight: 1, Throttles: 1, ThrottlesReserved: 1,
				Targets: []TargetState{{Target: "live", Configured: 2, Allocated: 1, InFlight: 1}}},
			{Name: "u", OnDemandInFlight: 8, Throttles: 1},
		},
	}
	if diff := diffSnapshot(got, want); diff != "" {
		t.Errorf("Snapshot mismatch:\n%s", diff)
	}

	releaseAll(slots)
	checkIdle(t, c)
	if _, ok := c.Function("nobody"); ok {
		t.Error(`Function("nobody") reported a function that was never used`)
	}
}

// diffSnapshot describes how got differs from want, or returns "".
func diffSnapshot(got, want Snapshot) string {
	g, w := fmt.Sprintf("%+v", got), fmt.Sprintf("%+v", want)
	if g == w {
		return ""
	}
	return "got  " + g + "\nwant " + w
}

func TestReleaseIsIdempotent(t *testing.T) {
	c := New(2)
	a := acquire(t, c, "f", "$LATEST", onDemand)
	b := acquire(t, c, "f", "$LATEST", onDemand)
	acquire(t, c, "f", "$LATEST", throttledUnreserved)

	a.Release()
	a.Release()
	if got := c.Snapshot().UnreservedInFlight; got != 1 {
		t.Fatalf("UnreservedInFlight after releasing one slot twice = %d, want 1", got)
	}
	if got := functionState(t, c, "f").OnDemandInFlight; got != 1 {
		t.Fatalf("OnDemandInFlight after releasing one slot twice = %d, want 1", got)
	}

	// Many goroutines releasing the same slot release it once.
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(b.Release)
	}
	wg.Wait()
	checkIdle(t, c)
	acquireN(t, c, "f", "$LATEST", 2, onDemand)
	acquire(t, c, "f", "$LATEST", throttledUnreserved)

	var none *Slot
	none.Release() // must not panic
}

func TestReservationChangedWhileRunning(t *testing.T) {
	t.Run("raised", func(t *testing.T) {
		c := New(10)
		c.SetReserved("f", 2, true)
		old := acquireN(t, c, "f", "$LATEST", 2, onDemand)
		acquire(t, c, "f", "$LATEST", throttledReserved)
		c.SetReserved("f", 4, true)
		slots := acquireN(t, c, "f", "$LATEST", 2, onDemand)
		acquire(t, c, "f", "$LATEST", throttledReserved)
		releaseAll(old)
		releaseAll(slots)
		checkIdle(t, c)
	})
	t.Run("lowered below what runs", func(t *testing.T) {
		c := New(10)
		c.SetReserved("f", 4, true)
		old := acquireN(t, c, "f", "$LATEST", 4, onDemand)
		c.SetReserved("f", 1, true)
		if got := c.Unreserved(); got != 9 {
			t.Errorf("Unreserved() = %d, want 9", got)
		}
		// Running invocations are not cut; new ones wait for the
		// function to come under its new reservation.
		acquire(t, c, "f", "$LATEST", throttledReserved)
		releaseAll(old[:3])
		acquire(t, c, "f", "$LATEST", throttledReserved)
		old[3].Release()
		s := acquire(t, c, "f", "$LATEST", onDemand)
		acquire(t, c, "f", "$LATEST", throttledReserved)
		s.Release()
		checkIdle(t, c)
	})
	t.Run("set to 0", func(t *testing.T) {
		c := New(10)
		c.SetReserved("f", 3, true)
		old := acquireN(t, c, "f", "$LATEST", 2, onDemand)
		c.SetReserved("f", 0, true)
		acquire(t, c, "f", "$LATEST", throttledReserved)
		releaseAll(old)
		acquire(t, c, "f", "$LATEST", throttledReserved)
		checkIdle(t, c)
	})
	t.Run("unreserved to reserved", func(t *testing.T) {
		c := New(10)
		old := acquireN(t, c, "f", "$LATEST", 3, onDemand)
		c.SetReserved("f", 4, true)
		if got := c.Unreserved(); got != 6 {
			t.Errorf("Unreserved() = %d, want 6", got)
		}
		// The reservation counts the function's running invocations,
		// whichever pool admitted them.
		s := acquire(t, c, "f", "$LATEST", onDemand)
		acquire(t, c, "f", "$LATEST", throttledReserved)
		// The old slots still hold their places in the unreserved pool
		// until they end.
		if got := c.Snapshot().UnreservedInFlight; got != 3 {
			t.Errorf("UnreservedInFlight = %d, want 3 (the slots admitted before the reservation)", got)
		}
		others := acquireN(t, c, "g", "$LATEST", 3, onDemand)
		acquire(t, c, "g", "$LATEST", throttledUnreserved)
		releaseAll(old)
		others = append(others, acquireN(t, c, "g", "$LATEST", 3, onDemand)...)
		acquire(t, c, "g", "$LATEST", throttledUnreserved)
		acquireN(t, c, "f", "$LATEST", 3, onDemand) // held: 4 of 4 in use
		acquire(t, c, "f", "$LATEST", throttledReserved)
		s.Release()
		releaseAll(others)
		if got := c.Snapshot().UnreservedInFlight; got != 0 {
			t.Errorf("UnreservedInFlight = %d, want 0", got)
		}
		if got := functionState(t, c, "f").OnDemandInFlight; got != 3 {
			t.Errorf("f OnDemandInFlight = %d, want 3", got)
		}
	})
	t.Run("reserved to unreserved", func(t *testing.T) {
		c := New(10)
		c.SetReserved("f", 3, true)
		old := acquireN(t, c, "f", "$LATEST", 3, onDemand)
		c.SetReserved("f", 0, false)
		if got := c.Unreserved(); got != 10 {
			t.Errorf("Unreserved() = %d, want 10", got)
		}
		// The three admitted under the reservation still count against
		// the account: 7 more, not 10.
		slots := acquireN(t, c, "f", "$LATEST", 7, onDemand)
		acquire(t, c, "f", "$LATEST", throttledUnreserved)
		acquire(t, c, "g", "$LATEST", throttledUnreserved)
		if got := functionState(t, c, "f").OnDemandInFlight; got != 10 {
			t.Errorf("f OnDemandInFlight = %d, want 10", got)
		}
		// Releasing the slots admitted under the reservation gives nothing
		// to the unreserved pool, which never held them, but makes room in
		// the account.
		releaseAll(old)
		if got := c.Snapshot().UnreservedInFlight; got != 7 {
			t.Errorf("UnreservedInFlight = %d, want 7", got)
		}
		slots = append(slots, acquireN(t, c, "f", "$LATEST", 3, onDemand)...)
		acquire(t, c, "f", "$LATEST", throttledUnreserved)
		releaseAll(slots)
		checkIdle(t, c)
	})
	t.Run("provisioned allocation lowered while in use", func(t *testing.T) {
		c := New(10)
		c.SetReserved("f", 5, true)
		c.SetProvisionedConfigured("f", "1", 3)
		c.SetProvisioned("f", "1", 3)
		old := acquireN(t, c, "f", "1", 3, provisioned)
		c.SetProvisioned("f", "1", 1)
		s := acquire(t, c, "f", "1", onDemand)
		releaseAll(old[:2])
		s2 := acquire(t, c, "f", "1", onDemand) // 1 of 1 allocated still in use
		acquire(t, c, "f", "1", throttledReserved)
		old[2].Release()
		p := acquire(t, c, "f", "1", provisioned)
		p.Release()
		s.Release()
		s2.Release()
		checkIdle(t, c)
	})
	t.Run("provisioned target removed and set again while in use", func(t *testing.T) {
		c := New(10)
		c.SetProvisionedConfigured("f", "live", 2)
		c.SetProvisioned("f", "live", 2)
		old := acquireN(t, c, "f", "live", 2, provisioned)
		c.SetProvisioned("f", "live", 0)
		c.SetProvisionedConfigured("f", "live", 0)
		if got := c.Unreserved(); got != 10 {
			t.Errorf("Unreserved() = %d, want 10", got)
		}
		if got := functionState(t, c, "f").ProvisionedInFlight; got != 2 {
			t.Errorf("ProvisionedInFlight = %d after the target was removed, want 2 (still running)", got)
		}
		c.SetProvisionedConfigured("f", "live", 3)
		c.SetProvisioned("f", "live", 3)
		// The two still running count against the new allocation.
		p := acquire(t, c, "f", "live", provisioned)
		s := acquire(t, c, "f", "live", onDemand)
		releaseAll(old)
		p.Release()
		s.Release()
		checkIdle(t, c)
		c.SetProvisioned("f", "live", 0)
		c.SetProvisionedConfigured("f", "live", 0)
		if got := functionState(t, c, "f").Targets; len(got) != 0 {
			t.Errorf("Targets = %+v after removal with nothing in use, want none", got)
		}
	})
}

func TestRemoveFunctionWhileRunning(t *testing.T) {
	c := New(10)
	c.SetReserved("f", 4, true)
	c.SetProvisionedConfigured("f", "1", 2)
	c.SetProvisioned("f", "1", 2)
	c.SetProvisionedConfigured("g", "1", 3)
	old := acquireN(t, c, "f", "1", 2, provisioned)
	old = append(old, acquireN(t, c, "f", "1", 2, onDemand)...)
	acquire(t, c, "f", "1", throttledReserved)
	old = append(old, acquireN(t, c, "g", "1", 3, onDemand)...)

	c.RemoveFunction("f")
	c.RemoveFunction("f") // forgetting twice is harmless
	if got := c.Unreserved(); got != 7 {
		t.Errorf("Unreserved() after removing f = %d, want 7", got)
	}
	// The settings are gone, the running invocations are not.
	fs := functionState(t, c, "f")
	if fs.HasReserved || fs.ProvisionedConfigured != 0 || fs.OnDemandInFlight != 2 || fs.ProvisionedInFlight != 2 {
		t.Errorf("f after RemoveFunction = %+v, want no settings and 2 on-demand and 2 provisioned in flight", fs)
	}
	// A function created again under the same name is unreserved, with
	// no provisioned concurrency, and what still runs of the old one
	// counts against the account: on-demand may use L − 3 (g's P), of
	// which 5 are running.
	fresh := acquireN(t, c, "f", "1", 2, onDemand)
	acquire(t, c, "f", "1", throttledUnreserved)

	releaseAll(old)
	releaseAll(old) // and releasing again changes nothing
	if fs := functionState(t, c, "f"); fs.OnDemandInFlight != 2 || fs.ProvisionedInFlight != 0 || fs.HasReserved {
		t.Errorf("new f = %+v, want 2 on-demand in flight and no reservation", fs)
	}
	if got := c.Snapshot().UnreservedInFlight; got != 2 {
		t.Errorf("UnreservedInFlight = %d, want 2", got)
	}
	fresh = append(fresh, acquireN(t, c, "f", "1", 5, onDemand)...)
	acquire(t, c, "f", "1", throttledUnreserved)
	releaseAll(fresh)
	checkIdle(t, c)

	// With nothing running, the entry goes.
	c.RemoveFunction("f")
	if _, ok := c.Function("f"); ok {
		t.Error("Function(f) still known after RemoveFunction with nothing running")
	}
	c.RemoveFunction("g")
	if got := c.Unreserved(); got != 10 {
		t.Errorf("Unreserved() after removing g = %d, want 10", got)
	}
	c.RemoveFunction("never-seen")
	acquireN(t, c, "g", "1", 10, onDemand)
	acquire(t, c, "f", "$LATEST", throttledUnreserved)
}

// TestReservationGoneWhileRunning: with L = 110, a reserves 10 and runs
// 10; its reservation goes (DeleteFunctionConcurrency or DeleteFunction)
// while they run. The unreserved pool grows back to 110 at once, but a's
// 10 still count, so b gets 100 until they end.
func TestReservationGoneWhileRunning(t *testing.T) {
	for _, how := range []string{"reservation deleted", "function deleted"} {
		t.Run(how, func(t *testing.T) {
			c := New(110)
			c.SetReserved("a", 10, true)
			old := acquireN(t, c, "a", "$LATEST", 10, onDemand)
			if how == "function deleted" {
				c.RemoveFunction("a")
			} else {
				c.SetReserved("a", 0, false)
			}
			if got := c.Unreserved(); got != 110 {
				t.Errorf("Unreserved() = %d, want 110", got)
			}
			b := acquireN(t, c, "b", "$LATEST", 100, onDemand)
			acquire(t, c, "b", "$LATEST", throttledUnreserved)
			acquire(t, c, "a", "$LATEST", throttledUnreserved)
			if s := c.Snapshot(); s.InFlight != 110 || s.UnreservedInFlight != 100 {
				t.Errorf("InFlight %d, UnreservedInFlight %d; want 110 and 100", s.InFlight, s.UnreservedInFlight)
			}
			old[0].Release()
			b = append(b, acquire(t, c, "b", "$LATEST", onDemand))
			acquire(t, c, "b", "$LATEST", throttledUnreserved)
			releaseAll(old[1:])
			b = append(b, acquireN(t, c, "b", "$LATEST", 9, onDemand)...)
			acquire(t, c, "b", "$LATEST", throttledUnreserved)
			releaseAll(b)
			checkIdle(t, c)
		})
	}
}

// TestRemovedFunctionRecreatedWhileRunning: a function deleted while its
// invocation runs, created again, and reserved 1, is throttled until the
// old invocation ends.
func TestRemovedFunctionRecreatedWhileRunning(t *testing.T) {
	c := New(10)
	c.SetReserved("f", 1, true)
	old := acquire(t, c, "f", "$LATEST", onDemand)
	c.RemoveFunction("f")
	c.SetReserved("f", 1, true)
	if got := c.Unreserved(); got != 9 {
		t.Errorf("Unreserved() = %d, want 9", got)
	}
	acquire(t, c, "f", "$LATEST", throttledReserved)
	acquire(t, c, "f", "1", throttledReserved)
	old.Release()
	s := acquire(t, c, "f", "$LATEST", onDemand)
	acquire(t, c, "f", "$LATEST", throttledReserved)
	s.Release()
	checkIdle(t, c)

	// Removed twice over while running, and provisioned in between.
	old = acquire(t, c, "f", "$LATEST", onDemand)
	c.RemoveFunction("f")
	c.SetProvisionedConfigured("f", "1", 1)
	c.SetProvisioned("f", "1", 1)
	p := acquire(t, c, "f", "1", provisioned)
	c.RemoveFunction("f")
	c.SetReserved("f", 2, true)
	acquire(t, c, "f", "$LATEST", onDemand).Release()
	if fs := functionState(t, c, "f"); fs.OnDemandInFlight != 1 || fs.ProvisionedInFlight != 1 {
		t.Errorf("f = %+v, want 1 on-demand and 1 provisioned still in flight", fs)
	}
	old.Release()
	p.Release()
	checkIdle(t, c)
}

// TestReservationAddedWhileUnreservedFull: a reservation taken out of a
// full unreserved pool is only usable as the pool's invocations end.
func TestReservationAddedWhileUnreservedFull(t *testing.T) {
	t.Run("added", func(t *testing.T) {
		c := New(10)
		g := acquireN(t, c, "g", "$LATEST", 10, onDemand)
		c.SetReserved("f", 3, true)
		if got := c.Unreserved(); got != 7 {
			t.Errorf("Unreserved() = %d, want 7", got)
		}
		acquire(t, c, "f", "$LATEST", throttledUnreserved)
		acquire(t, c, "g", "$LATEST", throttledUnreserved)
		g[0].Release()
		f := acquireN(t, c, "f", "$LATEST", 1, onDemand)
		acquire(t, c, "f", "$LATEST", throttledUnreserved)
		releaseAll(g[1:4]) // 6 of g run
		f = append(f, acquireN(t, c, "f", "$LATEST", 2, onDemand)...)
		acquire(t, c, "f", "$LATEST", throttledReserved)
		g = append(g[4:], acquire(t, c, "g", "$LATEST", onDemand))
		acquire(t, c, "g", "$LATEST", throttledUnreserved)
		releaseAll(f)
		releaseAll(g)
		checkIdle(t, c)
	})
	t.Run("raised", func(t *testing.T) {
		c := New(10)
		c.SetReserved("f", 1, true)
		f := acquireN(t, c, "f", "$LATEST", 1, onDemand)
		g := acquireN(t, c, "g", "$LATEST", 9, onDemand)
		c.SetReserved("f", 3, true)
		acquire(t, c, "f", "$LATEST", throttledUnreserved)
		releaseAll(g[:2])
		f = append(f, acquireN(t, c, "f", "$LATEST", 2, onDemand)...)
		acquire(t, c, "f", "$LATEST", throttledReserved)
		acquire(t, c, "g", "$LATEST", throttledUnreserved)
		releaseAll(f)
		releaseAll(g[2:])
		checkIdle(t, c)
	})
}

func TestProvisionedChangedWhileRunning(t *testing.T) {
	t.Run("lowered while in use", func(t *testing.T) {
		c := New(10)
		c.SetProvisionedConfigured("f", "1", 4)
		c.SetProvisioned("f", "1", 4)
		prov := acquireN(t, c, "f", "1", 4, provisioned)
		g := acquireN(t, c, "g", "$LATEST", 6, onDemand)
		// The provisioner has not stopped the extra environments yet.
		c.SetProvisionedConfigured("f", "1", 1)
		if got := c.Unreserved(); got != 9 {
			t.Errorf("Unreserved() = %d, want 9", got)
		}
		// 10 run: nothing more, provisioned or on-demand.
		acquire(t, c, "g", "$LATEST", throttledUnreserved)
		acquire(t, c, "f", "1", throttledUnreserved)
		releaseAll(prov[:2])
		// 2 provisioned still run, above the 1 configured: no
		// provisioned admission, and on-demand fills up to L.
		acquire(t, c, "f", "1", onDemand).Release()
		g = append(g, acquireN(t, c, "g", "$LATEST", 2, onDemand)...)
		acquire(t, c, "g", "$LATEST", throttledUnreserved)
		releaseAll(prov[2:])
		p := acquire(t, c, "f", "1", provisioned)
		g = append(g, acquire(t, c, "f", "1", onDemand))
		acquire(t, c, "g", "$LATEST", throttledUnreserved)
		if s := c.Snapshot(); s.InFlight != 10 {
			t.Errorf("InFlight = %d, want 10", s.InFlight)
		}
		p.Release()
		releaseAll(g)
		checkIdle(t, c)
	})
	t.Run("configured while the account is full", func(t *testing.T) {
		c := New(10)
		g := acquireN(t, c, "g", "$LATEST", 10, onDemand)
		c.SetProvisionedConfigured("f", "1", 3)
		c.SetProvisioned("f", "1", 3)
		if got := c.Unreserved(); got != 7 {
			t.Errorf("Unreserved() = %d, want 7", got)
		}
		acquire(t, c, "f", "1", throttledUnreserved)
		g[0].Release()
		slots := []*Slot{acquire(t, c, "f", "1", provisioned)}
		acquire(t, c, "g", "$LATEST", throttledUnreserved)
		releaseAll(g[1:4]) // 6 of g run
		slots = append(slots, acquireN(t, c, "f", "1", 2, provisioned)...)
		slots = append(slots, acquire(t, c, "f", "1", onDemand))
		acquire(t, c, "f", "1", throttledUnreserved)
		releaseAll(slots)
		releaseAll(g[4:])
		checkIdle(t, c)
	})
}

// TestAccountCountsAtTheirCaps checks the packed account counts at the top
// of their range: each field is compared with its own cap, and none spills
// into the next.
func TestAccountCountsAtTheirCaps(t *testing.T) {
	const m = MaxConcurrency
	c := New(m)
	c.SetProvisionedConfigured("p", "1", 1)
	c.SetProvisioned("p", "1", 1)
	c.SetReserved("r", 2, true)
	// L = m, L − Σ P = m − 1, U = m − 3.
	pack := func(total, onDemand, unreserved int64) int64 {
		return total | onDemand<<onDemandShift | unreserved<<unreservedShift
	}
	c.inFlight.Store(pack(m-2, m-2, m-4))
	u := acquire(t, c, "u", "$LATEST", onDemand) // each count one below its cap
	acquire(t, c, "u", "$LATEST", throttledUnreserved)
	acquire(t, c, "r", "$LATEST", throttledUnreserved)
	p := acquire(t, c, "p", "1", provisioned) // the total reaches L
	acquire(t, c, "p", "1", throttledUnreserved)
	if s := c.Snapshot(); s.InFlight != m || s.OnDemandInFlight != m-1 || s.UnreservedInFlight != m-3 {
		t.Errorf("counts %d, %d, %d; want %d, %d, %d", s.InFlight, s.OnDemandInFlight, s.UnreservedInFlight, m, m-1, m-3)
	}
	p.Release()
	u.Release()
	// With the unreserved pool full, a reserved function still gets in.
	c.inFlight.Store(pack(m-3, m-2, m-3))
	acquire(t, c, "u", "$LATEST", throttledUnreserved)
	r := acquire(t, c, "r", "$LATEST", onDemand)
	acquire(t, c, "r", "$LATEST", throttledUnreserved)
	r.Release()
	if got := c.inFlight.Load(); got != pack(m-3, m-2, m-3) {
		t.Errorf("inFlight = %#x after the releases, want %#x", got, pack(m-3, m-2, m-3))
	}
}

func TestLimitsAboveMaxConcurrency(t *testing.T) {
	c := New(1 << 40)
	if got := c.Unreserved(); got != MaxConcurrency {
		t.Errorf("Unreserved() = %d, want MaxConcurrency %d", got, MaxConcurrency)
	}
	c.SetReserved("f", 1<<40, true)
	acquire(t, c, "f", "$LATEST", onDemand).Release()
	acquire(t, c, "g", "$LATEST", throttledUnreserved)
}

func TestNegativeSettingsCountAsZero(t *testing.T) {
	c := New(-5)
	if got := c.Unreserved(); got != 0 {
		t.Errorf("Unreserved() with a negative limit = %d, want 0", got)
	}
	c.SetAccountLimit(3)
	c.SetReserved("f", -1, true)
	acquire(t, c, "f", "$LATEST", throttledReserved)
	c.SetProvisionedConfigured("g", "1", -2)
	c.SetProvisioned("g", "1", -2)
	if got := c.Unreserved(); got != 3 {
		t.Errorf("Unreserved() = %d, want 3", got)
	}
	acquire(t, c, "g", "1", onDemand).Release()
}
