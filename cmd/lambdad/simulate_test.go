package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSimulateCommand runs 'lambdad simulate' on a small trace and plan:
// the table, the one JSON object, the chart, a recommendation, and the
// errors of a bad command line and of a bad trace line.
func TestSimulateCommand(t *testing.T) {
	dir := t.TempDir()
	trace := filepath.Join(dir, "trace.csv")
	planFile := filepath.Join(dir, "plan.json")
	os.WriteFile(trace, []byte("timestamp_ms,function,duration_ms\n0,a,100\n10,a,100\n20,a,100\n30,b,100\n"), 0o644)
	os.WriteFile(planFile, []byte(`{"account_limit": 1000, "min_unreserved": 100, "functions": {"a": {"reserved": 2}}}`), 0o644)

	out, errOut, status := runBinary(t, "simulate", "--trace", trace, "--plan", planFile)
	if status != 0 || !strings.Contains(out, "plan: valid") || !strings.Contains(out, "ReservedFunctionConcurrentInvocationLimitExceeded 1") {
		t.Fatalf("status %d\n%s%s", status, out, errOut)
	}

	chart := filepath.Join(dir, "c.svg")
	out, errOut, status = runBinary(t, "simulate", "--trace", trace, "--plan", planFile, "--format", "json", "--chart", chart)
	var res struct {
		PlanValid bool `json:"plan_valid"`
		Account   struct {
			PeakUnreserved int `json:"peak_unreserved"`
		}
		Functions map[string]struct{ Invocations, Throttles int }
	}
	if status != 0 || json.Unmarshal([]byte(out), &res) != nil || !res.PlanValid || res.Functions["a"].Throttles != 1 || res.Account.PeakUnreserved != 1 {
		t.Fatalf("status %d %+v\n%s%s", status, res, out, errOut)
	}
	if svg, err := os.ReadFile(chart); err != nil || !strings.HasPrefix(string(svg), "<svg") {
		t.Errorf("chart: %v", err)
	}

	out, errOut, status = runBinary(t, "simulate", "--trace", trace, "--plan", planFile, "--recommend", "--format", "json")
	var rec struct {
		Plan struct {
			Functions map[string]struct{ Reserved int }
		}
		Feasible bool
		Result   struct{ Account struct{ Throttles int } }
	}
	if status != 0 || json.Unmarshal([]byte(out), &rec) != nil || !rec.Feasible || rec.Plan.Functions["a"].Reserved != 3 || rec.Result.Account.Throttles != 0 {
		t.Fatalf("recommend: status %d %+v\n%s%s", status, rec, out, errOut)
	}

	if _, errOut, status = runBinary(t, "simulate", "--plan", planFile); status != 2 || !strings.Contains(errOut, "--trace is required") {
		t.Errorf("no trace: status %d %s", status, errOut)
	}
	os.WriteFile(trace, []byte("timestamp_ms,function,duration_ms\n0,a,100\n0,a,oops\n"), 0o644)
	if _, errOut, status = runBinary(t, "simulate", "--trace", trace); status != 1 || !strings.Contains(errOut, `trace line 3: duration_ms "oops" is not a number`) {
		t.Errorf("bad trace: status %d %s", status, errOut)
	}
}

// TestReplayCommand replays a trace with 'lambdad replay --create --plan'
// against a server: a reservation of 1 and three overlapping calls of
// 600 ms throttle two, as the simulation says.
func TestReplayCommand(t *testing.T) {
	p := startServer(t, t.TempDir(), "--sandbox=off")
	dir := t.TempDir()
	trace := filepath.Join(dir, "trace.csv")
	planFile := filepath.Join(dir, "plan.json")
	os.WriteFile(trace, []byte("timestamp_ms,function,duration_ms\n0,replayed,600\n100,replayed,600\n200,replayed,600\n1500,replayed,100\n"), 0o644)
	os.WriteFile(planFile, []byte(`{"functions": {"replayed": {"reserved": 1}}}`), 0o644)
	out, errOut, status := runBinary(t, "replay", "--endpoint", p.url, "--trace", trace, "--plan", planFile, "--create", "--format", "json", "--max-duration", "5s")
	var res struct {
		Functions map[string]struct {
			Invocations, Throttles int
			ByReason               map[string]int `json:"throttles_by_reason"`
		}
	}
	if status != 0 || json.Unmarshal([]byte(out), &res) != nil {
		t.Fatalf("status %d\n%s%s", status, out, errOut)
	}
	if f := res.Functions["replayed"]; f.Invocations != 2 || f.ByReason["ReservedFunctionConcurrentInvocationLimitExceeded"] != 2 {
		t.Errorf("replayed %+v\n%s", f, out)
	}
	out, errOut, status = runBinary(t, "plan", "export", "--endpoint", p.url)
	if status != 0 || !strings.Contains(out, `"reserved": 1`) {
		t.Errorf("plan export: status %d\n%s%s", status, out, errOut)
	}
}
