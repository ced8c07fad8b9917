package runtimeapi

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lambdad/lambdad/internal/clock"
)

// runtime is a minimal Runtime API client, as a runtime process would use.
type runtime struct {
	t    *testing.T
	base string
	hc   *http.Client
}

// newServer starts a Server on a real loopback socket, as New does for an
// environment.
func newServer(t *testing.T, opts ...Option) (*Server, *runtime) {
	t.Helper()
	s, err := New(slog.New(slog.NewTextHandler(t.Output(), nil)), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s, newRuntime(t, s, &http.Transport{})
}

// newPipeServer starts a Server on an in-memory listener, for tests inside
// a testing/synctest bubble: a goroutine blocked on a real socket is not
// durably blocked, one blocked on a net.Pipe connection is.
func newPipeServer(t *testing.T, opts ...Option) (*Server, *runtime) {
	t.Helper()
	ln := newPipeListener()
	s := serve(ln, slog.New(slog.NewTextHandler(t.Output(), nil)), opts...)
	return s, newRuntime(t, s, &http.Transport{DialContext: ln.dial})
}

func newRuntime(t *testing.T, s *Server, tr *http.Transport) *runtime {
	t.Cleanup(func() { s.Close() })
	t.Cleanup(tr.CloseIdleConnections)
	return &runtime{t: t, base: "http://" + s.Addr() + "/" + APIVersion + "/runtime/", hc: &http.Client{Transport: tr}}
}

// pipeListener hands out the server ends of net.Pipe connections that its
// dial makes.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

func (l *pipeListener) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	var err error
	select {
	case l.conns <- server:
		return client, nil
	case <-l.done:
		err = net.ErrClosed
	case <-ctx.Done():
		err = ctx.Err()
	}
	client.Close()
	server.Close()
	return nil, err
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "runtime-api.pipe:9001" }

// stateOf is the state of s's current invocation.
func stateOf(s *Server) callState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.c.state
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (rt *runtime) do(req *http.Request) reply {
	rt.t.Helper()
	resp, err := rt.hc.Do(req)
	if err != nil {
		rt.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		rt.t.Fatal(err)
	}
	return reply{resp.StatusCode, resp.Header, b}
}

func (rt *runtime) post(path, body string, header http.Header) reply {
	rt.t.Helper()
	req, err := http.NewRequest("POST", rt.base+path, strings.NewReader(body))
	if err != nil {
		rt.t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	return rt.do(req)
}

// next starts a GET /next in the background; the reply arrives on the
// channel.
func (rt *runtime) next() <-chan reply {
	ch := make(chan reply, 1)
	req, err := http.NewRequest("GET", rt.base+"invocation/next", nil)
	if err != nil {
		rt.t.Fatal(err)
	}
	go func() {
		resp, err := rt.hc.Do(req)
		if err != nil {
			ch <- reply{status: -1, body: []byte(err.Error())}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		ch <- reply{resp.StatusCode, resp.Header, b}
	}()
	return ch
}

type result struct {
	resp Response
	err  error
}

func invokeAsync(ctx context.Context, s *Server, inv *Invocation) <-chan result {
	ch := make(chan result, 1)
	go func() {
		r, err := s.Invoke(ctx, inv)
		ch <- result{r, err}
	}()
	return ch
}

func wait[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("timed out waiting")
		panic("unreachable")
	}
}

func wantErrorBody(t *testing.T, r reply, status int, errorType string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d; body %s", r.status, status, r.body)
	}
	var doc map[string]string
	if err := json.Unmarshal(r.body, &doc); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", r.body, err)
	}
	if doc["errorType"] != errorType || doc["errorMessage"] == "" {
		t.Fatalf("body = %s, want errorType %q and an errorMessage", r.body, errorType)
	}
}

