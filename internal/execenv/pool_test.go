package execenv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lambdad/lambdad/internal/awserr"
	"github.com/lambdad/lambdad/internal/clock"
)

// This file tests what the pool decides on time: on virtual time in
// testing/synctest bubbles with environments that have no process (a real
// child process is not durably blocking, so it cannot run in a bubble),
// and with real processes on a Manager clock that moves only when the test
// moves it.

// shiftedClock is clock.Real set shift ahead: its timers run as Real's
// (inside a bubble, on the bubble's time), its Now is not time.Now. Code
// that reads time.Now where it should read the Manager's clock is off by
// shift.
type shiftedClock struct {
	clock.Clock
	shift time.Duration
}

func (c shiftedClock) Now() time.Time { return c.Clock.Now().Add(c.shift) }

// manualClock is a clock.Clock that moves only when Advance moves it, so
// that a test with real processes decides when the Manager's time passes,
// however fast or slow the machine.
type manualClock struct {
	mu     sync.Mutex
	now    time.Time
	active map[*manualTimer]struct{} // set, not yet fired or stopped
}

type manualTimer struct {
	c  *manualClock
	at time.Time
	ch chan time.Time // nil for AfterFunc timers
	f  func()
}

func newManualClock() *manualClock {
	return &manualClock{now: time.Now(), active: map[*manualTimer]struct{}{}}
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) NewTimer(d time.Duration) clock.Timer {
	t := &manualTimer{c: c, ch: make(chan time.Time, 1)}
	t.Reset(d)
	return t
}

func (c *manualClock) AfterFunc(d time.Duration, f func()) clock.Timer {
	t := &manualTimer{c: c, f: f}
	t.Reset(d)
	return t
}

// pending counts the timers set and not yet fired or stopped.
func (c *manualClock) pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.active)
}

// Advance moves the clock d on and fires, in order, the timers due by then.
func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	now := c.now
	var due []*manualTimer
	for t := range c.active {
		if !t.at.After(now) {
			due = append(due, t)
			delete(c.active, t)
		}
	}
	c.mu.Unlock()
	slices.SortFunc(due, func(a, b *manualTimer) int { return a.at.Compare(b.at) })
	for _, t := range due {
		t.fire(now)
	}
}

func (t *manualTimer) fire(now time.Time) {
	if t.f != nil {
		go t.f()
		return
	}
	select {
	case t.ch <- now:
	default:
	}
}

func (t *manualTimer) C() <-chan time.Time { return t.ch }

// Stop and Reset drop a fire not yet received, as a time.Timer's do.
func (t *manualTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	_, ok := t.c.active[t]
	delete(t.c.active, t)
	t.drain()
	return ok
}

func (t *manualTimer) Reset(d time.Duration) bool {
	t.c.mu.Lock()
	_, ok := t.c.active[t]
	t.drain()
	t.at = t.c.now.Add(d)
	now := t.c.now
	if d > 0 {
		t.c.active[t] = struct{}{}
	} else {
		delete(t.c.active, t)
	}
	t.c.mu.Unlock()
	if d <= 0 {
		t.fire(now)
	}
	return ok
}

func (t *manualTimer) drain() {
	if t.ch != nil {
		select {
		case <-t.ch:
		default:
		}
	}
}

// idleEnv puts an environment without a process into m's idle pool, as
// release does after an invocation.
func idleEnv(t *testing.T, m *Manager, spec *Spec, pinned bool) *env {
	t.Helper()
	s := normalize(spec)
	e, err := m.register(&s, nil)
	if err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	e.pinned = pinned
	m.mu.Unlock()
	m.release(e)
	return e
}

