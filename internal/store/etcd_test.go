package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lambdad/lambdad/internal/function"
	"github.com/lambdad/lambdad/internal/lambdatest"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// node opens the shared store at prefix on endpoint as one node, with a
// data directory of its own.
func node(t *testing.T, endpoint, prefix string) *DB {
	t.Helper()
	db, err := OpenEtcd(t.TempDir(), EtcdOptions{Endpoints: []string{endpoint}, Prefix: prefix, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// recorder is a subscriber that keeps what it was given.
type recorder struct {
	mu      sync.Mutex
	loaded  uint64
	batches []*Batch
	// arrived is signalled on every batch.
	arrived chan struct{}
}

func newRecorder() *recorder { return &recorder{arrived: make(chan struct{}, 1000)} }

func (r *recorder) Load(tx *Tx, rev uint64) error { r.loaded = rev; return nil }
func (r *recorder) Apply(b *Batch) {
	r.mu.Lock()
	r.batches = append(r.batches, b)
	r.mu.Unlock()
	r.arrived <- struct{}{}
}

func (r *recorder) revs() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []uint64
	for _, b := range r.batches {
		out = append(out, b.Rev)
	}
	return out
}

// TestSharedFeedReachesEveryNode: what one node writes reaches the
// subscribers of every node, once, in one revision order, the writer's own
// before its Update returns; and it comes through a watch, not a poll.
func TestSharedFeedReachesEveryNode(t *testing.T) {
	endpoint := lambdatest.Etcd(t)
	a, b := node(t, endpoint, "/feed/"), node(t, endpoint, "/feed/")
	ra, rb := newRecorder(), newRecorder()
	if err := a.Subscribe(ra); err != nil {
		t.Fatal(err)
	}
	if err := b.Subscribe(rb); err != nil {
		t.Fatal(err)
	}
	const n = 40
	var lag []time.Duration
	for i := range n {
		writer, other := a, rb
		if i%2 == 1 {
			writer, other = b, ra
		}
		start := time.Now()
		err := writer.Update(func(tx *Tx) error {
			return tx.In(testAccount).PutFunction(&function.Function{Name: fmt.Sprintf("f%d", i)})
		})
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-other.arrived:
		case <-time.After(5 * time.Second):
			t.Fatalf("write %d did not reach the other node in 5 s", i)
		}
		lag = append(lag, time.Since(start))
		// The writer's own subscriber had it before Update returned.
		own := ra
		if writer == b {
			own = rb
		}
		if got := own.revs(); len(got) != i+1 {
			t.Fatalf("after write %d the writer's node delivered %d batches", i, len(got))
		}
		<-own.arrived
	}
	for _, r := range []*recorder{ra, rb} {
		got := r.revs()
		for i, rev := range got {
			if rev != uint64(i+1) {
				t.Fatalf("revisions delivered %v, want 1..%d in order", got, n)
			}
		}
	}
	var worst time.Duration
	for _, l := range lag {
		worst = max(worst, l)
	}
	t.Logf("a write reached the other node within %v (worst of %d, write included)", worst, n)
}

// TestSharedCheckAndWriteAcrossNodes: writers on two nodes that each check
// a sum and write what it allows can never, together, pass the bound: the
// check and the write are one etcd transaction.
func TestSharedCheckAndWriteAcrossNodes(t *testing.T) {
	endpoint := lambdatest.Etcd(t)
	nodes := []*DB{node(t, endpoint, "/race/"), node(t, endpoint, "/race/")}
	const bound = 10
	var won atomic.Int64
	var wg sync.WaitGroup
	for i := range 24 {
		wg.Go(func() {
			db := nodes[i%2]
			r := 1
			var took bool
			err := db.Update(func(tx *Tx) error {
				tx = tx.In(testAccount)
				took = false
				s, err := tx.Sums()
				if err != nil {
					return err
				}
				if s.Reserved+1 > bound {
					return nil
				}
				took = true
				return tx.PutFunction(&function.Function{Name: fmt.Sprintf("f%d", i), Reserved: &r})
			})
			if err != nil {
				t.Error(err)
			}
			if took {
				won.Add(1)
			}
		})
	}
	wg.Wait()
	for _, db := range nodes {
		if s := sums(t, db); s.Reserved != bound || s.FunctionCount != bound {
			t.Errorf("sums %+v, want %d reserved over %d functions", s, bound, bound)
		}
	}
	if won.Load() != bound {
		t.Errorf("%d writers took a reservation, want %d", won.Load(), bound)
	}
}

// TestSharedCodeOutlivesItsNode: code uploaded through one node runs on
// another after the first is gone, and leaves etcd with its last
// reference.
func TestSharedCodeOutlivesItsNode(t *testing.T) {
	endpoint := lambdatest.Etcd(t)
	a, err := OpenEtcd(t.TempDir(), EtcdOptions{Endpoints: []string{endpoint}, Prefix: "/code/"})
	if err != nil {
		t.Fatal(err)
	}
	// Bigger than a chunk, so it takes several.
	noise := make([]byte, 3*codeChunk/2)
	rand.NewChaCha8([32]byte{1}).Read(noise)
	code := lambdatest.Zip(t, map[string]string{"bootstrap": "#!/bin/sh\n", "noise.bin": string(noise)})
	addFunction(t, a, "f", code, nil)
	a.Close()

	b := node(t, endpoint, "/code/")
	sha := shaOf(code)
	got, err := b.Code(sha)
	if err != nil || !bytes.Equal(got, code) {
		t.Fatalf("the code on another node: %d bytes, %v; want the %d uploaded", len(got), err, len(code))
	}
	dir, release, err := b.CodeDir(sha)
	if err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(filepath.Join(dir, "bootstrap")); err != nil || string(data) != "#!/bin/sh\n" {
		t.Errorf("the unpacked code: %q, %v", data, err)
	}
	release()

	if err := b.Update(func(tx *Tx) error { return tx.In(testAccount).DeleteFunction("f") }); err != nil {
		t.Fatal(err)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	r, err := cli.Get(context.Background(), "/code/code/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	if r.Count != 0 {
		t.Errorf("%d code keys left in etcd after the last reference went", r.Count)
	}
	if _, err := b.Code(sha); !errors.Is(err, ErrNotFound) {
		t.Errorf("code after the delete: %v, want ErrNotFound", err)
	}
}

// TestSharedFeedResumesAfterACut: a node cut off from etcd while another
// writes gets every batch it missed, in order, once the link is back.
func TestSharedFeedResumesAfterACut(t *testing.T) {
	endpoint := lambdatest.Etcd(t)
	proxy := lambdatest.NewProxy(t, endpoint[len("http://"):])
	a := node(t, endpoint, "/cut/")
	b, err := OpenEtcd(t.TempDir(), EtcdOptions{Endpoints: []string{"http://" + proxy.Addr()}, Prefix: "/cut/", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	rb := newRecorder()
	if err := b.Subscribe(rb); err != nil {
		t.Fatal(err)
	}
	write := func(name string) {
		t.Helper()
		if err := a.Update(func(tx *Tx) error { return tx.In(testAccount).PutFunction(&function.Function{Name: name}) }); err != nil {
			t.Fatal(err)
		}
	}
	write("before")
	<-rb.arrived
	proxy.Cut()
	for i := range 5 {
		write(fmt.Sprintf("during%d", i))
	}
	time.Sleep(200 * time.Millisecond)
	if got := len(rb.revs()); got != 1 {
		t.Fatalf("the cut-off node delivered %d batches, want 1", got)
	}
	proxy.Mend()
	deadline := time.After(30 * time.Second)
	for len(rb.revs()) < 6 {
		select {
		case <-rb.arrived:
		case <-deadline:
			t.Fatalf("after the link came back the node delivered %v, want revisions 1..6", rb.revs())
		}
	}
	for i, rev := range rb.revs() {
		if rev != uint64(i+1) {
			t.Fatalf("delivered %v, want 1..6 in order", rb.revs())
		}
	}
}
