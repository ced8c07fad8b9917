package execenv

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lambdad/lambdad/internal/sandbox"
)

// benchManager is a Manager at level (sandbox.Off for none).
func benchManager(b *testing.B, level sandbox.Level) *Manager {
	b.Helper()
	cfg := Config{Logger: slog.New(slog.DiscardHandler)}
	if level != sandbox.Off {
		if missing := sandbox.Check(level); len(missing) > 0 {
			b.Skip(sandbox.Report(level, missing))
		}
		h, err := sandbox.NewHost(sandbox.HostConfig{Level: level})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { h.Close() })
		cfg.Sandbox = h
	}
	return newManager(b, cfg)
}

func p50(d []time.Duration) float64 {
	slices.Sort(d)
	return float64(d[len(d)/2]) / float64(time.Millisecond)
}

// BenchmarkSandbox compares cold starts (Go and Python) and warm invokes
// with the sandbox off and at level full. The two take turns within every
// iteration, so that a shared, noisy machine weighs on both alike; it
// reports each one's p50 and the ratios:
//
//	go test -run '^$' -bench BenchmarkSandbox -benchtime 40x ./internal/execenv/
func BenchmarkSandbox(b *testing.B) {
	pyDir, err := os.MkdirTemp("", "bench-python-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(pyDir)
	os.Chmod(pyDir, 0o755)
	if err := os.WriteFile(pyDir+"/lambda_function.py", []byte("def handler(event, context):\n    return event\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	levels := []sandbox.Level{sandbox.Off, sandbox.Full}
	managers := map[sandbox.Level]*Manager{}
	for _, l := range levels {
		managers[l] = benchManager(b, l)
	}
	specs := map[string]*Spec{
		"go":     goSpec("cold-go"),
		"python": {Function: "cold-python", Runtime: "python3.12", Handler: "lambda_function.handler", CodeDir: pyDir, Timeout: 10 * time.Second},
	}
	req := &Request{RequestID: "11111111-2222-4333-8444-555555555555", Payload: []byte(`{"op":"echo"}`)}
	times := map[string][]time.Duration{}
	run := func(m *Manager, spec *Spec, cold bool) time.Duration {
		t0 := time.Now()
		res, err := m.Invoke(context.Background(), spec, req)
		d := time.Since(t0)
		if err != nil || res.FunctionError != "" || res.ColdStart != cold {
			b.Fatalf("%v %+v", err, res)
		}
		return d
	}
	// The interpreter lookups and the warm environments, before timing.
	for _, l := range levels {
		for _, spec := range specs {
			run(managers[l], spec, true)
			managers[l].Retire(keyOf(spec).fn())
		}
		run(managers[l], goSpec("warm"), true)
	}
	for b.Loop() {
		for _, rt := range []string{"go", "python"} {
			for _, l := range levels {
				k := "cold/" + rt + "/" + string(l)
				times[k] = append(times[k], run(managers[l], specs[rt], true))
				managers[l].Retire(keyOf(specs[rt]).fn())
			}
		}
		for range 10 {
			for _, l := range levels {
				k := "warm/" + string(l)
				times[k] = append(times[k], run(managers[l], goSpec("warm"), false))
			}
		}
	}
	for k, ds := range times {
		b.ReportMetric(p50(ds), k+"-p50-ms")
	}
	for _, k := range []string{"cold/go", "cold/python", "warm"} {
		b.ReportMetric(p50(times[k+"/full"])/p50(times[k+"/off"]), k+"-full/off")
	}
}

// BenchmarkIdleSandboxMemory starts 20 idle sandboxed Go environments and
// reports what each costs: the server's own resident memory, and the
// environment's processes (init and runtime) as its cgroup counts them.
//
//	go test -run '^$' -bench BenchmarkIdleSandboxMemory -benchtime 1x ./internal/execenv/
func BenchmarkIdleSandboxMemory(b *testing.B) {
	const n = 20
	for b.Loop() {
		m := benchManager(b, sandbox.Full)
		for i := range 3 { // warm up the server's own buffers
			invoke(b, m, goSpec("warm"+strconv.Itoa(i)), `{"op":"echo"}`)
		}
		before, heapBefore := selfRSS(), heapInUse()
		for i := range n {
			invoke(b, m, goSpec(fmt.Sprintf("idle%d", i)), `{"op":"echo"}`)
		}
		after, heapAfter := selfRSS(), heapInUse()
		var envBytes, initRSS, fnRSS int64
		m.mu.Lock()
		for e := range m.all {
			envBytes += e.box.PeakBytes()
			initRSS += rssOf(e.box.Pid())
			kids, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", e.box.Pid(), e.box.Pid()))
			for _, k := range strings.Fields(string(kids)) {
				pid, _ := strconv.Atoi(k)
				fnRSS += rssOf(pid)
			}
		}
		count := len(m.all)
		m.mu.Unlock()
		b.ReportMetric(float64(after-before)/n/1024, "server-RSS-KiB/env")
		b.ReportMetric(float64(heapAfter-heapBefore)/n/1024, "server-heap-KiB/env")
		b.ReportMetric(float64(envBytes)/float64(count)/(1<<20), "env-cgroup-peak-MiB/env")
		b.ReportMetric(float64(initRSS)/float64(count)/(1<<20), "init-RSS-MiB/env")
		b.ReportMetric(float64(fnRSS)/float64(count)/(1<<20), "runtime-RSS-MiB/env")
		m.Close()
	}
}

func heapInUse() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse)
}

func selfRSS() int64 { return rssOf(os.Getpid()) }

// rssOf is a process's resident set (VmRSS), in bytes.
func rssOf(pid int) int64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}
