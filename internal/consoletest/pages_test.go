package consoletest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/chromedp/chromedp"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/lambdad/lambdad/internal/server"
)

func rowCount(t *testing.T, ctx context.Context, sel string) int {
	t.Helper()
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll(%q).length`, sel)))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestConsolePages: the functions list pages and searches, a function's
// provisioned configurations and recent log, and the dead-letter list
// with replay.
func TestConsolePages(t *testing.T) {
	n, client := node(t, server.Options{})
	bg := context.Background()
	for i := range 120 {
		createShell(t, client, fmt.Sprintf("fill-%03d", i))
	}
	createGo(t, client, "orders")
	createShell(t, client, "zero")
	ctx := browser(t)
	dir := shots(t)

	run(t, ctx, "open the console", chromedp.Navigate(n.URL()+"/"), chromedp.WaitVisible(chromedp.CSS(`#functions tbody tr`)))
	if got, rows := textOf(t, ctx, "#functions caption"), rowCount(t, ctx, "#functions tbody tr"); got != "Functions 1–50" || rows != 50 {
		t.Errorf("the first page: %q with %d rows", got, rows)
	}
	clickLink(t, ctx, "Next page")
	waitText(t, ctx, "#functions caption", "Functions 51–100", 5*time.Second)
	if got := textOf(t, ctx, "#functions tbody tr th"); got != "fill-050" {
		t.Errorf("the second page starts at %q", got)
	}
	clickLink(t, ctx, "Next page")
	waitText(t, ctx, "#functions caption", "Functions 101–122", 5*time.Second)
	clickLink(t, ctx, "Previous page")
	waitText(t, ctx, "#functions caption", "Functions 51–100", 5*time.Second)
	enter(t, ctx, "Search functions by name", "FILL-11")
	clickButton(t, ctx, "Search")
	waitText(t, ctx, "#functions caption", "Functions 1–10 matching “FILL-11”", 5*time.Second)
	screenshot(t, ctx, dir, "functions-search")
	checkAccessible(t, ctx, "functions-search")

	// A provisioned configuration on version 1, shown with its status.
	if _, err := client.PublishVersion(bg, &lambda.PublishVersionInput{FunctionName: aws.String("orders")}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.PutProvisionedConcurrencyConfig(bg, &lambda.PutProvisionedConcurrencyConfigInput{
		FunctionName: aws.String("orders"), Qualifier: aws.String("1"), ProvisionedConcurrentExecutions: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		out, err := client.GetProvisionedConcurrencyConfig(bg, &lambda.GetProvisionedConcurrencyConfigInput{FunctionName: aws.String("orders"), Qualifier: aws.String("1")})
		if err == nil && out.Status == types.ProvisionedConcurrencyStatusEnumReady {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the provisioned configuration is not READY: %v %v", out, err)
		}
	}
	if _, err := client.Invoke(bg, &lambda.InvokeInput{FunctionName: aws.String("orders"), Payload: []byte(`{"echo":"hello from the test"}`)}); err != nil {
		t.Fatal(err)
	}
	run(t, ctx, "open orders", chromedp.Navigate(n.URL()+"/#/functions/orders"), chromedp.WaitVisible(chromedp.CSS(`h1`)))
	clickLink(t, ctx, "Configuration")
	clickLink(t, ctx, "Concurrency")
	run(t, ctx, "the provisioned configurations", chromedp.WaitVisible(chromedp.CSS(`#provisioned tbody tr`)))
	cells, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#provisioned tbody tr > *')].map(c => c.textContent)`))
	if err != nil || strings.Join(cells, "|") != "1|Version|1|1|1|READY" {
		t.Errorf("the provisioned configurations read %q (%v)", cells, err)
	}
	screenshot(t, ctx, dir, "function-provisioned")
	checkAccessible(t, ctx, "function-provisioned")
	clickLink(t, ctx, "Logs")
	run(t, ctx, "the log", chromedp.WaitVisible(chromedp.CSS(`#log`)))
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(textOf(t, ctx, "#log"), "REPORT RequestId"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the log reads %q", textOf(t, ctx, "#log"))
		}
		clickButton(t, ctx, "Refresh")
	}
	screenshot(t, ctx, dir, "function-logs")
	checkAccessible(t, ctx, "function-logs")

	// Reservation 0 sends an event straight to the dead letters.
	if _, err := client.PutFunctionConcurrency(bg, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("zero"), ReservedConcurrentExecutions: aws.Int32(0)}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Invoke(bg, &lambda.InvokeInput{FunctionName: aws.String("zero"), InvocationType: types.InvocationTypeEvent, Payload: []byte(`{"n":1}`)}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); deadLetters(t, n.URL()) == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no dead letter")
		}
	}
	clickLink(t, ctx, "Dead letters")
	run(t, ctx, "the dead letters", chromedp.WaitVisible(chromedp.CSS(`#dead-letters tbody tr`)))
	row, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelector('#dead-letters tbody tr').cells].map(c => c.textContent)`))
	if err != nil || len(row) < 7 || row[1] != "zero" || row[4] != "ZeroReservedConcurrency" || row[6] != `{"n":1}` {
		t.Errorf("the dead letter reads %q (%v)", row, err)
	}
	clickButton(t, ctx, "Replay")
	run(t, ctx, "the replay", chromedp.WaitVisible(chromedp.CSS(`p.success`)))
	if got := textOf(t, ctx, "p.success"); !strings.HasPrefix(got, "Dead letter "+row[0]+" replayed as event ") {
		t.Errorf("after Replay: %q", got)
	}
	if got := textOf(t, ctx, "#dead-letters tbody tr td:last-child"); !strings.HasPrefix(got, "Replayed as event ") {
		t.Errorf("after Replay the row's action reads %q, want where the event went", got)
	}
	screenshot(t, ctx, dir, "dead-letters")

	// The scrape has the event: received, and dropped to the dead letters.
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
	for _, name := range []string{"lambdad_async_events_received_total", "lambdad_async_events_dropped_total"} {
		if got := seriesValue(fams[name], nil); got < 1 {
			t.Errorf("%s = %v after an event went to the dead letters", name, got)
		}
	}
	if fams["lambdad_async_event_age_seconds"] == nil {
		t.Error("no lambdad_async_event_age_seconds")
	}
	checkAccessible(t, ctx, "dead-letters")
}

func deadLetters(t *testing.T, url string) int {
	t.Helper()
	res, err := http.Get(url + "/lambdad/events/dead-letters")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var page struct{ DeadLetters []json.RawMessage }
	if err := json.NewDecoder(res.Body).Decode(&page); err != nil {
		t.Fatal(err)
	}
	return len(page.DeadLetters)
}
