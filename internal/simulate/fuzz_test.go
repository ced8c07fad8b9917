package simulate

import (
	"strings"
	"testing"
)

// FuzzTrace feeds the trace reader arbitrary text: it must answer with
// invocations or an error naming a line, never panic, and never emit
// invocations out of time order.
func FuzzTrace(f *testing.F) {
	f.Add("timestamp_ms,function,duration_ms,init_ms\n0,a,100,50\n10,a:live,100\n")
	f.Add(`{"timestamp_ms": 1.5, "function": "a", "duration_ms": 2}` + "\n")
	f.Add("second,function,requests,mean_duration_ms\n0,a,4,300\n0,b,2,300\n")
	f.Add(`{"second": 3, "function": "a", "requests": 2, "mean_duration_ms": 1}` + "\n")
	f.Fuzz(func(t *testing.T, s string) {
		tr := NewTrace(strings.NewReader(s))
		var inv Invocation
		last := int64(-1)
		for n := 0; n < 10000; n++ {
			ok, err := tr.Next(&inv)
			if err != nil {
				if !strings.HasPrefix(err.Error(), "trace") {
					t.Fatalf("error %q does not say it is the trace's", err)
				}
				return
			}
			if !ok {
				return
			}
			if inv.At < last || inv.Duration < 0 || inv.Init < 0 || inv.Function == "" {
				t.Fatalf("bad invocation %+v after %d", inv, last)
			}
			last = inv.At
		}
	})
}

// FuzzPlan feeds the plan parser arbitrary bytes; a plan it accepts must
// check and simulate without a panic.
func FuzzPlan(f *testing.F) {
	f.Add([]byte(`{"account_limit": 1000, "min_unreserved": 100, "functions": {"a": {"reserved": 2, "provisioned": {"live": 1}}}}`))
	f.Add([]byte(`{"functions": {"a": {"provisioned": {"$LATEST": 0}}}, "invocation_rate": 0, "scaling_rate": 5}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePlan(b)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "plan: ") {
				t.Fatalf("error %q does not say it is the plan's", err)
			}
			return
		}
		p.Problems()
		if _, err := RunReader(p, strings.NewReader("timestamp_ms,function,duration_ms\n0,a,1\n0,a:live,1\n"), Options{Chart: true}); err != nil {
			t.Fatal(err)
		}
	})
}
