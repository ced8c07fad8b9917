// Package execenv runs function code: it starts execution environments
// (one runtime process each, behind its own Runtime API server from
// package runtimeapi), hands them invocations one at a time, keeps idle
// ones warm for reuse, and stops them when they time out, crash, go idle
// too long, or belong to a retired function revision.
//
// Every environment's process runs in its own process group with an
// environment built from scratch (see buildEnviron), the function's code
// directory as working directory, a private TMPDIR and a data-segment limit
// of its memory size (see limitMemory). Its stdout and stderr go to the
// invocation's log and to LogDir/<function>.log, where each line is stamped
// with its time and the version that wrote it (see logTimeLayout).
//
// The package is Linux-only: it relies on process groups with a parent-death
// signal, RLIMIT_DATA and /proc.
//
// Ownership: the Manager owns every environment; an environment owns its
// process, its Runtime API server, and two goroutines (one reaps the
// process, one reads its output). Stopping an environment waits for all of
// them; Close stops every environment and waits for every goroutine the
// Manager started.
package execenv

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/lambdad/lambdad/internal/runtimeapi"
	"github.com/lambdad/lambdad/runtimes"
)

// ErrClosed is returned by calls on a closed Manager, and by invocations
// cut short by Close.
var ErrClosed = errors.New("execenv: manager closed")

// errRetry means a warm environment died before it received the event: the
// invocation runs in another environment.
var errRetry = errors.New("execenv: environment lost before delivery")

// Defaults.
const (
	DefaultIdleTimeout = 10 * time.Minute
	DefaultInitTimeout = 10 * time.Second
	defaultMemoryMB    = 128
	defaultTimeout     = 3 * time.Second
	defaultRegion      = "us-east-1"
)

// Spec is what an environment runs: one function version at one revision.
type Spec struct {
	Function    string // function name
	Version     string // "$LATEST" (default) or "3"
	FunctionARN string // qualified ARN the invocation used, unless Request.InvokedARN says otherwise
	// Revision changes whenever code or configuration changes:
	// environments are reused only for the same (Function, Version,
	// Revision).
	Revision string
	Runtime  string // provided, provided.al2, provided.al2023, python3.x, nodejs*
	Handler  string
	CodeDir  string            // unpacked code; never written or removed here
	Env      map[string]string // the function's Environment.Variables
	MemoryMB int               // default 128
	Timeout  time.Duration     // default 3 s
	Region   string            // default us-east-1
	Account  string
	InitType string // "on-demand" (default) or "provisioned-concurrency"
	// Pool names the provisioned config (the version or alias) a pinned
	// environment belongs to, so that two configs on one version keep
	// their environments apart; "" for on-demand.
	Pool string
	// Hold, if set, is called as each environment of this spec is
	// created, before its process starts, and the function it returns
	// once that environment has stopped and its process is gone: the
	// owner of CodeDir keeps the directory while anything runs in it.
	Hold func() (release func())
}

// Request is one invocation.
type Request struct {
	RequestID     string
	Payload       []byte
	ClientContext string // decoded JSON from X-Amz-Client-Context; may be empty
	InvokedARN    string
}

// Result is the outcome of one invocation. A function error is a Result
// with FunctionError set, not an error.
type Result struct {
	Payload       []byte // the function's response, or the error document when FunctionError != ""
	FunctionError string // "" or "Unhandled"
	// Log is this invocation's log: on a cold start the Init output, then
	// START, the process's output during the invocation, END and REPORT.
	Log             []byte
	Duration        time.Duration
	BilledDuration  time.Duration // Duration rounded up to the millisecond
	InitDuration    time.Duration // 0 when warm
	MaxMemoryUsedMB int
	ColdStart       bool
}

// Config configures a Manager.
type Config struct {
	Logger      *slog.Logger
	IdleTimeout time.Duration // an idle environment is stopped after this (default 10 min)
	InitTimeout time.Duration // limit of Init, start to first GET /next (default 10 s)
	LogDir      string        // LogDir/<function>.log receives every invocation's log; "" for none
	TempRoot    string        // parent of the Manager's private directory (default os.TempDir())
	MaxResponse int           // largest response payload (default 6291556)
}

// Stats is a snapshot of the Manager's environments.
type Stats struct {
	Idle, Busy int // environments now waiting for work / running an invocation or Init
	Started    uint64
	Stopped    uint64
	Reaped     uint64 // stopped for idleness
	Retired    uint64 // stopped by Retire while idle
	ColdStarts uint64 // invocations that started an environment
	WarmStarts uint64 // invocations served by an idle environment
}

