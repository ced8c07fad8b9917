// Package runtimeapi serves the AWS Lambda Runtime API (version 2018-06-01)
// to one execution environment: the single runtime process that polls
// GET /runtime/invocation/next and answers each event with
// POST /runtime/invocation/{id}/response or /error.
//
// A Server is a small state machine driven from two sides. The runtime
// process drives it over HTTP; the execution environment drives it with
// WaitInit (Init ends at the first GET /next or at POST /runtime/init/error)
// and Invoke (hand one event to the pending GET /next and wait for the
// answer). One Server serves one invocation at a time, as a Lambda execution
// environment does.
//
// Invocation states, guarded by Server.mu:
//
//	idle ──Invoke──▶ queued ──GET /next takes it──▶ delivered
//	delivered ──POST response|error──▶ answering ──body read──▶ answered
//	delivered|answering ──Invoke gives up (ctx, deadline, Abort)──▶ abandoned
//
// An id other than the current invocation's is answered 400
// InvalidRequestID; a second answer to the current one is answered 403
// InvalidStateTransition.
//
// Responses: a runtime answers whole (a body of announced length) or
// streams (Lambda-Runtime-Function-Response-Mode: streaming, a chunked
// body, and an error midway in the trailers Lambda-Runtime-Function-Error-
// Type and -Body, base64). What the Server does with either depends on the
// caller, as Lambda's does: an Invocation with a Stream (a caller reading a
// stream) gets the body as it arrives, up to the streaming limit (200 MiB);
// one without gets it collected, up to the synchronous limit (6 MB).
//
// An invocation's deadline is a time on the Server's clock (WithClock;
// clock.Real by default): Invoke gives up when that clock reaches it. The
// guards against a misbehaving peer (the header read timeout, the grace
// Close gives open connections) stay on the wall clock: they bound waits on
// real connections, which a virtual clock that stands still must not
// prolong.
package runtimeapi

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/lambdad/lambdad/internal/clock"
)

// APIVersion is the path prefix of every Runtime API route.
const APIVersion = "2018-06-01"

// DefaultMaxResponse is the largest response payload a function may return
// synchronously (6 MB as Lambda counts it).
const DefaultMaxResponse = 6291556

// DefaultMaxStreamResponse is the largest response a function may stream
// to a caller that reads it as a stream: 200 MB, Lambda's limit since
// July 2025 (20 MB before).
const DefaultMaxStreamResponse = 200 << 20

// Header names of the Runtime API.
const (
	HeaderRequestID          = "Lambda-Runtime-Aws-Request-Id"
	HeaderDeadlineMs         = "Lambda-Runtime-Deadline-Ms"
	HeaderInvokedFunctionARN = "Lambda-Runtime-Invoked-Function-Arn"
	HeaderTraceID            = "Lambda-Runtime-Trace-Id"
	HeaderClientContext      = "Lambda-Runtime-Client-Context"
	HeaderCognitoIdentity    = "Lambda-Runtime-Cognito-Identity"
	// HeaderTenantID names the tenant of an invocation of a function with
	// tenant isolation (aws-lambda-go reads it into LambdaContext.TenantID).
	HeaderTenantID          = "Lambda-Runtime-Aws-Tenant-Id"
	HeaderFunctionErrorType = "Lambda-Runtime-Function-Error-Type"
	HeaderFunctionErrorBody = "Lambda-Runtime-Function-Error-Body"
	// HeaderFunctionResponseMode is "streaming" on a response the runtime
	// streams (chunked, with the error trailers above when it fails
	// midway); any other value is refused.
	HeaderFunctionResponseMode = "Lambda-Runtime-Function-Response-Mode"
)

// ResponseModeStreaming is the one value of HeaderFunctionResponseMode.
const ResponseModeStreaming = "streaming"

