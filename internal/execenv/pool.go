// This file is the pool of environments: the Manager starts environments,
// hands out idle ones for reuse, returns them to the pool after each
// invocation, and stops them when they are retired, shrunk away, reaped
// for idleness, die, or the Manager closes. It also runs one invocation in
// an environment and turns the outcome into a Result.

package execenv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/lambdad/lambdad/internal/awserr"
	"github.com/lambdad/lambdad/internal/clock"
	"github.com/lambdad/lambdad/internal/function"
	"github.com/lambdad/lambdad/internal/runtimeapi"
	"github.com/lambdad/lambdad/internal/sandbox"
	"github.com/lambdad/lambdad/runtimes"
)

// Manager runs execution environments. Its methods are safe for concurrent
// use.
type Manager struct {
	cfg     Config
	log     *slog.Logger
	clock   clock.Clock   // cfg.Clock
	box     *sandbox.Host // cfg.Sandbox
	root    string        // private directory: runtimes and TMPDIRs; removed by Close
	shimDir string
	python  *interpreter
	node    *interpreter

	logs *logFiles

	reaperStop chan struct{} // closed by Close: stops the reaper
	reaperDone chan struct{} // closed when the reaper has returned
	closeOnce  sync.Once
	// bg counts goroutines stopping environments in the background;
	// inflight counts running Invoke and Prewarm calls. Add happens only
	// under mu while !closed, so Close's Wait never races an Add.
	bg       sync.WaitGroup
	inflight sync.WaitGroup

	mu     sync.Mutex // guards the following
	closed bool
	// idle holds the idle environments of each key, most recently used
	// last: reuse takes the warmest, reaping finds the coldest first.
	idle map[key][]*env
	// all holds every environment from registration until stop finishes.
	all map[*env]struct{}
	// gen counts Retire calls per function; an environment of an older
	// generation is stopped instead of going back to idle.
	gen   map[function.Key]uint64
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
	if cfg.MaxStreamResponse <= 0 {
		cfg.MaxStreamResponse = runtimeapi.DefaultMaxStreamResponse
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real
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
		cfg:        cfg,
		log:        cfg.Logger,
		clock:      cfg.Clock,
		box:        cfg.Sandbox,
		root:       root,
		shimDir:    shimDir,
		python:     newInterpreter("python3", "-c", "import sys; print(sys.executable)"),
		node:       newInterpreter("node", "-p", "process.execPath"),
		logs:       newLogFiles(cfg.LogDir, cfg.LogMaxBytes, cfg.Logger),
		reaperStop: make(chan struct{}),
		reaperDone: make(chan struct{}),
		idle:       map[key][]*env{},
		all:        map[*env]struct{}{},
		gen:        map[function.Key]uint64{},
	}
	every := min(max(cfg.IdleTimeout/4, 10*time.Millisecond), 30*time.Second)
	// The timer is set here rather than in the goroutine, so that it is on
	// the clock by the time NewManager returns: a virtual clock advanced
	// right after fires it.
	go m.reaper(m.clock.NewTimer(every), every)
	return m, nil
}

// apiOptions configure each environment's Runtime API server.
func (m *Manager) apiOptions() []runtimeapi.Option {
	return []runtimeapi.Option{runtimeapi.WithMaxResponse(m.cfg.MaxResponse),
		runtimeapi.WithMaxStreamResponse(m.cfg.MaxStreamResponse), runtimeapi.WithClock(m.clock)}
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
	m.stopInBackgroundLocked(victims...)
	m.mu.Unlock()
}

// liveLocked reports whether e is up and will stay in service. Retire does
// not touch pinned environments: they run published versions, which never
// change, and go only when their provisioned config does (Shrink).
func (m *Manager) liveLocked(e *env) bool {
	return !e.doomed && (e.pinned || e.gen == m.gen[e.key.fn()]) && !e.exitedNow()
}

