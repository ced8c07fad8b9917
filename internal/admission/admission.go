// Package admission decides, without blocking, whether one more invocation
// of a function may run now, following AWS Lambda's concurrency rules: the
// account limit, per-function reservations, the unreserved pool the other
// functions share, and provisioned concurrency on versions and aliases.
//
// Admission of one invocation of (function, target), where the target is a
// published version or an alias named by a key the caller chooses:
//
//  1. If the target has provisioned concurrency with a free allocated
//     environment, the invocation runs there.
//  2. Else, if the function has a reservation R, it runs if the function's
//     on-demand in-flight count is below R − P (P: the function's total
//     configured provisioned concurrency), else it is throttled with Reason
//     ReservedFunctionConcurrentInvocationLimitExceeded.
//  3. Else it runs if the in-flight count of all unreserved functions
//     together is below U = L − Σ R(reserved functions) − Σ P(functions
//     without a reservation), else it is throttled with Reason
//     ConcurrentInvocationLimitExceeded.
//
// The Controller is an in-memory mirror of settings whose source of truth is
// the control plane: the control plane calls the setters after each durable
// write, and the Controller keeps U itself from what it is told. Settings
// change rarely and acquisitions are constant, so the hot path reads
// immutable per-function settings through an atomic pointer and counts with
// per-pool atomic counters; only the setters take a mutex.
//
// A Slot remembers the exact counters it incremented. When settings change
// while invocations run, those invocations are never cut and their releases
// decrement the pools they were admitted to; new admissions use the new
// settings at once, and count the function's running invocations against a
// new reservation whichever pool admitted them. An admission that races with
// a change is judged by the settings before or after it, never by a mix
// that allows more than either.
package admission

import (
	"sync"
	"sync/atomic"

	"github.com/lambdad/lambdad/internal/awserr"
)

// Controller holds the concurrency settings of one account and the counters
// of what runs under them. The zero value is not usable; call New. All
// methods are safe for concurrent use.
type Controller struct {
	// functions maps a function name to its *entry. Acquire reads it
	// without locks; entries are added by setters and, for functions that
	// have no settings, by their first Acquire.
	functions sync.Map

	// unreservedCap is U clamped at 0, read by every admission to the
	// unreserved pool. It sits apart from the counter below so that
	// admissions on other cores keep it cached while the counter moves.
	unreservedCap atomic.Int64

	_ [cacheLine]byte
	// unreservedInFlight counts slots admitted to the unreserved pool.
	unreservedInFlight atomic.Int64
	_                  [cacheLine]byte

	// Throttles by reason; written only when an admission fails.
	throttledReserved   atomic.Uint64
	throttledUnreserved atomic.Uint64

	mu sync.Mutex // guards the following fields and every entry's settings
	// limit is the account concurrency limit L.
	limit int64
	// claimed is Σ R over reserved functions plus Σ P over functions without
	// a reservation: what U leaves out of L.
	claimed int64
}

// cacheLine is the padding that keeps the unreserved pool's counter, which
// every admission of every unreserved function writes, off the cache line of
// the fields every admission reads.
const cacheLine = 64

// New returns a Controller for an account whose concurrency limit is
// accountLimit, with no reservations and no provisioned concurrency.
func New(accountLimit int) *Controller {
	c := &Controller{limit: clamp(accountLimit)}
	c.unreservedCap.Store(c.limit)
	return c
}

// entry is one function: its settings (an immutable fnConfig swapped as a
// whole) and its on-demand counter, which lives as long as the entry.
type entry struct {
	cfg       atomic.Pointer[fnConfig]
	name      string
	throttles atomic.Uint64

	// Settings, guarded by Controller.mu. The hot path never reads them; it
	// reads cfg, which is rebuilt from them after every change.
	hasReserved bool
	reserved    int64
	// provConfigured is P: Σ targets[*].configured.
	provConfigured int64
	targets        map[string]*targetRec

	// onDemand counts the function's running on-demand invocations,
	// whichever pool admitted them. It gates admissions under a reservation
	// and is the per-function figure reported for the others. It shares a
	// cache line with cfg on purpose: an admission reads one and then
	// writes the other, and padding them apart measured no faster while
	// costing 128 bytes more per function.
	onDemand atomic.Int64
}

// targetRec is a target's provisioned concurrency as set by the caller,
// guarded by Controller.mu, with the counter of provisioned slots in use.
type targetRec struct {
	configured int64
	allocated  int64
	inUse      *atomic.Int64
}

