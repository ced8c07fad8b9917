// Package admission decides, without blocking, whether one more invocation
// of a function may run now, following AWS Lambda's concurrency rules: the
// account limit, per-function reservations, the unreserved pool the other
// functions share, and provisioned concurrency on versions and aliases.
//
// Admission of one invocation of (function, target), where the target is a
// published version or an alias named by a key the caller chooses:
//
//  1. If the target has provisioned concurrency with a free environment
//     (fewer in use than min(allocated, configured)), the invocation runs
//     there.
//  2. Else, if the function has a reservation R, it runs if the function's
//     on-demand in-flight count is below R − P (P: the function's total
//     configured provisioned concurrency), else it is throttled with Reason
//     ReservedFunctionConcurrentInvocationLimitExceeded.
//  3. Else it runs if the in-flight count of all unreserved functions
//     together is below U = L − Σ R(reserved functions) − Σ P(functions
//     without a reservation), else it is throttled with Reason
//     ConcurrentInvocationLimitExceeded.
//
// On top of its pool, every admission is checked against the account as a
// whole, and a refusal there is a throttle with Reason
// ConcurrentInvocationLimitExceeded: all running invocations together never
// pass L, nor the on-demand ones L − Σ P(all functions), the part of L that
// provisioned concurrency leaves. While settings stand still the pools
// alone keep to these limits; the account check keeps them while settings
// change under running invocations: a reservation removed or lowered, or
// one added or raised while the unreserved pool is over its new size,
// provisioned concurrency configured while other invocations fill the
// account, or lowered while its environments are busy.
//
// The Controller is an in-memory mirror of settings whose source of truth is
// the store: the setters are called from the store's change feed, in
// revision order, and the Controller keeps U itself from what it is told
// (by the rule of package account). Settings
// change rarely and acquisitions are constant, so the hot path reads
// immutable per-function settings through an atomic pointer and counts with
// atomic counters; only the setters take a mutex.
//
// A running invocation is never cut, and it keeps counting against the
// account, and against the function of its name, until it is released,
// whatever happens meanwhile to a reservation, a provisioned configuration
// or the function itself: a function removed while it runs keeps its
// counters, so the same name created again and reserved finds them. New
// admissions use the new settings at once. An admission that races with a
// change is judged by the settings before or after it, never by a mix that
// allows more than either: it is judged again if the function's settings
// moved while it counted itself.
package admission

import (
	"runtime"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/lambdad/lambdad/internal/account"
	"github.com/lambdad/lambdad/internal/awserr"
	"github.com/lambdad/lambdad/internal/clock"
	"github.com/lambdad/lambdad/internal/function"
)

// Accounts is admission for every account of a server: a Controller per
// account, each with its own limit L, its own pools and its own counts, so
// that one account's load or settings never take capacity from another's.
// A Controller is made on an account's first use with the limit the
// account's settings give. All methods are safe for concurrent use.
type Accounts struct {
	limit func(account string) int
	// rate and scaling are the request rate and the scaling rate of
	// every account's Controller; nanos, when set, the reading they pace
	// them on.
	rate    atomic.Int64
	scaling atomic.Int64
	nanos   atomic.Pointer[func() int64]
	// home is the Controller of the server's own account, found without a
	// map lookup: a server without access control has no other.
	homeID string
	home   *Controller
	others sync.Map // account → *Controller
	// gate is the cluster's say on every account's admissions (gate.go).
	gate atomic.Pointer[gateRef]
}

// NewAccounts returns admission for the accounts whose limits limit gives;
// home is the server's own account.
func NewAccounts(home string, limit func(account string) int) *Accounts {
	a := &Accounts{limit: limit, homeID: home, home: New(limit(home))}
	a.rate.Store(DefaultRequestRate)
	a.scaling.Store(DefaultScalingRate)
	return a
}

// SetNanos makes every account's request rate read now (see
// Controller.SetNanos), now and for accounts seen later.
func (a *Accounts) SetNanos(now func() int64) {
	a.nanos.Store(&now)
	a.home.SetNanos(now)
	a.others.Range(func(_, c any) bool { c.(*Controller).SetNanos(now); return true })
}

