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
	node  *slots.Node
	mu    sync.Mutex // serialises opening pools
	pools sync.Map   // name → *slots.Pool
	// holders counts the admissions holding this session's slots.
	holders atomic.Int64
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

// pool returns the session's pool name with limit, opening it on first use.
func (s *session) pool(ctx context.Context, name string, limit int) (*slots.Pool, error) {
	if p, ok := s.pools.Load(name); ok {
		pool := p.(*slots.Pool)
		if pool.Limit() != limit {
			pool.SetLimit(limit)
		}
		return pool, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.pools.Load(name); ok {
		return p.(*slots.Pool), nil
	}
	p, err := s.node.Pool(ctx, name, limit)
	if err != nil {
		return nil, err
	}
	s.pools.Store(name, p)
	return p, nil
}

// take takes one slot of a pool: from the batch, else from etcd.
func (g *Gate) take(s *session, name string, limit int) (func(), bool) {
	if limit <= 0 {
		return nil, false
	}
	p, err := s.pool(g.ctx, name, limit)
	if err != nil {
		g.log.Warn("a cluster pool cannot be opened", "pool", name, "err", err)
		return nil, false
	}
	if release, ok := p.TryAcquire(); ok {
		return release, true
	}
	return p.Acquire(g.ctx)
}

// Enter implements admission.Gate.
func (g *Gate) Enter(p admission.Pools) (func(), string, bool) {
	s := g.sess.Load()
	if s == nil {
		// Fenced: nothing is admitted until the node is back.
		return nil, awserr.ReasonConcurrentInvocationLimitExceeded, false
	}
	var held [3]func()
	n := 0
	fail := func(reason string) (func(), string, bool) {
		for _, r := range held[:n] {
			r()
		}
		return nil, reason, false
	}
	switch p.Kind {
	case admission.KindReserved:
		r, ok := g.take(s, functionPool(p.Account, p.Function), p.FunctionLimit)
		if !ok {
			return fail(awserr.ReasonReservedFunctionConcurrentInvocationLimitExceeded)
		}
		held[n], n = r, n+1
	case admission.KindUnreserved:
		r, ok := g.take(s, unreservedPool(p.Account), p.Unreserved)
		if !ok {
			return fail(awserr.ReasonConcurrentInvocationLimitExceeded)
		}
		held[n], n = r, n+1
	}
	if p.Kind != admission.KindProvisioned {
		r, ok := g.take(s, onDemandPool(p.Account), p.OnDemand)
		if !ok {
			return fail(awserr.ReasonConcurrentInvocationLimitExceeded)
		}
		held[n], n = r, n+1
	}
	r, ok := g.take(s, accountPool(p.Account), p.All)
	if !ok {
		return fail(awserr.ReasonConcurrentInvocationLimitExceeded)
	}
	held[n], n = r, n+1
	s.holders.Add(1)
	g.holders.Add(1)
	release := held
	count := n
	return func() {
		for _, r := range release[:count] {
			r()
		}
		s.holders.Add(-1)
		g.holders.Add(-1)
	}, "", true
}
