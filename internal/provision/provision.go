// Package provision keeps provisioned concurrency real: for every stored
// config it keeps that many execution environments initialised (with
// AWS_LAMBDA_INITIALIZATION_TYPE=provisioned-concurrency) and pinned to
// their version or alias, reports them to admission as they become ready,
// replaces the ones that die, and reports the config's status: IN_PROGRESS
// while they start, READY when all are up, FAILED after repeated Init
// failures.
package provision

import (
	"cmp"
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/lambdad/lambdad/internal/clock"
	"github.com/lambdad/lambdad/internal/control"
	"github.com/lambdad/lambdad/internal/execenv"
	"github.com/lambdad/lambdad/internal/function"
	"github.com/lambdad/lambdad/internal/store"
)

// Envs is what the provisioner needs of the execution environments.
type Envs interface {
	Prewarm(ctx context.Context, spec *execenv.Spec) error
	// Live counts the environments of spec's pool that are up (idle or busy).
	Live(spec *execenv.Spec) int
	// Shrink stops environments of spec's pool beyond n.
	Shrink(spec *execenv.Spec, n int)
}

// Slots is admission's side: how many provisioned environments of a target
// are allocated and so may take invocations.
type Slots interface {
	SetProvisioned(fn function.Key, target string, allocated int)
}

// Specs builds the environment spec of a provisioned target.
type Specs interface {
	ProvisionedSpec(ctx context.Context, fn function.Key, qualifier, version string) (*execenv.Spec, error)
}

// Placement divides each target's environments among the nodes of a
// cluster, so that together they keep exactly what was requested, each
// counted once (by the admission of the node it runs on).
type Placement interface {
	// Share is how many of a target's n environments this node keeps.
	Share(fn function.Key, qualifier string, n int) int
	// Report publishes how many of the target's environments this node
	// has up; Total sums what every node reported.
	Report(fn function.Key, qualifier string, allocated int)
	Total(fn function.Key, qualifier string) (int, error)
}

// Statuses, as AWS names them.
const (
	InProgress = "IN_PROGRESS"
	Ready      = "READY"
	Failed     = "FAILED"
	// ReasonInitFailure is the StatusReason of a FAILED config.
	ReasonInitFailure = "FUNCTION_ERROR_INIT_FAILURE"
	// initAttempts is how many Init failures in a row make a config FAILED.
	initAttempts = 3
)

type targetKey struct {
	fn        function.Key
	qualifier string
}

type target struct {
	version   string
	requested int
	spec      *execenv.Spec // nil until built
	status    string
	reason    string
	failures  int
	allocated int
	// share is how many of requested this node keeps (all of them on a
	// node of its own).
	share int
	// gen changes with every new request, so that the work of a replaced
	// request does not count for the new one.
	gen uint64
}

// Provisioner keeps provisioned environments running.
type Provisioner struct {
	envs  Envs
	slots Slots
	specs Specs
	log   *slog.Logger
	// Interval is how often every target is checked (dead environments
	// replaced) besides the checks that changes trigger.
	interval time.Duration
	clock    clock.Clock

	ctx    context.Context
	cancel context.CancelFunc
	wake   chan struct{}
	wg     sync.WaitGroup

	// placement divides targets among a cluster's nodes; nil keeps all
	// of each here.
	placement Placement

	mu      sync.Mutex // guards targets and starting
	targets map[targetKey]*target
	// starting counts Prewarm calls under way per target.
	starting map[targetKey]int
}

// New returns a provisioner. It learns what to provision from the store's
// feed (it is a store.Subscriber); Start runs it. Its periodic checks run
// on clk (clock.Real when nil).
func New(envs Envs, slots Slots, clk clock.Clock, log *slog.Logger) *Provisioner {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if clk == nil {
		clk = clock.Real
	}
	p := &Provisioner{envs: envs, slots: slots, log: log, interval: time.Second, clock: clk,
		wake: make(chan struct{}, 1), targets: map[targetKey]*target{}, starting: map[targetKey]int{}}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	return p
}

// SetPlacement makes the provisioner keep only this node's share of each
// target, as placement divides them; call it before Start.
func (p *Provisioner) SetPlacement(pl Placement) { p.placement = pl }

// Start runs the reconcile loop until Close, building environments with
// specs. (The specs come from the invoker, which is built after the
// control plane that asks this provisioner for statuses, hence here and
// not in New.)
func (p *Provisioner) Start(specs Specs) {
	p.specs = specs
	p.wg.Add(1)
	go p.loop()
}

