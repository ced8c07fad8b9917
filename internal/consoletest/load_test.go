package consoletest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/chromedp/chromedp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/lambdad/lambdad/internal/server"
)

// load sends the invocations at once, each holding its slot for holdMS,
// and counts the answers by status.
func load(url string, targets []string, holdMS int) (statuses map[int]int, errs []error) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	statuses = map[int]int{}
	for _, fn := range targets {
		wg.Go(func() {
			res, err := http.Post(url+"/2015-03-31/functions/"+fn+"/invocations", "application/json",
				bytes.NewReader(fmt.Appendf(nil, `{"sleep_ms":%d}`, holdMS)))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			statuses[res.StatusCode]++
		})
	}
	wg.Wait()
	return statuses, errs
}

// TestAccountPictureUnderLoad opens the account picture, runs a load
// (6 invocations at once of a function reserving 2, 3 of an unreserved
// one) and sees the pools' in-use and throttle numbers change within 2 s
// of its start, and fall back when it ends; then it scrapes
// /lambdad/metrics with the Prometheus text parser and compares it with
// what the load did.
func TestAccountPictureUnderLoad(t *testing.T) {
	n, client := node(t, server.Options{})
	createGo(t, client, "busy")
	createGo(t, client, "free")
	if _, err := client.PutFunctionConcurrency(context.Background(), &lambda.PutFunctionConcurrencyInput{
		FunctionName: aws.String("busy"), ReservedConcurrentExecutions: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	ctx := browser(t)
	dir := shots(t)
	run(t, ctx, "open the account picture", chromedp.Navigate(n.URL()+"/#/account"), chromedp.WaitVisible(chromedp.CSS(`#pool-r-busy`)))
	for sel, want := range map[string]string{
		"#pool-r-busy .capacity": "2", "#pool-r-busy .in-use": "0", "#pool-r-busy .throttles": "0",
		"#pool-unreserved .capacity": "998", "#pool-unreserved .in-use": "0",
	} {
		if got := textOf(t, ctx, sel); got != want {
			t.Errorf("before the load %s = %q, want %q", sel, got, want)
		}
	}

	start := time.Now()
	done := make(chan map[int]int)
	go func() {
		statuses, errs := load(n.URL(), []string{"busy", "busy", "busy", "busy", "busy", "busy", "free", "free", "free"}, 3000)
		for _, err := range errs {
			t.Error(err)
		}
		done <- statuses
	}()
	for _, c := range []struct{ sel, want string }{
		{"#pool-r-busy .in-use", "2"},
		{"#pool-r-busy .throttles", "4"},
		{"#pool-unreserved .in-use", "3"},
		{"#account-in-use", "5"},
	} {
		waitText(t, ctx, c.sel, c.want, time.Until(start.Add(2*time.Second)))
	}
	t.Logf("the picture showed the load %v after it started", time.Since(start).Round(time.Millisecond))
	run(t, ctx, "let the chart draw", chromedp.Sleep(600*time.Millisecond))
	screenshot(t, ctx, dir, "account-under-load")
	checkAccessible(t, ctx, "account-under-load")
	run(t, ctx, "narrow window", chromedp.EmulateViewport(420, 900), chromedp.Sleep(1200*time.Millisecond))
	screenshot(t, ctx, dir, "account-narrow")
	// In a narrow window nothing runs off the side and the charts' text
	// keeps a readable size.
	wide, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth - window.innerWidth`))
	if err != nil || wide > 0 {
		t.Errorf("in a 420 px window the page is %d px wider than the window (%v)", wide, err)
	}
	textPx, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`Math.min(...[...document.querySelectorAll('svg.chart text')].map((e) => e.getBoundingClientRect().height))`))
	if err != nil || textPx < 11 {
		t.Errorf("in a 420 px window the charts' text is %.1f px high (%v), want 11 or more", textPx, err)
	}
	checkAccessible(t, ctx, "account-narrow")
	run(t, ctx, "wide window", chromedp.EmulateViewport(1280, 1000))
	lines, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('svg.chart polyline').length`))
	if err != nil || lines < 2 {
		t.Errorf("the time charts draw %d lines (%v)", lines, err)
	}

	statuses := <-done
	if statuses[200] != 5 || statuses[429] != 4 {
		t.Fatalf("the load's answers: %v, want 5 × 200 and 4 × 429", statuses)
	}
	ended := time.Now()
	waitText(t, ctx, "#pool-r-busy .in-use", "0", 2*time.Second)
	waitText(t, ctx, "#pool-unreserved .in-use", "0", time.Until(ended.Add(2*time.Second)))
	screenshot(t, ctx, dir, "account-after-load")

	// Opened again, the page draws the last minutes from the server's
	// history at once, the load included.
	run(t, ctx, "leave and come back", chromedp.Navigate(n.URL()+"/#/functions"), chromedp.WaitVisible(chromedp.CSS(`#functions`)),
		chromedp.Navigate(n.URL()+"/#/account"), chromedp.WaitVisible(chromedp.CSS(`#pool-r-busy`)))
	points, err := chromedp.Run(ctx, chromedp.Evaluate[int](`(document.querySelector('svg.chart polyline')?.getAttribute('points') || '').split(' ').length`))
	if err != nil || points < 4 {
		t.Errorf("the reopened chart has %d points (%v), want the history's", points, err)
	}
	top, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelectorAll('svg.chart')[0].querySelectorAll('text')[0].textContent`))
	if err != nil || top != "3" {
		t.Errorf("the reopened concurrency chart's top is %q (%v), want the load's 3", top, err)
	}

	// The scrape agrees with the load.
	res, err := http.Get(n.URL() + "/lambdad/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"lambdad_throttles_total", map[string]string{"function": "busy", "reason": "ReservedFunctionConcurrentInvocationLimitExceeded"}, 4},
		{"lambdad_throttles_total", map[string]string{"function": "free", "reason": "ConcurrentInvocationLimitExceeded"}, 0},
		{"lambdad_invocations_total", map[string]string{"function": "busy"}, 2},
		{"lambdad_invocations_total", map[string]string{"function": "free"}, 3},
		{"lambdad_concurrent_executions", map[string]string{"function": "busy"}, 0},
		{"lambdad_account_concurrent_executions", nil, 0},
	} {
		if got := seriesValue(fams[c.name], c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}

// seriesValue is the value of the family's series with the labels; -1
// when there is none.
func seriesValue(f *dto.MetricFamily, labels map[string]string) float64 {
	if f == nil {
		return -1
	}
next:
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range labels {
			if have[k] != v {
				continue next
			}
		}
		if m.Counter != nil {
			return m.Counter.GetValue()
		}
		return m.Gauge.GetValue()
	}
	return -1
}
