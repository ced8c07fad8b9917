package server_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/lambdad/lambdad/internal/lambdatest"
	"github.com/lambdad/lambdad/internal/server"
)

const role = "arn:aws:iam::123456789012:role/lambda-role"

var ctx = context.Background()

type node struct {
	*server.Node
	client *lambda.Client
	dir    string
}

func start(t *testing.T, opts server.Options) *node {
	t.Helper()
	if opts.DataDir == "" {
		opts.DataDir = t.TempDir()
	}
	opts.Listen = "127.0.0.1:0"
	if opts.Logger == nil {
		opts.Logger = lambdatest.Logger(t)
	}
	n, err := server.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := n.Close(c); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return &node{Node: n, client: lambdatest.Client(n.URL()), dir: opts.DataDir}
}

func clientFor(url string) *lambda.Client { return lambdatest.Client(url) }

func goFunctionInput(t testing.TB, name string) *lambda.CreateFunctionInput {
	return &lambda.CreateFunctionInput{
		FunctionName: aws.String(name),
		Runtime:      types.RuntimeProvidedal2023,
		Handler:      aws.String("bootstrap"),
		Role:         aws.String(role),
		Code:         &types.FunctionCode{ZipFile: lambdatest.GoFunction(t)},
	}
}

// createGo creates a function running testfn.
func (n *node) createGo(t *testing.T, name string, mutate ...func(*lambda.CreateFunctionInput)) {
	t.Helper()
	in := goFunctionInput(t, name)
	for _, m := range mutate {
		m(in)
	}
	if _, err := n.client.CreateFunction(ctx, in); err != nil {
		t.Fatalf("CreateFunction(%s): %v", name, err)
	}
}

func (n *node) reserve(t *testing.T, name string, r int32) {
	t.Helper()
	if _, err := n.client.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String(name), ReservedConcurrentExecutions: aws.Int32(r)}); err != nil {
		t.Fatal(err)
	}
}

type answer struct {
	RequestID string            `json:"request_id"`
	Version   string            `json:"version"`
	InitType  string            `json:"init_type"`
	PID       int               `json:"pid"`
	Echo      any               `json:"echo"`
	Inflight  int               `json:"inflight"`
	Env       map[string]string `json:"env"`
}

func (n *node) invoke(t *testing.T, name string, event string) (*lambda.InvokeOutput, error) {
	t.Helper()
	return n.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(name), Payload: []byte(event)})
}

func decode(t *testing.T, out *lambda.InvokeOutput) answer {
	t.Helper()
	var a answer
	if err := json.Unmarshal(out.Payload, &a); err != nil {
		t.Fatalf("payload %s: %v", out.Payload, err)
	}
	return a
}

