// Package bench is lambdad's load tool. It creates a function whose code is
// the running lambdad binary itself (which answers as an echo function when
// started as a Lambda bootstrap), drives concurrent invokers for a bounded
// time or count, and reports latency percentiles, throughput, throttles and
// errors. With a baseline it also runs, in the same run and with the same
// client, a minimal reference of the same path (Reference), and prints the
// ratios, so that results are comparisons rather than absolute times on a
// shared machine.
package bench

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lambdad/lambdad/internal/server"
)

// Options configure a run.
type Options struct {
	// Endpoint is a running lambdad; "" starts one in this process (needed
	// for the memory figures).
	Endpoint    string
	Concurrency int
	Duration    time.Duration
	// Count bounds the number of invocations (0: only Duration bounds).
	Count int
	// SleepMS makes every invocation hold its slot this long.
	SleepMS int
	// Baseline runs the reference too and prints ratios.
	Baseline bool
	// Rounds splits a baseline run into rounds in which lambdad and the
	// reference take turns (default 4).
	Rounds int
	// Cold measures this many cold starts (and the exec floor).
	Cold int
	// IdleEnvs measures the server's memory per idle environment with this
	// many environments (in-process only).
	IdleEnvs int
	// Ramp spreads the start of the IdleEnvs invocations (default 20s).
	Ramp time.Duration
	// Restart measures this many restarts of a server process on a data
	// directory holding the function, to its first successful invocation,
	// and nothing else.
	Restart int
	// RestartWith names more lambdad binaries whose restarts take turns
	// with this one's (each on a data directory of its own).
	RestartWith []string
	// Auth compares an open server with one whose requests are signed and
	// authorized, in the same run (in-process only).
	Auth bool
	// Scrape compares the invoke path without and with a scraper reading
	// /lambdad/metrics this often, in the same run; ScrapeFunctions
	// registers that many more reserved functions for it to walk.
	Scrape          time.Duration
	ScrapeFunctions int
	// Cluster compares this many nodes sharing the etcd at EtcdEndpoints
	// with one node of its own (in-process only).
	Cluster       int
	EtcdEndpoints []string
	Out           io.Writer
	self          string
}

// Result is one load run's figures.
type Result struct {
	Name        string
	Latencies   []time.Duration
	OK          int
	Throttles   int
	Errors      int
	Elapsed     time.Duration
	FirstErrors []string
}

// add merges another run's figures into r.
func (r *Result) add(o *Result) {
	r.Latencies = append(r.Latencies, o.Latencies...)
	r.OK += o.OK
	r.Throttles += o.Throttles
	r.Errors += o.Errors
	r.Elapsed += o.Elapsed
	if len(r.FirstErrors) < 3 {
		r.FirstErrors = append(r.FirstErrors, o.FirstErrors...)
	}
}

// finish sorts the latencies for the percentiles.
func (r *Result) finish() {
	sort.Slice(r.Latencies, func(i, j int) bool { return r.Latencies[i] < r.Latencies[j] })
}

// Percentile returns the p-th percentile latency (0..100).
func (r *Result) Percentile(p float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	i := int(float64(len(r.Latencies)-1) * p / 100)
	return r.Latencies[i]
}

// Throughput is completed invocations per second.
func (r *Result) Throughput() float64 {
	if r.Elapsed == 0 {
		return 0
	}
	return float64(r.OK) / r.Elapsed.Seconds()
}

func (r *Result) print(w io.Writer) {
	fmt.Fprintf(w, "%-10s n=%-6d p50=%-9v p90=%-9v p99=%-9v throughput=%8.1f/s throttles=%d errors=%d\n",
		r.Name, len(r.Latencies), round(r.Percentile(50)), round(r.Percentile(90)), round(r.Percentile(99)),
		r.Throughput(), r.Throttles, r.Errors)
	for _, e := range r.FirstErrors {
		fmt.Fprintf(w, "           error: %s\n", e)
	}
}