// SetRequestRate sets every account's request rate (see
// Controller.SetRequestRate), now and for accounts seen later.
func (a *Accounts) SetRequestRate(perUnit int) {
	a.rate.Store(int64(perUnit))
	a.home.SetRequestRate(perUnit)
	a.others.Range(func(_, c any) bool { c.(*Controller).SetRequestRate(perUnit); return true })
}

// SetScalingRate sets every account's scaling rate (see
// Controller.SetScalingRate), now and for accounts seen later.
func (a *Accounts) SetScalingRate(perPeriod int) {
	a.scaling.Store(int64(perPeriod))
	a.home.SetScalingRate(perPeriod)
	a.others.Range(func(_, c any) bool { c.(*Controller).SetScalingRate(perPeriod); return true })
}

// For returns the Controller of account.
func (a *Accounts) For(account string) *Controller {
	if account == a.homeID {
		return a.home
	}
	if c, ok := a.others.Load(account); ok {
		return c.(*Controller)
	}
	n := New(a.limit(account))
	n.SetRequestRate(int(a.rate.Load()))
	n.SetScalingRate(int(a.scaling.Load()))
	if now := a.nanos.Load(); now != nil {
		n.SetNanos(*now)
	}
	if g := a.gate.Load(); g != nil {
		n.SetGate(account, g.g)
	}
	c, _ := a.others.LoadOrStore(account, n)
	return c.(*Controller)
}

// IDs lists the accounts admission knows, the server's own first.
func (a *Accounts) IDs() []string {
	var ids []string
	a.others.Range(func(k, _ any) bool { ids = append(ids, k.(string)); return true })
	sort.Strings(ids)
	return append([]string{a.homeID}, ids...)
}

// Acquire admits one invocation of target of fn under its account's rules
// (see Controller.Acquire).
func (a *Accounts) Acquire(fn function.Key, target string) (*Slot, error) {
	return a.For(fn.Account).Acquire(fn.Name, target)
}

// SetAccountLimit sets account's limit L.
func (a *Accounts) SetAccountLimit(account string, l int) { a.For(account).SetAccountLimit(l) }

// SetReserved sets or removes fn's reservation (see Controller.SetReserved).
func (a *Accounts) SetReserved(fn function.Key, reserved int, ok bool) {
	a.For(fn.Account).SetReserved(fn.Name, reserved, ok)
}

// SetProvisionedConfigured sets the provisioned concurrency configured for
// one target of fn (see Controller.SetProvisionedConfigured).
func (a *Accounts) SetProvisionedConfigured(fn function.Key, target string, n int) {
	a.For(fn.Account).SetProvisionedConfigured(fn.Name, target, n)
}

// SetProvisioned sets how many provisioned environments are allocated for
// one target of fn (see Controller.SetProvisioned).
func (a *Accounts) SetProvisioned(fn function.Key, target string, allocated int) {
	a.For(fn.Account).SetProvisioned(fn.Name, target, allocated)
}

// RemoveFunction forgets fn's settings (see Controller.RemoveFunction).
func (a *Accounts) RemoveFunction(fn function.Key) { a.For(fn.Account).RemoveFunction(fn.Name) }

// Controller holds the concurrency settings of one account and the counters
// of what runs under them. The zero value is not usable; call New. All
// methods are safe for concurrent use.
type Controller struct {
	// functions maps a function name to its *entry. Acquire reads it
	// without locks; entries are added by setters and, for functions that
	// have no settings, by their first Acquire.
	functions sync.Map

	// caps packs, in the layout of inFlight, the three limits the account
	// counts are held to: L, L − Σ P and U (each clamped at 0). Every
	// admission reads it; only setters write it. It sits apart from
	// inFlight so that admissions on other cores keep it cached while the
	// counts move.
	caps atomic.Int64

	_ [cacheLine]byte
	// inFlight packs the account's three counts of running slots (all of
	// them, the on-demand ones, and the ones admitted to the unreserved
	// pool), so that an admission checks and takes all it needs with one
	// compare-and-swap and the unreserved path writes one shared word.
	inFlight atomic.Int64
	_        [cacheLine]byte

	// Throttles by reason; written only when an admission fails.
	throttledReserved   atomic.Uint64
	throttledUnreserved atomic.Uint64
	throttledRate       [2]atomic.Uint64 // the request and scaling rates', unreserved and reserved

	// requestRate is the requests per second allowed per unit of
	// concurrency (see rate.go); 0 turns the request rate off.
	requestRate atomic.Int64
	// scalingRate is the new on-demand environments a function may add
	// per ScalingPeriod (see scaling.go); 0 turns the scaling rate off.
	scalingRate atomic.Int64
	// now reads the clock the request and scaling rates are paced on.
	now atomic.Pointer[func() int64]
	// gate, when set, is the cluster's say on every admission (gate.go);
	// account is the account's id, which names its pools there.
	gate    atomic.Pointer[gateRef]
	account string

	mu sync.Mutex // guards the following fields and every entry's settings
	// limit is the account concurrency limit L.
	limit int64
	// claimed is Σ R over reserved functions plus Σ P over functions without
	// a reservation: what U leaves out of L.
	claimed int64
	// provisioned is Σ P over all functions: what on-demand invocations
	// leave to provisioned ones.
	provisioned int64
}

