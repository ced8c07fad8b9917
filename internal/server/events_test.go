package server_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/lambdad/lambdad/internal/lambdatest"
	"github.com/lambdad/lambdad/internal/server"
)

// recording makes testfn write every event it receives into dir.
func recording(dir string) func(*lambda.CreateFunctionInput) {
	return func(in *lambda.CreateFunctionInput) {
		in.Environment = &types.Environment{Variables: map[string]string{"RECORD_DIR": dir}}
	}
}

// records waits until dir holds at least n events and returns them.
func records(t *testing.T, dir string, n int, within time.Duration) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
		if len(files) >= n {
			var out []map[string]any
			whole := true
			for _, f := range files {
				b, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				var m map[string]any
				if err := json.Unmarshal(b, &m); err != nil {
					// The function is still writing it: read it again.
					whole = false
					if time.Now().After(deadline) {
						t.Fatalf("%s: %s", f, b)
					}
					break
				}
				out = append(out, m)
			}
			if whole {
				return out
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events arrived in %v", len(files), n, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (n *node) send(t *testing.T, name, payload string) {
	t.Helper()
	out, err := n.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(name), InvocationType: types.InvocationTypeEvent, Payload: []byte(payload)})
	if err != nil || out.StatusCode != 202 {
		t.Fatalf("Event invoke of %s: %v %v", name, out, err)
	}
}

func TestEventsRun(t *testing.T) {
	n := start(t, server.Options{})
	dir := t.TempDir()
	n.createGo(t, "worker", recording(dir))
	for i := range 20 {
		n.send(t, "worker", `{"echo":`+string(rune('0'+i%10))+`}`)
	}
	records(t, dir, 20, 20*time.Second)

	res := lambdatest.Do(t, "POST", n.URL()+"/2014-11-13/functions/worker/invoke-async", []byte(`{"legacy":true}`), nil)
	if res.Status != 202 {
		t.Errorf("InvokeAsync: %d %s", res.Status, res.Body)
	}
	records(t, dir, 21, 10*time.Second)
	big := []byte(`{"x":"` + strings.Repeat("x", 1048576) + `"}`)
	res = lambdatest.Do(t, "POST", n.URL()+"/2015-03-31/functions/worker/invocations", big, map[string]string{"X-Amz-Invocation-Type": "Event"})
	if res.Status != 413 || res.Header.Get("X-Amzn-ErrorType") != "RequestTooLargeException" {
		t.Errorf("event over 1 MB: %d %s", res.Status, res.Body)
	}
	_, err := n.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("absent"), InvocationType: types.InvocationTypeEvent})
	if code, _ := lambdatest.APIError(t, err); code != "ResourceNotFoundException" {
		t.Errorf("event for a missing function: %v", err)
	}
	stats := lambdatest.Do(t, "GET", n.URL()+"/lambdad/events/stats", nil, nil).JSON(t)
	if stats["AsyncEventsReceived"] != float64(21) {
		t.Errorf("stats: %v", stats)
	}
}