func TestInvokeRunsRealCode(t *testing.T) {
	n := start(t, server.Options{})
	n.createGo(t, "echo", func(in *lambda.CreateFunctionInput) {
		in.Environment = &types.Environment{Variables: map[string]string{"GREETING": "hi", "AWS_REGION": "mars-1"}}
		in.Timeout = aws.Int32(2)
	})
	out, err := n.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("echo"), Payload: []byte(`{"echo":"x"}`), LogType: types.LogTypeTail})
	if err != nil {
		t.Fatal(err)
	}
	first := decode(t, out)
	if out.StatusCode != 200 || first.Echo != "x" || aws.ToString(out.ExecutedVersion) != "$LATEST" || out.FunctionError != nil {
		t.Fatalf("invoke: %d %+v %v %v", out.StatusCode, first, aws.ToString(out.ExecutedVersion), out.FunctionError)
	}
	if first.InitType != "on-demand" || first.RequestID == "" {
		t.Errorf("init type %q, request id %q", first.InitType, first.RequestID)
	}
	logs, _ := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult))
	for _, want := range []string{"START RequestId: " + first.RequestID, "END RequestId: " + first.RequestID, "REPORT RequestId: " + first.RequestID, "Init Duration:", "Billed Duration:"} {
		if !strings.Contains(string(logs), want) {
			t.Errorf("log tail lacks %q:\n%s", want, logs)
		}
	}
	// Warm: the same process serves the next invocation.
	out, err = n.invoke(t, "echo", `{"env":true}`)
	if err != nil {
		t.Fatal(err)
	}
	second := decode(t, out)
	if second.PID != first.PID {
		t.Errorf("second invocation ran in pid %d, want the warm %d", second.PID, first.PID)
	}
	env := second.Env
	if env["GREETING"] != "hi" || env["AWS_REGION"] != "us-east-1" || env["AWS_LAMBDA_FUNCTION_NAME"] != "echo" || env["TZ"] != ":UTC" {
		t.Errorf("environment: GREETING=%q AWS_REGION=%q (reserved wins) name=%q TZ=%q", env["GREETING"], env["AWS_REGION"], env["AWS_LAMBDA_FUNCTION_NAME"], env["TZ"])
	}
	for k := range env {
		if k == "HOME" || k == "USER" || strings.HasPrefix(k, "GO") {
			t.Errorf("the server's %s leaked into the function's environment", k)
		}
	}

	out, err = n.invoke(t, "echo", `{"fail":"boom"}`)
	if err != nil || aws.ToString(out.FunctionError) != "Unhandled" || !strings.Contains(string(out.Payload), `"errorMessage":"boom"`) {
		t.Errorf("function error: %v %q %s", err, aws.ToString(out.FunctionError), out.Payload)
	}
	out, err = n.invoke(t, "echo", `{"sleep_ms":3000}`)
	if err != nil || aws.ToString(out.FunctionError) != "Unhandled" {
		t.Fatalf("timeout: %v %v", err, out)
	}
	var te struct{ ErrorType, ErrorMessage string }
	json.Unmarshal(out.Payload, &te)
	if te.ErrorType != "Sandbox.Timedout" || !strings.HasSuffix(te.ErrorMessage, "Error: Task timed out after 2.00 seconds") {
		t.Errorf("timeout payload: %s", out.Payload)
	}
	out, err = n.invoke(t, "echo", `{"exit":3}`)
	if err != nil || !strings.Contains(string(out.Payload), `"errorType":"Runtime.ExitError"`) || !strings.Contains(string(out.Payload), "exit status 3") {
		t.Errorf("crash: %v %s", err, out.Payload)
	}

	dry, err := n.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("echo"), InvocationType: types.InvocationTypeDryRun})
	if err != nil || dry.StatusCode != 204 {
		t.Errorf("DryRun: %v %v", dry, err)
	}
	res := lambdatest.Do(t, "POST", n.URL()+"/2015-03-31/functions/echo/invocations", []byte("not json"), nil)
	if res.Status != 400 || res.Header.Get("X-Amzn-ErrorType") != "InvalidRequestContentException" {
		t.Errorf("body not JSON: %d %s", res.Status, res.Body)
	}
	big := []byte(`{"echo":"` + strings.Repeat("x", 6*1024*1024) + `"}`)
	res = lambdatest.Do(t, "POST", n.URL()+"/2015-03-31/functions/echo/invocations", big, nil)
	if res.Status != 413 || res.Header.Get("X-Amzn-ErrorType") != "RequestTooLargeException" {
		t.Errorf("over 6 MB: %d %s", res.Status, res.Body)
	}
	_, err = n.invoke(t, "nope", `{}`)
	if code, _ := lambdatest.APIError(t, err); code != "ResourceNotFoundException" {
		t.Errorf("missing function: %v", err)
	}
}

func TestVersionsAndAliasesRun(t *testing.T) {
	n := start(t, server.Options{})
	n.createGo(t, "f", func(in *lambda.CreateFunctionInput) { in.Publish = true })
	if _, err := n.client.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String("f"), Name: aws.String("live"), FunctionVersion: aws.String("1")}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, want string }{{"f", "$LATEST"}, {"f:1", "1"}, {"f:live", "1"}, {"arn:aws:lambda:us-east-1:123456789012:function:f:live", "1"}} {
		out, err := n.invoke(t, c.name, `{}`)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := aws.ToString(out.ExecutedVersion); got != c.want || decode(t, out).Version != c.want {
			t.Errorf("%s ran %q (function saw %q), want %q", c.name, got, decode(t, out).Version, c.want)
		}
	}
}