// key names a pool of interchangeable environments. InitType is part of
// it: an environment started for provisioned concurrency serves only
// invocations admitted as provisioned, and reports itself as such in
// AWS_LAMBDA_INITIALIZATION_TYPE.
type key struct{ function, version, revision, initType, pool string }

func keyOf(s *Spec) key {
	v, it := s.Version, s.InitType
	if v == "" {
		v = "$LATEST"
	}
	if it == "" {
		it = InitOnDemand
	}
	return key{s.Function, v, s.Revision, it, s.Pool}
}

// Initialization types (AWS_LAMBDA_INITIALIZATION_TYPE).
const (
	InitOnDemand    = "on-demand"
	InitProvisioned = "provisioned-concurrency"
)

// Manager runs execution environments. Its methods are safe for concurrent
// use.
type Manager struct {
	cfg     Config
	log     *slog.Logger
	root    string // private directory: runtimes and TMPDIRs; removed by Close
	shimDir string
	python  *interpreter
	node    *interpreter

	reaperStop chan struct{} // closed by Close: stops the reaper and the flusher
	reaperDone chan struct{}
	// flusherDone is closed when the log flusher has stopped.
	flusherDone chan struct{}
	closeOnce   sync.Once
	// bg counts goroutines stopping environments in the background;
	// inflight counts running Invoke and Prewarm calls. Add happens only
	// under mu while !closed, so Close's Wait never races an Add.
	bg       sync.WaitGroup
	inflight sync.WaitGroup

	filesMu sync.Mutex          // guards files and filesClosed; taken after env.logMu
	files   map[string]*logFile // per-function log files, opened on first write
	// filesClosed is set by Close; later writes are dropped.
	filesClosed bool

	mu     sync.Mutex // guards the following
	closed bool
	// idle holds the idle environments of each key, most recently used
	// last: reuse takes the warmest, reaping finds the coldest first.
	idle map[key][]*env
	// all holds every environment from registration until stop finishes.
	all map[*env]struct{}
	// gen counts Retire calls per function; an environment of an older
	// generation is stopped instead of going back to idle.
	gen   map[string]uint64
	stats Stats // cumulative counters only
}

// NewManager prepares a Manager: it makes its private directory under
// TempRoot, writes the runtime bootstraps there and looks up python3 and
// node.
func NewManager(cfg Config) (*Manager, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.InitTimeout <= 0 {
		cfg.InitTimeout = DefaultInitTimeout
	}
	if cfg.MaxResponse <= 0 {
		cfg.MaxResponse = runtimeapi.DefaultMaxResponse
	}
	if cfg.LogDir != "" {
		if err := os.MkdirAll(cfg.LogDir, 0o755); err != nil {
			return nil, fmt.Errorf("execenv: %w", err)
		}
	}
	if cfg.TempRoot != "" {
		if err := os.MkdirAll(cfg.TempRoot, 0o755); err != nil {
			return nil, fmt.Errorf("execenv: %w", err)
		}
	}
	root, err := os.MkdirTemp(cfg.TempRoot, "lambdad-")
	if err != nil {
		return nil, fmt.Errorf("execenv: %w", err)
	}
	// Function processes run as the server's user; they reach their own
	// TMPDIR and the runtimes, not each other's TMPDIRs (0700 each).
	if err := os.Chmod(root, 0o711); err != nil {
		os.RemoveAll(root)
		return nil, fmt.Errorf("execenv: %w", err)
	}
	shimDir := filepath.Join(root, "runtimes")
	if err := runtimes.Extract(shimDir); err != nil {
		os.RemoveAll(root)
		return nil, fmt.Errorf("execenv: %w", err)
	}
	m := &Manager{
		cfg:         cfg,
		log:         cfg.Logger,
		root:        root,
		shimDir:     shimDir,
		python:      newInterpreter("python3", "-c", "import sys; print(sys.executable)"),
		node:        newInterpreter("node", "-p", "process.execPath"),
		reaperStop:  make(chan struct{}),
		reaperDone:  make(chan struct{}),
		flusherDone: make(chan struct{}),
		files:       map[string]*logFile{},
		idle:        map[key][]*env{},
		all:         map[*env]struct{}{},
		gen:         map[string]uint64{},
	}
	go m.flusher()
	go m.reaper(min(max(cfg.IdleTimeout/4, 10*time.Millisecond), 30*time.Second))
	return m, nil
}