// Errors Invoke and WaitInit return.
var (
	// ErrClosed means the Server was closed.
	ErrClosed = errors.New("runtimeapi: server closed")
	// ErrTimedOut means the invocation's deadline passed before the runtime
	// answered.
	ErrTimedOut = errors.New("runtimeapi: invocation deadline passed")
	// ErrNotDelivered wraps the cause when Invoke gave up before a GET /next
	// took the event: the function never saw it, so it is safe to run it
	// elsewhere.
	ErrNotDelivered = errors.New("runtimeapi: invocation not delivered")
	// ErrBusy means Invoke was called while another Invoke was running.
	ErrBusy = errors.New("runtimeapi: an invocation is already in progress")
)

// Invocation is one event for the runtime.
type Invocation struct {
	RequestID          string
	Payload            []byte
	Deadline           time.Time // sent as Lambda-Runtime-Deadline-Ms; Invoke gives up when the Server's clock passes it
	InvokedFunctionARN string
	TraceID            string
	ClientContext      string // decoded JSON; header omitted when empty
	CognitoIdentity    string // JSON; header omitted when empty
	TenantID           string // sent as Lambda-Runtime-Aws-Tenant-Id; header omitted when empty
	// Stream, when set, makes this a streaming invocation: the caller
	// reads the response as a stream (InvokeWithResponseStream, a function
	// URL in RESPONSE_STREAM mode), so the runtime's answer on /response
	// is handed to it as it arrives, up to the streaming limit, instead of
	// being collected. Nil collects it, up to the synchronous limit,
	// whether or not the runtime streams.
	Stream Stream
}

// Stream receives a response as the runtime sends it. The Server calls it
// from the handler of the runtime's POST, one call at a time: Begin once,
// when the response starts, then Write for each piece as it arrives. Once
// Invoke has returned it calls nothing more.
type Stream interface {
	// Begin starts the response, with the Content-Type the runtime
	// declared ("" when it declared none).
	Begin(contentType string) error
	// Write delivers p, whole, before it returns (it must not keep p).
	Write(p []byte) (int, error)
	// Cancel makes a Write in progress return at once, with an error.
	// The Server calls it when it gives up on an invocation while a
	// Write may be blocked (on a caller that does not read): Cancel may
	// run at the same time as that Write.
	Cancel()
}

// Response is the runtime's answer to one invocation.
type Response struct {
	// Payload is the function's response, or the error document when
	// ErrorType is set.
	Payload []byte
	// ErrorType is "" for a successful invocation, otherwise the error's
	// type (from POST /error, the response trailers, or
	// Function.ResponseSizeTooLarge).
	ErrorType string
	// Streamed is true when the response went to Invocation.Stream (Begin
	// was called: it begins with its first byte, or at its end when it is
	// empty and did not fail): Payload then holds only the error document,
	// when ErrorType is set.
	Streamed bool
	// ContentType is the Content-Type the runtime declared on its
	// response.
	ContentType string
}

// InitError is what WaitInit returns when the runtime posted
// /runtime/init/error.
type InitError struct {
	Type    string // the Lambda-Runtime-Function-Error-Type header, else the body's errorType
	Payload []byte // the error document the caller receives
}

func (e *InitError) Error() string { return "runtimeapi: init error: " + e.Type }

type callState uint8

const (
	stateIdle callState = iota
	stateQueued
	stateDelivered
	stateAnswering
	stateAnswered
	stateAbandoned
)

// call is the one invocation in flight. The Server reuses a single call
// because it serves one invocation at a time.
type call struct {
	inv   *Invocation
	state callState
	resp  Response
	// guard is the way to inv.Stream, nil when there is none; Invoke
	// closes it before it returns.
	guard *streamGuard
}

// streamGuard passes a handler's calls to a Stream until it is closed, and
// lets the Server close it without waiting for a body read: it waits only
// for a call in progress, which Cancel cuts short.
type streamGuard struct {
	mu     sync.Mutex
	st     Stream
	closed bool
}

// errStreamClosed is what a stream call gets once the invocation is over.
var errStreamClosed = errors.New("runtimeapi: the invocation's stream is closed")

func (g *streamGuard) begin(contentType string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return errStreamClosed
	}
	return g.st.Begin(contentType)
}