func round(d time.Duration) time.Duration {
	switch {
	case d > 100*time.Millisecond:
		return d.Round(time.Millisecond)
	case d > time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

// Run performs the runs the options ask for and prints the report. The
// functions it creates are deleted again however it ends (an error, or ctx
// cancelled by Ctrl-C), so a run against a long-lived server leaves
// nothing behind.
func Run(ctx context.Context, o Options) (err error) {
	if o.Out == nil {
		o.Out = os.Stdout
	}
	o.Concurrency = max(1, o.Concurrency)
	if o.Duration <= 0 && o.Count <= 0 {
		o.Duration = 10 * time.Second
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	o.self = self
	code, err := functionZip(self)
	if err != nil {
		return err
	}
	if o.Restart > 0 {
		if o.Endpoint != "" {
			return fmt.Errorf("--restart starts servers of its own: run without --endpoint")
		}
		return restarts(ctx, o, code)
	}
	if o.Cluster > 0 {
		if o.Endpoint != "" {
			return fmt.Errorf("--cluster starts servers of its own: run without --endpoint")
		}
		return clusterRun(ctx, o, code)
	}
	if o.Auth {
		if o.Endpoint != "" {
			return fmt.Errorf("--auth starts servers of its own: run without --endpoint")
		}
		return authRun(ctx, o, code)
	}
	endpoint := o.Endpoint
	var node *server.Node
	if endpoint == "" {
		dir, err := os.MkdirTemp("", "lambdad-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		node, err = server.Start(server.Options{Listen: "127.0.0.1:0", DataDir: dir,
			AccountConcurrency: max(1000, o.Concurrency, o.IdleEnvs),
			Logger:             slog.New(slog.DiscardHandler)})
		if err != nil {
			return err
		}
		defer node.Close(context.Background())
		endpoint = node.URL()
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.Concurrency + 8, MaxConnsPerHost: 0}}
	name := fmt.Sprintf("bench-%d", time.Now().UnixNano())
	// Deferred after the in-process node's Close, so it runs before it:
	// the server is still there to delete from.
	var created []string
	defer func() {
		for _, fn := range created {
			err = errors.Join(err, deleteFunction(client, endpoint, fn))
		}
	}()
	// The name is recorded before the call: a create cut short by Ctrl-C
	// may still have happened on the server.
	created = append(created, name)
	if err := createFunction(ctx, client, endpoint, name, code, max(3, o.SleepMS/1000+3)); err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "lambdad bench: %d invokers, %s, sleep %d ms, endpoint %s, %d cores\n",
		o.Concurrency, bound(o), o.SleepMS, endpoint, runtime.NumCPU())

	invokeURL := endpoint + "/2015-03-31/functions/" + name + "/invocations"
	// Warm up: one environment per invoker, so that the measured run is warm.
	warm := o
	warm.Count, warm.Duration = o.Concurrency, 0
	drive(ctx, client, invokeURL, warm, "warm-up")
	if o.Scrape > 0 {
		if err := scrapeComparison(ctx, client, endpoint, invokeURL, name, o, &created); err != nil {
			return err
		}
	} else if !o.Baseline {
		drive(ctx, client, invokeURL, o, "lambdad").print(o.Out)
	} else {
		boot, cleanup, err := bootstrapOf(self)
		if err != nil {
			return err
		}
		defer cleanup()
		ref, err := StartReference(ctx, boot, filepath.Dir(boot), o.Concurrency)
		if err != nil {
			return err
		}
		defer ref.Close()
		refURL := ref.URL() + "/2015-03-31/functions/ref/invocations"
		drive(ctx, client, refURL, warm, "warm-up")
		// The two take turns in rounds, so that whatever else the machine
		// does weighs on both alike.
		rounds := max(1, o.Rounds)
		part := o
		part.Count, part.Duration = o.Count/rounds, o.Duration/time.Duration(rounds)
		got, base := &Result{Name: "lambdad"}, &Result{Name: "reference"}
		for range rounds {
			got.add(drive(ctx, client, invokeURL, part, "lambdad"))
			base.add(drive(ctx, client, refURL, part, "reference"))
		}
		got.finish()
		base.finish()
		got.print(o.Out)
		base.print(o.Out)
		fmt.Fprintf(o.Out, "ratio      p50=%.2fx p90=%.2fx p99=%.2fx throughput=%.2fx (lambdad / reference, %d interleaved rounds)\n",
			ratio(got.Percentile(50), base.Percentile(50)), ratio(got.Percentile(90), base.Percentile(90)),
			ratio(got.Percentile(99), base.Percentile(99)), got.Throughput()/max(base.Throughput(), 1e-9), rounds)
	}
	if o.Cold > 0 {
		if err := coldStarts(ctx, client, endpoint, name, self, o); err != nil {
			return err
		}
	}
	if o.IdleEnvs > 0 {
		if node == nil {
			return fmt.Errorf("--idle-envs measures the server's own memory: run without --endpoint")
		}
		created = append(created, name+"-sleeper")
		if err := idleMemory(ctx, client, endpoint, name+"-sleeper", node, o); err != nil {
			return err
		}
	}
	return nil
}

