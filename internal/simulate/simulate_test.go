package simulate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lambdad/lambdad/internal/awserr"
)

func plan(t testing.TB, s string) *Plan {
	t.Helper()
	p, err := ParsePlan([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func run(t testing.TB, p *Plan, trace string) *Result {
	t.Helper()
	r, err := RunReader(p, strings.NewReader(trace), Options{Chart: true})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestReservationThrottlesTheThirdOverlappingCall(t *testing.T) {
	r := run(t, plan(t, `{"functions": {"a": {"reserved": 2}}}`), `timestamp_ms,function,duration_ms
0,a,100
10,a,100
20,a,100
100,a,100
`)
	a := r.Functions["a"]
	if a.Invocations != 3 || a.Throttles != 1 || a.ThrottlesByReason[awserr.ReasonReservedFunctionConcurrentInvocationLimitExceeded] != 1 {
		t.Fatalf("a = %+v", a)
	}
	// The call at 100 comes after the first ended at 100: it runs.
	if a.PeakConcurrency != 2 || a.ThrottleShare != 0.25 {
		t.Errorf("peak %d share %v", a.PeakConcurrency, a.ThrottleShare)
	}
	// At the limit from 10 (two running) to 100, and from 100 to 110 again.
	if a.TimeAtLimitMs != 100 {
		t.Errorf("time at limit %d ms, want 100", a.TimeAtLimitMs)
	}
	if !r.PlanValid || len(r.Problems) != 0 {
		t.Errorf("problems %v", r.Problems)
	}
}

func TestUnreservedPoolExhaustion(t *testing.T) {
	// L 12, M 10: reserving 2 leaves U = 10 for b and c together.
	p := plan(t, `{"account_limit": 12, "min_unreserved": 10, "invocation_rate": 0, "functions": {"a": {"reserved": 2}}}`)
	var b strings.Builder
	b.WriteString("timestamp_ms,function,duration_ms\n")
	for i := 0; i < 6; i++ {
		fmt.Fprintf(&b, "%d,b,1000\n%d,c,1000\n", i, i)
	}
	r := run(t, p, b.String())
	if r.Account.UnreservedCapacity != 10 || r.Account.PeakUnreserved != 10 {
		t.Fatalf("account %+v", r.Account)
	}
	got := r.Functions["b"].Throttles + r.Functions["c"].Throttles
	if got != 2 || r.Functions["c"].ThrottlesByReason[awserr.ReasonConcurrentInvocationLimitExceeded] != 1 {
		t.Fatalf("throttles b %+v c %+v", r.Functions["b"], r.Functions["c"])
	}
	// The pool is full from the tenth call (at 4 ms) to the first end (1000 ms).
	if r.Account.TimeUnreservedFullMs != 996 {
		t.Errorf("pool full %d ms", r.Account.TimeUnreservedFullMs)
	}
}

func TestProvisionedHasNoColdStarts(t *testing.T) {
	trace := `timestamp_ms,function,duration_ms,init_ms
0,a:live,100,500
0,a:live,100,500
50,a:live,100,500
200,a:live,100,500
`
	cold := run(t, plan(t, `{}`), trace)
	// A cold start runs init_ms longer, so none has ended by 200.
	if got := cold.Functions["a"].ColdStarts; got != 4 {
		t.Errorf("without provisioned: %d cold starts, want 4", got)
	}
	if cold.Account.SpanMs != 800 {
		t.Errorf("span %d ms", cold.Account.SpanMs)
	}
	warm := run(t, plan(t, `{"functions": {"a": {"reserved": 5, "provisioned": {"live": 3}}}}`), trace)
	a := warm.Functions["a"]
	if a.ColdStarts != 0 || a.ProvisionedInvocations != 4 || a.Throttles != 0 {
		t.Errorf("with provisioned: %+v", a)
	}
	// Spillover beyond the provisioned environments is on-demand and cold.
	spill := run(t, plan(t, `{"functions": {"a": {"provisioned": {"live": 1}}}}`), trace)
	if a := spill.Functions["a"]; a.ColdStarts != 2 || a.ProvisionedInvocations != 2 {
		t.Errorf("spillover: %+v", a)
	}
}

func TestInvalidPlansAreReportedWithAWSMessages(t *testing.T) {
	for _, c := range []struct {
		plan, want string
	}{
		{`{"functions": {"a": {"reserved": 901}}}`, "a: PutFunctionConcurrency 901: InvalidParameterValueException: Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [100]."},
		{`{"functions": {"a": {"reserved": 500}, "b": {"reserved": 401}}}`, "b: PutFunctionConcurrency 401: InvalidParameterValueException: Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [100]."},
		{`{"account_limit": 10, "functions": {"a": {"reserved": 1}}}`, "a: PutFunctionConcurrency 1: InvalidParameterValueException: Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [10]."},
		{`{"functions": {"a": {"reserved": 2, "provisioned": {"live": 3}}}}`, "a: PutProvisionedConcurrencyConfig live 3: InvalidParameterValueException: Requested Provisioned Concurrency should not be greater than the reservedConcurrentExecution for function"},
		{`{"functions": {"a": {"provisioned": {"$LATEST": 3}}}}`, "a: PutProvisionedConcurrencyConfig $LATEST 3: InvalidParameterValueException: Provisioned Concurrency Configs cannot be applied to unpublished function versions."},
		{`{"functions": {"a": {"provisioned": {"1": 0}}}}`, "a: PutProvisionedConcurrencyConfig 1 0: ValidationException: 1 validation error detected: Value '0' at 'provisionedConcurrentExecutions' failed to satisfy constraint: Member must have value greater than or equal to 1"},
		{`{"functions": {"a": {"reserved": -1}}}`, "a: PutFunctionConcurrency -1: ValidationException: 1 validation error detected: Value '-1' at 'reservedConcurrentExecutions' failed to satisfy constraint: Member must have value greater than or equal to 0"},
		{`{"functions": {"a": {"provisioned": {"1": 950}}}}`, "a: PutProvisionedConcurrencyConfig 1 950: InvalidParameterValueException: Specified ConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [100]."},
		{`{"functions": {"a": {"provisioned": {"1": 1001}}}}`, "a: PutProvisionedConcurrencyConfig 1 1001: InvalidParameterValueException: Specified ConcurrentExecutions for function is greater than account's unreserved concurrency [1000]."},
	} {
		r := run(t, plan(t, c.plan), "timestamp_ms,function,duration_ms\n0,a,1\n")
		if r.PlanValid || len(r.Problems) != 1 || r.Problems[0] != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.plan, r.Problems, c.want)
		}
	}
	// 900 reserved in all is the most AWS allows of 1000.
	r := run(t, plan(t, `{"functions": {"a": {"reserved": 500, "provisioned": {"live": 500}}, "b": {"reserved": 300}, "c": {"provisioned": {"2": 100}}}}`), "timestamp_ms,function,duration_ms\n0,a,1\n")
	if !r.PlanValid {
		t.Errorf("a valid plan: %q", r.Problems)
	}
}

func TestRequestRateOnVirtualTime(t *testing.T) {
	// R 1 at 10 requests per second per unit: a second's worth (10) at
	// once, then one every 100 ms of virtual time.
	var b strings.Builder
	b.WriteString("timestamp_ms,function,duration_ms\n")
	for i := 0; i < 12; i++ {
		fmt.Fprintf(&b, "0,a,0\n")
	}
	b.WriteString("50,a,0\n100,a,0\n150,a,0\n")
	r := run(t, plan(t, `{"functions": {"a": {"reserved": 1}}}`), b.String())
	a := r.Functions["a"]
	// 12 at 0: 10 pass; at 50 ahead of schedule; at 100 and 150: the one at 100 passes.
	if a.Invocations != 11 || a.ThrottlesByReason[awserr.ReasonReservedFunctionInvocationRateLimitExceeded] != 4 {
		t.Fatalf("a = %+v", a)
	}
	// Off, nothing is refused for rate.
	r = run(t, plan(t, `{"invocation_rate": 0, "functions": {"a": {"reserved": 1}}}`), b.String())
	if r.Functions["a"].Throttles != 0 {
		t.Errorf("rate off: %+v", r.Functions["a"])
	}
}

func TestScalingRateOnVirtualTime(t *testing.T) {
	// 2 new environments per 10 s: a burst of 2, then one every 5 s.
	var b strings.Builder
	b.WriteString("timestamp_ms,function,duration_ms\n")
	for i := 0; i < 4; i++ {
		fmt.Fprintf(&b, "0,a,60000\n")
	}
	b.WriteString("5000,a,60000\n")
	r := run(t, plan(t, `{"scaling_rate": 2}`), b.String())
	a := r.Functions["a"]
	if a.Invocations != 3 || a.ThrottlesByReason[awserr.ReasonFunctionInvocationRateLimitExceeded] != 2 {
		t.Fatalf("a = %+v", a)
	}
}

func TestTraceFormatsAgree(t *testing.T) {
	p := plan(t, `{"functions": {"a": {"reserved": 3}}}`)
	csv := run(t, p, "timestamp_ms,function,duration_ms\n1000,a,400\n1250,a,400\n1500,a,400\n1750,a,400\n2000,b:1,400\n")
	jsonl := run(t, p, `{"timestamp_ms": 1000, "function": "a", "duration_ms": 400}
{"timestamp_ms": 1250, "function": "a", "duration_ms": 400}
{"timestamp_ms": 1500, "function": "a", "duration_ms": 400, "init_ms": 0}
{"timestamp_ms": 1750, "function": "arn:aws:lambda:us-east-1:123456789012:function:a", "duration_ms": 400}
{"timestamp_ms": 2000, "function": "b:1", "duration_ms": 400}
`)
	rates := run(t, p, "second,function,requests,mean_duration_ms\n1,a,4,400\n2,b:1,1,400\n")
	ratesJSON := run(t, p, `{"second": 1, "function": "a", "requests": 4, "mean_duration_ms": 400}
{"second": 2, "function": "b:1", "requests": 1, "mean_duration_ms": 400}
`)
	want := summary(csv)
	for name, r := range map[string]*Result{"json": jsonl, "rates": rates, "rates json": ratesJSON} {
		if got := summary(r); got != want {
			t.Errorf("%s: %s, want %s", name, got, want)
		}
	}
	if want != "a 4/0 peak 2; b 1/0 peak 1; span 1400" {
		t.Errorf("csv: %s", want)
	}
}

func summary(r *Result) string {
	var parts []string
	for _, n := range r.Names() {
		f := r.Functions[n]
		parts = append(parts, fmt.Sprintf("%s %d/%d peak %d", n, f.Invocations, f.Throttles, f.PeakConcurrency))
	}
	return strings.Join(parts, "; ") + fmt.Sprintf("; span %d", r.Account.SpanMs)
}

func TestRatesOfOneSecondAreMerged(t *testing.T) {
	// Two functions in one second, each evenly spaced: 0, 250, 500, 750
	// and 0, 500; all of 300 ms: three at once at 250 and at 500 only if
	// the two rows are merged in time order.
	r := run(t, plan(t, `{}`), "second,function,requests,mean_duration_ms\n0,a,4,300\n0,b,2,300\n1,a,1,300\n")
	if r.Account.PeakConcurrency != 3 || r.Account.Invocations != 7 {
		t.Errorf("account %+v", r.Account)
	}
}

func TestBadTracesNameTheLine(t *testing.T) {
	for _, c := range []struct{ trace, want string }{
		{"", "trace: empty"},
		{"a,b,c\n", "trace line 1: the header"},
		{"timestamp_ms,function,duration_ms\n0,a,1\nx,a,1\n", `trace line 3: timestamp_ms "x" is not a number`},
		{"timestamp_ms,function,duration_ms\n0,a,1\n0,a\n", "trace line 3: 2 fields, the header has 3"},
		{"timestamp_ms,function,duration_ms\n# c\n10,a,1\n5,a,1\n", "trace line 4: timestamp 5 is before the previous line's 10"},
		{"timestamp_ms,function,duration_ms\n0,a,-1\n", "trace line 2: duration_ms -1 is negative"},
		{"timestamp_ms,function,duration_ms\n0,,1\n", `trace line 2: function "" has no name`},
		{"timestamp_ms,function,duration_ms\n0,a,1,2\n", "trace line 2: more fields than the header's 3"},
		{`{"timestamp_ms": 0, "function": "a"}` + "\n", "trace line 1: an invocation needs"},
		{`{"timestamp_ms": 0, "function": "a", "duration_ms": 1}` + "\n{\n", "trace line 2:"},
		{"second,function,requests,mean_duration_ms\n2,a,1,1\n1,a,1,1\n", "trace line 3: second 1 comes after second 2"},
		{"second,function,requests,mean_duration_ms\n2,a,1.5,1\n", "trace line 2: second and requests must be whole numbers"},
	} {
		_, err := RunReader(&Plan{}, strings.NewReader(c.trace), Options{})
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q...", c.trace, err, c.want)
		}
	}
}

func TestBadPlans(t *testing.T) {
	for _, c := range []struct{ plan, want string }{
		{`{"functions": {"a": {"reserverd": 1}}}`, `plan: json: unknown field "reserverd"`},
		{"{\n\"functions\": [1]}", "plan: line 2, column"},
		{`{"account_limit": -1}`, "plan: account_limit is -1"},
		{`{} {}`, "plan: more than one JSON value"},
	} {
		_, err := ParsePlan([]byte(c.plan))
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.plan, err, c.want)
		}
	}
}

func TestChartIsBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("timestamp_ms,function,duration_ms\n")
	for i := 0; i < 20000; i++ {
		fmt.Fprintf(&b, "%d,a,300\n%d,b,50\n", i*10, i*10)
	}
	r := run(t, plan(t, `{"functions": {"a": {"reserved": 20}}}`), b.String())
	var svg bytes.Buffer
	if err := r.Chart(&svg); err != nil {
		t.Fatal(err)
	}
	if r.chart.n > maxBuckets || svg.Len() > 200<<10 {
		t.Errorf("%d buckets, %d bytes", r.chart.n, svg.Len())
	}
	for _, want := range []string{"<svg", "a — reservation 20, peak 20, throttles", "unreserved pool — U 980", "stroke-dasharray", "</svg>"} {
		if !strings.Contains(svg.String(), want) {
			t.Errorf("chart lacks %q", want)
		}
	}
	if r.Functions["a"].Throttles == 0 || !strings.Contains(svg.String(), "throttles</title>") {
		t.Error("no throttles marked")
	}
}

func TestRecommend(t *testing.T) {
	// a needs 10 at once, b 30 and c 80; the plan gives a 60 in an
	// account of 150, so b and c share U = 90 and throttle.
	dir := t.TempDir()
	path := filepath.Join(dir, "trace.csv")
	var b strings.Builder
	b.WriteString("timestamp_ms,function,duration_ms\n")
	for s := 0; s < 20; s++ {
		for i := 0; i < 10; i++ {
			fmt.Fprintf(&b, "%d,a,1000\n", s*1000+i)
		}
		for i := 0; i < 30; i++ {
			fmt.Fprintf(&b, "%d,b:live,1000\n", s*1000+10+i)
		}
		for i := 0; i < 80; i++ {
			fmt.Fprintf(&b, "%d,c,900\n", s*1000+50+i)
		}
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	p := plan(t, `{"account_limit": 150, "min_unreserved": 20, "invocation_rate": 0, "functions": {"a": {"reserved": 60}}}`)
	rec, err := Recommend(p, File(path), Targets{Throttle: 0.01, Cold: 0.01})
	if err != nil {
		t.Fatal(err)
	}
	if rec.Before.Account.Throttles == 0 {
		t.Fatal("the plan given does not throttle; the test is wrong")
	}
	if !rec.Feasible || !rec.Result.PlanValid || rec.Result.Account.Throttles >= rec.Before.Account.Throttles {
		t.Fatalf("feasible %v, notes %q, problems %q, throttles %d (before %d)", rec.Feasible, rec.Notes, rec.Result.Problems, rec.Result.Account.Throttles, rec.Before.Account.Throttles)
	}
	if got := *rec.Plan.Functions["a"].Reserved; got != 10 {
		t.Errorf("a reserved %d, want 10", got)
	}
	// b:live's 30 environments start cold once each of 600 invocations
	// (5%): provisioned removes them.
	if got := rec.Plan.Functions["b"].Provisioned["live"]; got == 0 || rec.Result.Functions["b"].ColdShare > 0.01 {
		t.Errorf("b provisioned %d, cold share %v", got, rec.Result.Functions["b"].ColdShare)
	}
	var out bytes.Buffer
	if err := WritePlan(&out, rec.Plan); err != nil {
		t.Fatal(err)
	}
	if _, err := ParsePlan(out.Bytes()); err != nil {
		t.Errorf("the recommended plan does not parse: %v\n%s", err, out.String())
	}

	// With room for nobody: infeasible, explained.
	tight := plan(t, `{"account_limit": 100, "min_unreserved": 80, "invocation_rate": 0, "functions": {"a": {"reserved": 10}, "b": {"reserved": 10}}}`)
	rec, err = Recommend(tight, File(path), Targets{Throttle: 0.01, Cold: 1})
	if err != nil {
		t.Fatal(err)
	}
	if rec.Feasible || !strings.Contains(strings.Join(rec.Notes, "\n"), "infeasible: ") {
		t.Errorf("feasible %v, notes %q", rec.Feasible, rec.Notes)
	}
}

func TestResultJSONShape(t *testing.T) {
	r := run(t, plan(t, `{"functions": {"a": {"reserved": 1}}}`), "timestamp_ms,function,duration_ms\n0,a,10\n0,a,10\n")
	var buf bytes.Buffer
	if err := r.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	dec := json.NewDecoder(&buf)
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		t.Errorf("more than one JSON value")
	}
	a := m["functions"].(map[string]any)["a"].(map[string]any)
	for _, k := range []string{"invocations", "throttles", "peak_concurrency", "cold_starts", "throttle_share", "time_at_limit_ms", "throttles_by_reason"} {
		if _, ok := a[k]; !ok {
			t.Errorf("no %s in %v", k, a)
		}
	}
	if m["plan_valid"] != true || m["account"].(map[string]any)["peak_unreserved"] == nil {
		t.Errorf("%v", m)
	}
}