func (g *streamGuard) write(p []byte) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return errStreamClosed
	}
	_, err := g.st.Write(p)
	return err
}

// close returns once no call is in progress and none will be made.
func (g *streamGuard) close() {
	if !g.mu.TryLock() {
		// A call is in progress: it may be blocked on a caller that does
		// not read.
		g.st.Cancel()
		g.mu.Lock()
	}
	g.closed = true
	g.mu.Unlock()
}

// Server is the Runtime API of one execution environment.
type Server struct {
	log         *slog.Logger
	maxResponse int
	maxStream   int64
	clock       clock.Clock
	ln          net.Listener
	hs          *http.Server

	// work hands the queued call from Invoke to one waiting GET /next;
	// unbuffered, so a successful send is exactly the moment of delivery.
	work chan *call
	// answered carries one token per answer to the waiting Invoke;
	// buffered so the handler never blocks on an Invoke that gave up.
	answered chan struct{}
	// done is closed by Abort; every blocked handler and Invoke returns.
	done      chan struct{}
	initDone  chan struct{} // closed at the first GET /next or init/error
	serveDone chan struct{} // closed when hs.Serve returns

	// gate is held shared by every running handler, so Close can wait for
	// them by taking it exclusively.
	gate      sync.RWMutex
	closeOnce sync.Once

	// invokeMu serialises Invoke and owns timer and scratch.
	invokeMu sync.Mutex
	timer    clock.Timer // of clock: fires at the invocation's deadline
	// scratch collects chunked bodies so only the exact-size copy is
	// allocated per answer; used only by the single handler that moved the
	// call to stateAnswering.
	scratch bytes.Buffer

	mu sync.Mutex // guards the following fields
	// cause is why done was closed; nil while open.
	cause error
	// initEnded is true once initDone is closed.
	initEnded bool
	// initErr is the error posted to /runtime/init/error, if any.
	initErr *InitError
	// c is the current (or last) invocation; c.inv is nil before the first.
	c call
}

// Option configures a Server.
type Option func(*Server)

// WithMaxResponse sets the largest response body accepted (default
// DefaultMaxResponse).
func WithMaxResponse(n int) Option {
	return func(s *Server) {
		if n > 0 {
			s.maxResponse = n
		}
	}
}

// WithMaxStreamResponse sets the largest response streamed to an
// Invocation's Stream (default DefaultMaxStreamResponse).
func WithMaxStreamResponse(n int64) Option {
	return func(s *Server) {
		if n > 0 {
			s.maxStream = n
		}
	}
}

// WithClock sets the clock deadlines are read on (default clock.Real).
func WithClock(c clock.Clock) Option {
	return func(s *Server) {
		if c != nil {
			s.clock = c
		}
	}
}

// New starts a Runtime API server on 127.0.0.1 on a free port.
func New(logger *slog.Logger, opts ...Option) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("runtimeapi: listen: %w", err)
	}
	return serve(ln, logger, opts...), nil
}

// Serve starts a Server on ln, which it owns from then on: a sandboxed
// environment's listener, made inside the environment's network namespace.
func Serve(ln net.Listener, logger *slog.Logger, opts ...Option) *Server {
	return serve(ln, logger, opts...)
}

// serve starts a Server on ln, which it owns from then on.
func serve(ln net.Listener, logger *slog.Logger, opts ...Option) *Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		log:         logger,
		maxResponse: DefaultMaxResponse,
		maxStream:   DefaultMaxStreamResponse,
		clock:       clock.Real,
		ln:          ln,
		work:        make(chan *call),
		answered:    make(chan struct{}, 1),
		done:        make(chan struct{}),
		initDone:    make(chan struct{}),
		serveDone:   make(chan struct{}),
	}
	for _, o := range opts {
		o(s)
	}
	s.timer = s.clock.NewTimer(time.Hour)
	s.timer.Stop()
	mux := http.NewServeMux()
	const p = "/" + APIVersion + "/runtime/"
	mux.HandleFunc("GET "+p+"invocation/next", s.handleNext)
	mux.HandleFunc("POST "+p+"invocation/{id}/response", s.handleResponse)
	mux.HandleFunc("POST "+p+"invocation/{id}/error", s.handleError)
	mux.HandleFunc("POST "+p+"init/error", s.handleInitError)
	mux.HandleFunc("/", s.handleUnknown)
	s.hs = &http.Server{
		Handler:           s.gated(mux),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
	}
	go func() {
		defer close(s.serveDone)
		if err := s.hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Warn("runtime API server stopped", "err", err)
		}
	}()
	return s
}

