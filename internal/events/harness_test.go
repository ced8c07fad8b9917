package events_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"sort"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lambdad/lambdad/internal/admission"
	"github.com/lambdad/lambdad/internal/awserr"
	"github.com/lambdad/lambdad/internal/control"
	"github.com/lambdad/lambdad/internal/events"
	"github.com/lambdad/lambdad/internal/function"
	"github.com/lambdad/lambdad/internal/invoke"
	"github.com/lambdad/lambdad/internal/store"
	"github.com/lambdad/lambdad/internal/uuid"
)

// The tests run the queue over a real store, a real control plane and real
// admission, inside testing/synctest bubbles: time is the bubble's virtual
// clock, which moves only when every goroutine waits, so AWS's minutes of
// retry waits pass at once and every time a test sees is exact.

// The queue's interfaces are what the server gives it.
var (
	_ events.Control = (*control.Service)(nil)
	_ events.Invoker = (*invoke.Invoker)(nil)
)

// code stands for a function's code and the execution environment that
// runs it, which the tests do not start: it returns the function's answer,
// or a function error ("Unhandled"), or err when the environment itself
// failed (what the invoker reports as a service error). attempt counts the
// runs of this event's code, from 1.
type code func(ctx context.Context, attempt int, payload []byte) (answer []byte, functionError string, err error)

// succeeds answers {} at once.
func succeeds(context.Context, int, []byte) ([]byte, string, error) { return []byte(`{}`), "", nil }

// fails always ends with an unhandled error.
func fails(context.Context, int, []byte) ([]byte, string, error) {
	return []byte(`{"errorMessage":"boom"}`), "Unhandled", nil
}

// brokenEnvironment never gets to run the code.
func brokenEnvironment(context.Context, int, []byte) ([]byte, string, error) {
	return nil, "", awserr.New(awserr.Service, "The runtime failed to start.")
}

// failsTimes fails the first n runs, then succeeds.
func failsTimes(n int) code {
	return func(ctx context.Context, attempt int, p []byte) ([]byte, string, error) {
		if attempt <= n {
			return fails(ctx, attempt, p)
		}
		return succeeds(ctx, attempt, p)
	}
}

// sleeps takes d to answer, or stops when its invocation is cancelled.
func sleeps(d time.Duration) code {
	return func(ctx context.Context, _ int, _ []byte) ([]byte, string, error) {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return []byte(`{}`), "", nil
		case <-ctx.Done():
			return nil, "", ctx.Err()
		}
	}
}

// attempt is one call of the invoker for an event.
type attempt struct {
	Function  string
	RequestID string
	At        time.Duration // since the environment started
	Err       error         // the environment's failure, when the code ran
	FnErr     string        // the function error, when the code ran
	Payload   []byte
	TenantID  string // the tenant the attempt ran for
}

// invoker stands for *invoke.Invoker: like it, it resolves the function
// through the control plane, takes a slot from admission and gives it back,
// so that reservations, throttles and deletions behave as in the server.
// Only running the code is replaced, by the function's code func.
type invoker struct {
	ctl   *control.Service
	adm   *admission.Controller
	epoch time.Time
	code  map[string]code // by function name; shared across reopens

	mu       sync.Mutex
	attempts []attempt
	runs     map[string]int // runs of the code per request ID
}

