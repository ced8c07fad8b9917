package main

import (
	"context"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/lambdad/lambdad/internal/bench"
)

func benchCmd(args []string) error {
	fs := newCommand("bench", "[flags]", `
Create a function whose code is this binary (an echo function), drive
invocations at it and report latency and throughput; with --baseline also
run a minimal reference of the same path and print the ratios. The
function is deleted again when the run ends, also on an error or Ctrl-C.`)
	var o bench.Options
	fs.StringVar(&o.Endpoint, "endpoint", "", "a running lambdad to measure (default: start one in this process)")
	fs.IntVar(&o.Concurrency, "concurrency", 1, "concurrent invokers")
	fs.DurationVar(&o.Duration, "duration", 0, "how long to drive load (default 10s when --count is not set)")
	fs.IntVar(&o.Count, "count", 0, "how many invocations at most")
	fs.IntVar(&o.SleepMS, "sleep-ms", 0, "how long each invocation sleeps inside the function")
	fs.BoolVar(&o.Baseline, "baseline", false, "also run a minimal reference of the same path and print the ratios")
	fs.IntVar(&o.Rounds, "rounds", 4, "with --baseline: rounds in which lambdad and the reference take turns")
	fs.IntVar(&o.Cold, "cold", 0, "measure this many cold starts against the exec floor")
	fs.IntVar(&o.IdleEnvs, "idle-envs", 0, "hold this many invocations in flight at once, then measure the server's memory per idle environment")
	fs.DurationVar(&o.Ramp, "ramp", 20*time.Second, "with --idle-envs: start the invocations over this long")
	fs.IntVar(&o.Restart, "restart", 0, "measure this many restarts of a server process holding the function, to its first successful invocation (nothing else is run)")
	fs.Func("restart-with", "with --restart: another lambdad binary whose restarts take turns with this one's (repeatable)", func(v string) error {
		o.RestartWith = append(o.RestartWith, v)
		return nil
	})
	fs.BoolVar(&o.Auth, "auth", false, "compare an open server with one that checks every request's signature and policy, taking turns in --rounds (nothing else is run)")
	fs.DurationVar(&o.Scrape, "scrape", 0, "compare invocations without and with a scraper reading /lambdad/metrics this often (same run, interleaved rounds)")
	fs.IntVar(&o.ScrapeFunctions, "scrape-functions", 0, "with --scrape: first register this many more functions, each reserved, for every scrape to walk")
	fs.IntVar(&o.Cluster, "cluster", 0, "compare this many nodes sharing the etcd of --etcd-endpoints with one node of its own, in interleaved rounds (nothing else is run)")
	etcd := fs.String("etcd-endpoints", "", "with --cluster: comma-separated etcd client URLs")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the run (client, server and reference alike) to this file")
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fs.usagef("unexpected argument %q", pos[0])
	}
	for _, e := range strings.Split(*etcd, ",") {
		if e = strings.TrimSpace(e); e != "" {
			o.EtcdEndpoints = append(o.EtcdEndpoints, e)
		}
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	o.Out = os.Stdout
	return bench.Run(ctx, o)
}