// normalize fills in defaults.
func normalize(spec *Spec) Spec {
	s := *spec
	if s.Version == "" {
		s.Version = "$LATEST"
	}
	if s.MemoryMB <= 0 {
		s.MemoryMB = defaultMemoryMB
	}
	if s.Timeout <= 0 {
		s.Timeout = defaultTimeout
	}
	if s.Region == "" {
		s.Region = defaultRegion
	}
	if s.InitType == "" {
		s.InitType = InitOnDemand
	}
	if abs, err := filepath.Abs(s.CodeDir); err == nil {
		s.CodeDir = abs
	}
	if s.FunctionARN == "" {
		s.FunctionARN = "arn:aws:lambda:" + s.Region + ":" + s.Account + ":function:" + s.Function
	}
	return s
}

// enter registers a running call, unless the Manager is closed.
func (m *Manager) enter() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return false
	}
	m.inflight.Add(1)
	return true
}

// Invoke runs one invocation in an idle environment of spec, or in a new
// one. Errors are for what is not a function outcome: an unsupported
// runtime (*awserr.Error, InvalidRuntimeException), ctx ending (ctx.Err()),
// ErrClosed, or a fault of this machine. When ctx ends mid-invocation the
// environment's process group is killed.
func (m *Manager) Invoke(ctx context.Context, spec *Spec, req *Request) (*Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !m.enter() {
		return nil, ErrClosed
	}
	defer m.inflight.Done()
	k := keyOf(spec)
	const attempts = 3
	for range attempts {
		e := m.takeIdle(k)
		if e == nil {
			break
		}
		res, err := m.run(ctx, e, req, false, 0)
		if err != errRetry {
			return res, err
		}
	}
	s := normalize(spec)
	e, res, initDur, err := m.coldStart(ctx, &s, req)
	if e == nil {
		if res != nil {
			m.count(func(st *Stats) { st.ColdStarts++ })
		}
		return res, err
	}
	m.count(func(st *Stats) { st.ColdStarts++ })
	return m.run(ctx, e, req, true, initDur)
}

// Prewarm starts an environment of spec, runs its Init and leaves it idle,
// so a later invocation finds it warm. Init output goes to the function's
// log file. A failed Init is returned as an error.
//
// With InitType "provisioned-concurrency" the environment is pinned: idle
// reaping passes it by, Live counts it, and it stays until Shrink, Retire
// or Close stops it or its process dies. Invocations reach it only with
// the same InitType.
func (m *Manager) Prewarm(ctx context.Context, spec *Spec) error {
	if !m.enter() {
		return ErrClosed
	}
	defer m.inflight.Done()
	s := normalize(spec)
	e, res, _, err := m.coldStart(ctx, &s, &Request{RequestID: "prewarm"})
	if err != nil {
		return err
	}
	if e == nil {
		return fmt.Errorf("execenv: init of %s failed: %s", s.Function, res.Payload)
	}
	e.takeLog()
	if s.InitType == InitProvisioned {
		m.mu.Lock()
		e.pinned = true
		m.mu.Unlock()
	}
	m.release(e)
	return nil
}

// Live counts the pinned environments of spec's pool (see Prewarm) that
// are up, idle or busy.
func (m *Manager) Live(spec *Spec) int {
	k := keyOf(spec)
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for e := range m.all {
		if e.key == k && e.pinned && m.liveLocked(e) {
			n++
		}
	}
	return n
}

// Shrink stops the pinned environments of spec's pool beyond n: idle ones
// now, busy ones when their invocation ends.
func (m *Manager) Shrink(spec *Spec, n int) {
	k := keyOf(spec)
	m.mu.Lock()
	var live []*env
	for e := range m.all {
		if e.key == k && e.pinned && m.liveLocked(e) {
			live = append(live, e)
		}
	}
	excess := len(live) - max(n, 0)
	if excess <= 0 || m.closed {
		m.mu.Unlock()
		return
	}
	// Idle ones first: they go now.
	slices.SortFunc(live, func(a, b *env) int {
		switch {
		case a.busy == b.busy:
			return 0
		case !a.busy:
			return -1
		}
		return 1
	})
	var victims []*env
	for _, e := range live[:excess] {
		e.doomed = true // a busy one is stopped by release
		if !e.busy {
			m.removeIdleLocked(e)
			victims = append(victims, e)
		}
	}
	m.bg.Add(len(victims))
	m.mu.Unlock()
	for _, e := range victims {
		go func() {
			defer m.bg.Done()
			e.stop()
		}()
	}
}

