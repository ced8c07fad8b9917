package slots

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// maxLimit is the largest limit: indices are zero-padded to six digits so
// that key order is index order, which the range comparison over the
// indices at and above the limit relies on.
const maxLimit = 999999

// opTimeout bounds one etcd request of a pool.
const opTimeout = 2 * time.Second

// entry is the pool's view of one index: present or deleted, as of rev.
// Revisions let results of the node's own transactions, which may arrive
// before the watch delivers older events, never be undone by those.
type entry struct {
	rev     int64
	present bool
	lease   int64
}

// Pool is a cluster-wide counting semaphore. Methods are safe for
// concurrent use.
type Pool struct {
	n    *Node
	name string
	base string // <prefix>/<escaped name>/
	kick chan struct{}

	// wantMu serializes writes of the node's wanted key.
	wantMu      sync.Mutex
	wantWritten bool

	mu      sync.Mutex
	limit   int
	dead    bool
	held    map[int]bool // indices this node holds in etcd
	pending map[int]bool // indices being claimed
	moving  map[int]bool // held indices being moved below the limit
	inUse   int
	// returning counts held slots set aside for etcd: released while
	// other nodes wait and this one holds more than its share.
	returning int
	view      map[int]entry
	high      int             // present indices ≥ limit in the view, or held
	wanted    map[string]bool // other nodes' wanted keys
	waiters   int
	changed   chan struct{} // closed and replaced on change while waiters > 0
	minFree   int           // least free count in the current idle window
	active    bool          // a slot was handed out in the current window
	fast      uint64
}

func newPool(n *Node, name string, limit int) *Pool {
	return &Pool{
		n:       n,
		name:    name,
		base:    n.poolBase(name),
		kick:    make(chan struct{}, 1),
		limit:   limit,
		held:    map[int]bool{},
		pending: map[int]bool{},
		moving:  map[int]bool{},
		view:    map[int]entry{},
		wanted:  map[string]bool{},
		changed: make(chan struct{}),
	}
}

// Name is the pool's name.
func (p *Pool) Name() string { return p.name }

func (p *Pool) slotKey(i int) string { return fmt.Sprintf("%ss/%06d", p.base, i) }
func (p *Pool) slotsEnd() string     { return clientv3.GetPrefixRangeEnd(p.base + "s/") }
func (p *Pool) wantKey() string      { return p.base + "w/" + p.n.id }

// TryAcquire takes a slot from the node's batch without calling etcd. It
// returns false when none is free, the limit was lowered under the slots
// held, or the node is fenced; callers then use Acquire. release gives the
// slot back to the batch; calling it more than once is harmless.
func (p *Pool) TryAcquire() (release func(), ok bool) {
	if !p.Take() {
		return nil, false
	}
	return p.releaser(), true
}

// spare is how many free slots the batch keeps while in use; called with
// mu held.
func (p *Pool) spare() int { return 1 + p.inUse/8 }

func (p *Pool) poke() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

func (p *Pool) releaser() func() {
	var done atomic.Bool
	return func() {
		if done.CompareAndSwap(false, true) {
			p.Release()
		}
	}
}

// Take is TryAcquire for callers that keep track of their own slots: it
// allocates nothing, and the caller calls Release exactly once for each
// Take that returned true.
func (p *Pool) Take() bool {
	if !p.n.live() {
		return false
	}
	p.mu.Lock()
	free := len(p.held) - p.inUse - p.returning
	if p.dead || p.high > 0 || free <= 0 {
		refill := !p.dead && len(p.wanted) == 0
		p.mu.Unlock()
		if refill {
			p.poke()
		}
		return false
	}
	p.inUse++
	p.fast++
	free--
	p.active = true
	p.minFree = min(p.minFree, free)
	low := free < p.spare()
	p.mu.Unlock()
	if low {
		p.poke()
	}
	return true
}

// Release gives back a slot Take took; call it once per such slot.
func (p *Pool) Release() {
	p.mu.Lock()
	p.inUse--
	// While other nodes wait, a node over its share (the limit split
	// between it and them, rounded up) gives the slot back rather than
	// reuse it: otherwise callers that come back at once would keep
	// every slot here and the others would throttle. Rounded up, so
	// that a limit smaller than the nodes contending does not bounce
	// its slots through etcd on every release (measured: 8x fewer
	// grants at limit 1).
	if w := len(p.wanted); w > 0 && len(p.held)-p.returning > (p.limit+w)/(w+1) {
		p.returning++
	}
	// Slots over the limit, or wanted elsewhere, go back at once.
	back := !p.dead && (p.high > 0 || len(p.wanted) > 0)
	p.notifyLocked()
	p.mu.Unlock()
	if back {
		p.poke()
	}
}