// cacheLine is the padding that keeps the account's counts, which every
// admission writes, off the cache line of the fields every admission reads.
const cacheLine = 64

// The account's counts and their caps share one layout: three fields of
// fieldBits bits in an int64, each a value below 1<<valueBits under a guard
// bit. The guard bits let one subtraction compare all three counts with
// their caps (see tryAccount).
const (
	fieldBits       = valueBits + 1
	valueBits       = 20
	valueMask       = 1<<valueBits - 1
	onDemandShift   = fieldBits
	unreservedShift = 2 * fieldBits
	guardBits       = 1<<valueBits | 1<<(onDemandShift+valueBits) | 1<<(unreservedShift+valueBits)

	// MaxConcurrency is the largest account limit and the largest count
	// the Controller keeps; larger settings count as this. It is far more
	// than one machine runs.
	MaxConcurrency = valueMask

	// What one slot adds to inFlight, by kind: every slot counts in the
	// first field, on-demand ones in the second too, and the unreserved
	// pool's in the third as well.
	provisionedCount = 1
	reservedCount    = provisionedCount | 1<<onDemandShift
	unreservedCount  = reservedCount | 1<<unreservedShift
)

// packCaps lays out the account's limits in the layout of inFlight, with
// the guard bits set.
func packCaps(limit, onDemand, unreserved int64) int64 {
	return guardBits | min(limit, valueMask) | min(onDemand, valueMask)<<onDemandShift | min(unreserved, valueMask)<<unreservedShift
}

// field reads one field of the layout.
func field(packed int64, shift int) int { return int(packed >> shift & valueMask) }

// New returns a Controller for an account whose concurrency limit is
// accountLimit, with no reservations and no provisioned concurrency.
func New(accountLimit int) *Controller {
	c := &Controller{limit: clamp(accountLimit)}
	c.requestRate.Store(DefaultRequestRate)
	c.scalingRate.Store(DefaultScalingRate)
	c.SetClock(clock.Real)
	c.storeCaps()
	return c
}

// entry is one function: its settings (an immutable fnConfig swapped as a
// whole) and its on-demand counter, which lives as long as the entry.
type entry struct {
	cfg       atomic.Pointer[fnConfig]
	name      string
	throttles atomic.Uint64
	// requests paces the function's requests (rate.go).
	requests pacer
	// warm is the highest on-demand running count the function has been
	// admitted to, the environments presumed warm, and scaling paces the
	// new ones beyond it (scaling.go).
	warm    atomic.Int64
	scaling pacer
	// throttledReserved counts the part of throttles refused by the
	// function's reservation; the rest were refused by the account or the
	// unreserved pool.
	throttledReserved atomic.Uint64
	// view is a copy of the settings for readers off the hot path
	// (Snapshot, Function), published with them, so that those readers
	// never take Controller.mu; nil until the function has settings.
	view atomic.Pointer[view]

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
	// reservation is R; meaningful when reserved.
	reservation int64
	// onDemandCap is R − P clamped at 0; meaningful when reserved.
	onDemandCap int64
	// targets holds the targets with provisioned environments that may
	// take invocations; nil when there are none, so most functions skip
	// the lookup.
	targets map[string]provTarget
}

type provTarget struct {
	// capacity is min(allocated, configured): environments are counted
	// only while the provisioner has them and only up to what is
	// configured, so that lowering the configuration takes effect at once,
	// before the provisioner has stopped the extra environments.
	capacity int64
	inUse    *atomic.Int64
}

