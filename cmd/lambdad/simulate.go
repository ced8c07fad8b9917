package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/lambdad/lambdad/internal/bench"
	"github.com/lambdad/lambdad/internal/server"
	"github.com/lambdad/lambdad/internal/simulate"
)

// simulateCmd replays a trace against a concurrency plan in virtual time.
func simulateCmd(args []string) error {
	c := newCommand("simulate", "--trace FILE --plan FILE [flags]", `
Replay a trace of invocations (CSV or JSON lines, one invocation a line or
aggregated rates per second) against a concurrency plan (JSON: the account
limit, the minimum unreserved, reservations and provisioned concurrency per
function) in virtual time, through lambdad's own admission code, and print
per function the invocations, throttles, peak concurrency, time at the
limit and cold starts, with whether the plan is valid under AWS's rules.
--recommend prints the smallest plan meeting the targets (as a plan file)
and what it does to the trace. See README, "What-if simulation".`)
	trace := c.String("trace", "", "the trace file (required)")
	planFile := c.String("plan", "", "the plan file (default: AWS's defaults, no reservations)")
	format := c.String("format", "text", "text or json")
	recommend := c.Bool("recommend", false, "search the smallest plan meeting --target-throttle and --target-cold")
	targetThrottle := c.Float64("target-throttle", 0.01, "with --recommend: the largest share of a function's requests that may be throttled")
	targetCold := c.Float64("target-cold", 0.01, "with --recommend: the largest share of a qualifier's invocations that may be cold starts")
	chart := c.String("chart", "", "write the concurrency per pool over time to this SVG file")
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return c.usagef("unexpected argument %q", pos[0])
	}
	if *trace == "" {
		return c.usagef("--trace is required")
	}
	if *format != "text" && *format != "json" {
		return c.usagef("--format must be text or json, not %q", *format)
	}
	if *targetThrottle < 0 || *targetThrottle > 1 || *targetCold < 0 || *targetCold > 1 {
		return c.usagef("the targets are shares between 0 and 1")
	}
	plan := &simulate.Plan{Functions: map[string]*simulate.FunctionPlan{}}
	if *planFile != "" {
		f, err := os.Open(*planFile)
		if err != nil {
			return err
		}
		plan, err = simulate.ReadPlan(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", *planFile, err)
		}
	}
	src := simulate.File(*trace)
	var res *simulate.Result
	var rec *simulate.Recommendation
	if *recommend {
		rec, err = simulate.Recommend(plan, src, simulate.Targets{Throttle: *targetThrottle, Cold: *targetCold})
		if err != nil {
			return err
		}
		res = rec.Result
		if *chart != "" {
			// The chart is of the recommended plan.
			if res, err = simulate.Run(rec.Plan, src, simulate.Options{Chart: true}); err != nil {
				return err
			}
		}
	} else if res, err = simulate.Run(plan, src, simulate.Options{Chart: *chart != ""}); err != nil {
		return err
	}
	if *chart != "" {
		if err := writeChart(*chart, res); err != nil {
			return err
		}
	}
	if *format == "json" {
		if rec != nil {
			return writeJSON(map[string]any{"plan": rec.Plan, "feasible": rec.Feasible, "notes": nonNil(rec.Notes),
				"simulations": rec.Simulations, "result": rec.Result, "before": rec.Before})
		}
		return res.WriteJSON(os.Stdout)
	}
	if rec != nil {
		fmt.Println("# the plan given:")
		if err := rec.Before.WriteText(os.Stdout); err != nil {
			return err
		}
		fmt.Printf("\n# recommended plan (%d simulations; feasible: %v):\n", rec.Simulations, rec.Feasible)
		for _, n := range rec.Notes {
			fmt.Println("# " + n)
		}
		if err := simulate.WritePlan(os.Stdout, rec.Plan); err != nil {
			return err
		}
		fmt.Println("\n# what it does to the trace:")
	}
	return res.WriteText(os.Stdout)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func writeJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Printf("%s\n", b)
	return err
}

func writeChart(path string, res *simulate.Result) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := res.Chart(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// planCmd reads the concurrency plan of a running Lambda API.
func planCmd(args []string) error {
	c := newCommand("plan", "export [flags]", `
export prints the concurrency plan of the account behind --endpoint as a
plan file for 'lambdad simulate': the account limit (GetAccountSettings),
and each function's reservation and provisioned configurations
(ListFunctions, GetFunctionConcurrency, ListProvisionedConcurrencyConfigs).
The calls are signed with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY when
set, so that they work against any Lambda API endpoint. The Lambda API does
not tell the minimum unreserved; --min-unreserved gives it.`)
	endpoint := c.String("endpoint", "http://"+server.Defaults.Listen, "the Lambda API endpoint")
	minUnreserved := c.Int("min-unreserved", 100, "the minimum unreserved to write into the plan")
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || pos[0] != "export" {
		return c.usagef("the action is export")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	p, err := simulate.ClientFromEnv(*endpoint).Export(ctx, *minUnreserved)
	if err != nil {
		return err
	}
	return simulate.WritePlan(os.Stdout, p)
}

// replayCmd drives real invocations with a trace's timing.
func replayCmd(args []string) error {
	c := newCommand("replay", "--trace FILE [flags]", `
Send the trace's invocations to --endpoint as synchronous invokes, each at
its timestamp (from the trace's first line, on the wall clock), with the
payload {"sleep_ms": duration_ms}, and report the invocations and throttles
per function as 'lambdad simulate' does. The trace's functions must exist
and sleep as asked; --create makes the missing ones from this binary's echo
function (which does), and --plan applies a plan's reservations first.
--max-count and --max-duration bound the run.`)
	endpoint := c.String("endpoint", "http://"+server.Defaults.Listen, "the Lambda API endpoint")
	trace := c.String("trace", "", "the trace file (required)")
	planFile := c.String("plan", "", "apply this plan's reservations before replaying")
	create := c.Bool("create", false, "create the trace's missing functions from the echo function")
	maxCount := c.Int("max-count", 0, "send at most this many requests (0: all)")
	maxDuration := c.Duration("max-duration", 0, "send no request later than this after the start (0: no bound)")
	format := c.String("format", "text", "text or json")
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return c.usagef("unexpected argument %q", pos[0])
	}
	if *trace == "" {
		return c.usagef("--trace is required")
	}
	if *format != "text" && *format != "json" {
		return c.usagef("--format must be text or json, not %q", *format)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	client := simulate.ClientFromEnv(*endpoint)
	var plan *simulate.Plan
	if *planFile != "" {
		f, err := os.Open(*planFile)
		if err != nil {
			return err
		}
		plan, err = simulate.ReadPlan(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", *planFile, err)
		}
	}
	if *create || plan != nil {
		f, err := os.Open(*trace)
		if err != nil {
			return err
		}
		names, err := simulate.Functions(f)
		f.Close()
		if err != nil {
			return err
		}
		var zip []byte
		if *create {
			if zip, err = bench.EchoZip(); err != nil {
				return err
			}
		}
		if err := client.Prepare(ctx, names, zip, plan); err != nil {
			return err
		}
	}
	f, err := os.Open(*trace)
	if err != nil {
		return err
	}
	defer f.Close()
	started := time.Now()
	res, err := client.Replay(ctx, f, simulate.ReplayOptions{MaxCount: *maxCount, MaxDuration: *maxDuration})
	if err != nil {
		return err
	}
	if *format == "json" {
		return res.WriteJSON(os.Stdout)
	}
	fmt.Printf("replayed against %s in %s\n", *endpoint, time.Since(started).Round(time.Millisecond))
	return res.WriteText(os.Stdout)
}