// throttleBody is the exact 429 body AWS sends.
func throttleBody(reason string) string {
	return `{"Type":"User","message":"Rate Exceeded.","Reason":"` + reason + `"}`
}

// storm invokes the targets at once, each event holding its slot for
// holdMS, and returns the answers and the raw throttle bodies.
func storm(t *testing.T, n *node, targets []string, holdMS int, inflightDir string) (answers []answer, throttles []string) {
	t.Helper()
	var mu sync.Mutex
	var wg sync.WaitGroup
	gate := make(chan struct{})
	event := fmt.Sprintf(`{"sleep_ms":%d,"inflight_dir":%q}`, holdMS, inflightDir)
	for _, target := range targets {
		wg.Go(func() {
			<-gate
			res := lambdatest.Do(t, "POST", n.URL()+"/2015-03-31/functions/"+target+"/invocations", []byte(event), nil)
			mu.Lock()
			defer mu.Unlock()
			switch res.Status {
			case 200:
				var a answer
				if err := json.Unmarshal(res.Body, &a); err != nil || res.Header.Get("X-Amz-Function-Error") != "" {
					t.Errorf("%s: %s", target, res.Body)
				}
				answers = append(answers, a)
			case 429:
				if res.Header.Get("Retry-After") != "" || res.Header.Get("X-Amzn-ErrorType") != "TooManyRequestsException" {
					t.Errorf("throttle headers: %v", res.Header)
				}
				throttles = append(throttles, string(res.Body))
			default:
				t.Errorf("%s: %d %s", target, res.Status, res.Body)
			}
		})
	}
	close(gate)
	wg.Wait()
	return answers, throttles
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func TestReservedStorm(t *testing.T) {
	n := start(t, server.Options{})
	n.createGo(t, "r", func(in *lambda.CreateFunctionInput) { in.Publish = true })
	if _, err := n.client.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String("r"), Name: aws.String("live"), FunctionVersion: aws.String("1")}); err != nil {
		t.Fatal(err)
	}
	const R = 3
	n.reserve(t, "r", R)
	// $LATEST, the version and the alias share the one pool of R.
	var targets []string
	for i := range 12 {
		targets = append(targets, []string{"r", "r:1", "r:live"}[i%3])
	}
	dir := t.TempDir()
	answers, throttles := storm(t, n, targets, 1500, dir)
	if len(answers) != R || len(throttles) != len(targets)-R {
		t.Fatalf("%d ran and %d were throttled, want %d and %d", len(answers), len(throttles), R, len(targets)-R)
	}
	for _, a := range answers {
		if a.Inflight > R {
			t.Errorf("the function saw %d in flight with a reservation of %d", a.Inflight, R)
		}
	}
	for _, b := range throttles {
		if b != throttleBody("ReservedFunctionConcurrentInvocationLimitExceeded") {
			t.Errorf("throttle body %s", b)
		}
	}
	if s := n.Admission().Snapshot(); s.UnreservedInFlight != 0 {
		t.Errorf("after the storm: %+v", s)
	}
	// Reservation 0 throttles everything.
	n.reserve(t, "r", 0)
	_, throttles = storm(t, n, repeat("r", 3), 10, t.TempDir())
	if len(throttles) != 3 {
		t.Errorf("reservation 0 let %d of 3 run", 3-len(throttles))
	}
}