// coldStart starts an environment and waits for its Init. It returns the
// ready environment (busy), or a Result when Init failed the way a function
// fails, or an error.
func (m *Manager) coldStart(ctx context.Context, s *Spec, req *Request) (*env, *Result, time.Duration, error) {
	var held func()
	if s.Code != nil {
		dir, release, err := s.Code.CodeDir(s.CodeSHA)
		if err != nil {
			return nil, nil, 0, err
		}
		s.CodeDir, held = dir, release
		if len(s.LayerSHAs) > 0 {
			if held, err = holdLayers(s, held); err != nil {
				return nil, nil, 0, err
			}
		}
	}
	l, err := m.launchFor(s)
	if err != nil {
		if held != nil {
			held()
		}
		return nil, nil, 0, err
	}
	e, err := m.register(s, held)
	if err != nil {
		if held != nil {
			held()
		}
		return nil, nil, 0, err
	}
	t0 := time.Now() // for Init Duration, a measurement: wall clock
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
	ictx, cancel := withTimeout(ctx, m.clock, m.cfg.InitTimeout)
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
	case errors.Is(err, errProcessExited) && m.wasCutOff(e):
		m.discard(e)
		return nil, nil, 0, ErrCutOff
	case errors.Is(err, errProcessExited) && !m.isClosed():
		res = e.initFailure(req.RequestID, initDur, "Runtime.ExitError", exitPayload(req.RequestID, e.exitReason()), true)
	case ctx.Err() == nil && errors.Is(err, context.Canceled) && errors.Is(context.Cause(ictx), context.DeadlineExceeded):
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
	// start is on the wall clock: Duration, which REPORT states and
	// billing rounds, is how long the real process took. The deadline,
	// which decides when the invocation is cut off, is on m.clock.
	start := time.Now()
	inv := &e.inv
	*inv = runtimeapi.Invocation{
		RequestID:          id,
		Payload:            req.Payload,
		Deadline:           m.clock.Now().Add(e.spec.Timeout),
		InvokedFunctionARN: arn,
		TraceID:            newTraceID(start),
		ClientContext:      req.ClientContext,
		TenantID:           e.spec.TenantID,
		Stream:             req.Stream,
	}
	resp, err := e.srv.Invoke(ctx, inv)
	res := &Result{Duration: time.Since(start), ColdStart: cold, InitDuration: initDur}

	var lines []byte
	if err == nil {
		res.Payload, res.Streamed, res.ContentType = resp.Payload, resp.Streamed, resp.ContentType
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
		lines = appendTimedOut(nil, time.Now(), id, e.spec.Timeout)
	case errors.Is(err, errProcessExited) && m.wasCutOff(e):
		e.halt()
		e.takeLog()
		m.discard(e)
		return nil, ErrCutOff
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
		e.appendLog(appendAbandoned(nil, id, ctx.Err()))
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
// closed (ErrClosed) or full (a throttle, see makeRoomLocked).
func (m *Manager) register(s *Spec, held func()) (*env, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	if !m.makeRoomLocked() {
		return nil, awserr.Throttle(awserr.ReasonConcurrentInvocationLimitExceeded)
	}
	e := newEnv(m, s, m.gen[function.Key{Account: s.Account, Name: s.Function}])
	e.held = held
	e.busy = true
	m.all[e] = struct{}{}
	m.stats.Started++
	return e, nil
}

// makeRoomLocked makes room for one more environment under
// MaxEnvironments: when the cap is reached it stops the on-demand idle
// environment used least recently, and reports false when every one is
// busy or provisioned. Environments being stopped do not count.
func (m *Manager) makeRoomLocked() bool {
	if m.cfg.MaxEnvironments <= 0 {
		return true
	}
	live := 0
	var oldest *env
	for e := range m.all {
		if e.doomed {
			continue
		}
		live++
		if !e.busy && !e.pinned && (oldest == nil || e.lastUsed.Before(oldest.lastUsed)) {
			oldest = e
		}
	}
	if live < m.cfg.MaxEnvironments {
		return true
	}
	if oldest == nil {
		return false
	}
	oldest.doomed = true
	m.removeIdleLocked(oldest)
	m.stats.Evicted++
	m.stopInBackgroundLocked(oldest)
	return true
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
		if e.freezer != nil {
			// Busy now, so freezeIdle leaves it alone even if its
			// timer has fired already.
			e.freezer.Stop()
			e.freezer = nil
		}
		if e.box != nil {
			// Frozen if it was idle long enough (see freezeIdle);
			// thawed before it runs, outside mu (a write to the cgroup).
			m.mu.Unlock()
			if err := e.box.Thaw(); err != nil {
				m.log.Warn("thawing an environment failed", "function", e.spec.Function, "err", err)
			}
			m.mu.Lock()
		}
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
	e.lastUsed = m.clock.Now()
	m.idle[e.key] = append(m.idle[e.key], e)
	if e.box != nil {
		e.freezer = m.clock.AfterFunc(freezeAfter, func() { m.freezeIdle(e) })
	}
	m.mu.Unlock()
}

// freezeAfter is how long an idle sandboxed environment runs on before it
// is frozen. AWS freezes at once; lambdad waits this long so that an
// environment reused back to back (a warm invocation takes a fraction of a
// millisecond) does not pay a freeze and a thaw, each a write to the
// cgroup and a wake-up of every process in it, on every invocation.
const freezeAfter = 10 * time.Millisecond

// freezeIdle freezes e if it is still idle: its processes stop where they
// are until takeIdle thaws it, or a kill (which thaws to let it die).
func (m *Manager) freezeIdle(e *env) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed || e.busy || e.doomed || e.freezer == nil {
		return
	}
	e.freezer = nil
	// Under mu, so that a takeIdle, which thaws after it takes e under
	// mu, always thaws after this freeze.
	if err := e.box.Freeze(); err != nil {
		m.log.Warn("freezing an environment failed", "function", e.spec.Function, "err", err)
	}
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
	m.stopInBackgroundLocked(e)
	m.mu.Unlock()
}

// stopInBackgroundLocked stops envs, each in a goroutine of its own that
// Close waits for. m.mu must be held and m not closed: Add happens only
// under mu while !closed, so Close's Wait never races it.
func (m *Manager) stopInBackgroundLocked(envs ...*env) {
	m.bg.Add(len(envs))
	for _, e := range envs {
		go func() {
			defer m.bg.Done()
			e.stop()
		}()
	}
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
	m.stopInBackgroundLocked(e)
	m.mu.Unlock()
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
func (m *Manager) Retire(fn function.Key) {
	m.mu.Lock()
	m.gen[fn]++
	var victims []*env
	for k, list := range m.idle {
		if k.fn() != fn {
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
	if !m.closed { // else Close stops them
		m.stopInBackgroundLocked(victims...)
	}
	m.mu.Unlock()
	// Killed before Retire returns, so that none of them runs the retired
	// code a moment longer; stop then only waits for each.
	for _, e := range victims {
		e.kill()
	}
}

// KillBusy kills every environment running an invocation now, and every
// one being started for an invocation: those invocations end with
// ErrCutOff, not as a function error (the function did nothing wrong; a
// queued event is retried soon, not a minute later). A node cut off from
// its cluster calls it, so that nothing it admitted under the cluster's
// limits runs on past its fence. It returns how many it killed.
func (m *Manager) KillBusy() int {
	m.mu.Lock()
	var victims []*env
	for e := range m.all {
		if e.busy || !e.pinned && !m.isIdleLocked(e) {
			e.doomed, e.cutOff = true, true
			victims = append(victims, e)
		}
	}
	m.mu.Unlock()
	for _, e := range victims {
		e.kill()
	}
	return len(victims)
}

// isIdleLocked reports whether e is in an idle list; m.mu held.
func (m *Manager) isIdleLocked(e *env) bool {
	for _, list := range m.idle {
		for _, x := range list {
			if x == e {
				return true
			}
		}
	}
	return false
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
			if e.freezer != nil {
				e.freezer.Stop()
				e.freezer = nil
			}
		}
		clear(m.idle)
		m.mu.Unlock()

		close(m.reaperStop)
		<-m.reaperDone
		for _, e := range envs {
			e.kill() // all at once; stop then waits for each
		}
		for _, e := range envs {
			e.stop()
		}
		m.inflight.Wait()
		m.bg.Wait()
		m.logs.close()
		removeAll(m.root)
	})
	return nil
}

// reaper stops environments idle for longer than IdleTimeout, looking
// every interval on m.clock; t is its timer, set to every.
func (m *Manager) reaper(t clock.Timer, every time.Duration) {
	defer close(m.reaperDone)
	defer t.Stop()
	for {
		select {
		case <-m.reaperStop:
			return
		case <-t.C():
		}
		// The time is asked of the clock, as release does for lastUsed,
		// rather than taken from what the timer delivered.
		for _, e := range m.expired(m.clock.Now()) {
			e.stop()
		}
		t.Reset(every)
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

// withTimeout is context.WithTimeout on c's time: once d has passed on c,
// the returned context is cancelled with the cause
// context.DeadlineExceeded (its Err is then context.Canceled, as for any
// cause).
func withTimeout(parent context.Context, c clock.Clock, d time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(parent)
	t := c.AfterFunc(d, func() { cancel(context.DeadlineExceeded) })
	return ctx, func() {
		t.Stop()
		cancel(context.Canceled)
	}
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

// wasCutOff reports whether KillBusy ended e.
func (m *Manager) wasCutOff(e *env) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return e.cutOff
}