// TestIdleReaper runs the reaper on virtual time: an idle environment goes
// no sooner than IdleTimeout after its last use and at most one reaper
// interval later; using it again starts its idle time afresh; a pinned one
// stays. With the shifted clock, time.Now read anywhere in the decision
// instead of the Manager's clock puts it an hour off.
func TestIdleReaper(t *testing.T) {
	for _, c := range []struct {
		name  string
		clock clock.Clock
	}{
		{"default", nil},
		{"shifted", shiftedClock{clock.Real, time.Hour}},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				// The reaper looks every IdleTimeout/4, at most every 30 s.
				const idle, every = DefaultIdleTimeout, 30 * time.Second
				m := newManager(t, Config{Clock: c.clock})
				a := idleEnv(t, m, goSpec("a"), false)
				b := idleEnv(t, m, goSpec("b"), false)
				idleEnv(t, m, goSpec("pinned"), true)

				time.Sleep(5 * time.Minute)
				if e := m.takeIdle(b.key); e != b {
					t.Fatalf("takeIdle = %p, want b %p", e, b)
				}
				m.release(b) // used again 5 minutes in

				time.Sleep(idle - 5*time.Minute - time.Nanosecond)
				synctest.Wait()
				if st := m.Stats(); st.Reaped != 0 || st.Idle != 3 {
					t.Fatalf("just before IdleTimeout: %+v", st)
				}
				time.Sleep(every + time.Nanosecond)
				synctest.Wait()
				if st := m.Stats(); st.Reaped != 1 || st.Stopped != 1 || st.Idle != 2 {
					t.Fatalf("an interval after IdleTimeout: %+v", st)
				}
				if e := m.takeIdle(a.key); e != nil {
					t.Fatal("the reaped environment is still handed out")
				}

				time.Sleep(5*time.Minute - every - time.Nanosecond)
				synctest.Wait()
				if st := m.Stats(); st.Reaped != 1 {
					t.Fatalf("the environment used again went early: %+v", st)
				}
				time.Sleep(every + time.Nanosecond)
				synctest.Wait()
				if st := m.Stats(); st.Reaped != 2 || st.Idle != 1 {
					t.Fatalf("IdleTimeout after its second use: %+v", st)
				}

				time.Sleep(24 * time.Hour)
				synctest.Wait()
				if st := m.Stats(); st.Reaped != 2 || st.Idle != 1 {
					t.Fatalf("the pinned environment was reaped: %+v", st)
				}
			})
		})
	}
}

// TestWithTimeout checks the Init timeout's context on two clocks: the
// bubble's, and a manual one that time.Sleep does not move.
func TestWithTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := withTimeout(t.Context(), clock.Real, time.Second)
		defer cancel()
		time.Sleep(time.Second - time.Nanosecond)
		synctest.Wait()
		if err := ctx.Err(); err != nil {
			t.Fatalf("before the timeout: %v", err)
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		if err := context.Cause(ctx); err != context.DeadlineExceeded {
			t.Fatalf("at the timeout: cause %v, want context.DeadlineExceeded", err)
		}

		clk := newManualClock()
		ctx, cancel = withTimeout(t.Context(), clk, time.Second)
		time.Sleep(time.Hour)
		synctest.Wait()
		if err := ctx.Err(); err != nil {
			t.Fatalf("the manual clock has not moved: %v", err)
		}
		clk.Advance(time.Second)
		synctest.Wait()
		if err := context.Cause(ctx); err != context.DeadlineExceeded {
			t.Fatalf("at the timeout on the manual clock: cause %v", err)
		}
		cancel()

		// Cancelled first: the cause says so, and the timer is gone.
		ctx, cancel = withTimeout(t.Context(), clk, time.Second)
		cancel()
		if err := context.Cause(ctx); err != context.Canceled || clk.pending() != 0 {
			t.Fatalf("cancelled: cause %v, %d timers left", err, clk.pending())
		}
	})
}

type outcome struct {
	res *Result
	err error
}

func invokeAsync(m *Manager, spec *Spec, payload string) (*Request, <-chan outcome) {
	req := newRequest(payload)
	ch := make(chan outcome, 1)
	go func() {
		res, err := m.Invoke(context.Background(), spec, req)
		ch <- outcome{res, err}
	}()
	return req, ch
}

// TestTimeoutsOnManagerClock runs real processes on a Manager clock that
// moves only when the test moves it: Init times out and an invocation
// reaches its deadline when that clock says, the deadline the function
// sees is on it, and Duration still measures the process on the wall.
func TestTimeoutsOnManagerClock(t *testing.T) {
	clk := newManualClock()
	m := newManager(t, Config{Clock: clk})
	// The reaper's timer is always set; Init's timeout and an invocation's
	// deadline each add one while they run.
	reaper := clk.pending()

	slow := goSpec("clock-init")
	slow.Env = map[string]string{"TEST_INIT": "sleep"}
	req, resc := invokeAsync(m, slow, `{}`)
	eventually(t, "Init to wait on the clock", func() bool { return clk.pending() == reaper+1 })
	clk.Advance(DefaultInitTimeout)
	out := <-resc
	want := `{"errorType":"Sandbox.Timedout","errorMessage":"RequestId: ` + req.RequestID + ` Error: Task timed out after 10.00 seconds"}`
	if out.err != nil || out.res.FunctionError != "Unhandled" || string(out.res.Payload) != want {
		t.Fatalf("Init past InitTimeout on the clock: %v %+v", out.err, out.res)
	}

	// An hour on, on the Manager's clock only: the deadline the function
	// is given is an hour ahead of the wall clock's.
	clk.Advance(time.Hour)
	spec := goSpec("clock-deadline")
	_, res := invoke(t, m, spec, `{"op":"ctx"}`)
	wantOK(t, res)
	var got struct {
		RemainingMs int64 `json:"remainingMs"`
	}
	if err := json.Unmarshal(res.Payload, &got); err != nil || got.RemainingMs < time.Hour.Milliseconds() {
		t.Fatalf("remaining time %d ms (%v), want over an hour", got.RemainingMs, err)
	}

	req, resc = invokeAsync(m, spec, `{"op":"sleep","ms":60000}`)
	eventually(t, "the invocation to wait on the clock", func() bool { return clk.pending() == reaper+1 })
	clk.Advance(spec.Timeout)
	out = <-resc
	want = `{"errorType":"Sandbox.Timedout","errorMessage":"RequestId: ` + req.RequestID + ` Error: Task timed out after 10.00 seconds"}`
	if out.err != nil || out.res.FunctionError != "Unhandled" || string(out.res.Payload) != want {
		t.Fatalf("invocation past its deadline on the clock: %v %+v", out.err, out.res)
	}
	if out.res.Duration >= spec.Timeout {
		t.Errorf("Duration = %v: it measures the process on the wall clock, not the Manager's", out.res.Duration)
	}
}