// fnConfig is what Acquire needs of a function's settings. It is never
// modified once published.
type fnConfig struct {
	reserved bool
	// onDemandCap is R − P clamped at 0; meaningful when reserved.
	onDemandCap int64
	// targets holds the targets with allocated provisioned environments;
	// nil when there are none, so most functions skip the lookup.
	targets map[string]provTarget
}

type provTarget struct {
	allocated int64
	inUse     *atomic.Int64
}

// unreservedConfig is the settings of every function nobody configured.
var unreservedConfig = &fnConfig{}

// Slot is one admitted invocation. Release it when the invocation ends.
type Slot struct {
	released atomic.Bool
	// provisioned reports a slot on a provisioned environment.
	provisioned bool
	// counter is the function's on-demand counter, or for a provisioned
	// slot its target's in-use counter.
	counter *atomic.Int64
	// pool is the unreserved pool's counter when the slot was admitted
	// there, else nil.
	pool *atomic.Int64
}

// Release returns the slot's capacity to the pool that admitted it. Only the
// first call has an effect, so it is safe to call on every path, from any
// goroutine; calling it on a nil Slot does nothing.
func (s *Slot) Release() {
	if s == nil || s.released.Swap(true) {
		return
	}
	s.counter.Add(-1)
	if s.pool != nil {
		s.pool.Add(-1)
	}
}

// Provisioned reports whether the slot runs on a provisioned environment
// (AWS_LAMBDA_INITIALIZATION_TYPE=provisioned-concurrency) rather than an
// on-demand one.
func (s *Slot) Provisioned() bool { return s != nil && s.provisioned }

// Acquire admits one invocation of target (a published version or an alias,
// named by the same key the caller gave SetProvisioned) of function, or
// returns a throttle: an *awserr.Error with Code TooManyRequestsException and
// the AWS Reason. It never blocks. A function with no settings is an
// unreserved one without provisioned concurrency.
func (c *Controller) Acquire(function, target string) (*Slot, error) {
	e := c.lookup(function)
	cfg := e.cfg.Load()

	if cfg.targets != nil {
		if t, ok := cfg.targets[target]; ok && tryIncrement(t.inUse, t.allocated) {
			return &Slot{provisioned: true, counter: t.inUse}, nil
		}
	}

	if cfg.reserved {
		if !tryIncrement(&e.onDemand, cfg.onDemandCap) {
			e.throttles.Add(1)
			c.throttledReserved.Add(1)
			return nil, awserr.Throttle(awserr.ReasonReservedFunctionConcurrentInvocationLimitExceeded)
		}
		return &Slot{counter: &e.onDemand}, nil
	}

	if !tryIncrement(&c.unreservedInFlight, c.unreservedCap.Load()) {
		e.throttles.Add(1)
		c.throttledUnreserved.Add(1)
		return nil, awserr.Throttle(awserr.ReasonConcurrentInvocationLimitExceeded)
	}
	e.onDemand.Add(1)
	return &Slot{counter: &e.onDemand, pool: &c.unreservedInFlight}, nil
}

// tryIncrement adds one to n if n is below limit, as one atomic step, so that
// concurrent admissions never take n past the limit they observed. Each
// retry means another admission or release changed n in between, so the
// loop always makes progress for someone.
func tryIncrement(n *atomic.Int64, limit int64) bool {
	for {
		v := n.Load()
		if v >= limit {
			return false
		}
		if n.CompareAndSwap(v, v+1) {
			return true
		}
	}
}

// lookup returns the function's entry, creating an unconfigured one on first
// use so that its invocations are counted from the start.
func (c *Controller) lookup(function string) *entry {
	if v, ok := c.functions.Load(function); ok {
		return v.(*entry)
	}
	v, _ := c.functions.LoadOrStore(function, newEntry(function))
	return v.(*entry)
}

func newEntry(function string) *entry {
	e := &entry{name: function}
	e.cfg.Store(unreservedConfig)
	return e
}

// SetAccountLimit sets the account concurrency limit L.
func (c *Controller) SetAccountLimit(l int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.limit = clamp(l)
	c.unreservedCap.Store(c.unreserved())
}

// SetReserved sets (ok true) or removes (ok false) the function's reserved
// concurrency, as PutFunctionConcurrency and DeleteFunctionConcurrency do.
// A reservation of 0 throttles every on-demand invocation. Values below 0
// count as 0.
func (c *Controller) SetReserved(function string, reserved int, ok bool) {
	c.update(function, func(e *entry) {
		e.hasReserved = ok
		e.reserved = 0
		if ok {
			e.reserved = clamp(reserved)
		}
	})
}

