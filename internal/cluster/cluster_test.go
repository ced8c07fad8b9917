package cluster_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lambdad/lambdad/internal/admission"
	"github.com/lambdad/lambdad/internal/cluster"
	"github.com/lambdad/lambdad/internal/function"
	"github.com/lambdad/lambdad/internal/lambdatest"
	"github.com/lambdad/lambdad/internal/slots"
	"github.com/lambdad/lambdad/internal/store"
)

// TestGateFencesAndComesBack: cut off from etcd, a node's gate admits
// nothing and asks, until they have ended, for what runs under its slots
// to end; once etcd is back it admits again, on a new session.
func TestGateFencesAndComesBack(t *testing.T) {
	endpoint := lambdatest.Etcd(t)
	proxy := lambdatest.NewProxy(t, strings.TrimPrefix(endpoint, "http://"))
	db, err := store.OpenEtcd(t.TempDir(), store.EtcdOptions{Endpoints: []string{"http://" + proxy.Addr()}, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Mend(); db.Close() })
	var running atomic.Pointer[admission.Slot]
	var fenceCalls atomic.Int64
	g, err := cluster.New(context.Background(), cluster.Options{
		Slots: slots.Config{Client: db.EtcdClient(), NodeID: "n", TTL: 3 * time.Second},
		Fence: func() {
			// What the server does: end what runs; here, the one slot.
			fenceCalls.Add(1)
			if s := running.Swap(nil); s != nil {
				s.Release()
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	a := admission.NewAccounts("123456789012", func(string) int { return 10 })
	a.SetGate(g)
	fn := function.Key{Account: "123456789012", Name: "f"}
	s, err := a.Acquire(fn, "$LATEST")
	if err != nil {
		t.Fatal(err)
	}
	running.Store(s)
	cut := time.Now()
	proxy.Cut()
	for g.Fences() == 0 {
		if time.Since(cut) > 3*time.Second {
			t.Fatal("not fenced within the lease's 3 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("fenced %v after the cut (TTL 3 s)", time.Since(cut).Round(time.Millisecond))
	if _, err := a.Acquire(fn, "$LATEST"); err == nil {
		t.Error("a fenced node admitted")
	}
	for fenceCalls.Load() == 0 || running.Load() != nil {
		time.Sleep(10 * time.Millisecond)
	}
	proxy.Mend()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		s, err := a.Acquire(fn, "$LATEST")
		if err == nil {
			s.Release()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still refusing 20 s after etcd came back: %v", err)
		}
	}
}