func TestUnreservedPool(t *testing.T) {
	// A small account: L=6, minimum 2. h reserves 2, so the unreserved pool is 4.
	n := start(t, server.Options{AccountConcurrency: 6, MinUnreserved: new(2)})
	for _, name := range []string{"f", "g", "h"} {
		n.createGo(t, name)
	}
	n.reserve(t, "h", 2)
	var targets []string
	for i := range 8 {
		targets = append(targets, []string{"f", "g"}[i%2])
	}
	targets = append(targets, "h", "h")
	answers, throttles := storm(t, n, targets, 1500, t.TempDir())
	if len(answers) != 6 || len(throttles) != 4 {
		t.Fatalf("%d ran, %d throttled; want 4 unreserved + 2 reserved running and 4 throttled", len(answers), len(throttles))
	}
	for _, b := range throttles {
		if b != throttleBody("ConcurrentInvocationLimitExceeded") {
			t.Errorf("throttle body %s", b)
		}
	}
}

// invokeAll invokes the targets at once through the SDK client with event
// and returns the answers of those that ran and the Reasons of the throttled.
func invokeAll(t *testing.T, n *node, targets []string, event string) (answers []answer, reasons []string) {
	t.Helper()
	var mu sync.Mutex
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for _, target := range targets {
		wg.Go(func() {
			<-gate
			out, err := n.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(target), Payload: []byte(event)})
			mu.Lock()
			defer mu.Unlock()
			var throttle *types.TooManyRequestsException
			switch {
			case err == nil && out.FunctionError == nil:
				var a answer
				if err := json.Unmarshal(out.Payload, &a); err != nil {
					t.Errorf("%s: payload %s: %v", target, out.Payload, err)
				}
				answers = append(answers, a)
			case errors.As(err, &throttle):
				if st := lambdatest.Status(t, err); st != 429 {
					t.Errorf("%s: throttle with status %d", target, st)
				}
				reasons = append(reasons, string(throttle.Reason))
			case err != nil:
				t.Errorf("%s: %v", target, err)
			default:
				t.Errorf("%s: function error %s: %s", target, aws.ToString(out.FunctionError), out.Payload)
			}
		})
	}
	close(gate)
	wg.Wait()
	return answers, reasons
}

// waitInHandler waits until n invocations of testfn are inside their
// handlers, as counted in its inflight_dir.
func waitInHandler(t *testing.T, dir string, n int) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d invocations entered their handler", len(entries), n)
		}
	}
}

// TestReservationGoneWhileItsInvocationsRun: with L = 12 and M = 10, a
// reserves 2 and runs 2 invocations; its reservation goes while they run
// (DeleteFunctionConcurrency, or DeleteFunction with the function). The
// unreserved pool is 12 again at once, but a's 2 still count against the
// account until they end: of 12 parallel invocations of b, 10 run, and no
// handler ever sees more than 12 running.
func TestReservationGoneWhileItsInvocationsRun(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"DeleteFunctionConcurrency", "DeleteFunction"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			n := start(t, server.Options{AccountConcurrency: 12, MinUnreserved: new(10)})
			n.createGo(t, "a")
			n.createGo(t, "b")
			n.reserve(t, "a", 2)
			dir := t.TempDir()
			var running sync.WaitGroup
			aErrs := make([]error, 2)
			for i := range aErrs {
				running.Go(func() {
					_, aErrs[i] = n.invoke(t, "a", fmt.Sprintf(`{"sleep_ms":2500,"inflight_dir":%q}`, dir))
				})
			}
			waitInHandler(t, dir, 2)
			var err error
			if how == "DeleteFunction" {
				_, err = n.client.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("a")})
			} else {
				_, err = n.client.DeleteFunctionConcurrency(ctx, &lambda.DeleteFunctionConcurrencyInput{FunctionName: aws.String("a")})
			}
			if err != nil {
				t.Fatal(err)
			}
			settings, err := n.client.GetAccountSettings(ctx, &lambda.GetAccountSettingsInput{})
			if err != nil {
				t.Fatal(err)
			}
			if u := aws.ToInt32(settings.AccountLimit.UnreservedConcurrentExecutions); u != 12 {
				t.Errorf("UnreservedConcurrentExecutions = %d, want 12", u)
			}

			answers, reasons := invokeAll(t, n, repeat("b", 12), fmt.Sprintf(`{"sleep_ms":300,"inflight_dir":%q}`, dir))
			if len(answers) != 10 || len(reasons) != 2 {
				t.Errorf("with a's 2 running, %d of 12 invocations of b ran and %d were throttled; want 10 and 2", len(answers), len(reasons))
			}
			for _, r := range reasons {
				if r != "ConcurrentInvocationLimitExceeded" {
					t.Errorf("throttle Reason %q, want ConcurrentInvocationLimitExceeded", r)
				}
			}
			for _, a := range answers {
				if a.Inflight > 12 {
					t.Errorf("a handler saw %d invocations running, account limit 12", a.Inflight)
				}
			}
			running.Wait()
			for _, err := range aErrs {
				if err != nil {
					t.Errorf("a's invocation: %v", err)
				}
			}

			// With a's invocations over, b has the whole account.
			answers, reasons = invokeAll(t, n, repeat("b", 12), `{"sleep_ms":300}`)
			if len(answers) != 12 {
				t.Errorf("after a's invocations ended, %d of 12 invocations of b ran (throttled: %v)", len(answers), reasons)
			}
		})
	}
}

