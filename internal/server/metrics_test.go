package server_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/lambdad/lambdad/internal/lambdatest"
	"github.com/lambdad/lambdad/internal/server"
)

// scrape reads /lambdad/metrics with the Prometheus text parser.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	res := lambdatest.Do(t, "GET", url+"/lambdad/metrics", nil, nil)
	if res.Status != http.StatusOK {
		t.Fatalf("GET /lambdad/metrics: %d %s", res.Status, res.Body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(res.Body))
	if err != nil {
		t.Fatalf("the scrape does not parse: %v\n%s", err, res.Body)
	}
	return fams
}

// value is the value of the series of family name whose labels include
// want (name=value pairs); -1 when there is none.
func value(fams map[string]*dto.MetricFamily, name string, want ...string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
next:
	for _, m := range f.Metric {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(want); i += 2 {
			if labels[want[i]] != want[i+1] {
				continue next
			}
		}
		switch {
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

// TestMetricsAfterThrottles drives a known load (8 invocations at once of
// a function reserving 2, one failing invocation of another) and checks
// every figure the scrape reports against it, during and after.
func TestMetricsAfterThrottles(t *testing.T) {
	t.Parallel()
	n := start(t, server.Options{})
	n.createGo(t, "m")
	n.createGo(t, "u")
	n.reserve(t, "m", 2)

	dir := t.TempDir()
	done := make(chan struct{})
	var answers []answer
	var throttles []string
	go func() {
		defer close(done)
		answers, throttles = storm(t, n, repeat("m", 8), 1500, dir)
	}()
	waitInHandler(t, dir, 2)
	during := scrape(t, n.URL())
	<-done
	if len(answers) != 2 || len(throttles) != 6 {
		t.Fatalf("the load: %d ran, %d throttled; want 2 and 6", len(answers), len(throttles))
	}
	if out, err := n.invoke(t, "u", `{"fail":"on purpose"}`); err != nil || out.FunctionError == nil {
		t.Fatalf("the failing invocation: %v, %v", out, err)
	}
	after := scrape(t, n.URL())

	for _, c := range []struct {
		fams   map[string]*dto.MetricFamily
		name   string
		labels []string
		want   float64
	}{
		{during, "lambdad_concurrent_executions", []string{"function", "m", "resource", "m"}, 2},
		{during, "lambdad_account_concurrent_executions", nil, 2},
		{during, "lambdad_reserved_concurrency", []string{"function", "m"}, 2},
		{during, "lambdad_unreserved_concurrency_limit", nil, 998},
		{during, "lambdad_claimed_account_concurrency", nil, 2},
		{after, "lambdad_concurrent_executions", []string{"function", "m"}, 0},
		{after, "lambdad_throttles_total", []string{"function", "m", "reason", "ReservedFunctionConcurrentInvocationLimitExceeded"}, 6},
		{after, "lambdad_throttles_total", []string{"function", "m", "reason", "ConcurrentInvocationLimitExceeded"}, 0},
		{after, "lambdad_invocations_total", []string{"function", "m"}, 2},
		{after, "lambdad_errors_total", []string{"function", "m"}, 0},
		{after, "lambdad_invocations_total", []string{"function", "u"}, 1},
		{after, "lambdad_errors_total", []string{"function", "u"}, 1},
		{after, "lambdad_duration_seconds", nil, 3},
		{after, "lambdad_init_duration_seconds", nil, 3},
		{after, "lambdad_api_request_duration_seconds", []string{"operation", "Invoke"}, 9},
		{after, "lambdad_api_request_duration_seconds", []string{"operation", "PutFunctionConcurrency"}, 1},
		{after, "lambdad_async_events_received_total", nil, 0},
	} {
		if got := value(c.fams, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if fams := scrape(t, n.URL()); fams["go_goroutines"] == nil {
		t.Error("no Go runtime metrics")
	}

	// The console shows each function's recent log from the same node.
	logs := lambdatest.Do(t, "GET", n.URL()+"/lambdad/functions/u/logs?bytes=300", nil, nil)
	if logs.Status != 200 || !bytes.Contains(logs.Body, []byte("REPORT RequestId")) || len(logs.Body) > 300 {
		t.Errorf("u's log tail: %d %q", logs.Status, logs.Body)
	}
	if none := lambdatest.Do(t, "GET", n.URL()+"/lambdad/functions/nobody/logs", nil, nil); none.Status != 200 || len(none.Body) != 0 {
		t.Errorf("the log of a function that never ran: %d %q", none.Status, none.Body)
	}
}

func TestDebugEndpointsAreOffByDefault(t *testing.T) {
	t.Parallel()
	for _, on := range []bool{false, true} {
		t.Run(fmt.Sprint(on), func(t *testing.T) {
			n := start(t, server.Options{DebugEndpoints: on})
			res := lambdatest.Do(t, "GET", n.URL()+"/lambdad/debug/pprof/goroutine?debug=1", nil, nil)
			if on && (res.Status != 200 || !bytes.Contains(res.Body, []byte("goroutine profile"))) {
				t.Errorf("with DebugEndpoints: %d %.200s", res.Status, res.Body)
			}
			if !on && (res.Status == 200 || res.Header.Get("X-Amzn-ErrorType") == "") {
				t.Errorf("without DebugEndpoints: %d %.200s, want the API's unknown-operation error", res.Status, res.Body)
			}
		})
	}
}

// TestStreamsEndOnShutdown: an open server-sent event stream of the
// account picture neither outlives the node nor holds up its shutdown.
func TestStreamsEndOnShutdown(t *testing.T) {
	t.Parallel()
	n, err := server.Start(server.Options{Listen: "127.0.0.1:0", DataDir: t.TempDir(), Logger: lambdatest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.Get(n.URL() + "/lambdad/concurrency/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	first := make([]byte, 64)
	if k, err := res.Body.Read(first); err != nil || !bytes.HasPrefix(first[:k], []byte("event: picture\ndata: {")) {
		t.Fatalf("the first event: %q, %v", first[:k], err)
	}
	ended := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, res.Body)
		ended <- err
	}()
	c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := n.Close(c); err != nil {
		t.Fatalf("close with a stream open: %v", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("the shutdown took %v with a stream open", took)
	}
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the stream is still open after the node closed")
	}
}