func (iv *invoker) Invoke(ctx context.Context, req *invoke.Request) (*invoke.Response, error) {
	ref, err := iv.ctl.NamesOf(ctx).ParseWithQualifier(req.FunctionName, req.Qualifier)
	if err != nil {
		return nil, err
	}
	cfg, _, err := iv.ctl.ResolveTarget(ctx, ref)
	if err != nil {
		return nil, err
	}
	target := ref.Qualifier
	if target == "" {
		target = function.Latest
	}
	if err := function.CheckTenant(cfg, ref.Name, req.TenantID); err != nil {
		return nil, err
	}
	a := attempt{Function: ref.Name, RequestID: req.RequestID, At: time.Since(iv.epoch), Payload: req.Payload, TenantID: req.TenantID}
	slot, err := iv.adm.Acquire(ref.Name, target)
	if err != nil {
		// Throttled: the code does not run.
		iv.record(a)
		return nil, err
	}
	defer slot.Release()
	iv.mu.Lock()
	iv.runs[req.RequestID]++
	n := iv.runs[req.RequestID]
	run := iv.code[ref.Name]
	iv.mu.Unlock()
	answer, fnErr, err := run(ctx, n, req.Payload)
	a.Err, a.FnErr = err, fnErr
	iv.record(a)
	if err != nil {
		return nil, err
	}
	return &invoke.Response{Status: 200, ExecutedVersion: cfg.Version, FunctionError: fnErr, Payload: answer}, nil
}

func (iv *invoker) record(a attempt) {
	iv.mu.Lock()
	iv.attempts = append(iv.attempts, a)
	iv.mu.Unlock()
}

// env is one queue over one data directory, with what it needs.
type env struct {
	t    *testing.T
	dir  string
	opts events.Options
	db   *store.DB
	ctl  *control.Service
	adm  *admission.Controller
	inv  *invoker
	q    *events.Queue
	// wrap, when set, stands between the next queue opened and its store.
	wrap func(events.Store) events.Store
}

// newEnv opens a store in a temporary directory and starts a queue over
// it; it must be called inside a synctest bubble, and closes everything at
// the end of the test.
func newEnv(t *testing.T, opts events.Options) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), opts: opts,
		inv: &invoker{epoch: time.Now(), code: map[string]code{}, runs: map[string]int{}}}
	e.open()
	t.Cleanup(e.close)
	return e
}

func (e *env) open() {
	e.t.Helper()
	var err error
	if e.db, err = store.Open(e.dir, store.Options{}); err != nil {
		e.t.Fatal(err)
	}
	accts := admission.NewAccounts("123456789012", func(string) int { return 1000 })
	e.adm = accts.For("123456789012")
	if err := e.db.Subscribe(control.AdmissionFeed(accts)); err != nil {
		e.t.Fatal(err)
	}
	if e.ctl, err = control.New(control.Bolt(e.db), control.Options{Region: "us-east-1", AccountID: "123456789012",
		AccountConcurrency: 1000, MinUnreserved: 100}, nil); err != nil {
		e.t.Fatal(err)
	}
	e.inv.ctl, e.inv.adm = e.ctl, e.adm
	e.opts.Account = "123456789012"
	st := events.Bolt(e.db)
	if e.wrap != nil {
		st = e.wrap(st)
	}
	if e.q, err = events.New(st, e.ctl, e.inv, e.opts); err != nil {
		e.t.Fatal(err)
	}
	e.q.Start()
}

func (e *env) close() {
	if e.q == nil {
		return
	}
	e.q.Close()
	e.db.Close()
	e.q, e.db = nil, nil
}

// reopen stops the queue, closes the store and opens both again, as a
// restart of the server does.
func (e *env) reopen() {
	e.t.Helper()
	e.close()
	e.open()
}

// now is the time since the environment started.
func (e *env) now() time.Duration { return time.Since(e.inv.epoch) }

// until sleeps (on the bubble's clock) until d after the start, then lets
// every goroutine settle.
func (e *env) until(d time.Duration) {
	e.t.Helper()
	if w := d - e.now(); w > 0 {
		time.Sleep(w)
	}
	synctest.Wait()
}

func testZip() []byte {
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	f, _ := w.Create("bootstrap")
	f.Write([]byte("#!/bin/sh\n"))
	w.Close()
	return b.Bytes()
}

// create creates a function that runs c.
func (e *env) create(name string, c code) { e.createWith(name, c, nil) }