// SetProvisionedConfigured sets the provisioned concurrency configured
// (requested) for one target of the function; 0 removes it. The function's
// total configured provisioned concurrency P counts against its reservation
// (R − P is left for on-demand invocations) or, without one, against the
// unreserved pool U, from the moment it is configured, whether or not its
// environments are ready.
func (c *Controller) SetProvisionedConfigured(function, target string, n int) {
	c.update(function, func(e *entry) {
		t := e.target(target)
		e.provConfigured += clamp(n) - t.configured
		t.configured = clamp(n)
	})
}

// SetProvisioned sets how many provisioned environments are allocated
// (ready) for one target of the function; 0 removes them. Only allocated
// environments admit invocations as provisioned (rule 1); while a
// configuration is in progress its invocations run on-demand. The amount
// that counts against the pools is set by SetProvisionedConfigured.
func (c *Controller) SetProvisioned(function, target string, allocated int) {
	c.update(function, func(e *entry) {
		e.target(target).allocated = clamp(allocated)
	})
}

// RemoveFunction forgets all of the function's settings, as DeleteFunction
// does. Its running invocations still release to the pools that admitted
// them; a later invocation of the same name starts from no settings.
func (c *Controller) RemoveFunction(function string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.functions.Load(function)
	if !ok {
		return
	}
	e := v.(*entry)
	c.functions.Delete(function)
	// The function's claim on L goes with it, so U can only grow here; the
	// entry left the map first, which is the safe order (see update).
	c.claimed -= e.claim()
	c.unreservedCap.Store(c.unreserved())
}

// Unreserved returns U, the capacity of the pool the functions without a
// reservation share (UnreservedConcurrentExecutions), clamped at 0.
func (c *Controller) Unreserved() int {
	return int(c.unreservedCap.Load())
}

// update applies change to the function's settings and publishes the result.
func (c *Controller) update(function string, change func(*entry)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.lookup(function)
	before := e.claim()
	change(e)
	c.claimed += e.claim() - before
	cfg := e.config()
	u := c.unreserved()

	// An admission reads U and the function's settings independently. Of
	// the two stores, the one that takes capacity away goes first, so that
	// an admission racing with the change sees old or new settings but
	// never more capacity than either allows.
	if u < c.unreservedCap.Load() {
		c.unreservedCap.Store(u)
		e.cfg.Store(cfg)
	} else {
		e.cfg.Store(cfg)
		c.unreservedCap.Store(u)
	}
}

// unreserved computes U from the settings, clamped at 0. The control plane
// keeps U at or above its minimum; it can only go below 0 when the account
// limit is lowered under what is already claimed.
func (c *Controller) unreserved() int64 {
	return max(0, c.limit-c.claimed)
}

// claim is what the function takes out of L: R when reserved, else P.
// Caller holds Controller.mu.
func (e *entry) claim() int64 {
	if e.hasReserved {
		return e.reserved
	}
	return e.provConfigured
}

// target returns the record of one target, creating it. Caller holds
// Controller.mu.
func (e *entry) target(name string) *targetRec {
	t, ok := e.targets[name]
	if !ok {
		if e.targets == nil {
			e.targets = make(map[string]*targetRec)
		}
		t = &targetRec{inUse: new(atomic.Int64)}
		e.targets[name] = t
	}
	return t
}

// config builds the settings Acquire reads, and drops target records that
// no longer hold anything. A record whose provisioned slots are still in use
// is kept, so that the same target provisioned again counts them. Caller
// holds Controller.mu.
func (e *entry) config() *fnConfig {
	var targets map[string]provTarget
	for name, t := range e.targets {
		if t.configured == 0 && t.allocated == 0 && t.inUse.Load() == 0 {
			delete(e.targets, name)
			continue
		}
		if t.allocated > 0 {
			if targets == nil {
				targets = make(map[string]provTarget)
			}
			targets[name] = provTarget{allocated: t.allocated, inUse: t.inUse}
		}
	}
	if !e.hasReserved && targets == nil {
		return unreservedConfig
	}
	return &fnConfig{
		reserved:    e.hasReserved,
		onDemandCap: max(0, e.reserved-e.provConfigured),
		targets:     targets,
	}
}

func clamp(n int) int64 { return max(0, int64(n)) }