// liveLocked reports whether e is up and will stay in service. Retire does
// not touch pinned environments: they run published versions, which never
// change, and go only when their provisioned config does (Shrink).
func (m *Manager) liveLocked(e *env) bool {
	return !e.doomed && (e.pinned || e.gen == m.gen[e.key.function]) && !e.exitedNow()
}

// coldStart starts an environment and waits for its Init. It returns the
// ready environment (busy), or a Result when Init failed the way a function
// fails, or an error.
func (m *Manager) coldStart(ctx context.Context, s *Spec, req *Request) (*env, *Result, time.Duration, error) {
	l, err := m.launchFor(s)
	if err != nil {
		return nil, nil, 0, err
	}
	var held func()
	if s.Hold != nil {
		held = s.Hold()
	}
	e := m.register(s, held)
	if e == nil {
		if held != nil {
			held()
		}
		return nil, nil, 0, ErrClosed
	}
	t0 := time.Now()
	if err := e.start(l); err != nil {
		var bad *errInvalidEntrypoint
		if errors.As(err, &bad) {
			res := e.initFailure(req.RequestID, time.Since(t0), "Runtime.InvalidEntrypoint",
				runtimeapi.ErrorPayload("Runtime.InvalidEntrypoint", "RequestId: "+req.RequestID+" Error: "+bad.msg), true)
			m.discard(e)
			return nil, res, 0, nil
		}
		m.discard(e)
		if m.isClosed() {
			return nil, nil, 0, ErrClosed
		}
		return nil, nil, 0, err
	}
	ictx, cancel := context.WithTimeout(ctx, m.cfg.InitTimeout)
	err = e.srv.WaitInit(ictx)
	cancel()
	initDur := time.Since(t0)
	if err == nil {
		return e, nil, initDur, nil
	}
	e.halt()
	var res *Result
	var ie *runtimeapi.InitError
	switch {
	case errors.As(err, &ie):
		res = e.initFailure(req.RequestID, initDur, ie.Type, ie.Payload, false)
	case errors.Is(err, errProcessExited) && !m.isClosed():
		res = e.initFailure(req.RequestID, initDur, "Runtime.ExitError", exitPayload(req.RequestID, e.exitReason()), true)
	case ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded):
		res = e.initFailure(req.RequestID, initDur, "Sandbox.Timedout", timeoutPayload(req.RequestID, m.cfg.InitTimeout), false)
	}
	m.discard(e)
	if res != nil {
		return nil, res, 0, nil
	}
	if ctx.Err() != nil {
		return nil, nil, 0, ctx.Err()
	}
	if m.isClosed() {
		return nil, nil, 0, ErrClosed
	}
	return nil, nil, 0, err
}

// run hands req to e and turns the outcome into a Result. It releases or
// discards e. errRetry means e died before it received the event.
func (m *Manager) run(ctx context.Context, e *env, req *Request, cold bool, initDur time.Duration) (*Result, error) {
	id := req.RequestID
	arn := req.InvokedARN
	if arn == "" {
		arn = e.spec.FunctionARN
	}
	if cold {
		// What the process printed while it initialised is in the pipe by
		// the time it asked for its first event; take it first, so that it
		// comes before START, as on AWS.
		e.drain()
	}
	startLine := appendStart(nil, id, e.spec.Version)
	e.appendLog(startLine)
	start := time.Now()
	inv := &e.inv
	*inv = runtimeapi.Invocation{
		RequestID:          id,
		Payload:            req.Payload,
		Deadline:           start.Add(e.spec.Timeout),
		InvokedFunctionARN: arn,
		TraceID:            newTraceID(start),
		ClientContext:      req.ClientContext,
	}
	resp, err := e.srv.Invoke(ctx, inv)
	res := &Result{Duration: time.Since(start), ColdStart: cold, InitDuration: initDur}

	var lines []byte
	if err == nil {
		res.Payload = resp.Payload
		if resp.ErrorType != "" {
			res.FunctionError = "Unhandled"
		}
		e.drain()
		res.MaxMemoryUsedMB = e.peakMB()
		res.Log = e.finishLog(id, res, nil)
		if !cold {
			m.count(func(st *Stats) { st.WarmStarts++ })
		}
		m.release(e)
		return res, nil
	}

	delivered := !errors.Is(err, runtimeapi.ErrNotDelivered)
	switch {
	case errors.Is(err, runtimeapi.ErrTimedOut):
		e.halt()
		res.Payload = timeoutPayload(id, e.spec.Timeout)
		lines = fmt.Appendf(nil, "%s %s Task timed out after %.2f seconds\n",
			time.Now().UTC().Format("2006-01-02T15:04:05.000Z"), id, e.spec.Timeout.Seconds())
	case errors.Is(err, errProcessExited) && !m.isClosed():
		if !delivered && !cold {
			e.unlog(startLine)
			m.discard(e)
			return nil, errRetry
		}
		e.halt()
		reason := e.exitReason()
		res.Payload = exitPayload(id, reason)
		lines = append(exitLine(nil, id, reason), "Runtime.ExitError\n"...)
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		if !delivered && !cold {
			// The function never saw the event: the environment is intact.
			e.unlog(startLine)
			m.release(e)
			return nil, ctx.Err()
		}
		e.halt()
		e.appendLog(fmt.Appendf(nil, "RequestId: %s Error: invocation abandoned: %v\n", id, ctx.Err()))
		e.takeLog()
		m.discard(e)
		return nil, ctx.Err()
	default:
		e.halt()
		e.takeLog()
		m.discard(e)
		if m.isClosed() {
			return nil, ErrClosed
		}
		return nil, err
	}
	res.FunctionError = "Unhandled"
	res.MaxMemoryUsedMB = e.peakMB()
	res.Log = e.finishLog(id, res, lines)
	m.discard(e)
	return res, nil
}