// createIsolated creates a function with tenant isolation that runs c.
func (e *env) createIsolated(name string, c code) {
	e.createWith(name, c, &control.TenancyConfig{TenantIsolationMode: function.PerTenant})
}

func (e *env) createWith(name string, c code, tenancy *control.TenancyConfig) {
	e.t.Helper()
	e.inv.mu.Lock()
	e.inv.code[name] = c
	e.inv.mu.Unlock()
	_, err := e.ctl.CreateFunction(context.Background(), &control.CreateFunctionInput{
		FunctionName: name, Runtime: "provided.al2023", Handler: "bootstrap",
		Role: "arn:aws:iam::123456789012:role/test", Code: control.Code{ZipFile: testZip()}, TenancyConfig: tenancy})
	if err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) reserve(name string, n int) {
	e.t.Helper()
	if _, err := e.ctl.PutFunctionConcurrency(context.Background(), name, &n, nil); err != nil {
		e.t.Fatal(err)
	}
}

// configure puts name's event invoke configuration.
func (e *env) configure(in control.EventInvokeConfigInput) {
	e.t.Helper()
	if _, err := e.ctl.PutEventInvokeConfig(context.Background(), &in, true); err != nil {
		e.t.Fatal(err)
	}
}

// send enqueues an event for name and returns its request ID.
func (e *env) send(name, payload string) string {
	e.t.Helper()
	return e.sendFor(name, "", payload)
}

// sendFor enqueues an event for name invoked for tenant.
func (e *env) sendFor(name, tenant, payload string) string {
	e.t.Helper()
	id := uuid.New()
	if err := e.q.Enqueue(context.Background(), &invoke.Request{FunctionName: name, Payload: []byte(payload), RequestID: id, TenantID: tenant}); err != nil {
		e.t.Fatalf("Enqueue %s: %v", name, err)
	}
	return id
}

// attempts lists the invoker's calls for one request ID, or for every
// event when id is "".
func (e *env) attempts(id string) []attempt {
	e.inv.mu.Lock()
	defer e.inv.mu.Unlock()
	var out []attempt
	for _, a := range e.inv.attempts {
		if id == "" || a.RequestID == id {
			out = append(out, a)
		}
	}
	return out
}

// runs counts the runs of the code of one event.
func (e *env) runs(id string) int {
	e.inv.mu.Lock()
	defer e.inv.mu.Unlock()
	return e.inv.runs[id]
}

// deadLetter is a dead letter with its record decoded.
type deadLetter struct {
	*store.DeadLetter
	Record events.Record
}

func (e *env) deadLetters() []deadLetter {
	e.t.Helper()
	dls, err := e.q.DeadLetters(context.Background(), 0, 1000)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []deadLetter
	for _, d := range dls {
		var r events.Record
		if err := json.Unmarshal(d.Record, &r); err != nil {
			e.t.Fatalf("dead letter %d: %v: %s", d.Seq, err, d.Record)
		}
		out = append(out, deadLetter{d, r})
	}
	return out
}

// storedEvents lists the events still in the store.
func (e *env) storedEvents() []*store.Event {
	e.t.Helper()
	var out []*store.Event
	err := e.db.View(func(tx *store.Tx) error {
		return tx.Events(func(ev *store.Event) error {
			out = append(out, ev)
			return nil
		})
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// stored lists the request IDs of the events still in the store, sorted.
func (e *env) stored() []string {
	var out []string
	for _, ev := range e.storedEvents() {
		out = append(out, ev.RequestID)
	}
	sort.Strings(out)
	return out
}

// seconds turns whole seconds into durations, to write schedules.
func seconds(s ...int) []time.Duration {
	out := make([]time.Duration, len(s))
	for i, n := range s {
		out[i] = time.Duration(n) * time.Second
	}
	return out
}

func times(as []attempt) []time.Duration {
	out := make([]time.Duration, len(as))
	for i, a := range as {
		out[i] = a.At
	}
	return out
}