// Addr is the host:port the runtime reaches the API at (the value of
// AWS_LAMBDA_RUNTIME_API).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Done is closed when the Server is aborted or closed.
func (s *Server) Done() <-chan struct{} { return s.done }

// Abort ends the Server's usefulness without closing the listener: every
// pending and future Invoke and WaitInit returns cause, and every blocked
// GET /next returns. The environment calls it when the runtime process
// exits. The first cause wins.
func (s *Server) Abort(cause error) {
	if cause == nil {
		cause = ErrClosed
	}
	s.mu.Lock()
	if s.cause == nil {
		s.cause = cause
		close(s.done)
	}
	s.mu.Unlock()
}

func (s *Server) abortCause() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cause
}

// Close aborts the Server with ErrClosed (unless already aborted), closes the
// listener and every connection, and waits for every handler and the serving
// goroutine to return.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.Abort(ErrClosed)
		// Handlers return promptly once done is closed; a handler stuck
		// reading a body from a silent peer is cut off by Close below,
		// after a grace on the wall clock (see the package comment).
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		if err := s.hs.Shutdown(ctx); err != nil {
			s.hs.Close()
		}
		cancel()
		<-s.serveDone
		// Taking the gate exclusively waits for every running handler.
		s.gate.Lock()
		s.gate.Unlock()
		s.timer.Stop()
	})
	return nil
}

// WaitInit blocks until Init ends: nil at the runtime's first GET /next, an
// *InitError when it posted /runtime/init/error, the abort cause when the
// Server was aborted first, or ctx.Err().
func (s *Server) WaitInit(ctx context.Context) error {
	select {
	case <-s.initDone:
		return s.initResult()
	default:
	}
	select {
	case <-s.initDone:
		return s.initResult()
	case <-ctx.Done():
		return ctx.Err()
	case <-s.done:
		// An init error posted just before the process exited wins.
		select {
		case <-s.initDone:
			return s.initResult()
		default:
		}
		return s.abortCause()
	}
}

func (s *Server) initResult() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.initErr != nil {
		return s.initErr
	}
	return nil
}

// Invoke hands inv to the runtime's pending GET /next (waiting for one if
// the runtime has not asked yet) and waits for its answer. A function error
// is a Response with ErrorType set, not an error. Errors: ctx.Err(),
// ErrTimedOut when inv.Deadline passes, the Abort cause, ErrBusy; each
// wrapped with ErrNotDelivered when the runtime never received the event.
// inv must not be modified until Invoke returns; after an error other than
// ErrNotDelivered it must not be modified at all, since a handler may still
// be writing it to the runtime.
func (s *Server) Invoke(ctx context.Context, inv *Invocation) (Response, error) {
	if err := ctx.Err(); err != nil {
		// Checked first: select would pick between a ready GET /next and a
		// done ctx at random.
		return Response{}, notDelivered(err)
	}
	if !s.invokeMu.TryLock() {
		return Response{}, notDelivered(ErrBusy)
	}
	defer s.invokeMu.Unlock()

	s.mu.Lock()
	if s.c.state == stateDelivered || s.c.state == stateAnswering {
		// The previous invocation was abandoned mid-flight; its late
		// answer must not be taken for this one's.
		s.mu.Unlock()
		return Response{}, notDelivered(errors.New("runtimeapi: previous invocation still in flight"))
	}
	s.c = call{inv: inv, state: stateQueued}
	if inv.Stream != nil {
		s.c.guard = &streamGuard{st: inv.Stream}
		defer s.c.guard.close()
	}
	s.mu.Unlock()
	select {
	case <-s.answered: // a stale token from an abandoned invocation
	default:
	}

	var timeout <-chan time.Time
	if !inv.Deadline.IsZero() {
		// A time.Timer keeps no stale fire once stopped; a timer of
		// another clock might, from an invocation that ended at its
		// deadline.
		select {
		case <-s.timer.C():
		default:
		}
		s.timer.Reset(inv.Deadline.Sub(s.clock.Now()))
		defer s.timer.Stop()
		timeout = s.timer.C()
	}

	select {
	case s.work <- &s.c:
	case <-ctx.Done():
		s.setState(stateIdle)
		return Response{}, notDelivered(ctx.Err())
	case <-timeout:
		s.setState(stateIdle)
		return Response{}, notDelivered(ErrTimedOut)
	case <-s.done:
		s.setState(stateIdle)
		return Response{}, notDelivered(s.abortCause())
	}

	select {
	case <-s.answered:
		return s.answer(), nil
	case <-ctx.Done():
		return s.giveUp(ctx.Err())
	case <-timeout:
		return s.giveUp(ErrTimedOut)
	case <-s.done:
		return s.giveUp(s.abortCause())
	}
}

