package slots

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Defaults of Config.
const (
	DefaultPrefix    = "/lambdad/slots"
	DefaultTTL       = 10 * time.Second
	DefaultIdleAfter = 150 * time.Millisecond
	DefaultMaxWait   = 100 * time.Millisecond
)

// Errors a Node is fenced with (see Node.Err).
var (
	// ErrClosed: Close was called.
	ErrClosed = errors.New("slots: node closed")
	// ErrKeepAliveLate: no keep-alive was answered for TTL − margin.
	ErrKeepAliveLate = errors.New("slots: lease not renewed in time, node fenced")
	// ErrLeaseLost: etcd no longer has the node's lease, or a slot of the
	// node disappeared without the node deleting it.
	ErrLeaseLost = errors.New("slots: session lease lost, node fenced")
)

// Config configures a Node.
type Config struct {
	// Client is the etcd client; the Node does not close it.
	Client *clientv3.Client
	// NodeID names the node in the values of its keys; required.
	NodeID string
	// Prefix is the key prefix of all pools (DefaultPrefix if empty).
	Prefix string
	// TTL of the session lease (DefaultTTL if zero). etcd rounds it up to
	// whole seconds and to its minimum TTL; the granted TTL is used.
	TTL time.Duration
	// Margin is how long before the lease could expire on the server the
	// node fences (TTL/3 if zero): the time holders have to stop.
	Margin time.Duration
	// IdleAfter is the idle window after which unused slots are returned
	// (DefaultIdleAfter if zero).
	IdleAfter time.Duration
	// MaxWait bounds how long Acquire waits for another node to return a
	// slot (DefaultMaxWait if zero).
	MaxWait time.Duration
}

// Stats are a Node's counters since it was made.
type Stats struct {
	// Fast counts slots handed out from the local batch (no etcd call).
	Fast uint64
	// Slow counts slots granted by Acquire through an etcd transaction.
	Slow uint64
	// Throttles counts Acquire calls that returned false.
	Throttles uint64
	// Ops counts etcd KV requests (transactions, gets, puts, deletes) of
	// the pools, not keep-alives nor watch events.
	Ops uint64
	// KeepAlives counts answered lease keep-alives.
	KeepAlives uint64
	// Claimed and Returned count slot keys created and deleted.
	Claimed, Returned uint64
}

// Node is one lambdad node's session: its lease and its pools. Methods are
// safe for concurrent use.
type Node struct {
	cli       *clientv3.Client
	id        string
	prefix    string
	ttl       time.Duration // granted
	margin    time.Duration
	idleAfter time.Duration
	maxWait   time.Duration
	lease     clientv3.LeaseID

	// base is the origin of mono; fenceAt, in mono nanoseconds, is when
	// the node fences unless a keep-alive moves it.
	base    time.Time
	fenceAt atomic.Int64

	ctx    context.Context // cancelled at fence: stops the goroutines
	cancel context.CancelFunc
	wg     sync.WaitGroup

	fenceOnce sync.Once
	isFenced  atomic.Bool
	fenced    chan struct{}
	fenceErr  atomic.Pointer[error]
	closed    atomic.Bool
	stopping  chan struct{} // closed by Close: ends the revoke-after-drain wait

	mu    sync.Mutex
	pools map[string]*Pool

	ops, keepAlives, slow, throttles, claimed, returned atomic.Uint64
}