// At MaxEnvironments a cold start stops the idle environment used least
// recently; with every environment busy, it is throttled.
func TestMaxEnvironments(t *testing.T) {
	m := newManager(t, Config{MaxEnvironments: 2})
	a, b, c := goSpec("a"), goSpec("b"), goSpec("c")
	invoke(t, m, a, `{"op":"echo"}`)
	invoke(t, m, b, `{"op":"echo"}`)
	invoke(t, m, c, `{"op":"echo"}`) // a goes
	if st := m.Stats(); st.Evicted != 1 {
		t.Fatalf("Stats = %+v, want one eviction", st)
	}
	_, res := invoke(t, m, b, `{"op":"echo"}`)
	if res.ColdStart {
		t.Fatal("b, used more recently than a, was evicted")
	}
	// Both busy: a third has no room.
	done := make(chan struct{})
	for _, s := range []*Spec{b, c} {
		go func() {
			defer func() { done <- struct{}{} }()
			m.Invoke(context.Background(), s, newRequest(`{"op":"sleep","ms":800}`))
		}()
	}
	eventually(t, "both environments busy", func() bool { return m.Stats().Busy == 2 })
	_, err := m.Invoke(context.Background(), a, newRequest(`{"op":"echo"}`))
	if e, ok := awserr.As(err); !ok || e.Status() != 429 || e.Reason != awserr.ReasonConcurrentInvocationLimitExceeded {
		t.Fatalf("a third environment past the cap: %v, want a throttle", err)
	}
	<-done
	<-done
}

// A function's log file is rotated at LogMaxBytes: however much the
// function prints, its logs take at most about twice that.
func TestLogRotation(t *testing.T) {
	dir := t.TempDir()
	m := newManager(t, Config{LogDir: dir, LogMaxBytes: 8 << 10})
	spec := goSpec("chatty")
	text := strings.Repeat("x", 1000)
	for range 100 {
		_, res := invoke(t, m, spec, `{"op":"print","text":"`+text+`"}`)
		wantOK(t, res)
	}
	m.FlushLogs()
	var total int64
	file := LogFile(dir, spec.Account, "chatty")
	for _, name := range []string{file, file + ".1"} {
		st, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > 8<<10+4096 {
			t.Errorf("%s holds %d bytes, over the cap", name, st.Size())
		}
		total += st.Size()
	}
	if files, _ := filepath.Glob(file + "*"); len(files) != 2 {
		t.Errorf("log files %v, want the file and one rotated", files)
	}
	t.Logf("%d bytes of logs kept of about %d printed", total, 100*2*len(text))
}

// TestKillBusyCutsOff: an invocation whose environment KillBusy ends (a
// node cut off from its cluster) ends with ErrCutOff, not as a function
// error, and the next invocation starts a new environment.
func TestKillBusyCutsOff(t *testing.T) {
	m := newManager(t, Config{})
	spec := goSpec("cutoff")
	pid, _ := pidOf(t, m, spec)
	done := make(chan error, 1)
	go func() {
		res, err := m.Invoke(context.Background(), spec, newRequest(`{"op":"sleep","ms":20000}`))
		if err == nil {
			err = fmt.Errorf("no error: %s %s", res.FunctionError, res.Payload)
		}
		done <- err
	}()
	for deadline := time.Now().Add(10 * time.Second); m.Stats().Busy == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the invocation never became busy")
		}
	}
	if n := m.KillBusy(); n != 1 {
		t.Errorf("KillBusy killed %d, want 1", n)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrCutOff) {
			t.Errorf("the cut-off invocation: %v, want ErrCutOff", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the cut-off invocation did not end")
	}
	if again, _ := pidOf(t, m, spec); again == pid {
		t.Errorf("the next invocation ran in the killed environment (pid %d)", pid)
	}
}