func (s *Server) setState(st callState) {
	s.mu.Lock()
	s.c.state = st
	s.mu.Unlock()
}

func (s *Server) answer() Response {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.c.resp
}

// giveUp abandons the delivered invocation, unless its answer arrived at the
// same moment: an answer that made it in time wins.
func (s *Server) giveUp(err error) (Response, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.c.state == stateAnswered {
		<-s.answered
		return s.c.resp, nil
	}
	s.c.state = stateAbandoned
	return Response{}, err
}

type notDeliveredError struct{ cause error }

func notDelivered(cause error) error { return &notDeliveredError{cause} }

func (e *notDeliveredError) Error() string { return ErrNotDelivered.Error() + ": " + e.cause.Error() }
func (e *notDeliveredError) Unwrap() []error {
	return []error{ErrNotDelivered, e.cause}
}

// gated counts running handlers (see Server.gate) and turns requests away
// once the Server is done.
func (s *Server) gated(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.gate.RLock()
		defer s.gate.RUnlock()
		h.ServeHTTP(w, r)
	})
}

func (s *Server) handleNext(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if !s.initEnded {
		s.initEnded = true
		close(s.initDone)
	}
	st := s.c.state
	s.mu.Unlock()
	if st == stateDelivered || st == stateAnswering {
		writeError(w, http.StatusForbidden, "InvalidStateTransition",
			"State transition from Ready to InvocationNext failed: the current invocation has not been answered")
		return
	}

	var c *call
	select {
	case c = <-s.work:
	case <-r.Context().Done():
		return
	case <-s.done:
		writeError(w, http.StatusGone, "Runtime.Shutdown", "The execution environment is shutting down")
		return
	}

	s.mu.Lock()
	c.state = stateDelivered
	inv := c.inv
	s.mu.Unlock()

	h := w.Header()
	// Direct map assignment: the keys are already canonical.
	h["Content-Type"] = []string{"application/json"}
	h["Content-Length"] = []string{strconv.Itoa(len(inv.Payload))}
	h[HeaderRequestID] = []string{inv.RequestID}
	h[HeaderDeadlineMs] = []string{strconv.FormatInt(inv.Deadline.UnixMilli(), 10)}
	h[HeaderInvokedFunctionARN] = []string{inv.InvokedFunctionARN}
	h[HeaderTraceID] = []string{inv.TraceID}
	if inv.ClientContext != "" {
		h[HeaderClientContext] = []string{inv.ClientContext}
	}
	if inv.CognitoIdentity != "" {
		h[HeaderCognitoIdentity] = []string{inv.CognitoIdentity}
	}
	if inv.TenantID != "" {
		h[HeaderTenantID] = []string{inv.TenantID}
	}
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(inv.Payload); err != nil {
		// The event is lost with the connection; the deadline ends the
		// invocation.
		s.log.Warn("writing the event to the runtime failed", "requestId", inv.RequestID, "err", err)
	}
}