// New grants the node's session lease and starts keeping it alive.
func New(ctx context.Context, cfg Config) (*Node, error) {
	if cfg.Client == nil || cfg.NodeID == "" {
		return nil, errors.New("slots: Config needs Client and NodeID")
	}
	n := &Node{
		cli:       cfg.Client,
		id:        cfg.NodeID,
		prefix:    cfg.Prefix,
		ttl:       cfg.TTL,
		margin:    cfg.Margin,
		idleAfter: cfg.IdleAfter,
		maxWait:   cfg.MaxWait,
		base:      time.Now(),
		fenced:    make(chan struct{}),
		stopping:  make(chan struct{}),
		pools:     map[string]*Pool{},
	}
	if n.prefix == "" {
		n.prefix = DefaultPrefix
	}
	if n.ttl <= 0 {
		n.ttl = DefaultTTL
	}
	if n.idleAfter <= 0 {
		n.idleAfter = DefaultIdleAfter
	}
	if n.maxWait <= 0 {
		n.maxWait = DefaultMaxWait
	}
	sent := n.mono()
	secs := int64((n.ttl + time.Second - 1) / time.Second)
	g, err := n.cli.Grant(ctx, secs)
	if err != nil {
		return nil, fmt.Errorf("slots: grant lease: %w", err)
	}
	// etcd may raise the TTL to its minimum; fence by what it granted.
	n.ttl = time.Duration(g.TTL) * time.Second
	if n.margin <= 0 || n.margin >= n.ttl {
		n.margin = n.ttl / 3
	}
	n.lease = g.ID
	n.fenceAt.Store(sent + int64(n.ttl-n.margin))
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.wg.Add(2)
	go n.keepAlive()
	go n.watchdog()
	return n, nil
}

// mono is the node's monotonic clock in nanoseconds.
func (n *Node) mono() int64 { return int64(time.Since(n.base)) }

// TTL is the lease TTL etcd granted; Margin the time holders have to stop
// between Fenced closing and the earliest expiry of the lease.
func (n *Node) TTL() time.Duration    { return n.ttl }
func (n *Node) Margin() time.Duration { return n.margin }

// Lease is the node's session lease.
func (n *Node) Lease() clientv3.LeaseID { return n.lease }

// Fenced is closed when the node stops admitting: its lease could expire
// within Margin (etcd unreachable), is gone, or Close was called. Holders of
// slots must then stop their work within Margin.
func (n *Node) Fenced() <-chan struct{} { return n.fenced }

// Err is why the node is fenced, nil while it is not.
func (n *Node) Err() error {
	if p := n.fenceErr.Load(); p != nil {
		return *p
	}
	return nil
}

// FenceDeadline is the time at which the node fences unless a keep-alive
// is answered first.
func (n *Node) FenceDeadline() time.Time {
	return n.base.Add(time.Duration(n.fenceAt.Load()))
}

// keepAlive renews the lease with one request at a time: the send time of
// an answered request bounds the server's expiry from below (see the
// package doc), which the library's streaming keep-alive does not tell.
func (n *Node) keepAlive() {
	defer n.wg.Done()
	interval := n.ttl / 5
	for {
		sent := n.mono()
		ctx, cancel := context.WithTimeout(n.ctx, n.ttl-n.margin)
		resp, err := n.cli.KeepAliveOnce(ctx, n.lease)
		cancel()
		switch {
		case err == nil:
			n.keepAlives.Add(1)
			at := sent + int64(min(time.Duration(resp.TTL)*time.Second, n.ttl)-n.margin)
			for {
				old := n.fenceAt.Load()
				if at <= old || n.fenceAt.CompareAndSwap(old, at) {
					break
				}
			}
		case errors.Is(err, rpctypes.ErrLeaseNotFound):
			n.fence(ErrLeaseLost)
			return
		}
		wait := time.Duration(sent+int64(interval)-n.mono()) * time.Nanosecond
		if err != nil {
			// Retry soon: every answered request moves the fence.
			wait = min(wait, 200*time.Millisecond)
		}
		select {
		case <-n.ctx.Done():
			return
		case <-time.After(max(wait, 10*time.Millisecond)):
		}
	}
}

