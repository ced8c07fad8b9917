// Package cluster holds the concurrency limits of AWS Lambda across the
// nodes of a cluster: it is admission's Gate (see package admission) on
// slot pools kept in etcd (package slots), one per limit: each reserved
// function's on-demand pool, each account's unreserved pool, its
// on-demand pool and the account as a whole. An admission the node's own
// rules allow takes a slot of each pool it counts in, from the node's
// batch when it holds a free one (no etcd request), else from etcd, waiting
// a bounded time for another node to hand one back. So the limits hold
// across every node together, exactly as on one node.
//
// The pools' slots are bound to the node's etcd lease. A node cut off from
// etcd fences itself before its lease could expire (package slots): it
// then admits nothing and kills what runs under its slots, so that when
// the lease expires and other nodes take the slots, none of its
// invocations still runs. Once nothing holds the old slots, it starts a
// new session and admits again.
package cluster

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lambdad/lambdad/internal/admission"
	"github.com/lambdad/lambdad/internal/awserr"
	"github.com/lambdad/lambdad/internal/slots"
)

// Options configure a Gate.
type Options struct {
	// Slots configures each session (its Client and NodeID are required;
	// Prefix, TTL, Margin, IdleAfter and MaxWait as package slots says).
	Slots slots.Config
	// Fence is called when the node fences: it must end everything that
	// runs under the gate's slots (the server kills its busy
	// environments). It is called again every FenceRetry until they have
	// ended.
	Fence      func()
	FenceRetry time.Duration
	Logger     *slog.Logger
}

// Gate is the cluster's side of admission.
type Gate struct {
	opts Options
	log  *slog.Logger

	// sess is the current session; nil while fenced and not yet renewed.
	sess atomic.Pointer[session]
	// holders counts the admissions holding slots of any session.
	holders atomic.Int64

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	// fences counts the times the node fenced; pastOps the etcd requests
	// of the sessions it ended.
	fences  atomic.Int64
	pastOps atomic.Uint64
}

// session is one slots.Node and its pools.
type session struct {
	node *slots.Node
	mu   sync.Mutex // serialises opening pools and writing the maps
	// accounts and functions are copied on write, so that every
	// admission reads them without a lock or an allocation.
	accounts  atomic.Pointer[map[string]*accountPools]
	functions atomic.Pointer[map[fnKey]*pool]
	// holders counts the admissions holding this session's slots.
	holders atomic.Int64
}

type fnKey struct{ account, function string }

// accountPools are an account's pools.
type accountPools struct{ unreserved, onDemand, all *pool }

// pool is a slots.Pool with the limit last set on it.
type pool struct {
	p     *slots.Pool
	limit atomic.Int64
}

// take takes one slot of the pool under limit: from the batch, else from
// etcd, waiting a bounded time. slow is the release of a slot from etcd
// (nil for one from the batch, which p.p.Release gives back).
func (p *pool) take(ctx context.Context, limit int) (ok bool, slow func()) {
	if limit <= 0 {
		return false, nil
	}
	if int64(limit) != p.limit.Load() {
		p.limit.Store(int64(limit))
		p.p.SetLimit(limit)
	}
	if p.p.Take() {
		return true, nil
	}
	release, ok := p.p.Acquire(ctx)
	return ok, release
}

// New starts a Gate with its first session.
func New(ctx context.Context, o Options) (*Gate, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.FenceRetry <= 0 {
		o.FenceRetry = 50 * time.Millisecond
	}
	n, err := slots.New(ctx, o.Slots)
	if err != nil {
		return nil, err
	}
	g := &Gate{opts: o, log: o.Logger, done: make(chan struct{})}
	g.ctx, g.cancel = context.WithCancel(context.Background())
	s := &session{node: n}
	g.sess.Store(s)
	go g.watch(s)
	return g, nil
}

// watch follows a session: on a fence it ends what runs under it, waits
// until nothing holds its slots, and starts a new session.
func (g *Gate) watch(s *session) {
	select {
	case <-g.ctx.Done():
		close(g.done)
		return
	case <-s.node.Fenced():
	}
	g.fences.Add(1)
	g.sess.CompareAndSwap(s, nil)
	g.log.Error("cut off from etcd: admitting nothing, ending what runs under the cluster's slots", "err", s.node.Err())
	for s.holders.Load() > 0 {
		if g.opts.Fence != nil {
			g.opts.Fence()
		}
		select {
		case <-g.ctx.Done():
			close(g.done)
			return
		case <-time.After(g.opts.FenceRetry):
		}
	}
	s.node.Close()
	g.pastOps.Add(s.node.Stats().Ops)
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		n, err := slots.New(g.ctx, g.opts.Slots)
		if err == nil {
			ns := &session{node: n}
			g.sess.Store(ns)
			g.log.Info("back in the cluster: admitting again")
			go g.watch(ns)
			return
		}
		select {
		case <-g.ctx.Done():
			close(g.done)
			return
		case <-time.After(wait):
		}
	}
}

// Close ends the current session (its slots go back at once); call it
// once nothing is admitted any more.
func (g *Gate) Close() error {
	g.cancel()
	<-g.done
	if s := g.sess.Swap(nil); s != nil {
		return s.node.Close()
	}
	return nil
}

// Fences is how many times the node has fenced.
func (g *Gate) Fences() int64 { return g.fences.Load() }

// Ops is how many etcd requests the pools of every session have made.
func (g *Gate) Ops() uint64 {
	ops := g.pastOps.Load()
	if s := g.sess.Load(); s != nil {
		ops += s.node.Stats().Ops
	}
	return ops
}