// register creates an environment for s, busy, unless the Manager is
// closed; held is called when it has stopped.
func (m *Manager) register(s *Spec, held func()) *env {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	e := newEnv(m, s, m.gen[s.Function])
	e.held = held
	e.busy = true
	m.all[e] = struct{}{}
	m.stats.Started++
	return e
}

// takeIdle returns the most recently used idle environment of k, busy.
func (m *Manager) takeIdle(k key) *env {
	m.mu.Lock()
	defer m.mu.Unlock()
	list := m.idle[k]
	for len(list) > 0 {
		e := list[len(list)-1]
		list[len(list)-1] = nil
		list = list[:len(list)-1]
		if e.exitedNow() {
			continue // envExited stops it: it is neither idle nor busy now
		}
		e.busy = true
		m.setIdle(k, list)
		return e
	}
	m.setIdle(k, list)
	return nil
}

func (m *Manager) setIdle(k key, list []*env) {
	if len(list) == 0 {
		delete(m.idle, k)
		return
	}
	m.idle[k] = list
}

// release returns e to the idle pool, or stops it when its function was
// retired, its process is gone, or the Manager is closing.
func (m *Manager) release(e *env) {
	m.mu.Lock()
	e.busy = false
	if m.closed || !m.liveLocked(e) {
		m.mu.Unlock()
		m.discard(e)
		return
	}
	e.lastUsed = time.Now()
	m.idle[e.key] = append(m.idle[e.key], e)
	m.mu.Unlock()
}

// discard stops e: in the background while the Manager runs, at once once
// it is closing (Close then waits for nothing it does not see).
func (m *Manager) discard(e *env) {
	m.mu.Lock()
	e.doomed = true
	if m.closed {
		m.mu.Unlock()
		e.stop()
		return
	}
	m.bg.Add(1)
	m.mu.Unlock()
	go func() {
		defer m.bg.Done()
		e.stop()
	}()
}

// envExited is called by e's waiter when its process exits. An idle
// environment is stopped; a busy one is left to the call using it.
func (m *Manager) envExited(e *env) {
	m.mu.Lock()
	if m.closed || e.busy {
		m.mu.Unlock()
		return
	}
	e.doomed = true
	m.removeIdleLocked(e)
	m.bg.Add(1)
	m.mu.Unlock()
	go func() {
		defer m.bg.Done()
		e.stop()
	}()
}

func (m *Manager) removeIdleLocked(e *env) {
	list := m.idle[e.key]
	for i, x := range list {
		if x == e {
			list = append(list[:i], list[i+1:]...)
			m.setIdle(e.key, list)
			return
		}
	}
}

// forget is called at the end of e.stop.
func (m *Manager) forget(e *env) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.all[e]; ok {
		delete(m.all, e)
		m.removeIdleLocked(e)
		m.stats.Stopped++
	}
}

func (m *Manager) isClosed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closed
}