func TestInvokeRoundTrip(t *testing.T) {
	s, rt := newServer(t)
	nextc := rt.next()
	if err := s.WaitInit(t.Context()); err != nil {
		t.Fatalf("WaitInit: %v", err)
	}
	deadline := time.Now().Add(time.Minute).Truncate(time.Millisecond)
	inv := &Invocation{
		RequestID:          "req-1",
		Payload:            []byte(`{"a":1}`),
		Deadline:           deadline,
		InvokedFunctionARN: "arn:aws:lambda:us-east-1:123456789012:function:f",
		TraceID:            "Root=1-00000000-000000000000000000000000",
		ClientContext:      `{"custom":{"k":"v"}}`,
		TenantID:           "tenant-1",
	}
	resc := invokeAsync(t.Context(), s, inv)
	got := wait(t, nextc)
	if got.status != 200 || string(got.body) != `{"a":1}` {
		t.Fatalf("GET /next = %d %s", got.status, got.body)
	}
	for h, want := range map[string]string{
		HeaderRequestID:          "req-1",
		HeaderDeadlineMs:         strconv.FormatInt(deadline.UnixMilli(), 10),
		HeaderInvokedFunctionARN: inv.InvokedFunctionARN,
		HeaderTraceID:            inv.TraceID,
		HeaderClientContext:      inv.ClientContext,
		HeaderCognitoIdentity:    "",
		HeaderTenantID:           "tenant-1",
		"Content-Type":           "application/json",
	} {
		if v := got.header.Get(h); v != want {
			t.Errorf("header %s = %q, want %q", h, v, want)
		}
	}
	if _, ok := got.header[HeaderCognitoIdentity]; ok {
		t.Errorf("empty Cognito identity must leave the header out")
	}
	r := rt.post("invocation/req-1/response", `"ok"`, nil)
	if r.status != 202 || string(r.body) != `{"status":"OK"}` {
		t.Fatalf("POST response = %d %s", r.status, r.body)
	}
	res := wait(t, resc)
	if res.err != nil || string(res.resp.Payload) != `"ok"` || res.resp.ErrorType != "" {
		t.Fatalf("Invoke = %+v, %v", res.resp, res.err)
	}

	// Answering again is a state violation; an unknown id is a bad id.
	wantErrorBody(t, rt.post("invocation/req-1/response", `"again"`, nil), 403, "InvalidStateTransition")
	wantErrorBody(t, rt.post("invocation/req-1/error", `{}`, nil), 403, "InvalidStateTransition")
	wantErrorBody(t, rt.post("invocation/nope/response", `"x"`, nil), 400, "InvalidRequestID")

	// A second invocation on the same (keep-alive) connection.
	nextc = rt.next()
	resc = invokeAsync(t.Context(), s, &Invocation{RequestID: "req-2", Payload: []byte(`2`), Deadline: deadline})
	if got := wait(t, nextc); got.header.Get(HeaderRequestID) != "req-2" {
		t.Fatalf("second GET /next: %d %v", got.status, got.header)
	} else if _, ok := got.header[HeaderTenantID]; ok {
		t.Errorf("an invocation without a tenant must leave %s out", HeaderTenantID)
	}
	wantErrorBody(t, rt.post("invocation/req-1/response", `"late"`, nil), 400, "InvalidRequestID")
	rt.post("invocation/req-2/response", `2`, nil)
	if res := wait(t, resc); res.err != nil || string(res.resp.Payload) != "2" {
		t.Fatalf("second Invoke = %+v, %v", res.resp, res.err)
	}
}

func TestInvokeBeforeNext(t *testing.T) {
	// The runtime may ask for work after the invocation is queued.
	synctest.Test(t, func(t *testing.T) {
		s, rt := newPipeServer(t)
		resc := invokeAsync(t.Context(), s, &Invocation{RequestID: "r", Payload: []byte(`{}`)})
		synctest.Wait()
		if st := stateOf(s); st != stateQueued {
			t.Fatalf("before GET /next the invocation is in state %d, want queued", st)
		}
		if got := wait(t, rt.next()); got.header.Get(HeaderRequestID) != "r" {
			t.Fatalf("GET /next: %d %s", got.status, got.body)
		}
		rt.post("invocation/r/response", `{}`, nil)
		if res := wait(t, resc); res.err != nil {
			t.Fatal(res.err)
		}
	})
}

