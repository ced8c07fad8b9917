package slots

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

const pool = "acct/123456789012/fn/my-function"

var prefixes atomic.Int64

// uniquePrefix keeps the tests apart in the shared etcd.
func uniquePrefix() string {
	return fmt.Sprintf("/test-%d-%d", os.Getpid(), prefixes.Add(1))
}

// checkNoLeak makes the test fail if a goroutine of the package's nodes
// outlives the test's cleanups (registered first, so it runs last).
func checkNoLeak(t *testing.T) {
	t.Cleanup(func() {
		deadline := time.Now().Add(3 * time.Second)
		for {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			if !bytes.Contains(buf, []byte("slots.(*Node).")) && !bytes.Contains(buf, []byte("slots.(*Pool).")) {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("goroutines of the package left after Close:\n%s", buf)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

func newNode(t testing.TB, endpoint, prefix, id string, ttl time.Duration) *Node {
	t.Helper()
	cli := newClient(t, endpoint)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n, err := New(ctx, Config{Client: cli, NodeID: id, Prefix: prefix, TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func openPool(t testing.TB, n *Node, limit int) *Pool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p, err := n.Pool(ctx, pool, limit)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// slotKeys reads the pool's slot keys from etcd: index → lease.
func slotKeys(t testing.TB, cli *clientv3.Client, prefix string) map[int]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	base := prefix + "/" + strings.ReplaceAll(pool, "/", "%2F") + "/s/"
	resp, err := cli.Get(ctx, base, clientv3.WithPrefix())
	if err != nil {
		t.Errorf("read slots: %v", err)
		return nil
	}
	m := map[int]int64{}
	for _, kv := range resp.Kvs {
		i, err := strconv.Atoi(strings.TrimPrefix(string(kv.Key), base))
		if err != nil {
			t.Errorf("slot key %q", kv.Key)
		}
		m[i] = kv.Lease
	}
	return m
}

// gauge counts holders at once and keeps the most seen.
type gauge struct{ cur, max atomic.Int64 }

func (g *gauge) enter() {
	c := g.cur.Add(1)
	for {
		m := g.max.Load()
		if c <= m || g.max.CompareAndSwap(m, c) {
			return
		}
	}
}

func (g *gauge) leave() { g.cur.Add(-1) }

// watchCount follows the pool's slot keys in etcd through a watch, from
// the current revision until stop, and keeps the most keys present after
// any revision: the invariant checked exactly on etcd's side. The func it
// returns waits for the end and gives that count and the revisions at
// which each lease first created a slot and last lost one.
func watchCount(t *testing.T, cli *clientv3.Client, prefix string, stop <-chan struct{}) func() (most int, first, last map[int64]int64) {
	base := prefix + "/" + strings.ReplaceAll(pool, "/", "%2F") + "/s/"
	ctx, cancel := context.WithCancel(context.Background())
	resp, err := cli.Get(ctx, base, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	present := map[string]int64{}
	for _, kv := range resp.Kvs {
		present[string(kv.Key)] = kv.Lease
	}
	most := len(present)
	first, last := map[int64]int64{}, map[int64]int64{}
	wch := cli.Watch(ctx, base, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1), clientv3.WithPrevKV())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case wr, ok := <-wch:
				if !ok || wr.Err() != nil {
					t.Errorf("watch of the slots broke: %v", wr.Err())
					return
				}
				// Events of one revision (one transaction) apply together.
				for _, ev := range wr.Events {
					k := string(ev.Kv.Key)
					if ev.Type == clientv3.EventTypePut {
						present[k] = ev.Kv.Lease
						if _, ok := first[ev.Kv.Lease]; !ok {
							first[ev.Kv.Lease] = ev.Kv.ModRevision
						}
					} else {
						if ev.PrevKv != nil {
							last[ev.PrevKv.Lease] = ev.Kv.ModRevision
						}
						delete(present, k)
					}
				}
				most = max(most, len(present))
			}
		}
	}()
	return func() (int, map[int64]int64, map[int64]int64) {
		<-done
		cancel()
		return most, first, last
	}
}

// TestLimitHeldAcrossNodes: three nodes hammer one pool of limit R; the
// holders at once never pass R, nor the slot keys in etcd; then, with
// idle slots held by two nodes, R acquisitions arriving at the third all
// succeed within the bounded wait.
func TestLimitHeldAcrossNodes(t *testing.T) {
	checkNoLeak(t)
	ep := needEtcd(t)
	for _, R := range []int{1, 3, 10} {
		t.Run("R="+strconv.Itoa(R), func(t *testing.T) {
			prefix := uniquePrefix()
			var nodes []*Node
			var pools []*Pool
			for i := range 3 {
				n := newNode(t, ep, prefix, "node"+strconv.Itoa(i), 5*time.Second)
				nodes = append(nodes, n)
				pools = append(pools, openPool(t, n, R))
			}
			reader := newClient(t, ep)
			stop := make(chan struct{})
			mostKeys := watchCount(t, reader, prefix, stop)

			var g gauge
			var granted, throttled atomic.Int64
			var wg sync.WaitGroup
			end := time.Now().Add(1500 * time.Millisecond)
			for _, p := range pools {
				for range R + 2 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := 0; i < 100000 && time.Now().Before(end); i++ {
							rel, ok := p.Acquire(context.Background())
							if !ok {
								throttled.Add(1)
								continue
							}
							g.enter()
							granted.Add(1)
							time.Sleep(time.Duration(rand.IntN(500)) * time.Microsecond)
							g.leave()
							rel()
						}
					}()
				}
			}
			wg.Wait()
			close(stop)
			if m := g.max.Load(); m > int64(R) {
				t.Errorf("%d holders at once, limit %d", m, R)
			}
			if m, _, _ := mostKeys(); m > R {
				t.Errorf("etcd held %d slot keys at once, limit %d", m, R)
			}
			if granted.Load() == 0 {
				t.Fatalf("nothing granted")
			}
			if g.max.Load() < int64(R) {
				t.Errorf("the storm never reached the limit: at most %d of %d", g.max.Load(), R)
			}
			t.Logf("storm: %d granted, %d throttled, at most %d at once", granted.Load(), throttled.Load(), g.max.Load())

			// Load at one node only, while the others hold idle slots.
			for _, p := range pools[1:] {
				var rels []func()
				for range (R + 1) / 2 {
					if r, ok := p.Acquire(context.Background()); ok {
						rels = append(rels, r)
					}
				}
				for _, r := range rels {
					r()
				}
			}
			h1, _ := pools[1].Local()
			h2, _ := pools[2].Local()
			t.Logf("idle slots held elsewhere before the load: %d and %d", h1, h2)
			var rels = make([]func(), R)
			var took = make([]time.Duration, R)
			var failed atomic.Int64
			for i := range R {
				wg.Add(1)
				go func() {
					defer wg.Done()
					start := time.Now()
					r, ok := pools[0].Acquire(context.Background())
					took[i] = time.Since(start)
					if !ok {
						failed.Add(1)
						return
					}
					rels[i] = r
				}()
			}
			wg.Wait()
			if f := failed.Load(); f > 0 {
				t.Errorf("%d of %d acquisitions at one node throttled (took %v) while the cluster held fewer than %d busy", f, R, took, R)
			}
			slowest := time.Duration(0)
			for _, d := range took {
				slowest = max(slowest, d)
			}
			t.Logf("R acquisitions at one node: slowest %v", slowest)
			if _, ok := pools[1].Acquire(context.Background()); ok {
				t.Errorf("a slot past the limit granted at another node")
			}
			for _, r := range rels {
				if r != nil {
					r()
				}
			}
			for i, n := range nodes {
				s := n.Stats()
				t.Logf("node%d: %+v", i, s)
			}
		})
	}
}

// TestSteadyLoadStaysLocal: at steady load on one node, at least 99 % of
// acquisitions do not call etcd and etcd operations per acquisition stay
// under 0.05.
func TestSteadyLoadStaysLocal(t *testing.T) {
	checkNoLeak(t)
	ep := needEtcd(t)
	n := newNode(t, ep, uniquePrefix(), "node0", 5*time.Second)
	p := openPool(t, n, 10)
	// Warm up, then measure.
	run := func(d time.Duration) {
		var wg sync.WaitGroup
		end := time.Now().Add(d)
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 1000000 && time.Now().Before(end); i++ {
					if r, ok := p.Acquire(context.Background()); ok {
						time.Sleep(50 * time.Microsecond)
						r()
					}
				}
			}()
		}
		wg.Wait()
	}
	run(200 * time.Millisecond)
	before := n.Stats()
	run(time.Second)
	after := n.Stats()
	fast, slow := after.Fast-before.Fast, after.Slow-before.Slow
	ops := after.Ops - before.Ops
	acq := fast + slow
	t.Logf("%d acquisitions, %d fast, %d slow, %d etcd ops (%.4f per acquisition)", acq, fast, slow, ops, float64(ops)/float64(acq))
	if acq == 0 || float64(fast) < 0.99*float64(acq) {
		t.Errorf("fast path %d of %d acquisitions, want ≥ 99 %%", fast, acq)
	}
	if float64(ops) > 0.05*float64(acq) {
		t.Errorf("%d etcd ops for %d acquisitions, want ≤ 0.05 per acquisition", ops, acq)
	}
}