func (m *Manager) count(f func(*Stats)) {
	m.mu.Lock()
	f(&m.stats)
	m.mu.Unlock()
}

// Retire stops the on-demand environments of function: idle ones now, busy
// ones when their invocation ends, and ones still starting once they have
// served the invocation they were started for. Call it after the function's
// code or configuration changed, or the function was deleted. Pinned
// (provisioned) environments stay: Shrink stops them.
func (m *Manager) Retire(function string) {
	m.mu.Lock()
	m.gen[function]++
	var victims []*env
	for k, list := range m.idle {
		if k.function != function {
			continue
		}
		var keep []*env
		for _, e := range list {
			if e.pinned {
				keep = append(keep, e)
				continue
			}
			e.doomed = true
			victims = append(victims, e)
		}
		if len(keep) > 0 {
			m.idle[k] = keep
		} else {
			delete(m.idle, k)
		}
	}
	m.stats.Retired += uint64(len(victims))
	closed := m.closed
	if !closed {
		m.bg.Add(len(victims))
	}
	m.mu.Unlock()
	for _, e := range victims {
		e.kill()
	}
	if closed {
		return // Close stops them
	}
	for _, e := range victims {
		go func() {
			defer m.bg.Done()
			e.stop()
		}()
	}
}

// Stats returns current counts.
func (m *Manager) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.stats
	for _, list := range m.idle {
		st.Idle += len(list)
	}
	for e := range m.all {
		if e.busy {
			st.Busy++
		}
	}
	return st
}

// Close stops every environment (running invocations end with ErrClosed),
// waits for every process and goroutine the Manager started, and removes
// its private directory. Later calls fail with ErrClosed.
func (m *Manager) Close() error {
	m.closeOnce.Do(func() {
		m.mu.Lock()
		m.closed = true
		envs := make([]*env, 0, len(m.all))
		for e := range m.all {
			envs = append(envs, e)
		}
		clear(m.idle)
		m.mu.Unlock()

		close(m.reaperStop)
		<-m.reaperDone
		<-m.flusherDone
		for _, e := range envs {
			e.kill() // all at once; stop then waits for each
		}
		for _, e := range envs {
			e.stop()
		}
		m.inflight.Wait()
		m.bg.Wait()

		m.filesMu.Lock()
		m.filesClosed = true
		for _, f := range m.files {
			f.w.Flush()
			f.f.Close()
		}
		clear(m.files)
		m.filesMu.Unlock()
		removeAll(m.root)
	})
	return nil
}

// reaper stops environments idle for longer than IdleTimeout.
func (m *Manager) reaper(every time.Duration) {
	defer close(m.reaperDone)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-m.reaperStop:
			return
		case now := <-t.C:
			for _, e := range m.expired(now) {
				e.stop()
			}
		}
	}
}

// expired removes and returns the idle environments past IdleTimeout.
func (m *Manager) expired(now time.Time) []*env {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*env
	for k, list := range m.idle {
		kept := list[:0]
		for _, e := range list {
			if !e.pinned && now.Sub(e.lastUsed) >= m.cfg.IdleTimeout {
				e.doomed = true
				out = append(out, e)
			} else {
				kept = append(kept, e)
			}
		}
		clear(list[len(kept):])
		m.setIdle(k, kept)
	}
	m.stats.Reaped += uint64(len(out))
	return out
}

// writeLog appends b, output of an environment of version, to the
// function's log file, each line stamped with the time of the mark in force
// where it begins (see LogLine). A line that does not end in b (output cut
// at maxLogBuffer, or left without its newline when an invocation ended)
// is ended here; its rest becomes a line of its own.
func (m *Manager) writeLog(function, version string, b []byte, marks []logMark) {
	if m.cfg.LogDir == "" || len(b) == 0 {
		return
	}
	m.filesMu.Lock()
	defer m.filesMu.Unlock()
	if m.filesClosed {
		return
	}
	f := m.files[function]
	if f == nil {
		file, err := os.OpenFile(LogFile(m.cfg.LogDir, function), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			m.log.Warn("opening the function log failed", "function", function, "err", err)
			return
		}
		f = &logFile{f: file, w: bufio.NewWriterSize(file, 64<<10)}
		m.files[function] = f
	}
	var off, mi int
	for off < len(b) {
		for mi+1 < len(marks) && marks[mi+1].off <= off {
			mi++
		}
		at := time.Now()
		if mi < len(marks) {
			at = marks[mi].at
		}
		line := b[off:]
		if i := bytes.IndexByte(line, '\n'); i >= 0 {
			line = line[:i]
		}
		off += len(line) + 1
		f.stamp = appendLogPrefix(f.stamp[:0], at, version)
		f.w.Write(f.stamp)
		f.w.Write(line)
		if err := f.w.WriteByte('\n'); err != nil {
			m.log.Warn("writing the function log failed", "function", function, "err", err)
			return
		}
	}
}

