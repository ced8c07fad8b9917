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

// benchManager is a Manager at level (sandbox.Off for none) with network
// n and spares spare environments.
func benchManager(b *testing.B, level sandbox.Level, n sandbox.Network, spares int) *Manager {
	b.Helper()
	cfg := Config{Logger: slog.New(slog.DiscardHandler)}
	if level != sandbox.Off {
		if missing := sandbox.Check(level); len(missing) > 0 {
			b.Skip(sandbox.Report(level, missing))
		}
		// /tmp on disk, as the server's.
		h, err := sandbox.NewHost(sandbox.HostConfig{Level: level, Network: n, Spares: spares, ScratchDir: b.TempDir()})
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
// with the sandbox off, at level full without network, and at level full
// with outbound network through pasta (where pasta can run), each with one
// spare environment as the server's default; and at full with pasta and
// no spare ("ondemand": a cold start in a burst that has used the spares
// up). They take turns within every iteration, so that a shared, noisy
// machine weighs on all alike; it reports each one's p50 and the ratios:
//
//	go test -run '^$' -bench 'BenchmarkSandbox$' -benchtime 40x ./internal/execenv/
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
	type setup struct {
		name   string
		level  sandbox.Level
		net    sandbox.Network
		spares int
	}
	setups := []setup{{"off", sandbox.Off, "", 0}, {"full", sandbox.Full, sandbox.NetworkNone, 1}}
	if missing := sandbox.CheckNetwork(sandbox.Full, sandbox.NetworkPasta); len(missing) > 0 {
		b.Log("without full-pasta: " + sandbox.Report(sandbox.Full, missing))
	} else {
		setups = append(setups, setup{"full-pasta", sandbox.Full, sandbox.NetworkPasta, 1},
			setup{"ondemand-pasta", sandbox.Full, sandbox.NetworkPasta, 0})
	}
	managers := map[string]*Manager{}
	for _, s := range setups {
		managers[s.name] = benchManager(b, s.level, s.net, s.spares)
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
	// retire stops spec's environment and waits until it is gone (its
	// processes, cgroup and pasta), so that no teardown weighs on the
	// next turn's start.
	retire := func(m *Manager, spec *Spec) {
		fn := keyOf(spec).fn()
		m.Retire(fn)
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			m.mu.Lock()
			left := 0
			for e := range m.all {
				if e.key.fn() == fn {
					left++
				}
			}
			m.mu.Unlock()
			if left == 0 {
				return
			}
		}
		b.Fatalf("%s's environment was not stopped", spec.Function)
	}
	// settle waits until every Host has its spares ready again, so that
	// no refill weighs on the next turn: a cold start is timed as it goes
	// when its spare is there and the machine has nothing else to do
	// (the ondemand setup times the other case).
	settle := func() {
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			ready := true
			for _, s := range setups {
				if h := managers[s.name].box; h != nil && h.SparesReady() < s.spares {
					ready = false
				}
			}
			if ready {
				return
			}
		}
		b.Fatal("the spares were not made again within 5 s")
	}
	// The interpreter lookups and the warm environments, before timing.
	for _, s := range setups {
		for _, spec := range specs {
			run(managers[s.name], spec, true)
			retire(managers[s.name], spec)
		}
		run(managers[s.name], goSpec("warm"), true)
	}
	for b.Loop() {
		for _, rt := range []string{"go", "python"} {
			for _, s := range setups {
				k := "cold/" + rt + "/" + s.name
				settle()
				times[k] = append(times[k], run(managers[s.name], specs[rt], true))
				retire(managers[s.name], specs[rt])
			}
		}
		for range 10 {
			for _, s := range setups {
				k := "warm/" + s.name
				times[k] = append(times[k], run(managers[s.name], goSpec("warm"), false))
			}
		}
	}
	for k, ds := range times {
		b.ReportMetric(p50(ds), k+"-p50-ms")
	}
	for _, k := range []string{"cold/go", "cold/python", "warm"} {
		b.ReportMetric(p50(times[k+"/full"])/p50(times[k+"/off"]), k+"-full/off")
		if len(setups) > 2 {
			b.ReportMetric(p50(times[k+"/full-pasta"])/p50(times[k+"/off"]), k+"-full-pasta/off")
			b.ReportMetric(p50(times[k+"/ondemand-pasta"])/p50(times[k+"/off"]), k+"-ondemand-pasta/off")
		}
	}
}

// BenchmarkIdleSandboxMemory starts 20 idle sandboxed Go environments and
// reports what each costs: the server's own resident memory, and the
// environment's processes (init and runtime) as its cgroup counts them;
// then again with outbound network ("pasta-" metrics), adding the
// resident memory of each environment's pasta, which is outside its
// cgroup.
//
//	go test -run '^$' -bench BenchmarkIdleSandboxMemory -benchtime 1x ./internal/execenv/
func BenchmarkIdleSandboxMemory(b *testing.B) {
	const n = 20
	networks := []sandbox.Network{sandbox.NetworkNone}
	if missing := sandbox.CheckNetwork(sandbox.Full, sandbox.NetworkPasta); len(missing) == 0 {
		networks = append(networks, sandbox.NetworkPasta)
	}
	for b.Loop() {
		for _, network := range networks {
			prefix := ""
			if network == sandbox.NetworkPasta {
				prefix = "pasta-"
			}
			m := benchManager(b, sandbox.Full, network, 0)
			for i := range 3 { // warm up the server's own buffers
				invoke(b, m, goSpec("warm"+strconv.Itoa(i)), `{"op":"echo"}`)
			}
			before, heapBefore := selfRSS(), heapInUse()
			for i := range n {
				invoke(b, m, goSpec(fmt.Sprintf("idle%d", i)), `{"op":"echo"}`)
			}
			after, heapAfter := selfRSS(), heapInUse()
			var envBytes, initRSS, fnRSS, netRSS int64
			m.mu.Lock()
			for e := range m.all {
				envBytes += e.box.PeakBytes()
				initRSS += rssOf(e.box.Pid())
				if p := e.box.NetPid(); p != 0 {
					netRSS += rssOf(p)
				}
				kids, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", e.box.Pid(), e.box.Pid()))
				for _, k := range strings.Fields(string(kids)) {
					pid, _ := strconv.Atoi(k)
					fnRSS += rssOf(pid)
				}
			}
			count := len(m.all)
			m.mu.Unlock()
			b.ReportMetric(float64(after-before)/n/1024, prefix+"server-RSS-KiB/env")
			b.ReportMetric(float64(heapAfter-heapBefore)/n/1024, prefix+"server-heap-KiB/env")
			b.ReportMetric(float64(envBytes)/float64(count)/(1<<20), prefix+"env-cgroup-peak-MiB/env")
			b.ReportMetric(float64(initRSS)/float64(count)/(1<<20), prefix+"init-RSS-MiB/env")
			b.ReportMetric(float64(fnRSS)/float64(count)/(1<<20), prefix+"runtime-RSS-MiB/env")
			if network == sandbox.NetworkPasta {
				b.ReportMetric(float64(netRSS)/float64(count)/(1<<20), "pasta-RSS-MiB/env")
			}
			m.Close()
		}
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