// notifyLocked wakes waiting Acquire calls; only when there are some, so
// that the hot path allocates no channel.
func (p *Pool) notifyLocked() {
	if p.waiters > 0 {
		close(p.changed)
		p.changed = make(chan struct{})
	}
}

// Acquire is TryAcquire with the synchronous fallback: it claims a free
// index in etcd or, when other nodes hold every slot, signals demand with
// its wanted key and waits up to MaxWait (or ctx) for one to be returned.
// ok is false (a throttle) when no slot came within that time or the node
// is fenced.
func (p *Pool) Acquire(ctx context.Context) (release func(), ok bool) {
	if r, ok := p.TryAcquire(); ok {
		return r, true
	}
	ctx, cancel := context.WithTimeout(ctx, p.n.maxWait)
	defer cancel()
	p.mu.Lock()
	p.waiters++
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.waiters--
		last := p.waiters == 0
		p.mu.Unlock()
		if last {
			p.poke() // the worker deletes the wanted key
		}
		if !ok {
			p.n.throttles.Add(1)
		}
	}()
	for {
		if !p.n.liveNow() {
			return nil, false
		}
		if r, ok := p.TryAcquire(); ok {
			return r, true
		}
		p.mu.Lock()
		if p.dead {
			p.mu.Unlock()
			return nil, false
		}
		if len(p.held) >= p.limit && p.inUse >= len(p.held) && p.high == 0 {
			// Every slot is busy here: no other node can return one, so
			// waiting would only delay the throttle.
			p.mu.Unlock()
			return nil, false
		}
		idx := -1
		if p.high == 0 {
			idx = p.pickFreeLocked()
		}
		if idx >= 0 {
			p.pending[idx] = true
		}
		changed := p.changed
		p.mu.Unlock()
		if idx >= 0 {
			// The claim runs to its answer even past MaxWait: cut short, its
			// outcome would be unknown and the slot possibly stranded.
			if p.claim(p.n.ctx, []int{idx}, true) == 1 {
				p.n.slow.Add(1)
				p.poke() // refill the batch behind this caller
				return p.releaser(), true
			}
			if ctx.Err() != nil {
				return nil, false
			}
			continue
		}
		p.ensureWanted()
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, false
		case <-p.n.fenced:
			return nil, false
		}
	}
}

// pickFreeLocked returns a random index below the limit that the view
// shows free and no claim of this node is on, or -1. Random, so that nodes
// claiming at once rarely collide.
func (p *Pool) pickFreeLocked() int {
	var free []int
	for i := range p.limit {
		if !p.view[i].present && !p.held[i] && !p.pending[i] {
			free = append(free, i)
		}
	}
	if len(free) == 0 {
		return -1
	}
	return free[rand.IntN(len(free))]
}