// The function log file (LogFile) has one line per line of output, in the
// order written:
//
//	2006-01-02T15:04:05.000Z [VERSION] TEXT
//
// the UTC time the line's first byte reached lambdad (milliseconds, as
// CloudWatch Logs keeps them), the
// version whose environment wrote it in brackets, as in AWS's log stream
// names ($LATEST or a number), and the line as the function (or lambdad:
// START, END, REPORT, ...) wrote it. TEXT is what an invocation's
// LogType=Tail log holds, unstamped.
const logTimeLayout = "2006-01-02T15:04:05.000Z"

func appendLogPrefix(b []byte, at time.Time, version string) []byte {
	b = at.UTC().AppendFormat(b, logTimeLayout)
	b = append(b, " ["...)
	b = append(b, version...)
	return append(b, "] "...)
}

// LogLine is one parsed line of a function log file.
type LogLine struct {
	Time    time.Time
	Version string
	Text    []byte // aliases the parsed line
}

// ParseLogLine reads a line of a function log file, without its newline.
// ok is false for a line not in the format (as files written before it
// hold).
func ParseLogLine(line []byte) (l LogLine, ok bool) {
	stamp, rest, ok := bytes.Cut(line, []byte(" ["))
	if !ok {
		return LogLine{}, false
	}
	version, text, ok := bytes.Cut(rest, []byte("] "))
	if !ok || len(version) == 0 {
		return LogLine{}, false
	}
	at, err := time.Parse(logTimeLayout, string(stamp))
	if err != nil {
		return LogLine{}, false
	}
	return LogLine{Time: at, Version: string(version), Text: text}, true
}

// logFile is one function's log file. Writes are buffered and flushed
// every logFlushEvery (and when the buffer fills, and at Close), so that an
// invocation does not pay a write system call for its log.
type logFile struct {
	f     *os.File
	w     *bufio.Writer
	stamp []byte // a line's prefix, reused
}

// logFlushEvery bounds how late a line reaches the log file.
const logFlushEvery = 200 * time.Millisecond

// flusher writes the buffered logs out every logFlushEvery until Close.
func (m *Manager) flusher() {
	defer close(m.flusherDone)
	t := time.NewTicker(logFlushEvery)
	defer t.Stop()
	for {
		select {
		case <-m.reaperStop:
			return
		case <-t.C:
		}
		m.FlushLogs()
	}
}

// FlushLogs writes every buffered log line out to the log files now.
func (m *Manager) FlushLogs() {
	m.filesMu.Lock()
	defer m.filesMu.Unlock()
	for fn, f := range m.files {
		if err := f.w.Flush(); err != nil {
			m.log.Warn("writing the function log failed", "function", fn, "err", err)
		}
	}
}

// LogFile is the path of function's log file under logDir. Function names
// are [A-Za-z0-9_-]; anything else is replaced so a name can never leave
// logDir.
func LogFile(logDir, function string) string {
	b := []byte(function)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	if len(b) == 0 {
		b = []byte("_")
	}
	return filepath.Join(logDir, string(b)+".log")
}

// initFailure builds the Result of an invocation whose Init failed and
// completes its log; exitLines adds AWS's two-line error note.
func (e *env) initFailure(id string, d time.Duration, errorType string, payload []byte, exitLines bool) *Result {
	res := &Result{
		Payload:       payload,
		FunctionError: "Unhandled",
		Duration:      d,
		ColdStart:     true,
	}
	e.appendLog(fmt.Appendf(nil, "INIT_REPORT Init Duration: %.2f ms\tPhase: init\tStatus: error\tError Type: %s\n",
		ms(d), errorType))
	e.appendLog(appendStart(nil, id, e.spec.Version))
	var lines []byte
	if exitLines {
		if errorType == "Runtime.ExitError" {
			lines = exitLine(nil, id, e.exitReason())
		} else {
			var doc struct {
				ErrorMessage string `json:"errorMessage"`
			}
			json.Unmarshal(payload, &doc)
			lines = append(lines, doc.ErrorMessage+"\n"...)
		}
		lines = append(lines, errorType+"\n"...)
	}
	res.MaxMemoryUsedMB = e.peakMB()
	res.Log = e.finishLog(id, res, lines)
	return res
}