var (
	// unreservedConfig is the settings of every function nobody configured.
	unreservedConfig = &fnConfig{}
	// removedConfig marks an entry RemoveFunction is taking out of the map;
	// an Acquire that finds it looks the function up again.
	removedConfig = &fnConfig{}
)

// slotKind tells what a slot holds, and so what it adds to inFlight.
type slotKind uint8

const (
	provisionedSlot slotKind = iota
	reservedSlot
	unreservedSlot
)

// slotCounts has four entries so that indexing it with kind&3 needs no
// bounds check.
var slotCounts = [4]int64{
	provisionedSlot: provisionedCount,
	reservedSlot:    reservedCount,
	unreservedSlot:  unreservedCount,
}

// Slot is one admitted invocation. Release it when the invocation ends.
type Slot struct {
	released atomic.Bool
	kind     slotKind
	// spilled marks an on-demand slot taken because the target's
	// provisioned environments were all in use. It sits beside kind, in
	// the word released and kind leave free.
	spilled bool
	// counter is the function's on-demand counter, or for a provisioned
	// slot its target's in-use counter.
	counter *atomic.Int64
	// account is the Controller's inFlight.
	account *atomic.Int64
	// leave gives back the cluster's slots (gate.go); nil on a node of
	// its own.
	leave func()
}

// Release returns the slot's capacity to the pool that admitted it and to
// the account. Only the first call has an effect, so it is safe to call on
// every path, from any goroutine; calling it on a nil Slot does nothing.
func (s *Slot) Release() {
	if s == nil || s.released.Swap(true) {
		return
	}
	s.counter.Add(-1)
	s.account.Add(-slotCounts[s.kind&3])
	if s.leave != nil {
		s.leave()
	}
}

// Provisioned reports whether the slot runs on a provisioned environment
// (AWS_LAMBDA_INITIALIZATION_TYPE=provisioned-concurrency) rather than an
// on-demand one.
func (s *Slot) Provisioned() bool { return s != nil && s.kind == provisionedSlot }

// Spillover reports whether the slot is on-demand although the target has
// provisioned environments, because they were all in use
// (ProvisionedConcurrencySpilloverInvocations).
func (s *Slot) Spillover() bool { return s != nil && s.spilled }

// Acquire admits one invocation of target (a published version or an alias,
// named by the same key the caller gave SetProvisioned) of function, or
// returns a throttle: an *awserr.Error with Code TooManyRequestsException and
// the AWS Reason. It never blocks. A function with no settings is an
// unreserved one without provisioned concurrency.
func (c *Controller) Acquire(function, target string) (*Slot, error) {
	rated := false
	for {
		e := c.lookup(function)
		cfg := e.cfg.Load()
		if cfg == removedConfig {
			// RemoveFunction holds the entry for a moment; it leaves
			// it in the map or takes it out.
			runtime.Gosched()
			continue
		}
		// The request rate is checked once per request, however often
		// the request is judged again below.
		if !rated {
			if err := c.checkRate(e, cfg); err != nil {
				return nil, err
			}
			rated = true
		}
		s, n, err := c.admit(e, cfg, target)
		if err != nil {
			return nil, err
		}
		// The slot counts on e now. If e's settings are still those it
		// was judged by, it was admitted before any later change, and
		// RemoveFunction and the dropping of target records, which
		// publish new settings and then read the counters, see it.
		// Else it is undone and judged again by the new settings, on
		// the entry that now holds the name if e was removed.
		if e.cfg.Load() == cfg {
			// An on-demand slot that may need a new environment is
			// judged by the scaling rate last, once it has counted, so
			// that n is its own place in the count.
			if n > 0 {
				if err := c.checkScaling(e, cfg, n); err != nil {
					s.Release()
					return nil, err
				}
			}
			if g := c.gate.Load(); g != nil {
				return c.enter(g.g, e, cfg, s)
			}
			return s, nil
		}
		s.Release()
	}
}

