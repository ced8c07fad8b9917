package admission

import (
	"cmp"
	"slices"

	"github.com/lambdad/lambdad/internal/awserr"
)

// Snapshot is the state of a Controller at one moment, for metrics, tests
// and the console. The account's counts are read at one instant; the
// functions' counters are read one by one while invocations go on, so they
// need not add up to the account's. The settings are consistent with each
// other.
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
// request; use Function for one.
func (c *Controller) Snapshot() Snapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	caps, n := c.caps.Load(), c.inFlight.Load()
	s := Snapshot{
		AccountLimit:       int(c.limit),
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
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.functions.Load(function)
	if !ok {
		return FunctionState{}, false
	}
	return v.(*entry).state(), true
}

// state reads the entry. Caller holds Controller.mu.
func (e *entry) state() FunctionState {
	fs := FunctionState{
		Name:                  e.name,
		HasReserved:           e.hasReserved,
		Reserved:              int(e.reserved),
		OnDemandInFlight:      int(e.onDemand.Load()),
		ProvisionedConfigured: int(e.provConfigured),
		Throttles:             e.throttles.Load(),
	}
	if e.hasReserved {
		fs.ReservedCapacity = int(max(0, e.reserved-e.provConfigured))
	}
	for name, t := range e.targets {
		n := int(t.inUse.Load())
		fs.ProvisionedInFlight += n
		fs.Targets = append(fs.Targets, TargetState{
			Target: name, Configured: int(t.configured), Allocated: int(t.allocated), InFlight: n,
		})
	}
	slices.SortFunc(fs.Targets, func(a, b TargetState) int { return cmp.Compare(a.Target, b.Target) })
	return fs
}