// finishLog appends lines, END and REPORT, and takes the log.
func (e *env) finishLog(id string, res *Result, lines []byte) []byte {
	res.BilledDuration = billed(res.Duration)
	tail := append(lines, "END RequestId: "...)
	tail = append(tail, id...)
	tail = append(tail, '\n')
	tail = appendReport(tail, id, res, e.spec.MemoryMB)
	e.logMu.Lock()
	e.markLocked(tail)
	e.out = append(e.out, tail...)
	e.logMu.Unlock()
	return e.takeLog()
}

// unlog removes a START line written for an invocation that never reached
// the function.
func (e *env) unlog(line []byte) {
	e.logMu.Lock()
	defer e.logMu.Unlock()
	if i := bytes.LastIndex(e.out, line); i >= 0 {
		e.out = append(e.out[:i], e.out[i+len(line):]...)
		for k := range e.marks {
			if e.marks[k].off > i {
				e.marks[k].off = max(i, e.marks[k].off-len(line))
			}
		}
	}
}

func appendStart(b []byte, id, version string) []byte {
	b = append(b, "START RequestId: "...)
	b = append(b, id...)
	b = append(b, " Version: "...)
	b = append(b, version...)
	return append(b, '\n')
}

// appendReport writes AWS's REPORT line, fields tab-separated with a
// trailing tab.
func appendReport(b []byte, id string, res *Result, memoryMB int) []byte {
	b = append(b, "REPORT RequestId: "...)
	b = append(b, id...)
	b = append(b, "\tDuration: "...)
	b = strconv.AppendFloat(b, ms(res.Duration), 'f', 2, 64)
	b = append(b, " ms\tBilled Duration: "...)
	b = strconv.AppendInt(b, res.BilledDuration.Milliseconds(), 10)
	b = append(b, " ms\tMemory Size: "...)
	b = strconv.AppendInt(b, int64(memoryMB), 10)
	b = append(b, " MB\tMax Memory Used: "...)
	b = strconv.AppendInt(b, int64(res.MaxMemoryUsedMB), 10)
	b = append(b, " MB\t"...)
	if res.ColdStart && res.InitDuration > 0 {
		b = append(b, "Init Duration: "...)
		b = strconv.AppendFloat(b, ms(res.InitDuration), 'f', 2, 64)
		b = append(b, " ms\t"...)
	}
	return append(b, '\n')
}

func exitLine(b []byte, id, reason string) []byte {
	if reason == "" {
		return append(b, "RequestId: "+id+" Error: Runtime exited without providing a reason\n"...)
	}
	return append(b, "RequestId: "+id+" Error: Runtime exited with error: "+reason+"\n"...)
}

func exitPayload(id, reason string) []byte {
	l := exitLine(nil, id, reason)
	return runtimeapi.ErrorPayload("Runtime.ExitError", string(l[:len(l)-1]))
}

func timeoutPayload(id string, d time.Duration) []byte {
	return runtimeapi.ErrorPayload("Sandbox.Timedout",
		fmt.Sprintf("RequestId: %s Error: Task timed out after %.2f seconds", id, d.Seconds()))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// billed rounds d up to the next millisecond, at least 1 ms.
func billed(d time.Duration) time.Duration {
	b := (d + time.Millisecond - 1).Truncate(time.Millisecond)
	return max(b, time.Millisecond)
}

// newTraceID makes an X-Ray trace header: Root=1-<8 hex time>-<24 hex>;
// Parent=<16 hex>;Sampled=0.
func newTraceID(now time.Time) string {
	const hexdigits = "0123456789abcdef"
	var b [77]byte
	n := copy(b[:], "Root=1-")
	put := func(v uint64, digits int) {
		for i := digits - 1; i >= 0; i-- {
			b[n+i] = hexdigits[v&0xf]
			v >>= 4
		}
		n += digits
	}
	put(uint64(now.Unix()), 8)
	b[n] = '-'
	n++
	put(rand.Uint64()>>32, 8)
	put(rand.Uint64(), 16)
	n += copy(b[n:], ";Parent=")
	put(rand.Uint64(), 16)
	n += copy(b[n:], ";Sampled=0")
	return string(b[:n])
}