// claim creates the slot keys idxs (marked pending by the caller) in one
// transaction that also requires no key at or above the limit. For a
// waiter (take) the single slot is handed to the caller. It returns the
// number claimed: all or none.
func (p *Pool) claim(ctx context.Context, idxs []int, take bool) int {
	p.mu.Lock()
	limit := p.limit
	// The limit may have been lowered since the indices were picked: an
	// index at or above it would pass the range comparison (which looks
	// at the keys before the transaction) and make one slot too many.
	idxs = slices.DeleteFunc(slices.Clone(idxs), func(i int) bool {
		if i >= limit {
			delete(p.pending, i)
			return true
		}
		return false
	})
	p.mu.Unlock()
	if len(idxs) == 0 {
		return 0
	}
	cmps := []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(p.slotKey(limit)), "=", 0).WithRange(p.slotsEnd())}
	var puts, gets []clientv3.Op
	for _, i := range idxs {
		k := p.slotKey(i)
		cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(k), "=", 0))
		puts = append(puts, clientv3.OpPut(k, p.n.id, clientv3.WithLease(p.n.lease)))
		gets = append(gets, clientv3.OpGet(k))
	}
	gets = append(gets, clientv3.OpGet(p.slotKey(limit), clientv3.WithRange(p.slotsEnd()), clientv3.WithCountOnly()))
	octx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	p.n.ops.Add(1)
	resp, err := p.n.cli.Txn(octx).If(cmps...).Then(puts...).Else(gets...).Commit()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, i := range idxs {
		delete(p.pending, i)
	}
	if err != nil {
		// The outcome is unknown: if the watch has shown the keys as ours,
		// adopt them into the batch rather than leave them to the lease.
		for _, i := range idxs {
			p.adoptLocked(i)
		}
		return 0
	}
	rev := resp.Header.Revision
	if !resp.Succeeded {
		// Learn which indices were taken, so the next pick avoids them.
		for j, i := range idxs {
			kvs := resp.Responses[j].GetResponseRange().Kvs
			if len(kvs) > 0 {
				p.applyLocked(i, entry{rev: kvs[0].ModRevision, present: true, lease: kvs[0].Lease})
			}
		}
		if resp.Responses[len(idxs)].GetResponseRange().Count > 0 && p.limit == limit {
			p.high = max(p.high, 1) // the watch will tell which
		}
		return 0
	}
	p.n.claimed.Add(uint64(len(idxs)))
	for _, i := range idxs {
		p.applyLocked(i, entry{rev: rev, present: true, lease: int64(p.n.lease)})
	}
	if p.dead {
		// Fenced meanwhile: the keys go with the lease, hand out nothing.
		return 0
	}
	for _, i := range idxs {
		p.held[i] = true
	}
	if take {
		p.inUse++
	}
	p.recountLocked()
	p.notifyLocked()
	return len(idxs)
}

// ensureWanted writes the node's wanted key, telling other nodes to return
// idle slots.
func (p *Pool) ensureWanted() {
	p.wantMu.Lock()
	defer p.wantMu.Unlock()
	if p.wantWritten {
		return
	}
	octx, cancel := context.WithTimeout(p.n.ctx, opTimeout)
	defer cancel()
	p.n.ops.Add(1)
	if _, err := p.n.cli.Put(octx, p.wantKey(), p.n.id, clientv3.WithLease(p.n.lease)); err == nil {
		p.wantWritten = true
	}
}

// dropWanted deletes the wanted key once no Acquire waits.
func (p *Pool) dropWanted() {
	p.wantMu.Lock()
	defer p.wantMu.Unlock()
	p.mu.Lock()
	w := p.waiters
	p.mu.Unlock()
	if !p.wantWritten || w > 0 {
		return
	}
	ctx, cancel := context.WithTimeout(p.n.ctx, opTimeout)
	defer cancel()
	p.n.ops.Add(1)
	if _, err := p.n.cli.Delete(ctx, p.wantKey()); err == nil {
		p.wantWritten = false
	}
}

// SetLimit changes the limit. Lowered under the slots held, the pool
// grants nothing until the slots held cluster-wide fall to the new limit
// (see the package doc); idle slots at the old indices go back at once.
func (p *Pool) SetLimit(limit int) {
	limit = max(0, min(limit, maxLimit))
	p.mu.Lock()
	p.limit = limit
	p.recountLocked()
	p.notifyLocked()
	p.mu.Unlock()
	p.poke()
}

// Limit is the pool's limit.
func (p *Pool) Limit() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.limit
}

// Local returns how many slots this node holds in etcd for the pool and
// how many of them are handed out.
func (p *Pool) Local() (held, inUse int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.held), p.inUse
}

// kill ends the pool when the node fences: its slots are the lease's now.
func (p *Pool) kill() {
	p.mu.Lock()
	p.dead = true
	p.returning = 0
	clear(p.held)
	p.notifyLocked()
	p.mu.Unlock()
}

// recountLocked recomputes high: keys at or above the limit, in the view
// or held by this node (held ones before the watch shows them).
func (p *Pool) recountLocked() {
	h := 0
	for i, e := range p.view {
		if i >= p.limit && e.present {
			h++
		}
	}
	for i := range p.held {
		if i >= p.limit && !p.view[i].present {
			h++
		}
	}
	p.high = h
}

// adoptLocked takes into the batch index i if the view shows it attached to
// this node's lease while the node does not count it (a claim whose answer
// was lost).
func (p *Pool) adoptLocked(i int) {
	if e := p.view[i]; e.present && e.lease == int64(p.n.lease) && !p.held[i] && !p.pending[i] && !p.dead {
		p.held[i] = true
	}
}