// begin checks that id names the delivered invocation and claims the right
// to answer it, and returns the way to its Stream (nil when it has none).
// It writes the rejection itself and returns a nil call when the answer is
// refused.
func (s *Server) begin(w http.ResponseWriter, id string) (*call, *streamGuard) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := &s.c
	if c.inv == nil || c.inv.RequestID != id || c.state == stateIdle || c.state == stateQueued {
		writeError(w, http.StatusBadRequest, "InvalidRequestID", "Invalid request ID: "+strconv.Quote(id))
		return nil, nil
	}
	if c.state != stateDelivered {
		writeError(w, http.StatusForbidden, "InvalidStateTransition",
			"State transition from "+stateName(c.state)+" to InvocationResponse failed for request "+id)
		return nil, nil
	}
	c.state = stateAnswering
	return c, c.guard
}

func stateName(st callState) string {
	switch st {
	case stateAnswering, stateAnswered:
		return "InvocationResponse"
	case stateAbandoned:
		return "InvocationTimeout"
	}
	return "Ready"
}

// finish records the answer and wakes Invoke. An invocation abandoned while
// its body was being read keeps its abandoned state.
func (s *Server) finish(c *call, resp Response) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.state != stateAnswering {
		return
	}
	c.resp = resp
	c.state = stateAnswered
	select {
	case s.answered <- struct{}{}:
	default:
	}
}

// retract returns the call to delivered after a body could not be read, so
// the runtime may try again.
func (s *Server) retract(c *call) {
	s.mu.Lock()
	if c.state == stateAnswering {
		c.state = stateDelivered
	}
	s.mu.Unlock()
}

// answerBody reads the body of a runtime's answer to invocation c. When it
// cannot be read, or is over the limit, it answers the runtime itself (and,
// for an oversized answer, finishes c with Function.ResponseSizeTooLarge)
// and returns false.
func (s *Server) answerBody(w http.ResponseWriter, r *http.Request, c *call, what string) ([]byte, bool) {
	body, tooLarge, err := s.readBody(r, true)
	if err != nil {
		s.retract(c)
		writeError(w, http.StatusBadRequest, "InvalidRequest", "Reading the "+what+" body failed: "+err.Error())
		return nil, false
	}
	if tooLarge {
		s.finish(c, Response{
			ErrorType: "Function.ResponseSizeTooLarge",
			Payload: ErrorPayload("Function.ResponseSizeTooLarge",
				"Response payload size exceeded maximum allowed payload size ("+strconv.Itoa(s.maxResponse)+" bytes)."),
		})
		writeError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge",
			"Exceeded maximum allowed payload size ("+strconv.Itoa(s.maxResponse)+" bytes).")
		return nil, false
	}
	return body, true
}

func (s *Server) handleResponse(w http.ResponseWriter, r *http.Request) {
	c, guard := s.begin(w, r.PathValue("id"))
	if c == nil {
		return
	}
	mode := r.Header.Get(HeaderFunctionResponseMode)
	if mode != "" && mode != ResponseModeStreaming {
		s.finish(c, Response{ErrorType: "Runtime.InvalidResponseModeHeader",
			Payload: ErrorPayload("Runtime.InvalidResponseModeHeader", "Invalid function response mode: "+strconv.Quote(mode))})
		writeError(w, http.StatusBadRequest, "InvalidFunctionResponseMode", "Invalid function response mode")
		return
	}
	if guard != nil {
		s.streamResponse(w, r, c, guard, mode == ResponseModeStreaming || r.ContentLength < 0)
		return
	}
	body, ok := s.answerBody(w, r, c, "response")
	if !ok {
		return
	}
	resp := Response{Payload: body, ContentType: r.Header.Get("Content-Type")}
	trailerError(r, &resp)
	s.finish(c, resp)
	writeAccepted(w)
}

