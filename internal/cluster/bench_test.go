package cluster_test

import (
	"context"
	"testing"

	"github.com/lambdad/lambdad/internal/admission"
	"github.com/lambdad/lambdad/internal/cluster"
	"github.com/lambdad/lambdad/internal/function"
	"github.com/lambdad/lambdad/internal/lambdatest"
	"github.com/lambdad/lambdad/internal/slots"
	"github.com/lambdad/lambdad/internal/store"
)

// gate starts a Gate on a real etcd for the test.
func gate(tb testing.TB, node string) *cluster.Gate {
	tb.Helper()
	endpoint := lambdatest.Etcd(tb)
	db, err := store.OpenEtcd(tb.TempDir(), store.EtcdOptions{Endpoints: []string{endpoint}})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	g, err := cluster.New(context.Background(), cluster.Options{Slots: slots.Config{Client: db.EtcdClient(), NodeID: node}})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { g.Close() })
	return g
}

// BenchmarkAcquireReleaseCluster is one admission and its release on a
// node of a cluster, an unreserved function's (three pools) and a reserved
// one's (three pools), against the same on a node of its own: the cost
// the cluster adds to every invocation at steady load, and the etcd
// requests it makes per admission.
func BenchmarkAcquireReleaseCluster(b *testing.B) {
	g := gate(b, "bench")
	for _, c := range []struct {
		name    string
		gated   bool
		reserve bool
	}{{"alone/unreserved", false, false}, {"cluster/unreserved", true, false}, {"alone/reserved", false, true}, {"cluster/reserved", true, true}} {
		b.Run(c.name, func(b *testing.B) {
			a := admission.NewAccounts("123456789012", func(string) int { return 1000 })
			a.SetRequestRate(0)
			a.SetScalingRate(0)
			if c.gated {
				a.SetGate(g)
			}
			fn := function.Key{Account: "123456789012", Name: c.name}
			if c.reserve {
				a.SetReserved(fn, 100, true)
			}
			s, err := a.Acquire(fn, "$LATEST") // opens the pools
			if err != nil {
				b.Fatal(err)
			}
			s.Release()
			before := g.Ops()
			b.ResetTimer()
			for b.Loop() {
				s, err := a.Acquire(fn, "$LATEST")
				if err != nil {
					b.Fatal(err)
				}
				s.Release()
			}
			b.ReportMetric(float64(g.Ops()-before)/float64(b.N), "etcd-ops/op")
		})
	}
}