// applyLocked records e for index i unless the view knows a later state.
func (p *Pool) applyLocked(i int, e entry) {
	if old, ok := p.view[i]; ok && old.rev > e.rev {
		return
	}
	p.view[i] = e
}

// resync reads the whole pool into the view; it returns the revision read.
func (p *Pool) resync(ctx context.Context) (int64, error) {
	octx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	p.n.ops.Add(1)
	resp, err := p.n.cli.Get(octx, p.base, clientv3.WithPrefix())
	if err != nil {
		return 0, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	rev := resp.Header.Revision
	seen := map[int]bool{}
	clear(p.wanted)
	for _, kv := range resp.Kvs {
		if i, ok := p.index(kv.Key); ok {
			seen[i] = true
			p.applyLocked(i, entry{rev: kv.ModRevision, present: true, lease: kv.Lease})
		} else if node, ok := p.wantedNode(kv.Key); ok && node != p.n.id {
			p.wanted[node] = true
		}
	}
	for i := range p.view {
		if !seen[i] {
			p.applyLocked(i, entry{rev: rev})
		}
	}
	p.recountLocked()
	p.notifyLocked()
	return rev, nil
}

func (p *Pool) index(key []byte) (int, bool) {
	s, ok := strings.CutPrefix(string(key), p.base+"s/")
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(s)
	return i, err == nil
}

func (p *Pool) wantedNode(key []byte) (string, bool) {
	return strings.CutPrefix(string(key), p.base+"w/")
}

// watch keeps the view current from rev+1 on, reading the pool again when
// the watch breaks (compaction, lost leader).
func (p *Pool) watch(rev int64) {
	defer p.n.wg.Done()
	ctx := clientv3.WithRequireLeader(p.n.ctx)
	for {
		wctx, wcancel := context.WithCancel(ctx)
		wch := p.n.cli.Watch(wctx, p.base, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
		for resp := range wch {
			if resp.Err() != nil {
				break
			}
			p.events(resp.Events)
			rev = resp.Header.Revision
		}
		wcancel() // a broken watch would otherwise stay open on the stream
		for {
			if p.n.ctx.Err() != nil {
				return
			}
			select {
			case <-p.n.ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			r, err := p.resync(p.n.ctx)
			if err == nil {
				rev = r
				break
			}
		}
	}
}

func (p *Pool) events(evs []*clientv3.Event) {
	p.mu.Lock()
	lost := false
	for _, ev := range evs {
		put := ev.Type == clientv3.EventTypePut
		if i, ok := p.index(ev.Kv.Key); ok {
			e := entry{rev: ev.Kv.ModRevision, present: put, lease: ev.Kv.Lease}
			old, known := p.view[i]
			newer := !known || old.rev < e.rev
			if !put && newer && p.held[i] && !p.moving[i] {
				// A slot of ours deleted by someone else: only the lease
				// expiring (or an operator) does that.
				lost = true
			}
			p.applyLocked(i, e)
			if put && newer {
				p.adoptLocked(i)
			}
		} else if node, ok := p.wantedNode(ev.Kv.Key); ok && node != p.n.id {
			if put {
				p.wanted[node] = true
			} else {
				delete(p.wanted, node)
			}
		}
	}
	p.recountLocked()
	p.notifyLocked()
	back := len(p.wanted) > 0 || p.high > 0
	p.mu.Unlock()
	if lost {
		p.n.fence(ErrLeaseLost)
		return
	}
	if back {
		p.poke()
	}
}

// work keeps the batch: refills it when poked, returns idle slots at the
// end of every idle window and at once when other nodes want them, and
// moves busy slots off indices above a lowered limit.
func (p *Pool) work() {
	defer p.n.wg.Done()
	// The idle window ticks only while the pool holds slots, so that
	// pools at rest cost no wake-ups.
	t := time.NewTimer(p.n.idleAfter)
	defer t.Stop()
	ticking := true
	for {
		window := false
		select {
		case <-p.n.ctx.Done():
			return
		case <-p.kick:
		case <-t.C:
			window = true
			ticking = false
		}
		p.reconcile(window)
		p.dropWanted()
		p.mu.Lock()
		holding := len(p.held) > 0
		p.mu.Unlock()
		if holding && !ticking {
			t.Reset(p.n.idleAfter)
			ticking = true
		}
	}
}

func (p *Pool) reconcile(window bool) {
	p.mu.Lock()
	if p.dead {
		p.mu.Unlock()
		return
	}
	free := len(p.held) - p.inUse
	others := len(p.wanted) > 0
	// How many free slots to give back.
	give := 0
	switch {
	case p.high > 0 || others:
		give = free
	case window && !p.active:
		give = free
	case window:
		give = min(free, p.minFree) - 2*p.spare()
	}
	give = max(0, min(max(give, p.returning), free))
	p.returning = max(0, p.returning-give)
	held := slices.Sorted(func(yield func(int) bool) {
		for i := range p.held {
			if !yield(i) {
				return
			}
		}
	})
	slices.Reverse(held) // highest first: high indices must go
	ret := held[:give]
	for _, i := range ret {
		delete(p.held, i)
	}
	held = held[give:]
	// Busy slots above the limit move to free low indices.
	var moves [][2]int
	for _, j := range held {
		if j < p.limit {
			break
		}
		i := p.pickFreeLocked()
		if i < 0 {
			break
		}
		p.pending[i] = true
		p.moving[j] = true
		moves = append(moves, [2]int{j, i})
	}
	// Refill: never while over the limit or wanted elsewhere.
	var claims []int
	free -= give + p.returning
	if p.high == 0 && !others && give == 0 && p.inUse > 0 && free < p.spare() {
		for range 2*p.spare() - free {
			i := p.pickFreeLocked()
			if i < 0 {
				break
			}
			p.pending[i] = true
			claims = append(claims, i)
		}
	}
	if window {
		p.minFree = len(p.held) - p.inUse - p.returning
		p.active = false
	}
	p.recountLocked()
	p.mu.Unlock()

	if len(ret) > 0 {
		p.giveBack(ret)
	}
	for _, m := range moves {
		p.move(m[0], m[1])
	}
	if len(claims) > 0 {
		p.claim(p.n.ctx, claims, false)
	}
}

// giveBack deletes slot keys the node holds, checking that each is still
// attached to its lease so that a late delete never takes another node's.
func (p *Pool) giveBack(idxs []int) {
	var cmps []clientv3.Cmp
	var dels []clientv3.Op
	for _, i := range idxs {
		k := p.slotKey(i)
		cmps = append(cmps, clientv3.Compare(clientv3.LeaseValue(k), "=", p.n.lease))
		dels = append(dels, clientv3.OpDelete(k))
	}
	ctx, cancel := context.WithTimeout(p.n.ctx, opTimeout)
	defer cancel()
	p.n.ops.Add(1)
	resp, err := p.n.cli.Txn(ctx).If(cmps...).Then(dels...).Commit()
	if err != nil {
		return // removed from held already; the lease holds them till fenced
	}
	if !resp.Succeeded {
		// A slot of ours is no longer ours: the lease is gone.
		p.n.fence(ErrLeaseLost)
		return
	}
	p.n.returned.Add(uint64(len(idxs)))
	p.mu.Lock()
	for _, i := range idxs {
		p.applyLocked(i, entry{rev: resp.Header.Revision})
	}
	p.recountLocked()
	p.notifyLocked()
	p.mu.Unlock()
}

// move replaces held slot j by the free index i in one transaction: the
// count is unchanged, the slot leaves the range above a lowered limit.
func (p *Pool) move(j, i int) {
	kj, ki := p.slotKey(j), p.slotKey(i)
	ctx, cancel := context.WithTimeout(p.n.ctx, opTimeout)
	defer cancel()
	p.n.ops.Add(1)
	resp, err := p.n.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.LeaseValue(kj), "=", p.n.lease), clientv3.Compare(clientv3.CreateRevision(ki), "=", 0)).
		Then(clientv3.OpDelete(kj), clientv3.OpPut(ki, p.n.id, clientv3.WithLease(p.n.lease))).
		Commit()
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.pending, i)
	delete(p.moving, j)
	if err != nil || !resp.Succeeded || p.dead || !p.held[j] {
		return // the watch corrects the view; the next round retries
	}
	rev := resp.Header.Revision
	delete(p.held, j)
	p.held[i] = true
	p.applyLocked(j, entry{rev: rev})
	p.applyLocked(i, entry{rev: rev, present: true, lease: int64(p.n.lease)})
	p.recountLocked()
	p.notifyLocked()
}