const childEnv = "LAMBDAD_SLOTS_CHILD"

// childMain is a node in a child process (the test binary run again): it
// takes every slot of the pool, says so on stdout, and waits to be killed.
func childMain() int {
	f := strings.Split(os.Getenv(childEnv), "|")
	limit, _ := strconv.Atoi(f[2])
	ttl, _ := time.ParseDuration(f[3])
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{f[0]}, DialTimeout: 2 * time.Second})
	if err != nil {
		fmt.Println("ERR", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n, err := New(ctx, Config{Client: cli, NodeID: "child", Prefix: f[1], TTL: ttl})
	if err != nil {
		fmt.Println("ERR", err)
		return 1
	}
	p, err := n.Pool(ctx, pool, limit)
	if err != nil {
		fmt.Println("ERR", err)
		return 1
	}
	held := 0
	for i := 0; i < 100 && held < limit; i++ {
		if _, ok := p.Acquire(ctx); ok {
			held++
		}
	}
	fmt.Printf("HELD %d %d\n", held, n.Lease())
	time.Sleep(60 * time.Second) // killed long before
	return 0
}

// TestCrashedNodeSlotsReturn: a node in another process takes every slot
// and is killed with SIGKILL; its slots return when its lease expires, and
// another node then gets them all.
func TestCrashedNodeSlotsReturn(t *testing.T) {
	checkNoLeak(t)
	ep := needEtcd(t)
	prefix := uniquePrefix()
	const R = 3
	const ttl = 2 * time.Second
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+strings.Join([]string{ep, prefix, strconv.Itoa(R), ttl.String()}, "|"))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		lines <- line
	}()
	var line string
	select {
	case line = <-lines:
	case <-time.After(15 * time.Second):
		t.Fatal("the child node did not report within 15 s")
	}
	var held int
	var lease int64
	if _, err := fmt.Sscanf(line, "HELD %d %d", &held, &lease); err != nil || held != R {
		t.Fatalf("child: %q", line)
	}
	reader := newClient(t, ep)
	keys := slotKeys(t, reader, prefix)
	if len(keys) != R {
		t.Fatalf("etcd holds %d slot keys, want %d: %v", len(keys), R, keys)
	}
	for i, l := range keys {
		if l != lease {
			t.Errorf("slot %d on lease %x, not the child's %x", i, l, lease)
		}
	}
	n := newNode(t, ep, prefix, "survivor", ttl)
	p := openPool(t, n, R)
	if _, ok := p.Acquire(context.Background()); ok {
		t.Fatal("a slot granted while the child holds all")
	}

	killed := time.Now()
	cmd.Process.Signal(os.Kill)
	var back time.Duration
	for {
		if len(slotKeys(t, reader, prefix)) == 0 {
			back = time.Since(killed)
			break
		}
		if time.Since(killed) > ttl+5*time.Second {
			t.Fatalf("the killed node's slots still held %v after the kill (TTL %v)", time.Since(killed), ttl)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("slots returned %v after kill -9 (TTL %v)", back, ttl)
	// The lease was renewed at most a keep-alive interval (TTL/5) before
	// the kill; etcd checks expiry every 500 ms.
	if back < ttl-ttl/5-100*time.Millisecond || back > ttl+1500*time.Millisecond {
		t.Errorf("slots returned %v after the kill, want about the TTL %v", back, ttl)
	}
	var rels []func()
	deadline := time.Now().Add(3 * time.Second)
	for len(rels) < R && time.Now().Before(deadline) {
		if r, ok := p.Acquire(context.Background()); ok {
			rels = append(rels, r)
		}
	}
	if len(rels) != R {
		t.Errorf("the survivor got %d of %d slots", len(rels), R)
	}
	for _, r := range rels {
		r()
	}
}

// TestPartitionedNodeFences: a node holding every slot loses etcd (a proxy
// drops all its traffic); it fences before its lease can expire, and the
// other nodes get the slots only after the lease has expired.
func TestPartitionedNodeFences(t *testing.T) {
	checkNoLeak(t)
	ep := needEtcd(t)
	prefix := uniquePrefix()
	const R = 3
	const ttl = 3 * time.Second
	px := newProxy(t, strings.TrimPrefix(ep, "http://"))
	a := newNode(t, px.endpoint(), prefix, "a", ttl)
	pa := openPool(t, a, R)
	b := newNode(t, ep, prefix, "b", ttl)
	c := newNode(t, ep, prefix, "c", ttl)
	others := []*Pool{openPool(t, b, R), openPool(t, c, R)}
	reader := newClient(t, ep)

	var g gauge
	var wg sync.WaitGroup
	stopA := make(chan struct{})
	for range R {
		r, ok := pa.Acquire(context.Background())
		if !ok {
			t.Fatal("node a could not take the slots")
		}
		g.enter()
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A holder stops when its node fences (the server kills the
			// invocation); it counts as stopped from then on.
			select {
			case <-a.Fenced():
			case <-stopA:
			}
			g.leave()
			r()
		}()
	}
	if len(slotKeys(t, reader, prefix)) != R {
		t.Fatal("slots not in etcd")
	}

	// Once a's lease is gone, the gauge must not pass R: b and c's
	// holders enter it as they get slots.
	stop := make(chan struct{})
	mostKeys := watchCount(t, reader, prefix, stop)
	var firstOther atomic.Int64 // unix nanos of the first grant at b or c
	end := time.Now().Add(ttl + 5*time.Second)
	for _, p := range others {
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 100000 && time.Now().Before(end); i++ {
					select {
					case <-stop:
						return
					default:
					}
					r, ok := p.Acquire(context.Background())
					if !ok {
						continue
					}
					firstOther.CompareAndSwap(0, time.Now().UnixNano())
					g.enter()
					time.Sleep(time.Millisecond)
					g.leave()
					r()
				}
			}()
		}
	}
	time.Sleep(300 * time.Millisecond)
	if firstOther.Load() != 0 {
		t.Fatal("another node got a slot while node a held all")
	}

	cut := time.Now()
	deadline := a.FenceDeadline()
	px.Cut()
	var fencedAfter time.Duration
	select {
	case <-a.Fenced():
		fencedAfter = time.Since(cut)
	case <-time.After(ttl + 2*time.Second):
		t.Fatal("node a did not fence")
	}
	if _, ok := pa.TryAcquire(); ok {
		t.Error("a fenced node admitted")
	}
	if _, ok := pa.Acquire(context.Background()); ok {
		t.Error("a fenced node admitted through etcd")
	}
	t.Logf("fenced %v after the cut (TTL %v, margin %v, fence deadline was %v after the cut), err %v",
		fencedAfter, a.TTL(), a.Margin(), deadline.Sub(cut), a.Err())
	// The fence is due at most TTL − margin after the cut (the last
	// keep-alive went out before it); half the margin is left for the
	// watchdog to be scheduled on a loaded machine.
	if fencedAfter >= ttl-a.Margin()/2 {
		t.Errorf("fenced %v after the cut, want before TTL − margin = %v (TTL %v)", fencedAfter, ttl-a.Margin(), ttl)
	}

	// The lease expires on the server: a's keys go.
	var expiredAfter time.Duration
	for {
		keys := slotKeys(t, reader, prefix)
		aHolds := 0
		for _, l := range keys {
			if clientv3.LeaseID(l) == a.Lease() {
				aHolds++
			}
		}
		if aHolds == 0 {
			expiredAfter = time.Since(cut)
			break
		}
		if time.Since(cut) > ttl+3*time.Second {
			t.Fatalf("node a's slots still in etcd %v after the cut", time.Since(cut))
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("a's lease expired %v after the cut, %v after the fence", expiredAfter, expiredAfter-fencedAfter)
	if expiredAfter <= fencedAfter {
		t.Errorf("lease expired (%v) before the node fenced (%v)", expiredAfter, fencedAfter)
	}
	for time.Now().Before(end) && firstOther.Load() == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	close(stopA)
	wg.Wait()
	got := firstOther.Load()
	if got == 0 {
		t.Fatal("the other nodes never got the slots")
	}
	otherAfter := time.Unix(0, got).Sub(cut)
	t.Logf("first grant at another node %v after the cut", otherAfter)
	if otherAfter < fencedAfter {
		t.Errorf("another node got a slot (%v) before a fenced (%v)", otherAfter, fencedAfter)
	}
	if m := g.max.Load(); m > R {
		t.Errorf("%d holders at once, limit %d", m, R)
	}
	m, first, last := mostKeys()
	if m > R {
		t.Errorf("etcd held %d slot keys at once, limit %d", m, R)
	}
	// In etcd's own order: b and c created their first slots after a's
	// lease lost its last.
	lost := last[int64(a.Lease())]
	if lost == 0 {
		t.Fatal("the watch saw no slot of a's go")
	}
	for _, n := range []*Node{b, c} {
		if r, ok := first[int64(n.Lease())]; ok && r < lost {
			t.Errorf("node %x took a slot at revision %d, before a's lease expired at %d", n.Lease(), r, lost)
		}
	}
}

// TestLowerLimitWhileHeld: the limit lowered from 6 to 3 under 6 busy
// slots grants nothing until the busy count falls under 3, then grants up
// to 3 again.
func TestLowerLimitWhileHeld(t *testing.T) {
	checkNoLeak(t)
	ep := needEtcd(t)
	prefix := uniquePrefix()
	a := newNode(t, ep, prefix, "a", 5*time.Second)
	b := newNode(t, ep, prefix, "b", 5*time.Second)
	pa, pb := openPool(t, a, 6), openPool(t, b, 6)
	reader := newClient(t, ep)
	var relA, relB []func()
	for range 3 {
		r, ok := pa.Acquire(context.Background())
		if !ok {
			t.Fatal("a: no slot")
		}
		relA = append(relA, r)
		r, ok = pb.Acquire(context.Background())
		if !ok {
			t.Fatal("b: no slot")
		}
		relB = append(relB, r)
	}
	pa.SetLimit(3)
	pb.SetLimit(3)
	refused := func(when string) {
		t.Helper()
		for _, p := range []*Pool{pa, pb} {
			if r, ok := p.TryAcquire(); ok {
				r()
				t.Errorf("%s: granted locally", when)
			}
			if r, ok := p.Acquire(context.Background()); ok {
				r()
				t.Errorf("%s: granted", when)
			}
		}
	}
	refused("6 busy, limit 3")
	relA[0]()
	relA[1]()
	relB[0]()
	time.Sleep(300 * time.Millisecond) // let idle slots go back and busy ones move
	refused("3 busy, limit 3")
	keys := slotKeys(t, reader, prefix)
	for i := range keys {
		if i >= 3 {
			t.Errorf("slot %d still held with 3 busy under limit 3: %v", i, keys)
		}
	}
	if len(keys) > 3 {
		t.Errorf("%d slot keys with 3 busy under limit 3", len(keys))
	}
	relB[1]() // 2 busy: one grant, not two
	var got func()
	deadline := time.Now().Add(2 * time.Second)
	for got == nil && time.Now().Before(deadline) {
		if r, ok := pb.Acquire(context.Background()); ok {
			got = r
		}
	}
	if got == nil {
		t.Fatal("no grant with 2 busy under limit 3")
	}
	refused("3 busy again, limit 3")
	if k := len(slotKeys(t, reader, prefix)); k > 3 {
		t.Errorf("%d slot keys under limit 3", k)
	}
	got()
	relA[2]()
	relB[2]()
}

// TestCloseReturnsSlots: Close closes Fenced and deletes the node's keys.
func TestCloseReturnsSlots(t *testing.T) {
	checkNoLeak(t)
	ep := needEtcd(t)
	prefix := uniquePrefix()
	n := newNode(t, ep, prefix, "a", 5*time.Second)
	p := openPool(t, n, 4)
	r, ok := p.Acquire(context.Background())
	if !ok {
		t.Fatal("no slot")
	}
	r()
	reader := newClient(t, ep)
	if len(slotKeys(t, reader, prefix)) == 0 {
		t.Fatal("no slot key in etcd")
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-n.Fenced():
	default:
		t.Error("Fenced not closed by Close")
	}
	if n.Err() != ErrClosed {
		t.Errorf("Err %v", n.Err())
	}
	if k := slotKeys(t, reader, prefix); len(k) != 0 {
		t.Errorf("slot keys left after Close: %v", k)
	}
	if _, ok := p.TryAcquire(); ok {
		t.Error("a closed node admitted")
	}
}

// BenchmarkTryAcquireRelease is the hot path at steady state against real
// etcd: one node, parallel callers, a pool larger than they need.
func BenchmarkTryAcquireRelease(b *testing.B) {
	ep := needEtcd(b)
	n := newNode(b, ep, uniquePrefix(), "bench", 10*time.Second)
	p := openPool(b, n, 64)
	// Warm the batch.
	for range 8 {
		if r, ok := p.Acquire(context.Background()); ok {
			r()
		}
	}
	before := n.Stats()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r, ok := p.TryAcquire()
			if !ok {
				r, ok = p.Acquire(context.Background())
			}
			if ok {
				r()
			}
		}
	})
	b.StopTimer()
	after := n.Stats()
	acq := float64(after.Fast - before.Fast + after.Slow - before.Slow)
	if acq > 0 {
		b.ReportMetric(float64(after.Ops-before.Ops)/acq, "etcd-ops/acq")
		b.ReportMetric(float64(after.Fast-before.Fast)/acq, "fast/acq")
	}
}