func TestErrorPosts(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		header   string
		wantType string
		wantBody string
	}{
		{"body type", `{"errorMessage":"boom","errorType":"ValueError","stackTrace":["a"]}`, "", "ValueError",
			`{"errorMessage":"boom","errorType":"ValueError","stackTrace":["a"]}`},
		{"header wins", `{"errorMessage":"boom","errorType":"ValueError"}`, "Custom.Type", "Custom.Type",
			`{"errorMessage":"boom","errorType":"ValueError"}`},
		{"not json", `plain text`, "", "Unhandled", `{"errorType":"Unhandled","errorMessage":"plain text"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, rt := newServer(t)
			nextc := rt.next()
			resc := invokeAsync(t.Context(), s, &Invocation{RequestID: "id", Payload: []byte(`{}`)})
			wait(t, nextc)
			h := http.Header{}
			if tt.header != "" {
				h.Set(HeaderFunctionErrorType, tt.header)
			}
			if r := rt.post("invocation/id/error", tt.body, h); r.status != 202 {
				t.Fatalf("POST error = %d %s", r.status, r.body)
			}
			res := wait(t, resc)
			if res.err != nil || res.resp.ErrorType != tt.wantType || string(res.resp.Payload) != tt.wantBody {
				t.Fatalf("Invoke = {%q %s}, %v; want {%q %s}", res.resp.ErrorType, res.resp.Payload, res.err, tt.wantType, tt.wantBody)
			}
		})
	}
}

// trailerBody sends its content chunked and sets the error trailers at EOF,
// as aws-lambda-go does when a streamed response fails.
type trailerBody struct {
	r       io.Reader
	trailer http.Header
	typ     string
	body    string
}

func (b *trailerBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF && b.typ != "" {
		b.trailer.Set(HeaderFunctionErrorType, b.typ)
		b.trailer.Set(HeaderFunctionErrorBody, base64.StdEncoding.EncodeToString([]byte(b.body)))
	}
	return n, err
}

func TestResponseTrailers(t *testing.T) {
	s, rt := newServer(t)
	nextc := rt.next()
	resc := invokeAsync(t.Context(), s, &Invocation{RequestID: "id", Payload: []byte(`{}`)})
	wait(t, nextc)
	tb := &trailerBody{
		r:       strings.NewReader("partial"),
		trailer: http.Header{HeaderFunctionErrorType: nil, HeaderFunctionErrorBody: nil},
		typ:     "errorString",
		body:    `{"errorMessage":"stream broke","errorType":"errorString"}`,
	}
	req, _ := http.NewRequest("POST", rt.base+"invocation/id/response", tb)
	req.Trailer = tb.trailer
	if r := rt.do(req); r.status != 202 {
		t.Fatalf("POST = %d %s", r.status, r.body)
	}
	res := wait(t, resc)
	if res.err != nil || res.resp.ErrorType != "errorString" || string(res.resp.Payload) != tb.body {
		t.Fatalf("Invoke = {%q %s}, %v", res.resp.ErrorType, res.resp.Payload, res.err)
	}
}

func TestResponseTooLarge(t *testing.T) {
	for _, chunked := range []bool{false, true} {
		t.Run("chunked="+strconv.FormatBool(chunked), func(t *testing.T) {
			s, rt := newServer(t, WithMaxResponse(1000))
			nextc := rt.next()
			resc := invokeAsync(t.Context(), s, &Invocation{RequestID: "id", Payload: []byte(`{}`)})
			wait(t, nextc)
			var body io.Reader = bytes.NewReader(bytes.Repeat([]byte("x"), 1001))
			if chunked {
				body = io.MultiReader(body) // hides the length
			}
			req, _ := http.NewRequest("POST", rt.base+"invocation/id/response", body)
			wantErrorBody(t, rt.do(req), 413, "RequestEntityTooLarge")
			res := wait(t, resc)
			want := `{"errorType":"Function.ResponseSizeTooLarge","errorMessage":"Response payload size exceeded maximum allowed payload size (1000 bytes)."}`
			if res.err != nil || res.resp.ErrorType != "Function.ResponseSizeTooLarge" || string(res.resp.Payload) != want {
				t.Fatalf("Invoke = {%q %s}, %v", res.resp.ErrorType, res.resp.Payload, res.err)
			}
		})
	}
	t.Run("exactly the limit", func(t *testing.T) {
		s, rt := newServer(t, WithMaxResponse(1000))
		nextc := rt.next()
		resc := invokeAsync(t.Context(), s, &Invocation{RequestID: "id", Payload: []byte(`{}`)})
		wait(t, nextc)
		req, _ := http.NewRequest("POST", rt.base+"invocation/id/response", io.MultiReader(strings.NewReader(strings.Repeat("x", 1000))))
		if r := rt.do(req); r.status != 202 {
			t.Fatalf("POST = %d", r.status)
		}
		if res := wait(t, resc); res.err != nil || len(res.resp.Payload) != 1000 {
			t.Fatalf("Invoke = %d bytes, %v", len(res.resp.Payload), res.err)
		}
	})
	if DefaultMaxResponse != 6291556 {
		t.Errorf("DefaultMaxResponse = %d", DefaultMaxResponse)
	}
}

func TestInitError(t *testing.T) {
	s, rt := newServer(t)
	h := http.Header{HeaderFunctionErrorType: {"Runtime.ImportModuleError"}}
	body := `{"errorMessage":"Unable to import module 'x'","errorType":"Runtime.ImportModuleError","stackTrace":[]}`
	if r := rt.post("init/error", body, h); r.status != 202 {
		t.Fatalf("POST init/error = %d %s", r.status, r.body)
	}
	err := s.WaitInit(t.Context())
	var ie *InitError
	if !errors.As(err, &ie) || ie.Type != "Runtime.ImportModuleError" || string(ie.Payload) != body {
		t.Fatalf("WaitInit = %v", err)
	}
	wantErrorBody(t, rt.post("init/error", body, h), 403, "InvalidStateTransition")
}

func TestInitErrorAfterInit(t *testing.T) {
	s, rt := newServer(t)
	rt.next()
	if err := s.WaitInit(t.Context()); err != nil {
		t.Fatal(err)
	}
	wantErrorBody(t, rt.post("init/error", `{}`, nil), 403, "InvalidStateTransition")
}

func TestUnknownRoute(t *testing.T) {
	_, rt := newServer(t)
	for _, c := range []struct{ method, path string }{
		{"GET", "/nope"},
		{"POST", "/2018-06-01/runtime/invocation/next"},
		{"GET", "/2018-06-01/runtime/invocation/x/response"},
	} {
		req, _ := http.NewRequest(c.method, strings.TrimSuffix(rt.base, "/"+APIVersion+"/runtime/")+c.path, nil)
		r := rt.do(req)
		wantErrorBody(t, r, 404, "InvalidRequest")
		if ct := r.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s %s: Content-Type %q", c.method, c.path, ct)
		}
	}
}

func TestDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, rt := newPipeServer(t)
		nextc := rt.next()
		synctest.Wait() // the runtime waits in GET /next
		start := time.Now()
		deadline := start.Add(50 * time.Millisecond)
		_, err := s.Invoke(t.Context(), &Invocation{RequestID: "id", Payload: []byte(`{}`), Deadline: deadline})
		if !errors.Is(err, ErrTimedOut) || errors.Is(err, ErrNotDelivered) {
			t.Fatalf("Invoke = %v, want ErrTimedOut after delivery", err)
		}
		if d := time.Since(start); d != 50*time.Millisecond {
			t.Fatalf("Invoke gave up after %v, want 50ms", d)
		}
		got := wait(t, nextc)
		if h := got.header.Get(HeaderDeadlineMs); h != strconv.FormatInt(deadline.UnixMilli(), 10) {
			t.Fatalf("%s = %s, want %d", HeaderDeadlineMs, h, deadline.UnixMilli())
		}
		wantErrorBody(t, rt.post("invocation/id/response", `1`, nil), 403, "InvalidStateTransition")

		// Never asked for: the deadline passes before delivery.
		s2, _ := newPipeServer(t)
		start = time.Now()
		_, err = s2.Invoke(t.Context(), &Invocation{RequestID: "id", Deadline: start.Add(20 * time.Millisecond)})
		if !errors.Is(err, ErrTimedOut) || !errors.Is(err, ErrNotDelivered) {
			t.Fatalf("undelivered Invoke = %v", err)
		}
		if d := time.Since(start); d != 20*time.Millisecond {
			t.Fatalf("undelivered Invoke gave up after %v, want 20ms", d)
		}
	})
}

// shiftedClock is clock.Real set shift ahead: its timers run as Real's, its
// Now is not time.Now.
type shiftedClock struct {
	clock.Clock
	shift time.Duration
}

func (c shiftedClock) Now() time.Time { return c.Clock.Now().Add(c.shift) }

func TestDeadlineOnServerClock(t *testing.T) {
	// A deadline is a time on the Server's clock: 50 ms after that clock's
	// now, whatever time.Now says.
	for _, shift := range []time.Duration{time.Hour, -time.Hour} {
		t.Run(shift.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				clk := shiftedClock{clock.Real, shift}
				s, rt := newPipeServer(t, WithClock(clk))
				nextc := rt.next()
				synctest.Wait()
				start := time.Now()
				deadline := clk.Now().Add(50 * time.Millisecond)
				_, err := s.Invoke(t.Context(), &Invocation{RequestID: "id", Payload: []byte(`{}`), Deadline: deadline})
				if !errors.Is(err, ErrTimedOut) {
					t.Fatalf("Invoke = %v, want ErrTimedOut", err)
				}
				if d := time.Since(start); d != 50*time.Millisecond {
					t.Fatalf("Invoke gave up after %v, want 50ms on the Server's clock", d)
				}
				if h := wait(t, nextc).header.Get(HeaderDeadlineMs); h != strconv.FormatInt(deadline.UnixMilli(), 10) {
					t.Fatalf("%s = %s, want %d", HeaderDeadlineMs, h, deadline.UnixMilli())
				}
			})
		})
	}
}

func TestContextCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, rt := newPipeServer(t)
		ctx, cancel := context.WithCancel(t.Context())
		resc := invokeAsync(ctx, s, &Invocation{RequestID: "a", Payload: []byte(`{}`)})
		synctest.Wait()
		if st := stateOf(s); st != stateQueued {
			t.Fatalf("before the cancel the invocation is in state %d, want queued", st)
		}
		cancel()
		res := wait(t, resc)
		if !errors.Is(res.err, context.Canceled) || !errors.Is(res.err, ErrNotDelivered) {
			t.Fatalf("Invoke = %v", res.err)
		}
		// The server is still usable: the event was never delivered.
		nextc := rt.next()
		resc = invokeAsync(t.Context(), s, &Invocation{RequestID: "b", Payload: []byte(`{}`)})
		if got := wait(t, nextc); got.header.Get(HeaderRequestID) != "b" {
			t.Fatalf("GET /next after cancel: %v", got.header)
		}
		rt.post("invocation/b/response", `1`, nil)
		if res := wait(t, resc); res.err != nil {
			t.Fatal(res.err)
		}
	})
}

func TestAbortAndClose(t *testing.T) {
	s, rt := newServer(t)
	nextc := rt.next()
	if err := s.WaitInit(t.Context()); err != nil {
		t.Fatal(err)
	}
	cause := errors.New("process exited")
	resc := invokeAsync(t.Context(), s, &Invocation{RequestID: "id", Payload: []byte(`{}`)})
	wait(t, nextc)
	s.Abort(cause)
	if res := wait(t, resc); !errors.Is(res.err, cause) || errors.Is(res.err, ErrNotDelivered) {
		t.Fatalf("Invoke after Abort = %v", res.err)
	}
	if _, err := s.Invoke(t.Context(), &Invocation{RequestID: "x"}); !errors.Is(err, ErrNotDelivered) {
		t.Fatalf("Invoke on an aborted server = %v", err)
	}

	// Close releases a blocked GET /next and the serving goroutine.
	s2, rt2 := newServer(t)
	nextc = rt2.next()
	if err := s2.WaitInit(t.Context()); err != nil {
		t.Fatal(err)
	}
	s2.Close()
	if r := wait(t, nextc); r.status == 200 {
		t.Fatalf("GET /next after Close = %d", r.status)
	}
	if err := s2.WaitInit(t.Context()); err != nil {
		t.Fatalf("WaitInit after a completed init = %v", err)
	}
	s3, _ := newServer(t)
	s3.Close()
	if err := s3.WaitInit(t.Context()); !errors.Is(err, ErrClosed) {
		t.Fatalf("WaitInit on a closed server = %v", err)
	}
}

func TestBusy(t *testing.T) {
	s, rt := newServer(t)
	nextc := rt.next()
	resc := invokeAsync(t.Context(), s, &Invocation{RequestID: "a", Payload: []byte(`{}`)})
	wait(t, nextc)
	if _, err := s.Invoke(t.Context(), &Invocation{RequestID: "b"}); !errors.Is(err, ErrBusy) {
		t.Fatalf("concurrent Invoke = %v", err)
	}
	// Asking for more work without answering is refused.
	wantErrorBody(t, wait(t, rt.next()), 403, "InvalidStateTransition")
	rt.post("invocation/a/response", `1`, nil)
	wait(t, resc)
}

func TestErrorPayload(t *testing.T) {
	got := string(ErrorPayload("Sandbox.Timedout", "RequestId: x Error: Task timed out after 3.00 seconds <&>"))
	want := `{"errorType":"Sandbox.Timedout","errorMessage":"RequestId: x Error: Task timed out after 3.00 seconds <&>"}`
	if got != want {
		t.Fatalf("ErrorPayload = %s, want %s", got, want)
	}
}

// BenchmarkRoundTrip measures one event through GET /next and POST
// /response over a keep-alive connection.
func BenchmarkRoundTrip(b *testing.B) {
	s, err := New(nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	base := "http://" + s.Addr() + "/" + APIVersion + "/runtime/invocation/"
	hc := &http.Client{Transport: &http.Transport{}}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			resp, err := hc.Get(base + "next")
			if err != nil {
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				return
			}
			id := resp.Header.Get(HeaderRequestID)
			r2, err := hc.Post(base+id+"/response", "application/json", bytes.NewReader(body))
			if err != nil {
				return
			}
			io.Copy(io.Discard, r2.Body)
			r2.Body.Close()
			select {
			case <-stop:
				return
			default:
			}
		}
	}()
	inv := &Invocation{RequestID: "bench", Payload: []byte(`{"hello":"world"}`)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Invoke(context.Background(), inv); err != nil {
			b.Fatal(err)
		}
	}
	close(stop)
	s.Close()
	<-done
}
