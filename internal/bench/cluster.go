package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lambdad/lambdad/internal/server"
)

// clusterRun compares o.Cluster nodes sharing one etcd with one node of its
// own, on the same machine and in interleaved rounds: the invokers are
// spread over the cluster's nodes, and the same invokers drive the single
// node. It reports latency, throughput and the etcd requests per
// invocation.
func clusterRun(ctx context.Context, o Options, code []byte) (err error) {
	if len(o.EtcdEndpoints) == 0 {
		return errors.New("--cluster needs --etcd-endpoints")
	}
	base, err := os.MkdirTemp("", "lambdad-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(base)
	quiet := slog.New(slog.DiscardHandler)
	limit := max(1000, o.Concurrency)
	single, err := server.Start(server.Options{Listen: "127.0.0.1:0", DataDir: base + "/single", AccountConcurrency: limit, Logger: quiet})
	if err != nil {
		return err
	}
	defer single.Close(context.Background())
	prefix := fmt.Sprintf("/lambdad-bench-%d/", time.Now().UnixNano())
	var nodes []*server.Node
	defer func() {
		for _, n := range nodes {
			n.Close(context.Background())
		}
	}()
	for i := range o.Cluster {
		n, err := server.Start(server.Options{Listen: "127.0.0.1:0", DataDir: fmt.Sprintf("%s/node%d", base, i), AccountConcurrency: limit,
			EtcdEndpoints: o.EtcdEndpoints, EtcdPrefix: prefix, Logger: quiet})
		if err != nil {
			return err
		}
		nodes = append(nodes, n)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.Concurrency + 8}}
	const name = "bench-cluster"
	if err := createFunction(ctx, client, single.URL(), name, code, 10); err != nil {
		return err
	}
	defer func() { err = errors.Join(err, deleteFunction(client, single.URL(), name)) }()
	if err := createFunction(ctx, client, nodes[0].URL(), name, code, 10); err != nil {
		return err
	}
	defer func() { err = errors.Join(err, deleteFunction(client, nodes[0].URL(), name)) }()
	path := "/2015-03-31/functions/" + name + "/invocations"
	var clusterURLs []string
	for _, n := range nodes {
		clusterURLs = append(clusterURLs, n.URL()+path)
	}
	singleURLs := []string{single.URL() + path}
	fmt.Fprintf(o.Out, "lambdad bench: %d invokers, %s, %d nodes on etcd %v against one node of its own\n",
		o.Concurrency, bound(o), o.Cluster, o.EtcdEndpoints)
	warm := o
	warm.Count, warm.Duration = o.Concurrency*o.Cluster, 0
	driveSpread(ctx, client, clusterURLs, warm, "warm-up")
	driveSpread(ctx, client, singleURLs, warm, "warm-up")
	ops := func() (n int64) {
		for _, node := range nodes {
			n += node.EtcdOps()
		}
		return n
	}
	rounds := max(1, o.Rounds)
	part := o
	part.Count, part.Duration = o.Count/rounds, o.Duration/time.Duration(rounds)
	got, one := &Result{Name: "cluster"}, &Result{Name: "one node"}
	var clusterOps int64
	for range rounds {
		before := ops()
		got.add(driveSpread(ctx, client, clusterURLs, part, "cluster"))
		clusterOps += ops() - before
		one.add(driveSpread(ctx, client, singleURLs, part, "one node"))
	}
	got.finish()
	one.finish()
	got.print(o.Out)
	one.print(o.Out)
	fmt.Fprintf(o.Out, "ratio      p50=%.2fx p99=%.2fx throughput=%.2fx (cluster / one node, %d interleaved rounds)\n",
		ratio(got.Percentile(50), one.Percentile(50)), ratio(got.Percentile(99), one.Percentile(99)),
		got.Throughput()/max(one.Throughput(), 1e-9), rounds)
	fmt.Fprintf(o.Out, "etcd       %d requests over %d invocations: %.4f per invocation\n",
		clusterOps, got.OK+got.Throttles, float64(clusterOps)/float64(max(1, got.OK+got.Throttles)))
	return nil
}

// driveSpread is drive with its invokers spread over urls, invoker i on
// urls[i%len(urls)].
func driveSpread(ctx context.Context, client *http.Client, urls []string, o Options, name string) *Result {
	if len(urls) == 1 {
		return drive(ctx, client, urls[0], o, name)
	}
	total := &Result{Name: name}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var left atomic.Int64
	left.Store(int64(o.Count))
	start := time.Now()
	for i, u := range urls {
		share := o
		share.Concurrency = o.Concurrency / len(urls)
		if i < o.Concurrency%len(urls) {
			share.Concurrency++
		}
		if share.Concurrency == 0 {
			continue
		}
		if o.Count > 0 {
			share.Count = o.Count * share.Concurrency / o.Concurrency
		}
		wg.Go(func() {
			r := drive(ctx, client, u, share, name)
			mu.Lock()
			total.Latencies = append(total.Latencies, r.Latencies...)
			total.OK += r.OK
			total.Throttles += r.Throttles
			total.Errors += r.Errors
			total.FirstErrors = append(total.FirstErrors, r.FirstErrors...)
			mu.Unlock()
		})
	}
	wg.Wait()
	total.Elapsed = time.Since(start)
	total.finish()
	return total
}
