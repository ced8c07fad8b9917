package invoke_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/lambdad/lambdad/internal/admission"
	"github.com/lambdad/lambdad/internal/awserr"
	"github.com/lambdad/lambdad/internal/control"
	"github.com/lambdad/lambdad/internal/execenv"
	"github.com/lambdad/lambdad/internal/invoke"
	"github.com/lambdad/lambdad/internal/lambdatest"
	"github.com/lambdad/lambdad/internal/store"
)

var ctx = context.Background()

// invoker is an Invoker over real parts: a store in a temporary directory,
// the control plane, admission fed from the store, and real environments
// running the Go test function.
type invoker struct {
	*invoke.Invoker
	ctl *control.Service
	adm *admission.Controller
}

func newInvoker(t *testing.T) *invoker {
	t.Helper()
	db, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	accts := admission.NewAccounts("123456789012", func(string) int { return 100 })
	adm := accts.For("123456789012")
	if err := db.Subscribe(control.AdmissionFeed(accts)); err != nil {
		t.Fatal(err)
	}
	ctl, err := control.New(control.Bolt(db), control.Options{Region: "us-east-1", AccountID: "123456789012", AccountConcurrency: 100, MinUnreserved: 10,
		Logger: lambdatest.Logger(t)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	envs, err := execenv.NewManager(execenv.Config{TempRoot: t.TempDir(), Logger: lambdatest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { envs.Close() })
	if err := db.Subscribe(control.RetireFeed(envs)); err != nil {
		t.Fatal(err)
	}
	iv := invoke.New(invoke.Parts{Region: "us-east-1", Account: "123456789012", Resolver: ctl, Admitter: accts, Runner: envs, Code: db, Logger: lambdatest.Logger(t)})
	return &invoker{Invoker: iv, ctl: ctl, adm: adm}
}

func (iv *invoker) create(t *testing.T, name string) {
	t.Helper()
	_, err := iv.ctl.CreateFunction(ctx, &control.CreateFunctionInput{FunctionName: name, Runtime: "provided.al2023", Handler: "bootstrap",
		Role: "arn:aws:iam::123456789012:role/r", Code: control.Code{ZipFile: lambdatest.GoFunction(t)}, Publish: true})
	if err != nil {
		t.Fatal(err)
	}
}

// inFlight is what admission counts as running now.
func (iv *invoker) inFlight() int { return iv.adm.Snapshot().InFlight }

func TestInvokeOutcomes(t *testing.T) {
	iv := newInvoker(t)
	iv.create(t, "f")
	iv.create(t, "zero")
	zero := 0
	if _, err := iv.ctl.PutFunctionConcurrency(ctx, "zero", &zero, nil); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range []struct {
		name      string
		req       invoke.Request
		status    int
		version   string
		errCode   awserr.Code
		reason    string
		funcError string
	}{
		{name: "runs $LATEST", req: invoke.Request{FunctionName: "f", Payload: []byte(`{"echo":1}`)}, status: http.StatusOK, version: "$LATEST"},
		{name: "runs a version", req: invoke.Request{FunctionName: "f", Qualifier: "1"}, status: http.StatusOK, version: "1"},
		{name: "runs by ARN", req: invoke.Request{FunctionName: "arn:aws:lambda:us-east-1:123456789012:function:f:1"}, status: http.StatusOK, version: "1"},
		{name: "dry run", req: invoke.Request{FunctionName: "f", Type: invoke.DryRun}, status: http.StatusNoContent, version: "$LATEST"},
		{name: "function error", req: invoke.Request{FunctionName: "f", Payload: []byte(`{"fail":"boom"}`)}, status: http.StatusOK, version: "$LATEST", funcError: "Unhandled"},
		{name: "not JSON", req: invoke.Request{FunctionName: "f", Payload: []byte(`{`)}, errCode: awserr.InvalidRequestContent},
		{name: "bad client context", req: invoke.Request{FunctionName: "f", ClientContext: "%%%"}, errCode: awserr.InvalidRequestContent},
		{name: "no such function", req: invoke.Request{FunctionName: "nope"}, errCode: awserr.ResourceNotFound},
		{name: "no such version", req: invoke.Request{FunctionName: "f", Qualifier: "9"}, errCode: awserr.ResourceNotFound},
		{name: "reservation 0 throttles", req: invoke.Request{FunctionName: "zero"}, errCode: awserr.TooManyRequests, reason: awserr.ReasonReservedFunctionConcurrentInvocationLimitExceeded},
	} {
		n++
		t.Run(c.name, func(t *testing.T) {
			c.req.RequestID = "00000000-0000-4000-8000-" + pad(n)
			res, err := iv.Invoke(ctx, &c.req)
			if c.errCode != "" {
				e, ok := awserr.As(err)
				if !ok || e.Code != c.errCode || (c.reason != "" && e.Reason != c.reason) {
					t.Fatalf("got %v, want %s %s", err, c.errCode, c.reason)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				if res.Status != c.status || res.ExecutedVersion != c.version || res.FunctionError != c.funcError {
					t.Fatalf("got %d %q %q, want %d %q %q", res.Status, res.ExecutedVersion, res.FunctionError, c.status, c.version, c.funcError)
				}
				if c.status == http.StatusOK && c.funcError == "" {
					var a struct{ Version string }
					if err := json.Unmarshal(res.Payload, &a); err != nil || a.Version != c.version {
						t.Fatalf("payload %s", res.Payload)
					}
				}
			}
			if n := iv.inFlight(); n != 0 {
				t.Fatalf("%d slots still held after the call", n)
			}
		})
	}
}

// TestWeightedAliasRunsBothVersions: an alias with a traffic split runs
// either version, reporting the one that ran.
func TestWeightedAliasRunsBothVersions(t *testing.T) {
	iv := newInvoker(t)
	iv.create(t, "f")
	timeout := 5
	if _, err := iv.ctl.UpdateFunctionConfiguration(ctx, &control.UpdateFunctionConfigurationInput{FunctionName: "f", Timeout: &timeout}); err != nil {
		t.Fatal(err)
	}
	if _, err := iv.ctl.PublishVersion(ctx, &control.PublishVersionInput{FunctionName: "f"}); err != nil {
		t.Fatal(err)
	}
	one := "1"
	if _, err := iv.ctl.CreateAlias(ctx, &control.AliasInput{FunctionName: "f", Name: "live", FunctionVersion: &one,
		RoutingConfig: &control.RoutingConfig{AdditionalVersionWeights: map[string]float64{"2": 0.5}}}); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for i := range 60 {
		res, err := iv.Invoke(ctx, &invoke.Request{FunctionName: "f", Qualifier: "live", RequestID: "00000000-0000-4000-8000-" + pad(i)})
		if err != nil {
			t.Fatal(err)
		}
		seen[res.ExecutedVersion]++
	}
	if seen["1"] == 0 || seen["2"] == 0 || len(seen) != 2 {
		t.Fatalf("a 50%% split ran %v", seen)
	}
}

func pad(i int) string {
	b := []byte("000000000000")
	for j := len(b) - 1; i > 0; j-- {
		b[j] = byte('0' + i%10)
		i /= 10
	}
	return string(b)
}

// slotStream is a Stream that records what it is given and how many slots
// admission counts while it is written to.
type slotStream struct {
	iv                   *invoker
	version, contentType string
	pieces               []string
	inFlight             []int
}

func (s *slotStream) Begin(version, contentType string) error {
	s.version, s.contentType = version, contentType
	return nil
}

func (s *slotStream) Write(p []byte) (int, error) {
	s.pieces = append(s.pieces, string(p))
	s.inFlight = append(s.inFlight, s.iv.inFlight())
	return len(p), nil
}

func (s *slotStream) Cancel() {}

// TestInvokeStreams: a streaming invocation hands the response to the
// Stream, with the version that runs, while its slot is held; the
// Response says it was streamed.
func TestInvokeStreams(t *testing.T) {
	iv := newInvoker(t)
	iv.create(t, "f")
	st := &slotStream{iv: iv}
	res, err := iv.Invoke(ctx, &invoke.Request{FunctionName: "f", Qualifier: "1", Payload: []byte(`{"echo":"s"}`),
		RequestID: "00000000-0000-4000-8000-000000000001", Stream: st})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != http.StatusOK || !res.Streamed || res.ContentType != "application/json" || len(res.Payload) != 0 || res.ExecutedVersion != "1" {
		t.Fatalf("Response %+v", res)
	}
	if st.version != "1" || st.contentType != "application/json" || len(st.pieces) != 1 || !strings.Contains(st.pieces[0], `"echo":"s"`) ||
		st.inFlight[0] != 1 {
		t.Fatalf("stream: %+v", st)
	}
	if n := iv.inFlight(); n != 0 {
		t.Fatalf("%d slots still held after the call", n)
	}
}

// TestTenantIsolation: a function with tenant isolation is refused an
// invocation without a tenant, and one without isolation an invocation
// with one, before admission (no slot is taken); the tenant given reaches
// the function, each in an environment of its own.
func TestTenantIsolation(t *testing.T) {
	iv := newInvoker(t)
	_, err := iv.ctl.CreateFunction(ctx, &control.CreateFunctionInput{FunctionName: "iso", Runtime: "provided.al2023", Handler: "bootstrap",
		Role: "arn:aws:iam::123456789012:role/r", Code: control.Code{ZipFile: lambdatest.GoFunction(t)}, Publish: true,
		TenancyConfig: &control.TenancyConfig{TenantIsolationMode: "PER_TENANT"}})
	if err != nil {
		t.Fatal(err)
	}
	iv.create(t, "plain")
	for _, c := range []struct{ fn, qualifier, tenant, arn string }{
		{"iso", "", "", "arn:aws:lambda:us-east-1:123456789012:function:iso"},
		{"iso", "1", "", "arn:aws:lambda:us-east-1:123456789012:function:iso:1"},
		{"plain", "", "blue", "arn:aws:lambda:us-east-1:123456789012:function:plain"},
	} {
		for _, typ := range []string{invoke.RequestResponse, invoke.DryRun} {
			_, err := iv.Invoke(ctx, &invoke.Request{FunctionName: c.fn, Qualifier: c.qualifier, Type: typ, TenantID: c.tenant, RequestID: "r"})
			e, ok := awserr.As(err)
			if !ok || e.Code != awserr.InvalidParameterValue || !strings.Contains(e.Message, "The function "+c.arn+" ") {
				t.Errorf("%s:%s %s with tenant %q: %v", c.fn, c.qualifier, typ, c.tenant, err)
			}
		}
	}
	if n := iv.inFlight(); n != 0 {
		t.Errorf("%d in flight after refusals", n)
	}
	pids := map[string]float64{}
	for _, tenant := range []string{"blue", "green", "blue"} {
		res, err := iv.Invoke(ctx, &invoke.Request{FunctionName: "iso", Type: invoke.RequestResponse, TenantID: tenant, RequestID: "r-" + tenant})
		if err != nil {
			t.Fatal(err)
		}
		var a map[string]any
		if err := json.Unmarshal(res.Payload, &a); err != nil || a["tenant_id"] != tenant {
			t.Fatalf("tenant %s: %s %v", tenant, res.Payload, err)
		}
		if p, seen := pids[tenant]; seen && p != a["pid"] {
			t.Errorf("%s ran in pid %v, not its warm %v", tenant, a["pid"], p)
		}
		pids[tenant] = a["pid"].(float64)
	}
	if pids["blue"] == pids["green"] {
		t.Errorf("blue and green shared pid %v", pids["blue"])
	}
}