// watchdog fences the node at fenceAt.
func (n *Node) watchdog() {
	defer n.wg.Done()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		d := n.fenceAt.Load() - n.mono()
		if d <= 0 {
			n.fence(ErrKeepAliveLate)
			return
		}
		t.Reset(time.Duration(d))
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// live reports whether the node may admit: one atomic load, as the hot
// path reads no clock (on this machine a clock read costs more than the
// rest of TryAcquire); the watchdog fences at the deadline.
func (n *Node) live() bool { return !n.isFenced.Load() }

// liveNow is live that also checks the deadline on the clock, for the
// paths that go to etcd anyway.
func (n *Node) liveNow() bool {
	if n.fenceAt.Load() <= n.mono() {
		n.fence(ErrKeepAliveLate)
	}
	return n.live()
}

// fence stops admissions for good and tells holders to stop.
func (n *Node) fence(err error) {
	n.fenceOnce.Do(func() {
		n.fenceErr.Store(&err)
		// No new admission past this point.
		n.isFenced.Store(true)
		n.fenceAt.Store(-1)
		n.mu.Lock()
		pools := make([]*Pool, 0, len(n.pools))
		for _, p := range n.pools {
			pools = append(pools, p)
		}
		n.mu.Unlock()
		for _, p := range pools {
			p.kill()
		}
		close(n.fenced)
		n.cancel()
		if err != ErrClosed && err != ErrLeaseLost {
			n.wg.Add(1)
			go n.revokeAfterDrain()
		}
	})
}

// revokeAfterDrain revokes the lease of a fenced node once its holders have
// released their slots: revoking earlier would hand slots to other nodes
// while this one's invocations may still run. It gives up when the lease
// must have expired anyway.
func (n *Node) revokeAfterDrain() {
	defer n.wg.Done()
	end := time.Now().Add(n.ttl)
	for n.inUse() > 0 {
		if time.Now().After(end) {
			return
		}
		select {
		case <-n.stopping:
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
	ctx, cancel := context.WithDeadline(context.Background(), end)
	defer cancel()
	go func() {
		select {
		case <-n.stopping:
			cancel()
		case <-ctx.Done():
		}
	}()
	n.cli.Revoke(ctx, n.lease)
}

func (n *Node) inUse() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	total := 0
	for _, p := range n.pools {
		p.mu.Lock()
		total += p.inUse
		p.mu.Unlock()
	}
	return total
}

// Close fences the node (closing Fenced), stops its goroutines and revokes
// its lease, which deletes all its slots and wanted keys in one request.
// Holders still running lose their slots: drain before closing.
func (n *Node) Close() error {
	if !n.closed.CompareAndSwap(false, true) {
		return nil
	}
	n.fence(ErrClosed)
	close(n.stopping)
	n.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err := n.cli.Revoke(ctx, n.lease)
	if errors.Is(err, rpctypes.ErrLeaseNotFound) || n.Err() != ErrClosed {
		// Gone already, or fenced before: then the lease expires anyway.
		err = nil
	}
	return err
}

// Stats returns the node's counters.
func (n *Node) Stats() Stats {
	s := Stats{
		Slow:       n.slow.Load(),
		Throttles:  n.throttles.Load(),
		Ops:        n.ops.Load(),
		KeepAlives: n.keepAlives.Load(),
		Claimed:    n.claimed.Load(),
		Returned:   n.returned.Load(),
	}
	n.mu.Lock()
	for _, p := range n.pools {
		p.mu.Lock()
		s.Fast += p.fast
		p.mu.Unlock()
	}
	n.mu.Unlock()
	return s
}

// Pool returns the pool name, opening it with limit on first use (one
// etcd read, then a watch); on later calls limit is applied as by SetLimit.
func (n *Node) Pool(ctx context.Context, name string, limit int) (*Pool, error) {
	if limit < 0 || limit > maxLimit {
		return nil, fmt.Errorf("slots: limit %d out of range 0..%d", limit, maxLimit)
	}
	n.mu.Lock()
	p, ok := n.pools[name]
	n.mu.Unlock()
	if ok {
		p.SetLimit(limit)
		return p, nil
	}
	if !n.liveNow() {
		return nil, n.Err()
	}
	p = newPool(n, name, limit)
	rev, err := p.resync(ctx)
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	if q, ok := n.pools[name]; ok {
		n.mu.Unlock()
		q.SetLimit(limit)
		return q, nil
	}
	n.pools[name] = p
	n.mu.Unlock()
	n.wg.Add(2)
	go p.watch(rev)
	go p.work()
	// Fenced meanwhile: fence saw the map without p.
	if !n.live() {
		p.kill()
	}
	return p, nil
}

func (n *Node) poolBase(name string) string {
	return n.prefix + "/" + url.PathEscape(name) + "/"
}
