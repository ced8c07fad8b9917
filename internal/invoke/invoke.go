// Package invoke runs one invocation end to end: it resolves the name to a
// version, takes a concurrency slot from admission, runs the event in an
// execution environment and gives the slot back exactly once, on every
// path. It owns no long-lived state: the unpacked code is the store's.
package invoke

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sort"
	"time"

	"github.com/lambdad/lambdad/internal/account"
	"github.com/lambdad/lambdad/internal/admission"
	"github.com/lambdad/lambdad/internal/awserr"
	"github.com/lambdad/lambdad/internal/execenv"
	"github.com/lambdad/lambdad/internal/function"
)

// Payload limits (AWS): 6 MB for a synchronous request and response.
const MaxSyncPayload = 6291456

// Invocation types.
const (
	RequestResponse = "RequestResponse"
	Event           = "Event"
	DryRun          = "DryRun"
)

// Request is one Invoke call as the API received it.
type Request struct {
	FunctionName string
	Qualifier    string
	Type         string
	LogTail      bool
	// ClientContext is the X-Amz-Client-Context header: base64 JSON.
	ClientContext string
	Payload       []byte
	// PayloadIsJSON says Payload is JSON lambdad wrote itself (a
	// function URL's event, an SQS batch) or checked already (a queued
	// event, when it was accepted): it is not scanned again.
	PayloadIsJSON bool
	RequestID     string
	// TenantID is the X-Amz-Tenant-Id header: the tenant an invocation of
	// a function with tenant isolation runs for ("" for none). It is
	// required by such a function and refused by any other, and its
	// environments serve that tenant only.
	TenantID string
	// Stream, when set, receives the response as the function sends it:
	// the caller reads a stream (InvokeWithResponseStream, a function URL
	// in RESPONSE_STREAM mode). Invoke returns once the response has
	// ended, so the invocation's slot is held until then.
	Stream Stream
}

// Stream receives a response as the function streams it: Begin once, when
// the response starts, with the version that runs and the Content-Type the
// function declared, then each piece as it arrives. Cancel cuts short a
// Write blocked on a caller that does not read (see runtimeapi.Stream).
// Nothing is called once Invoke has returned.
type Stream interface {
	Begin(version, contentType string) error
	Write(p []byte) (int, error)
	Cancel()
}

// Response is what the API answers.
type Response struct {
	Status          int
	ExecutedVersion string
	FunctionError   string
	// LogResult is base64 of the last 4 KB of the log, with LogTail.
	LogResult string
	Payload   []byte
	// Streamed is true when the response went to Request.Stream; Payload
	// then holds only an error document. ContentType is the one the
	// function declared.
	Streamed    bool
	ContentType string
}

// versionedStream tells a Stream the version that runs.
type versionedStream struct {
	Stream
	version string
}

func (v versionedStream) Begin(contentType string) error {
	return v.Stream.Begin(v.version, contentType)
}

// What an invocation needs, each from its one owner: the version a name
// resolves to (the control plane's resolve cache), a concurrency slot
// (admission), an environment to run it in (execenv) and the code's
// directory (the store).

// Resolver finds the configuration ref runs, and the alias when its
// qualifier is one.
type Resolver interface {
	ResolveTarget(ctx context.Context, ref function.Ref) (*function.Config, *function.Alias, error)
}

// Admitter admits an invocation of fn's target, or throttles it, by the
// rules of fn's account.
type Admitter interface {
	Acquire(fn function.Key, target string) (*admission.Slot, error)
}

// Runner runs one event in an environment of spec.
type Runner interface {
	Invoke(ctx context.Context, spec *execenv.Spec, req *execenv.Request) (*execenv.Result, error)
}

// Parts are what an Invoker is built from.
type Parts struct {
	// Region is the region in ARNs and in the environments.
	Region string
	// Account is the account of an invocation whose context names no
	// caller (see account.CallerOf): the server's own.
	Account  string
	Resolver Resolver
	Admitter Admitter
	Runner   Runner
	Code     execenv.CodeSource
	// Credentials gives environments their role's credentials; nil gives
	// none.
	Credentials execenv.CredentialSource
	// Observer hears of every invocation that ran; nil for none.
	Observer Observer
	Logger   *slog.Logger
}

// Invoker runs invocations.
type Invoker struct {
	region   string
	account  string
	resolver Resolver
	adm      Admitter
	envs     Runner
	code     execenv.CodeSource
	creds    execenv.CredentialSource
	observer Observer
	log      *slog.Logger
}

// New returns an invoker over its parts.
func New(p Parts) *Invoker {
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
	if p.Observer == nil {
		p.Observer = noObserver{}
	}
	return &Invoker{region: p.Region, account: p.Account, resolver: p.Resolver, adm: p.Admitter, envs: p.Runner, code: p.Code,
		creds: p.Credentials, observer: p.Observer, log: p.Logger}
}