func bound(o Options) string {
	if o.Count > 0 && o.Duration > 0 {
		return fmt.Sprintf("%d invocations or %v", o.Count, o.Duration)
	}
	if o.Count > 0 {
		return fmt.Sprintf("%d invocations", o.Count)
	}
	return o.Duration.String()
}

func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// drive runs o.Concurrency invokers against url until the count or time
// runs out.
func drive(ctx context.Context, client *http.Client, url string, o Options, name string) *Result {
	res := &Result{Name: name}
	event := []byte(fmt.Sprintf(`{"sleep_ms":%d,"echo":"lambdad"}`, o.SleepMS))
	var left atomic.Int64
	left.Store(int64(o.Count))
	if o.Count <= 0 {
		left.Store(1 << 62)
	}
	deadline := time.Now().Add(o.Duration)
	if o.Duration <= 0 {
		deadline = time.Now().Add(24 * time.Hour)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for range o.Concurrency {
		wg.Go(func() {
			var lat []time.Duration
			var ok, thr, errs int
			var firstErr string
			for left.Add(-1) >= 0 && time.Now().Before(deadline) && ctx.Err() == nil {
				t0 := time.Now()
				status, body, funcErr, err := post(ctx, client, url, event)
				d := time.Since(t0)
				switch {
				case err == nil && status == 200 && funcErr == "":
					ok++
					lat = append(lat, d)
				case status == 429:
					thr++
				default:
					errs++
					if firstErr == "" {
						firstErr = fmt.Sprintf("%d %s %v %.200s", status, funcErr, err, body)
					}
				}
			}
			mu.Lock()
			res.Latencies = append(res.Latencies, lat...)
			res.OK += ok
			res.Throttles += thr
			res.Errors += errs
			if firstErr != "" && len(res.FirstErrors) < 3 {
				res.FirstErrors = append(res.FirstErrors, firstErr)
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	res.finish()
	return res
}

func post(ctx context.Context, client *http.Client, url string, body []byte) (int, []byte, string, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header.Get("X-Amz-Function-Error"), err
}

// bootstrapOf makes a directory in which bin can be run as "bootstrap", as
// the reference runs it; cleanup removes it.
func bootstrapOf(bin string) (boot string, cleanup func(), err error) {
	dir, err := os.MkdirTemp("", "lambdad-ref-")
	if err != nil {
		return "", nil, err
	}
	boot = filepath.Join(dir, "bootstrap")
	if err := os.Symlink(bin, boot); err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	return boot, func() { os.RemoveAll(dir) }, nil
}

// functionZip packs the running binary as a provided-runtime bootstrap.
func functionZip(self string) ([]byte, error) {
	bin, err := os.ReadFile(self)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	h := &zip.FileHeader{Name: "bootstrap", Method: zip.Store}
	h.SetMode(0o755)
	f, err := w.CreateHeader(h)
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(bin); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func createFunction(ctx context.Context, client *http.Client, endpoint, name string, code []byte, timeout int) error {
	body, _ := json.Marshal(map[string]any{
		"FunctionName": name, "Runtime": "provided.al2023", "Handler": "bootstrap",
		"Role": "arn:aws:iam::123456789012:role/lambdad-bench", "Timeout": timeout,
		"Code": map[string]string{"ZipFile": base64.StdEncoding.EncodeToString(code)},
	})
	status, b, _, err := post(ctx, client, endpoint+"/2015-03-31/functions", body)
	if err != nil {
		return err
	}
	if status != 201 {
		return fmt.Errorf("CreateFunction: %d %s", status, b)
	}
	return nil
}

// deleteFunction removes a function the run created. It does not take the
// run's context: cleaning up is what must still happen after Ctrl-C has
// cancelled that. A function that is not there is fine: the create may
// never have reached the server.
func deleteFunction(client *http.Client, endpoint, name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "DELETE", endpoint+"/2015-03-31/functions/"+name, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("deleting the bench function %s: %w", name, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusNotFound {
		return fmt.Errorf("deleting the bench function %s: %d %s", name, resp.StatusCode, b)
	}
	return nil
}

// coldStarts forces a new environment before each of o.Cold invocations
// (a configuration change retires the warm ones) and compares the
// invocations' latency with the time the same binary takes from exec to its
// first Runtime API request. The two take turns, one of each per round, so
// that whatever else the machine does weighs on both alike.
func coldStarts(ctx context.Context, client *http.Client, endpoint, name, self string, o Options) error {
	boot, cleanup, err := bootstrapOf(self)
	if err != nil {
		return err
	}
	defer cleanup()
	var cold, floor []time.Duration
	url := endpoint + "/2015-03-31/functions/" + name + "/invocations"
	for i := range o.Cold {
		body := []byte(fmt.Sprintf(`{"Description":"cold %d"}`, i))
		req, _ := http.NewRequestWithContext(ctx, "PUT", endpoint+"/2015-03-31/functions/"+name+"/configuration", bytes.NewReader(body))
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		t0 := time.Now()
		status, b, _, err := post(ctx, client, url, []byte(`{}`))
		if err != nil || status != 200 {
			return fmt.Errorf("cold invoke: %d %s %v", status, b, err)
		}
		cold = append(cold, time.Since(t0))
		f, err := ColdStartFloor(ctx, boot, filepath.Dir(boot), 1)
		if err != nil {
			return err
		}
		floor = append(floor, f...)
	}
	sortD(cold)
	sortD(floor)
	c, f := cold[len(cold)/2], floor[len(floor)/2]
	fmt.Fprintf(o.Out, "cold start p50=%v (invoke on a new environment) exec-to-first-/next p50=%v ratio=%.2fx (n=%d, interleaved)\n",
		round(c), round(f), ratio(c, f), o.Cold)
	return nil
}

func sortD(d []time.Duration) { sort.Slice(d, func(i, j int) bool { return d[i] < d[j] }) }

// idleMemory holds o.IdleEnvs invocations in flight at once and then
// reports the server's own memory per (now idle) environment, the child
// processes not counted. Starting that many processes takes the machine a
// while (each Go process costs ~15 ms of CPU to start), so the invokers
// start over o.Ramp and each sleeps long enough to overlap all the others.
func idleMemory(ctx context.Context, client *http.Client, endpoint, sleeper string, node *server.Node, o Options) error {
	ramp := o.Ramp
	if ramp <= 0 {
		ramp = 20 * time.Second
	}
	hold := ramp + 10*time.Second
	code, err := functionZip(o.self)
	if err != nil {
		return err
	}
	if err := createFunction(ctx, client, endpoint, sleeper, code, int(hold.Seconds())+30); err != nil {
		return err
	}
	before := memNow()
	url := endpoint + "/2015-03-31/functions/" + sleeper + "/invocations"
	event := []byte(fmt.Sprintf(`{"sleep_ms":%d}`, hold.Milliseconds()))
	var peak atomic.Int64
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if n := int64(node.Admission().Snapshot().UnreservedInFlight); n > peak.Load() {
				peak.Store(n)
			}
		}
	}()
	res := &Result{Name: "in-flight"}
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for i := range o.IdleEnvs {
		wg.Go(func() {
			time.Sleep(ramp * time.Duration(i) / time.Duration(o.IdleEnvs))
			t0 := time.Now()
			status, body, funcErr, err := post(ctx, client, url, event)
			mu.Lock()
			defer mu.Unlock()
			if err == nil && status == 200 && funcErr == "" {
				res.OK++
				res.Latencies = append(res.Latencies, time.Since(t0))
			} else {
				res.Errors++
				if len(res.FirstErrors) < 3 {
					res.FirstErrors = append(res.FirstErrors, fmt.Sprintf("%d %s %v %.200s", status, funcErr, err, body))
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	res.Elapsed = time.Since(start)
	res.finish()
	res.print(o.Out)
	after := memNow()
	idle := node.Environments().Stats().Idle
	fmt.Fprintf(o.Out, "in flight  peak %d at once (of %d started over %v, each holding %v)\n", peak.Load(), o.IdleEnvs, ramp, hold)
	fmt.Fprintf(o.Out, "memory     %d idle environments: Go heap %+.1f MB (%.1f KB/env), RSS %+.1f MB (%.1f KB/env), server RSS %.1f MB\n",
		idle, mb(after.heap-before.heap), kb(after.heap-before.heap)/float64(max(idle, 1)),
		mb(after.rss-before.rss), kb(after.rss-before.rss)/float64(max(idle, 1)), mb(after.rss))
	return nil
}

type mem struct{ heap, rss int64 }

func memNow() mem {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return mem{heap: int64(ms.HeapAlloc), rss: rss()}
}

// rss reads the process's resident set size from /proc (0 where there is
// no /proc).
func rss() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var n int64
			fmt.Sscanf(strings.TrimSpace(v), "%d", &n)
			return n * 1024
		}
	}
	return 0
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }
func kb(b int64) float64 { return float64(b) / (1 << 10) }
