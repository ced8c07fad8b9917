package admission

import (
	"cmp"
	"slices"
	"sync/atomic"

	"github.com/lambdad/lambdad/internal/awserr"
)

// Snapshot is the state of a Controller at one moment, for metrics, tests
// and the console. The account's counts are read at one instant; the
// functions' counters are read one by one while invocations go on, so they
// need not add up to the account's. Each function's settings are
// consistent with each other; two functions' may be from either side of a
// change made while the snapshot was taken.
type Snapshot struct {
	// AccountLimit is L.
	AccountLimit int
	// OnDemandCapacity is L − Σ P over all functions: what on-demand
	// invocations may use of L.
	OnDemandCapacity int
	// UnreservedCapacity is U (UnreservedConcurrentExecutions).
	UnreservedCapacity int
	// InFlight counts every running invocation, on-demand and provisioned.
	InFlight int
	// OnDemandInFlight counts the running on-demand invocations.
	OnDemandInFlight int
	// UnreservedInFlight counts the invocations admitted to the unreserved
	// pool that are still running.
	UnreservedInFlight int
	// Throttles counts refused admissions by AWS Reason, since New.
	Throttles map[string]uint64
	// Functions lists, by name, every function with settings, with
	// invocations in flight or with throttles.
	Functions []FunctionState
}

// FunctionState is one function's settings and counters.
type FunctionState struct {
	Name string
	// HasReserved reports a reservation; Reserved is its R.
	HasReserved bool
	Reserved    int
	// ReservedCapacity is R − P clamped at 0: what the reservation leaves for
	// on-demand invocations. 0 when the function has no reservation.
	ReservedCapacity int
	// OnDemandInFlight counts running on-demand invocations, whichever pool
	// admitted them.
	OnDemandInFlight int
	// ProvisionedConfigured is P, the total configured over all targets.
	ProvisionedConfigured int
	// ProvisionedInFlight counts invocations running on provisioned
	// environments, over all targets.
	ProvisionedInFlight int
	// Throttles counts this function's refused admissions since its
	// settings were first made or its first invocation.
	Throttles uint64
	// ThrottlesReserved is the part of Throttles refused by the function's
	// reservation (ReservedFunctionConcurrentInvocationLimitExceeded); the
	// rest were ConcurrentInvocationLimitExceeded.
	ThrottlesReserved uint64
	// Targets lists, by key, the targets with provisioned concurrency.
	Targets []TargetState
}

// TargetState is provisioned concurrency on one target.
type TargetState struct {
	Target     string
	Configured int
	Allocated  int
	InFlight   int
}

// Snapshot returns the current settings and counters. It walks every
// function, so it is meant for metrics and the console, not for each
// request; use Function for one. It takes no lock: each function's settings
// are read from the copy published with them, so a scrape never holds up a
// setter or an admission, however many functions there are.
func (c *Controller) Snapshot() Snapshot {
	caps, n := c.caps.Load(), c.inFlight.Load()
	s := Snapshot{
		AccountLimit:       field(caps, 0),
		OnDemandCapacity:   field(caps, onDemandShift),
		UnreservedCapacity: field(caps, unreservedShift),
		InFlight:           field(n, 0),
		OnDemandInFlight:   field(n, onDemandShift),
		UnreservedInFlight: field(n, unreservedShift),
		Throttles: map[string]uint64{
			awserr.ReasonReservedFunctionConcurrentInvocationLimitExceeded: c.throttledReserved.Load(),
			awserr.ReasonConcurrentInvocationLimitExceeded:                 c.throttledUnreserved.Load(),
			awserr.ReasonFunctionInvocationRateLimitExceeded:               c.throttledRate[0].Load(),
			awserr.ReasonReservedFunctionInvocationRateLimitExceeded:       c.throttledRate[1].Load(),
		},
	}
	c.functions.Range(func(_, v any) bool {
		fs := v.(*entry).state()
		if fs.HasReserved || len(fs.Targets) > 0 || fs.OnDemandInFlight != 0 || fs.Throttles != 0 {
			s.Functions = append(s.Functions, fs)
		}
		return true
	})
	slices.SortFunc(s.Functions, func(a, b FunctionState) int { return cmp.Compare(a.Name, b.Name) })
	return s
}

// Function returns one function's settings and counters; ok is false when
// the Controller knows nothing of it.
func (c *Controller) Function(function string) (fs FunctionState, ok bool) {
	v, ok := c.functions.Load(function)
	if !ok {
		return FunctionState{}, false
	}
	return v.(*entry).state(), true
}

// view is a function's settings as last published; never modified once
// stored.
type view struct {
	hasReserved    bool
	reserved       int64
	provConfigured int64
	// targets is sorted by name.
	targets []viewTarget
}

type viewTarget struct {
	name                  string
	configured, allocated int64
	inUse                 *atomic.Int64
}

// publish stores a copy of the settings for Snapshot and Function. Caller
// holds Controller.mu.
func (e *entry) publish() {
	v := &view{hasReserved: e.hasReserved, reserved: e.reserved, provConfigured: e.provConfigured}
	for name, t := range e.targets {
		v.targets = append(v.targets, viewTarget{name: name, configured: t.configured, allocated: t.allocated, inUse: t.inUse})
	}
	slices.SortFunc(v.targets, func(a, b viewTarget) int { return cmp.Compare(a.name, b.name) })
	e.view.Store(v)
}

// state reads the entry's published settings and its counters.
func (e *entry) state() FunctionState {
	fs := FunctionState{
		Name:              e.name,
		OnDemandInFlight:  int(e.onDemand.Load()),
		Throttles:         e.throttles.Load(),
		ThrottlesReserved: e.throttledReserved.Load(),
	}
	v := e.view.Load()
	if v == nil {
		return fs
	}
	fs.HasReserved, fs.Reserved, fs.ProvisionedConfigured = v.hasReserved, int(v.reserved), int(v.provConfigured)
	if v.hasReserved {
		fs.ReservedCapacity = int(max(0, v.reserved-v.provConfigured))
	}
	if len(v.targets) > 0 {
		fs.Targets = make([]TargetState, 0, len(v.targets))
	}
	for _, t := range v.targets {
		n := int(t.inUse.Load())
		fs.ProvisionedInFlight += n
		fs.Targets = append(fs.Targets, TargetState{
			Target: t.name, Configured: int(t.configured), Allocated: int(t.allocated), InFlight: n,
		})
	}
	return fs
}