// Invoke runs one synchronous invocation (or a DryRun).
// It acts in the account of the caller ctx carries.
func (iv *Invoker) Invoke(ctx context.Context, req *Request) (*Response, error) {
	names := iv.names(ctx)
	ref, err := names.ParseWithQualifier(req.FunctionName, req.Qualifier)
	if err != nil {
		return nil, err
	}
	cfg, alias, err := iv.resolver.ResolveTarget(ctx, ref)
	if err != nil {
		return nil, err
	}
	invokedARN := names.QualifiedARN(ref.Name, ref.Qualifier)
	if err := function.CheckTenant(cfg, invokedARN, req.TenantID); err != nil {
		return nil, err
	}
	if !req.PayloadIsJSON {
		if err := CheckPayload(req.Payload); err != nil {
			return nil, err
		}
	}
	clientContext := ""
	if req.ClientContext != "" {
		raw, err := base64.StdEncoding.DecodeString(req.ClientContext)
		if err != nil || !json.Valid(raw) {
			return nil, awserr.New(awserr.InvalidRequestContent, "Client context must be a valid Base64-encoded JSON object.")
		}
		clientContext = string(raw)
	}
	if req.Type == DryRun {
		return &Response{Status: http.StatusNoContent, ExecutedVersion: cfg.Version}, nil
	}
	if alias != nil && len(alias.RoutingWeights) > 0 {
		if cfg, err = iv.weighted(ctx, ref, alias, cfg); err != nil {
			return nil, err
		}
	}
	target := ref.Qualifier
	if target == "" {
		target = function.Latest
	}
	slot, err := iv.adm.Acquire(ref.Key(), target)
	if err != nil {
		return nil, err
	}
	defer slot.Release()
	spec := iv.spec(ref.Account, cfg, invokedARN)
	spec.TenantID = req.TenantID
	if slot.Provisioned() {
		spec.InitType, spec.Pool = execenv.InitProvisioned, target
	}
	payload := req.Payload
	if len(payload) == 0 {
		payload = []byte("{}")
	}
	ereq := &execenv.Request{RequestID: req.RequestID, Payload: payload, ClientContext: clientContext, InvokedARN: invokedARN}
	if req.Stream != nil {
		ereq.Stream = versionedStream{req.Stream, cfg.Version}
	}
	res, err := iv.envs.Invoke(ctx, spec, ereq)
	o := Outcome{Error: err != nil, Provisioned: slot.Provisioned(), Spillover: slot.Spillover()}
	if res != nil {
		o.Duration, o.InitDuration = res.Duration, res.InitDuration
		o.Error = o.Error || res.FunctionError != ""
	}
	iv.observer.Invoked(ref.Account, ref.Name, o)
	if err != nil {
		return nil, err
	}
	out := &Response{Status: http.StatusOK, ExecutedVersion: cfg.Version, FunctionError: res.FunctionError, Payload: res.Payload,
		Streamed: res.Streamed, ContentType: res.ContentType}
	if req.LogTail {
		out.LogResult = base64.StdEncoding.EncodeToString(tail(res.Log, 4096))
	}
	return out, nil
}

// CheckPayload refuses a payload that is not JSON (an empty one is fine),
// as AWS does for synchronous and asynchronous invocations alike.
func CheckPayload(payload []byte) error {
	if len(payload) > 0 && !json.Valid(payload) {
		return awserr.New(awserr.InvalidRequestContent, "Could not parse request body into json: Could not parse payload into json: Unexpected character")
	}
	return nil
}

// spec is the environment a version runs in. Its code is asked for only
// when an environment is started (execenv.Spec.Code), and held by that
// environment for as long as it lives.
func (iv *Invoker) spec(account string, cfg *function.Config, invokedARN string) *execenv.Spec {
	return &execenv.Spec{
		Function: cfg.Name, Version: cfg.Version, FunctionARN: invokedARN,
		Revision: cfg.RevisionID + "/" + cfg.CodeSha256, Runtime: cfg.Runtime, Handler: cfg.Handler,
		Code: iv.code, CodeSHA: cfg.CodeSha256, Env: cfg.Environment, MemoryMB: cfg.MemorySize, EphemeralMB: cfg.Ephemeral,
		Timeout: time.Duration(cfg.Timeout) * time.Second,
		Region:  iv.region, Account: account, LayerSHAs: layerSHAs(cfg),
		Role: cfg.Role, Credentials: iv.creds,
	}
}

// layerSHAs are the archives of cfg's layers, in order.
func layerSHAs(cfg *function.Config) []string {
	if len(cfg.Layers) == 0 {
		return nil
	}
	out := make([]string, len(cfg.Layers))
	for i, l := range cfg.Layers {
		out[i] = l.CodeSha256
	}
	return out
}

// ProvisionedSpec is the environment of a provisioned config on
// fn:qualifier, which runs version.
func (iv *Invoker) ProvisionedSpec(ctx context.Context, fn function.Key, qualifier, version string) (*execenv.Spec, error) {
	cfg, _, err := iv.resolver.ResolveTarget(ctx, function.Ref{Account: fn.Account, Name: fn.Name, Qualifier: version})
	if err != nil {
		return nil, err
	}
	names := function.Parser{Region: iv.region, Account: fn.Account}
	spec := iv.spec(fn.Account, cfg, names.QualifiedARN(fn.Name, qualifier))
	spec.InitType, spec.Pool = execenv.InitProvisioned, qualifier
	return spec, nil
}

// weighted picks the version an alias with a traffic split runs this time.
func (iv *Invoker) weighted(ctx context.Context, ref function.Ref, a *function.Alias, primary *function.Config) (*function.Config, error) {
	versions := make([]string, 0, len(a.RoutingWeights))
	for v := range a.RoutingWeights {
		versions = append(versions, v)
	}
	sort.Strings(versions)
	x := rand.Float64()
	for _, v := range versions {
		w := a.RoutingWeights[v]
		if x < w {
			cfg, _, err := iv.resolver.ResolveTarget(ctx, function.Ref{Account: ref.Account, Name: ref.Name, Qualifier: v})
			return cfg, err
		}
		x -= w
	}
	return primary, nil
}

// names parses the FunctionName values of the caller ctx carries, in its
// account (the server's own when it carries none).
func (iv *Invoker) names(ctx context.Context) function.Parser {
	return function.Parser{Region: iv.region, Account: account.Of(ctx, iv.account)}
}

// tail is the last n bytes of b, as AWS returns the last 4 KB of the log.
func tail(b []byte, n int) []byte {
	if len(b) <= n {
		return b
	}
	return b[len(b)-n:]
}