// Load provisions every stored config, so that a restart restores the
// provisioned environments.
func (p *Provisioner) Load(tx *store.Tx, _ uint64) error {
	return control.ForEachAccount(tx, func(tx *store.Tx) error {
		cfgs, err := tx.ProvisionedConfigs("")
		if err != nil {
			return err
		}
		for _, c := range cfgs {
			version := c.Qualifier
			if !function.IsVersion(version) {
				a, err := tx.Alias(c.Function, c.Qualifier)
				if err != nil {
					return err
				}
				version = a.FunctionVersion
			}
			p.Provision(function.Key{Account: tx.Account(), Name: c.Function}, c.Qualifier, version, c.Requested)
		}
		return nil
	})
}

// Apply follows committed changes: a config put or deleted, an alias with a
// config moved to another version (its environments are made anew for
// it), a function deleted with everything it had.
func (p *Provisioner) Apply(b *store.Batch) {
	for i := range b.Changes {
		c := &b.Changes[i]
		fn := c.FunctionKey()
		switch c.Kind {
		case store.KindProvisioned:
			if c.Provisioned == nil {
				p.Unprovision(fn, c.Key)
			} else {
				p.Provision(fn, c.Key, c.ProvisionedVersion, c.Provisioned.Requested)
			}
		case store.KindAlias:
			if c.Alias != nil {
				p.follow(fn, c.Key, c.Alias.FunctionVersion)
			}
		case store.KindFunction:
			if c.Func == nil {
				p.unprovisionFunction(fn)
			}
		}
	}
}

// follow re-provisions function:alias when the alias now names another
// version than its environments run.
func (p *Provisioner) follow(fn function.Key, alias, version string) {
	p.mu.Lock()
	t := p.targets[targetKey{fn, alias}]
	moved := t != nil && t.version != version
	var n int
	if moved {
		n = t.requested
	}
	p.mu.Unlock()
	if moved {
		p.Provision(fn, alias, version, n)
	}
}

func (p *Provisioner) unprovisionFunction(fn function.Key) {
	p.mu.Lock()
	var qualifiers []string
	for k := range p.targets {
		if k.fn == fn {
			qualifiers = append(qualifiers, k.qualifier)
		}
	}
	p.mu.Unlock()
	for _, q := range qualifiers {
		p.Unprovision(fn, q)
	}
}

// Close stops the loop and waits for the environments being started.
func (p *Provisioner) Close() error {
	p.cancel()
	p.wg.Wait()
	return nil
}

// Provision asks for n environments of function:qualifier running version;
// a new request replaces the one before, even while it is in progress.
func (p *Provisioner) Provision(fn function.Key, qualifier, version string, n int) {
	k := targetKey{fn, qualifier}
	p.mu.Lock()
	t := p.targets[k]
	if t == nil {
		t = &target{}
		p.targets[k] = t
	}
	old := t.spec
	if t.version != version {
		t.spec = nil
	}
	t.version, t.requested, t.gen = version, n, t.gen+1
	t.status, t.reason, t.failures = InProgress, "", 0
	p.mu.Unlock()
	if old != nil && old.Version != version {
		// The alias moved: the old version's environments go.
		p.envs.Shrink(old, 0)
	}
	p.poke()
}

// Unprovision drops a target and its environments.
func (p *Provisioner) Unprovision(fn function.Key, qualifier string) {
	k := targetKey{fn, qualifier}
	p.mu.Lock()
	t := p.targets[k]
	delete(p.targets, k)
	// Under the lock, so that a reconcile of the target that read it
	// before it went cannot publish its allocation after this.
	p.slots.SetProvisioned(fn, qualifier, 0)
	p.mu.Unlock()
	if p.placement != nil {
		p.placement.Report(fn, qualifier, 0)
	}
	if t != nil && t.spec != nil {
		p.envs.Shrink(t.spec, 0)
	}
}

// Status reports a target's live state.
func (p *Provisioner) Status(fn function.Key, qualifier string) control.ProvisionStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.targets[targetKey{fn, qualifier}]
	if t == nil {
		return control.ProvisionStatus{Status: InProgress}
	}
	st := control.ProvisionStatus{Allocated: t.allocated, Available: t.allocated, Status: t.status, Reason: t.reason}
	if p.placement != nil {
		// The cluster's environments of the target, not this node's.
		total, err := p.placement.Total(fn, qualifier)
		if err != nil {
			p.log.Warn("provisioned concurrency: the cluster's allocation cannot be read", "err", err)
		}
		st.Allocated, st.Available = min(total, t.requested), min(total, t.requested)
		if st.Status == Ready && total < t.requested {
			st.Status = InProgress
		}
	}
	return st
}

// Target is one provisioned target as the provisioner keeps it.
type Target struct {
	Account, Function, Qualifier, Version string
	Requested, Allocated                  int
	Status                                string
}