// trailerError takes the error a streamed response that failed midway
// carries in its trailers, which exist only once the body has been read to
// the end.
func trailerError(r *http.Request, resp *Response) {
	typ := r.Trailer.Get(HeaderFunctionErrorType)
	if typ == "" {
		return
	}
	resp.ErrorType = typ
	dec, derr := base64.StdEncoding.DecodeString(r.Trailer.Get(HeaderFunctionErrorBody))
	if derr != nil || !json.Valid(dec) {
		dec = ErrorPayload(typ, "The function's response stream failed")
	}
	resp.Payload = dec
}

// streamChunk is the most of a streamed response read (and handed to the
// Stream) at once.
const streamChunk = 32 << 10

// streamResponse answers the runtime's POST /response in a streaming
// invocation: the body goes to the Stream as it arrives (streamed is true
// when the runtime streams: it said so, or sent its body chunked) or, for
// a body of announced length, whole once read, up to maxStream bytes. A
// failure midway is the trailers' error; past the limit the invocation
// fails with Function.ResponseSizeTooLarge, and a body cut short with
// Runtime.TruncatedResponse. When the Stream fails (its caller went away),
// the rest of the body is read and dropped, so the function can finish.
func (s *Server) streamResponse(w http.ResponseWriter, r *http.Request, c *call, g *streamGuard, streamed bool) {
	resp := Response{ContentType: r.Header.Get("Content-Type")}
	limit := s.maxStream
	tooLarge := func() {
		resp.ErrorType = "Function.ResponseSizeTooLarge"
		resp.Payload = ErrorPayload(resp.ErrorType,
			"Response payload size exceeded maximum allowed payload size ("+strconv.FormatInt(limit, 10)+" bytes).")
		s.finish(c, resp)
		writeError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge",
			"Exceeded maximum allowed payload size ("+strconv.FormatInt(limit, 10)+" bytes).")
	}
	if !streamed {
		// A whole answer (it announced its length): one piece.
		if r.ContentLength > limit {
			tooLarge()
			return
		}
		body := make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, body); err != nil {
			s.retract(c)
			writeError(w, http.StatusBadRequest, "InvalidRequest", "Reading the response body failed: "+err.Error())
			return
		}
		resp.Streamed = true
		if err := g.begin(resp.ContentType); err == nil && len(body) > 0 {
			g.write(body)
		}
		s.finish(c, resp)
		writeAccepted(w)
		return
	}
	// The response begins with its first byte (or, empty, at its end): a
	// function that fails before writing anything has begun nothing.
	failed := false
	begin := func() {
		if !resp.Streamed {
			resp.Streamed = true
			failed = g.begin(resp.ContentType) != nil
		}
	}
	buf := make([]byte, streamChunk)
	var total int64
	for {
		n, err := r.Body.Read(buf[:min(int64(len(buf)), limit-total+1)])
		if n > 0 {
			begin()
		}
		if total+int64(n) > limit {
			if !failed {
				g.write(buf[:limit-total])
			}
			tooLarge()
			return
		}
		total += int64(n)
		if n > 0 && !failed {
			failed = g.write(buf[:n]) != nil
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			resp.ErrorType = "Runtime.TruncatedResponse"
			resp.Payload = ErrorPayload(resp.ErrorType, "The function's response stream was cut short: "+err.Error())
			s.finish(c, resp)
			writeError(w, http.StatusBadRequest, "TruncatedHTTPRequest", "HTTP request detected as truncated")
			return
		}
	}
	if trailerError(r, &resp); resp.ErrorType == "" {
		begin()
	}
	s.finish(c, resp)
	writeAccepted(w)
}

func (s *Server) handleError(w http.ResponseWriter, r *http.Request) {
	c, _ := s.begin(w, r.PathValue("id"))
	if c == nil {
		return
	}
	body, ok := s.answerBody(w, r, c, "error")
	if !ok {
		return
	}
	typ, payload := errorDocument(r.Header.Get(HeaderFunctionErrorType), body)
	s.finish(c, Response{ErrorType: typ, Payload: payload})
	writeAccepted(w)
}