// BenchmarkAcquireThreeNodes spreads acquisitions over three nodes sharing
// a pool of limit 10 (a reservation split across a cluster), each caller
// holding its slot for a few microseconds: the cost and the etcd traffic
// when the batches of several nodes compete.
func BenchmarkAcquireThreeNodes(b *testing.B) {
	ep := needEtcd(b)
	prefix := uniquePrefix()
	var pools []*Pool
	var nodes []*Node
	for i := range 3 {
		n := newNode(b, ep, prefix, "bench"+strconv.Itoa(i), 10*time.Second)
		nodes = append(nodes, n)
		pools = append(pools, openPool(b, n, 10))
	}
	stats := func() (acq, ops, throttles uint64) {
		for _, n := range nodes {
			s := n.Stats()
			acq += s.Fast + s.Slow
			ops += s.Ops
			throttles += s.Throttles
		}
		return
	}
	var next atomic.Int64
	a0, o0, t0 := stats()
	b.ResetTimer()
	b.SetParallelism(2) // a few callers per core, fewer than the limit
	b.RunParallel(func(pb *testing.PB) {
		p := pools[next.Add(1)%3]
		for pb.Next() {
			if r, ok := p.Acquire(context.Background()); ok {
				r()
			}
		}
	})
	b.StopTimer()
	a1, o1, t1 := stats()
	if a1 > a0 {
		b.ReportMetric(float64(o1-o0)/float64(a1-a0), "etcd-ops/acq")
	}
	b.ReportMetric(float64(t1-t0)/float64(b.N), "throttles/op")
}