// Stats are the current session's counters (see slots.Stats).
func (g *Gate) Stats() slots.Stats {
	if s := g.sess.Load(); s != nil {
		return s.node.Stats()
	}
	return slots.Stats{}
}

// Pool names, by account and function.
func functionPool(account, function string) string { return "acct/" + account + "/fn/" + function }
func unreservedPool(account string) string         { return "acct/" + account + "/unreserved" }
func onDemandPool(account string) string           { return "acct/" + account + "/ondemand" }
func accountPool(account string) string            { return "acct/" + account + "/all" }

// open opens the pool name, first set to limit.
func (s *session) open(ctx context.Context, name string, limit int) (*pool, error) {
	p, err := s.node.Pool(ctx, name, max(limit, 0))
	if err != nil {
		return nil, err
	}
	out := &pool{p: p}
	out.limit.Store(int64(max(limit, 0)))
	return out, nil
}

// account returns the pools of account, opening them on first use.
func (s *session) account(ctx context.Context, p admission.Pools) (*accountPools, error) {
	if m := s.accounts.Load(); m != nil {
		if a := (*m)[p.Account]; a != nil {
			return a, nil
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.accounts.Load()
	if old != nil {
		if a := (*old)[p.Account]; a != nil {
			return a, nil
		}
	}
	var a accountPools
	var err error
	if a.unreserved, err = s.open(ctx, unreservedPool(p.Account), p.Unreserved); err != nil {
		return nil, err
	}
	if a.onDemand, err = s.open(ctx, onDemandPool(p.Account), p.OnDemand); err != nil {
		return nil, err
	}
	if a.all, err = s.open(ctx, accountPool(p.Account), p.All); err != nil {
		return nil, err
	}
	m := map[string]*accountPools{p.Account: &a}
	if old != nil {
		for k, v := range *old {
			m[k] = v
		}
	}
	s.accounts.Store(&m)
	return &a, nil
}

// function returns the on-demand pool of a reserved function, opening it
// on first use.
func (s *session) function(ctx context.Context, p admission.Pools) (*pool, error) {
	k := fnKey{p.Account, p.Function}
	if m := s.functions.Load(); m != nil {
		if f := (*m)[k]; f != nil {
			return f, nil
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.functions.Load()
	if old != nil {
		if f := (*old)[k]; f != nil {
			return f, nil
		}
	}
	f, err := s.open(ctx, functionPool(p.Account, p.Function), p.FunctionLimit)
	if err != nil {
		return nil, err
	}
	m := make(map[fnKey]*pool, 1+len(pointee(old)))
	for k, v := range pointee(old) {
		m[k] = v
	}
	m[k] = f
	s.functions.Store(&m)
	return f, nil
}

func pointee[M ~map[K]V, K comparable, V any](m *M) M {
	if m == nil {
		return nil
	}
	return *m
}

// hold is the slots one admission holds.
type hold struct {
	g     *Gate
	s     *session
	n     int
	pools [3]*pool
	slow  [3]func()
}

func (h *hold) add(p *pool, slow func()) {
	h.pools[h.n], h.slow[h.n] = p, slow
	h.n++
}

func (h *hold) release() {
	for i := range h.n {
		if h.slow[i] != nil {
			h.slow[i]()
		} else {
			h.pools[i].p.Release()
		}
	}
	h.n = 0
}

func (h *hold) leave() {
	h.release()
	h.s.holders.Add(-1)
	h.g.holders.Add(-1)
}

// Enter implements admission.Gate.
func (g *Gate) Enter(p admission.Pools) (func(), string, bool) {
	s := g.sess.Load()
	if s == nil {
		// Fenced: nothing is admitted until the node is back.
		return nil, awserr.ReasonConcurrentInvocationLimitExceeded, false
	}
	a, err := s.account(g.ctx, p)
	if err != nil {
		g.log.Warn("the cluster's pools cannot be opened", "account", p.Account, "err", err)
		return nil, awserr.ReasonConcurrentInvocationLimitExceeded, false
	}
	h := &hold{g: g, s: s}
	fail := func(reason string) (func(), string, bool) {
		h.release()
		return nil, reason, false
	}
	switch p.Kind {
	case admission.KindReserved:
		f, err := s.function(g.ctx, p)
		if err != nil {
			g.log.Warn("the cluster's pools cannot be opened", "account", p.Account, "function", p.Function, "err", err)
			return fail(awserr.ReasonReservedFunctionConcurrentInvocationLimitExceeded)
		}
		ok, slow := f.take(g.ctx, p.FunctionLimit)
		if !ok {
			return fail(awserr.ReasonReservedFunctionConcurrentInvocationLimitExceeded)
		}
		h.add(f, slow)
	case admission.KindUnreserved:
		ok, slow := a.unreserved.take(g.ctx, p.Unreserved)
		if !ok {
			return fail(awserr.ReasonConcurrentInvocationLimitExceeded)
		}
		h.add(a.unreserved, slow)
	}
	if p.Kind != admission.KindProvisioned {
		ok, slow := a.onDemand.take(g.ctx, p.OnDemand)
		if !ok {
			return fail(awserr.ReasonConcurrentInvocationLimitExceeded)
		}
		h.add(a.onDemand, slow)
	}
	ok, slow := a.all.take(g.ctx, p.All)
	if !ok {
		return fail(awserr.ReasonConcurrentInvocationLimitExceeded)
	}
	h.add(a.all, slow)
	s.holders.Add(1)
	g.holders.Add(1)
	return h.leave, "", true
}