func (s *Server) handleInitError(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	ended := s.initEnded
	s.mu.Unlock()
	if ended {
		writeError(w, http.StatusForbidden, "InvalidStateTransition",
			"State transition from Ready to InitError failed: Init has already ended")
		return
	}
	body, tooLarge, err := s.readBody(r, false)
	if err != nil {
		writeError(w, http.StatusBadRequest, "InvalidRequest", "Reading the error body failed: "+err.Error())
		return
	}
	if tooLarge {
		writeError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge",
			"Exceeded maximum allowed payload size ("+strconv.Itoa(s.maxResponse)+" bytes).")
		return
	}
	typ, payload := errorDocument(r.Header.Get(HeaderFunctionErrorType), body)
	s.mu.Lock()
	if s.initEnded {
		s.mu.Unlock()
		writeError(w, http.StatusForbidden, "InvalidStateTransition",
			"State transition from Ready to InitError failed: Init has already ended")
		return
	}
	s.initEnded = true
	s.initErr = &InitError{Type: typ, Payload: payload}
	close(s.initDone)
	s.mu.Unlock()
	writeAccepted(w)
}

func (s *Server) handleUnknown(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotFound, "InvalidRequest", "Unknown Runtime API route: "+r.Method+" "+r.URL.Path)
}

// readBody reads at most maxResponse+1 bytes. useScratch is true only for
// the caller that holds stateAnswering, which owns s.scratch.
func (s *Server) readBody(r *http.Request, useScratch bool) (body []byte, tooLarge bool, err error) {
	limit := int64(s.maxResponse)
	if r.ContentLength > limit {
		return nil, true, nil
	}
	if r.ContentLength >= 0 {
		body = make([]byte, r.ContentLength)
		_, err = io.ReadFull(r.Body, body)
		if err != nil {
			return nil, false, err
		}
		// Drain to EOF so trailers (if any) are populated.
		_, err = io.Copy(io.Discard, io.LimitReader(r.Body, 1))
		return body, false, err
	}
	var buf *bytes.Buffer
	if useScratch {
		buf = &s.scratch
		defer func() {
			// Keep a modest buffer for the next answer; let a big one go.
			if buf.Cap() > 1<<20 {
				*buf = bytes.Buffer{}
			}
			buf.Reset()
		}()
	} else {
		buf = new(bytes.Buffer)
	}
	if _, err = buf.ReadFrom(io.LimitReader(r.Body, limit+1)); err != nil {
		return nil, false, err
	}
	if int64(buf.Len()) > limit {
		return nil, true, nil
	}
	return bytes.Clone(buf.Bytes()), false, nil
}

// errorDocument returns the error type and the document the caller receives
// for a body posted to /error or /init/error: the body itself when it is a
// JSON object, otherwise a document built from the header type and the text.
func errorDocument(headerType string, body []byte) (string, []byte) {
	var doc struct {
		ErrorType string `json:"errorType"`
	}
	isObject := json.Unmarshal(body, &doc) == nil && bytes.HasPrefix(bytes.TrimSpace(body), []byte("{"))
	typ := headerType
	if typ == "" {
		typ = doc.ErrorType
	}
	if typ == "" {
		typ = "Unhandled"
	}
	if isObject {
		return typ, body
	}
	return typ, ErrorPayload(typ, string(body))
}

// ErrorPayload renders the error document Lambda returns to callers, with
// errorType first as AWS writes it.
func ErrorPayload(errorType, message string) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(struct {
		ErrorType    string `json:"errorType"`
		ErrorMessage string `json:"errorMessage"`
	}{errorType, message})
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

var acceptedBody = []byte(`{"status":"OK"}`)

func writeAccepted(w http.ResponseWriter) {
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Content-Length"] = []string{"15"}
	w.WriteHeader(http.StatusAccepted)
	w.Write(acceptedBody)
}

func writeError(w http.ResponseWriter, status int, errorType, message string) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(struct {
		ErrorMessage string `json:"errorMessage"`
		ErrorType    string `json:"errorType"`
	}{message, errorType})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(b.Len()))
	w.WriteHeader(status)
	w.Write(b.Bytes())
}