// admit applies the rules to one invocation under cfg. For an on-demand
// slot it also returns the function's on-demand count with the slot in
// it; 0 for a provisioned one.
func (c *Controller) admit(e *entry, cfg *fnConfig, target string) (*Slot, int64, error) {
	spilled := false
	if cfg.targets != nil {
		if t, ok := cfg.targets[target]; ok {
			if _, ok := tryIncrement(t.inUse, t.capacity); ok {
				if c.tryAccount(provisionedCount) {
					return &Slot{kind: provisionedSlot, counter: t.inUse, account: &c.inFlight}, 0, nil
				}
				// The account is full, so on-demand is refused below as
				// well, unless a release came in between.
				t.inUse.Add(-1)
			}
			spilled = true
		}
	}

	if cfg.reserved {
		n, ok := tryIncrement(&e.onDemand, cfg.onDemandCap)
		if !ok {
			return nil, 0, c.throttle(e, awserr.ReasonReservedFunctionConcurrentInvocationLimitExceeded)
		}
		if !c.tryAccount(reservedCount) {
			e.onDemand.Add(-1)
			return nil, 0, c.throttle(e, awserr.ReasonConcurrentInvocationLimitExceeded)
		}
		return &Slot{kind: reservedSlot, counter: &e.onDemand, account: &c.inFlight, spilled: spilled}, n, nil
	}

	if !c.tryAccount(unreservedCount) {
		return nil, 0, c.throttle(e, awserr.ReasonConcurrentInvocationLimitExceeded)
	}
	n := e.onDemand.Add(1)
	return &Slot{kind: unreservedSlot, counter: &e.onDemand, account: &c.inFlight, spilled: spilled}, n, nil
}

func (c *Controller) throttle(e *entry, reason string) error {
	e.throttles.Add(1)
	if reason == awserr.ReasonReservedFunctionConcurrentInvocationLimitExceeded {
		e.throttledReserved.Add(1)
		c.throttledReserved.Add(1)
	} else {
		c.throttledUnreserved.Add(1)
	}
	return awserr.Throttle(reason)
}

// tryAccount adds add (one of the slot counts) to inFlight if each count it
// adds to is below its cap, as one atomic step.
//
// caps − (n + add) leaves a field's guard bit set exactly when that count
// plus what add adds to it is at most its cap. No field borrows from the
// next: a field of caps is at least 1<<valueBits with its guard, and a
// field of n + add at most 1<<valueBits, since a count only grows while
// below some cap, so never passes MaxConcurrency, and add adds at most 1.
// add<<valueBits selects the guards of the fields add adds to.
func (c *Controller) tryAccount(add int64) bool {
	caps := c.caps.Load()
	for {
		n := c.inFlight.Load()
		if (caps-(n+add))&(add<<valueBits) != add<<valueBits {
			return false
		}
		if c.inFlight.CompareAndSwap(n, n+add) {
			return true
		}
	}
}