// TestFunctionCreatedAgainWhileTheOldOneRuns: a function deleted while its
// invocation runs, created again under the same name and reserved 1, is
// throttled by its reservation until the old invocation ends: it still runs
// under that name.
func TestFunctionCreatedAgainWhileTheOldOneRuns(t *testing.T) {
	t.Parallel()
	n := start(t, server.Options{AccountConcurrency: 12, MinUnreserved: new(10)})
	// The held invocation must outlast the slowest machine: the default
	// 3 s timeout would end it before the test is done.
	n.createGo(t, "a", func(in *lambda.CreateFunctionInput) { in.Timeout = aws.Int32(120) })
	n.reserve(t, "a", 1)
	dir := t.TempDir()
	done := make(chan error, 1)
	go func() {
		// Held until the test is done with the new function, however
		// slow the machine.
		out, err := n.invoke(t, "a", fmt.Sprintf(`{"wait_for":%q,"inflight_dir":%q}`, filepath.Join(dir, "release"), dir))
		if err == nil && out.FunctionError != nil {
			err = fmt.Errorf("function error %s: %s", *out.FunctionError, out.Payload)
		}
		done <- err
	}()
	waitInHandler(t, dir, 1)
	if _, err := n.client.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("a")}); err != nil {
		t.Fatal(err)
	}
	n.createGo(t, "a")
	n.reserve(t, "a", 1)

	_, err := n.invoke(t, "a", `{}`)
	var throttle *types.TooManyRequestsException
	if !errors.As(err, &throttle) || lambdatest.Status(t, err) != 429 {
		t.Fatalf("invoke while the deleted function's invocation runs: %v, want a 429 TooManyRequestsException", err)
	}
	if throttle.Reason != types.ThrottleReasonReservedFunctionConcurrentInvocationLimitExceeded {
		t.Errorf("Reason %q, want ReservedFunctionConcurrentInvocationLimitExceeded", throttle.Reason)
	}
	if err := os.WriteFile(filepath.Join(dir, "release"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Errorf("the old invocation: %v", err)
	}
	out, err := n.invoke(t, "a", `{}`)
	if err != nil || out.StatusCode != 200 {
		t.Fatalf("invoke after the old invocation ended: %v", err)
	}
}