// Targets lists the targets in account, function and qualifier order.
func (p *Provisioner) Targets() []Target {
	p.mu.Lock()
	out := make([]Target, 0, len(p.targets))
	for k, t := range p.targets {
		out = append(out, Target{Account: k.fn.Account, Function: k.fn.Name, Qualifier: k.qualifier, Version: t.version,
			Requested: t.requested, Allocated: t.allocated, Status: t.status})
	}
	p.mu.Unlock()
	slices.SortFunc(out, func(a, b Target) int {
		return cmp.Or(cmp.Compare(a.Account, b.Account), cmp.Compare(a.Function, b.Function), cmp.Compare(a.Qualifier, b.Qualifier))
	})
	return out
}

func (p *Provisioner) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *Provisioner) loop() {
	defer p.wg.Done()
	var starts sync.WaitGroup
	defer starts.Wait()
	tick := p.clock.NewTimer(p.interval)
	defer tick.Stop()
	for {
		p.reconcile(&starts)
		select {
		case <-p.ctx.Done():
			return
		case <-p.wake:
		case <-tick.C():
			tick.Reset(p.interval)
		}
	}
}

// reconcile brings every target toward its request: it counts what is up,
// tells admission, starts what is missing and stops what is extra.
func (p *Provisioner) reconcile(starts *sync.WaitGroup) {
	p.mu.Lock()
	keys := make([]targetKey, 0, len(p.targets))
	for k := range p.targets {
		keys = append(keys, k)
	}
	p.mu.Unlock()
	for _, k := range keys {
		p.reconcileOne(k, starts)
	}
}

func (p *Provisioner) reconcileOne(k targetKey, starts *sync.WaitGroup) {
	p.mu.Lock()
	t := p.targets[k]
	if t == nil {
		p.mu.Unlock()
		return
	}
	spec, version, gen := t.spec, t.version, t.gen
	p.mu.Unlock()
	if spec == nil {
		s, err := p.specs.ProvisionedSpec(p.ctx, k.fn, k.qualifier, version)
		if err != nil {
			p.log.Warn("provisioned concurrency: cannot build environment", "account", k.fn.Account, "function", k.fn.Name, "qualifier", k.qualifier, "err", err)
			return
		}
		p.mu.Lock()
		if t = p.targets[k]; t == nil || t.gen != gen {
			p.mu.Unlock()
			return
		}
		t.spec, spec = s, s
		p.mu.Unlock()
	}
	live := p.envs.Live(spec)
	p.mu.Lock()
	if t = p.targets[k]; t == nil || t.gen != gen {
		p.mu.Unlock()
		return
	}
	requested := t.requested
	p.mu.Unlock()
	share := requested
	if p.placement != nil {
		// Outside the lock: placement may ask the cluster who is in it.
		share = p.placement.Share(k.fn, k.qualifier, requested)
	}
	p.mu.Lock()
	if t = p.targets[k]; t == nil || t.gen != gen {
		p.mu.Unlock()
		return
	}
	t.share = share
	allocated := min(live, share)
	t.allocated = allocated
	if allocated == share && t.status != Failed {
		t.status = Ready
	}
	missing := share - live - p.starting[k]
	if t.status == Failed {
		missing = 0
	}
	requested = share
	p.starting[k] += max(0, missing)
	// Tell admission while the target is known to be current: after the
	// lock is released an Unprovision may remove it, and an allocation
	// published after that would leave admission with slots for a config
	// that no longer exists.
	p.slots.SetProvisioned(k.fn, k.qualifier, allocated)
	p.mu.Unlock()
	if p.placement != nil {
		p.placement.Report(k.fn, k.qualifier, allocated)
		// An Unprovision that came in between reported 0 already, maybe
		// before this: report it again so that 0 stands.
		p.mu.Lock()
		gone := p.targets[k] == nil
		p.mu.Unlock()
		if gone {
			p.placement.Report(k.fn, k.qualifier, 0)
		}
	}

	if live > requested {
		p.envs.Shrink(spec, requested)
	}
	for range max(0, missing) {
		starts.Add(1)
		go func() {
			defer starts.Done()
			err := p.envs.Prewarm(p.ctx, spec)
			p.mu.Lock()
			p.starting[k]--
			if p.targets[k] == nil {
				// Unprovisioned while this one started: it goes too.
				p.mu.Unlock()
				p.envs.Shrink(spec, 0)
				return
			}
			if t := p.targets[k]; t.gen == gen {
				if err != nil && p.ctx.Err() == nil {
					t.failures++
					p.log.Warn("provisioned concurrency: init failed", "account", k.fn.Account, "function", k.fn.Name, "qualifier", k.qualifier, "failures", t.failures, "err", err)
					if t.failures >= initAttempts {
						t.status, t.reason = Failed, ReasonInitFailure
					}
				} else if err == nil {
					t.failures = 0
				}
			}
			p.mu.Unlock()
			p.poke()
		}()
	}
}