// tryIncrement adds one to n if n is below limit, as one atomic step, so that
// concurrent admissions never take n past the limit they observed, and
// returns the new value. Each retry means another admission or release
// changed n in between, so the loop always makes progress for someone.
func tryIncrement(n *atomic.Int64, limit int64) (int64, bool) {
	for {
		v := n.Load()
		if v >= limit {
			return 0, false
		}
		if n.CompareAndSwap(v, v+1) {
			return v + 1, true
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
	c.storeCaps()
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
// environments admit invocations as provisioned (rule 1), and no more of
// them than are configured; while a configuration is in progress its
// invocations run on-demand. The amount that counts against the pools is
// set by SetProvisionedConfigured.
func (c *Controller) SetProvisioned(function, target string, allocated int) {
	c.update(function, func(e *entry) {
		e.target(target).allocated = clamp(allocated)
	})
}

// RemoveFunction forgets all of the function's settings, as DeleteFunction
// does. Its running invocations do not go with them: they keep counting
// against the account and against the name until released, so a function
// created again under the same name and reserved counts them. The entry
// itself goes if nothing of it runs; else it stays without settings, as
// for any function invoked without any.
func (c *Controller) RemoveFunction(function string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.functions.Load(function)
	if !ok {
		return
	}
	e := v.(*entry)
	// A function made again under the name starts without warm
	// environments.
	e.warm.Store(0)
	c.claimed -= e.claim()
	c.provisioned -= e.provConfigured
	e.hasReserved, e.reserved, e.provConfigured = false, 0, 0
	for _, t := range e.targets {
		t.configured, t.allocated = 0, 0
	}
	// The function's claims go with its settings, so the caps can only
	// grow here; the settings change first, which is the safe order (see
	// update).
	defer c.storeCaps()

	if !e.running() {
		// An Acquire that loaded e before this either counted on it
		// before the check below, which then sees it, or finds
		// removedConfig when it checks e again and looks the name up anew.
		e.cfg.Store(removedConfig)
		if !e.running() {
			c.functions.CompareAndDelete(function, e)
			return
		}
	}
	e.cfg.Store(e.config())
	e.prune()
	e.publish()
}

// Unreserved returns U, the capacity of the pool the functions without a
// reservation share (UnreservedConcurrentExecutions), clamped at 0.
func (c *Controller) Unreserved() int {
	return field(c.caps.Load(), unreservedShift)
}

// update applies change to the function's settings and publishes the result.
func (c *Controller) update(function string, change func(*entry)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.lookup(function)
	before, beforeP := e.claim(), e.provConfigured
	change(e)
	c.claimed += e.claim() - before
	c.provisioned += e.provConfigured - beforeP
	cfg := e.config()

	// An admission reads the caps and the function's settings apart, and
	// checks the settings again after counting itself, so it is judged by
	// the settings before the change or after it. Of the two stores, the
	// one that takes capacity away goes first, so that the caps it read do
	// not give it more than either allows.
	if caps := c.caps.Load(); c.unreserved() < int64(field(caps, unreservedShift)) || c.onDemand() < int64(field(caps, onDemandShift)) {
		c.storeCaps()
		e.cfg.Store(cfg)
	} else {
		e.cfg.Store(cfg)
		c.storeCaps()
	}
	e.prune()
	e.publish()
}

// storeCaps publishes the caps computed from the settings. Caller holds
// c.mu.
func (c *Controller) storeCaps() {
	c.caps.Store(packCaps(c.limit, c.onDemand(), c.unreserved()))
}

// unreserved computes U from the settings, clamped at 0. The control plane
// keeps U at or above its minimum; it can only go below 0 when the account
// limit is lowered under what is already claimed.
func (c *Controller) unreserved() int64 {
	return max(0, account.Limits{Concurrency: int(c.limit)}.Unreserved(c.claimed))
}

// onDemand computes L − Σ P, clamped at 0: what provisioned concurrency
// leaves of L to on-demand invocations.
func (c *Controller) onDemand() int64 {
	return max(0, c.limit-c.provisioned)
}

// claim is what the function takes out of L: R when reserved, else P.
// Caller holds Controller.mu.
func (e *entry) claim() int64 {
	if e.hasReserved {
		return e.reserved
	}
	return e.provConfigured
}

// running reports whether any of the function's slots is in use. Caller
// holds Controller.mu.
func (e *entry) running() bool {
	if e.onDemand.Load() != 0 {
		return true
	}
	for _, t := range e.targets {
		if t.inUse.Load() != 0 {
			return true
		}
	}
	return false
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

// config builds the settings Acquire reads. Caller holds Controller.mu.
func (e *entry) config() *fnConfig {
	var targets map[string]provTarget
	for name, t := range e.targets {
		if n := min(t.allocated, t.configured); n > 0 {
			if targets == nil {
				targets = make(map[string]provTarget)
			}
			targets[name] = provTarget{capacity: n, inUse: t.inUse}
		}
	}
	if !e.hasReserved && targets == nil {
		return unreservedConfig
	}
	// Provisioned slots count against R through P, what is configured:
	// with P lowered while more than the new P of them still run, the
	// function may briefly run more than R. The account check still holds
	// the total to L.
	return &fnConfig{
		reserved:    e.hasReserved,
		reservation: e.reserved,
		onDemandCap: max(0, e.reserved-e.provConfigured),
		targets:     targets,
	}
}

// prune drops the target records that no longer hold anything. A record
// whose provisioned slots are still in use is kept, so that the same
// target provisioned again counts them. It runs after the settings without
// those targets are published: an Acquire still counting on one of them
// under older settings is either seen in use here or judged again. Caller
// holds Controller.mu.
func (e *entry) prune() {
	for name, t := range e.targets {
		if t.configured == 0 && t.allocated == 0 && t.inUse.Load() == 0 {
			delete(e.targets, name)
		}
	}
}

func clamp(n int) int64 { return min(max(0, int64(n)), MaxConcurrency) }