// TestSlotsNeverLeak drives invocations down every path that ends one
// (success, function error, timeout, crash, an abandoned client) and checks
// that every pool is back to zero in use.
func TestSlotsNeverLeak(t *testing.T) {
	n := start(t, server.Options{AccountConcurrency: 50, MinUnreserved: new(10)})
	n.createGo(t, "leaky", func(in *lambda.CreateFunctionInput) { in.Timeout = aws.Int32(1) })
	n.createGo(t, "reserved", func(in *lambda.CreateFunctionInput) { in.Timeout = aws.Int32(1) })
	n.reserve(t, "reserved", 4)
	events := []string{`{}`, `{"fail":"x"}`, `{"sleep_ms":1500}`, `{"exit":1}`, `{"panic":true}`, `{"sleep_ms":200}`}
	count := 360
	if os.Getenv("LAMBDAD_SOAK") != "" {
		count = 3000
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range count {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			name := []string{"leaky", "reserved"}[i%2]
			ev := events[i%len(events)]
			if i%7 == 0 {
				// A client that gives up mid-invocation.
				c, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
				defer cancel()
				n.client.Invoke(c, &lambda.InvokeInput{FunctionName: aws.String(name), Payload: []byte(`{"sleep_ms":500}`)})
				return
			}
			n.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(name), Payload: []byte(ev)})
		})
	}
	wg.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := n.Admission().Snapshot()
		busy := s.UnreservedInFlight
		for _, f := range s.Functions {
			busy += f.OnDemandInFlight + f.ProvisionedInFlight
		}
		if busy == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slots still in use after every invocation ended: %+v", s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestInvocationRate checks the request rate on the wire: with one request
// per second per unit of concurrency, a function reserved at 1 takes one
// request at once and refuses the next with AWS's rate reason, as does an
// unreserved one in an account of 2 on its third.
func TestInvocationRate(t *testing.T) {
	n := start(t, server.Options{AccountConcurrency: 2, MinUnreserved: new(0), InvocationRate: new(1)})
	n.createGo(t, "r")
	n.createGo(t, "u")
	n.reserve(t, "r", 1)
	post := func(name string) *lambdatest.Response {
		return lambdatest.Do(t, "POST", n.URL()+"/2015-03-31/functions/"+name+"/invocations", []byte(`{}`), nil)
	}
	// Each environment started first: a cold start can take longer than a
	// second on a slow machine, long enough for the pace to allow another
	// request. After a second's rest each function has its burst again.
	for _, name := range []string{"r", "u"} {
		if r := post(name); r.Status != 200 {
			t.Fatalf("warming %s: %d %s", name, r.Status, r.Body)
		}
	}
	time.Sleep(1100 * time.Millisecond)
	if r := post("r"); r.Status != 200 {
		t.Fatalf("first request of r: %d %s", r.Status, r.Body)
	}
	if r := post("r"); r.Status != 429 || string(r.Body) != throttleBody("ReservedFunctionInvocationRateLimitExceeded") {
		t.Errorf("second request of r: %d %s", r.Status, r.Body)
	}
	for i := range 2 {
		if r := post("u"); r.Status != 200 {
			t.Fatalf("request %d of u: %d %s", i+1, r.Status, r.Body)
		}
	}
	if r := post("u"); r.Status != 429 || string(r.Body) != throttleBody("FunctionInvocationRateLimitExceeded") {
		t.Errorf("third request of u: %d %s", r.Status, r.Body)
	}
	if s := n.Admission().Snapshot(); s.Throttles["ReservedFunctionInvocationRateLimitExceeded"] != 1 || s.Throttles["FunctionInvocationRateLimitExceeded"] != 1 {
		t.Errorf("throttles: %v", s.Throttles)
	}
}

// TestCollectionPathsWithTrailingSlash: the collections answer with a
// trailing slash too, as AWS's do and as older SDKs' models send them.
func TestCollectionPathsWithTrailingSlash(t *testing.T) {
	n := start(t, server.Options{})
	n.createGo(t, "f")
	for path, field := range map[string]string{
		"/2015-03-31/functions/":             "Functions",
		"/2015-03-31/event-source-mappings/": "EventSourceMappings",
		"/2018-10-31/layers/":                "Layers",
	} {
		res := lambdatest.Do(t, "GET", n.URL()+path, nil, nil)
		if res.Status != 200 {
			t.Errorf("GET %s: %d %s", path, res.Status, res.Body)
			continue
		}
		if _, ok := res.JSON(t)[field]; !ok {
			t.Errorf("GET %s: no %s in %s", path, field, res.Body)
		}
	}
}