func TestZeroReservationGoesToOnFailure(t *testing.T) {
	n := start(t, server.Options{})
	destDir := t.TempDir()
	n.createGo(t, "dest", recording(destDir))
	n.createGo(t, "stopped", recording(t.TempDir()))
	n.reserve(t, "stopped", 0)
	_, err := n.client.PutFunctionEventInvokeConfig(ctx, &lambda.PutFunctionEventInvokeConfigInput{
		FunctionName: aws.String("stopped"),
		DestinationConfig: &types.DestinationConfig{OnFailure: &types.OnFailure{
			Destination: aws.String("arn:aws:lambda:us-east-1:123456789012:function:dest")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	n.send(t, "stopped", `{"order":42}`)
	rec := records(t, destDir, 1, 10*time.Second)[0]
	rc, _ := rec["requestContext"].(map[string]any)
	if rec["version"] != "1.0" || rc["condition"] != "ZeroReservedConcurrency" || rc["approximateInvokeCount"] != float64(0) ||
		rc["functionArn"] != "arn:aws:lambda:us-east-1:123456789012:function:stopped:$LATEST" || rc["requestId"] == "" {
		t.Errorf("record: %v", rec)
	}
	if p, _ := rec["requestPayload"].(map[string]any); p["order"] != float64(42) {
		t.Errorf("requestPayload: %v", rec["requestPayload"])
	}
	if _, ok := rec["responseContext"]; ok {
		t.Errorf("a record of an event that never ran has a responseContext: %v", rec)
	}
	if ts, _ := rec["timestamp"].(string); !strings.HasSuffix(ts, "Z") {
		t.Errorf("timestamp %q", ts)
	}
}

// deadLetters reads the dead-letter list through the HTTP API.
func (n *node) deadLetters(t *testing.T) []deadLetter {
	t.Helper()
	var letters struct{ DeadLetters []deadLetter }
	res := lambdatest.Do(t, "GET", n.URL()+"/lambdad/events/dead-letters", nil, nil)
	if err := json.Unmarshal(res.Body, &letters); err != nil {
		t.Fatalf("dead letters: %d %s", res.Status, res.Body)
	}
	return letters.DeadLetters
}

type deadLetter struct {
	Seq    uint64
	Record struct {
		RequestContext struct {
			Condition              string
			ApproximateInvokeCount int
		}
		ResponseContext struct{ FunctionError string }
	}
}

// waitDeadLetter waits until the dead-letter list holds one letter that
// is not old, and returns it.
func (n *node) waitDeadLetter(t *testing.T, old uint64) deadLetter {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if dls := n.deadLetters(t); len(dls) == 1 && dls[0].Seq != old {
			return dls[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no dead letter: %+v", n.deadLetters(t))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFunctionErrorGoesToDeadLetters runs a real function that fails, with
// no retries (the retry rules are tested in internal/events, on virtual
// time), to the dead-letter list, and replays it through the HTTP API.
func TestFunctionErrorGoesToDeadLetters(t *testing.T) {
	n := start(t, server.Options{})
	n.createGo(t, "flaky")
	if _, err := n.client.PutFunctionEventInvokeConfig(ctx, &lambda.PutFunctionEventInvokeConfigInput{
		FunctionName: aws.String("flaky"), MaximumRetryAttempts: aws.Int32(0)}); err != nil {
		t.Fatal(err)
	}
	n.send(t, "flaky", `{"fail":"always"}`)
	d := n.waitDeadLetter(t, 0)
	if d.Record.RequestContext.Condition != "RetriesExhausted" || d.Record.RequestContext.ApproximateInvokeCount != 1 || d.Record.ResponseContext.FunctionError != "Unhandled" {
		t.Errorf("dead letter: %+v", d)
	}
	// Replaying runs it again, and it fails again.
	res := lambdatest.Do(t, "POST", n.URL()+"/lambdad/events/dead-letters/"+jsonNumber(d.Seq)+"/replay", nil, nil)
	if res.Status != 200 {
		t.Fatalf("replay: %d %s", res.Status, res.Body)
	}
	if again := n.waitDeadLetter(t, d.Seq); again.Record.ResponseContext.FunctionError != "Unhandled" {
		t.Errorf("dead letter of the replayed event: %+v", again)
	}
}

func jsonNumber(n uint64) string { b, _ := json.Marshal(n); return string(b) }

func TestBusyFunctionDoesNotStarveOthers(t *testing.T) {
	n := start(t, server.Options{AsyncWorkers: 4})
	busyDir, quickDir := t.TempDir(), t.TempDir()
	n.createGo(t, "busy", func(in *lambda.CreateFunctionInput) {
		recording(busyDir)(in)
		in.Timeout = aws.Int32(120)
	})
	n.createGo(t, "quick", recording(quickDir))
	// busy's events hold every worker until the test lets them go: quick's
	// event must run meanwhile, however slow the machine.
	release := filepath.Join(t.TempDir(), "release")
	for range 12 {
		n.send(t, "busy", fmt.Sprintf(`{"wait_for":%q}`, release))
	}
	records(t, busyDir, 4, 30*time.Second)
	n.send(t, "quick", `{}`)
	records(t, quickDir, 1, 30*time.Second)
	if err := os.WriteFile(release, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	records(t, busyDir, 12, 30*time.Second)
}

func TestEventInvokeConfigAPI(t *testing.T) {
	n := start(t, server.Options{})
	n.createGo(t, "f", func(in *lambda.CreateFunctionInput) { in.Publish = true })
	_, err := n.client.GetFunctionEventInvokeConfig(ctx, &lambda.GetFunctionEventInvokeConfigInput{FunctionName: aws.String("f")})
	if code, msg := lambdatest.APIError(t, err); code != "ResourceNotFoundException" ||
		msg != "The function arn:aws:lambda:us-east-1:123456789012:function:f:$LATEST doesn't have an EventInvokeConfig" {
		t.Errorf("Get with none: %s %s", code, msg)
	}
	put, err := n.client.PutFunctionEventInvokeConfig(ctx, &lambda.PutFunctionEventInvokeConfigInput{
		FunctionName: aws.String("f"), Qualifier: aws.String("1"), MaximumEventAgeInSeconds: aws.Int32(120), MaximumRetryAttempts: aws.Int32(0)})
	if err != nil || aws.ToString(put.FunctionArn) != "arn:aws:lambda:us-east-1:123456789012:function:f:1" || aws.ToInt32(put.MaximumEventAgeInSeconds) != 120 || put.LastModified == nil {
		t.Fatalf("Put: %+v %v", put, err)
	}
	upd, err := n.client.UpdateFunctionEventInvokeConfig(ctx, &lambda.UpdateFunctionEventInvokeConfigInput{
		FunctionName: aws.String("f"), Qualifier: aws.String("1"), MaximumRetryAttempts: aws.Int32(2)})
	if err != nil || aws.ToInt32(upd.MaximumEventAgeInSeconds) != 120 || aws.ToInt32(upd.MaximumRetryAttempts) != 2 {
		t.Fatalf("Update keeps what it does not name: %+v %v", upd, err)
	}
	list, err := n.client.ListFunctionEventInvokeConfigs(ctx, &lambda.ListFunctionEventInvokeConfigsInput{FunctionName: aws.String("f")})
	if err != nil || len(list.FunctionEventInvokeConfigs) != 1 {
		t.Fatalf("List: %+v %v", list, err)
	}
	if _, err := n.client.DeleteFunctionEventInvokeConfig(ctx, &lambda.DeleteFunctionEventInvokeConfigInput{FunctionName: aws.String("f"), Qualifier: aws.String("1")}); err != nil {
		t.Fatal(err)
	}
	res := lambdatest.Do(t, "PUT", n.URL()+"/2019-09-25/functions/f/event-invoke-config", []byte(`{"MaximumRetryAttempts":3}`), nil)
	if res.Status != 400 || res.Header.Get("X-Amzn-ErrorType") != "ValidationException" {
		t.Errorf("MaximumRetryAttempts 3: %d %s", res.Status, res.Body)
	}
}
