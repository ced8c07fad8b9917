// Package clock is the one source of time for lambdad's long-lived parts
// (the event queue, the provisioner, the idle reaper, Runtime API
// deadlines), so that each can run on a clock other than the wall's: tests
// run them inside testing/synctest bubbles, and a simulator can drive them
// on virtual time.
package clock

import (
	"sync/atomic"
	"time"
)

// Clock tells the time and makes timers.
type Clock interface {
	Now() time.Time
	// NewTimer returns a timer that fires once, d from now.
	NewTimer(d time.Duration) Timer
	// AfterFunc calls f in its own goroutine d from now, unless the
	// returned timer is stopped first.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a one-shot timer of a Clock.
type Timer interface {
	// C delivers the time when the timer fires; nil for AfterFunc timers.
	C() <-chan time.Time
	// Stop prevents the timer from firing; it reports whether it did.
	Stop() bool
	// Reset makes the timer fire d from now; it reports whether it had
	// been active.
	Reset(d time.Duration) bool
}

// Real is the wall clock (inside a testing/synctest bubble, the bubble's
// fake clock, as for all of package time).
var Real Clock = real{}

type real struct{}

func (real) Now() time.Time { return time.Now() }

func (real) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

func (real) AfterFunc(d time.Duration, f func()) Timer { return realTimer{time.AfterFunc(d, f)} }

type realTimer struct{ t *time.Timer }

func (t realTimer) C() <-chan time.Time        { return t.t.C }
func (t realTimer) Stop() bool                 { return t.t.Stop() }
func (t realTimer) Reset(d time.Duration) bool { return t.t.Reset(d) }

// Since is the time elapsed on c since t.
func Since(c Clock, t time.Time) time.Duration { return c.Now().Sub(t) }

// Nanos returns a monotonic reading of c in nanoseconds since the call, for
// parts that only compare instants and keep them in atomic words.
func Nanos(c Clock) func() int64 {
	start := c.Now()
	return func() int64 { return int64(c.Now().Sub(start)) }
}

// Coarse is a reading of a clock that a goroutine of its own refreshes
// every resolution, for hot paths that read the time on every request and
// can live with that resolution: a load of one atomic word instead of a
// call into the clock (which costs tens of nanoseconds on virtual
// machines). Stop ends the goroutine.
type Coarse struct {
	ns   atomic.Int64
	stop chan struct{}
	done chan struct{}
}

// NewCoarse starts a Coarse reading of c, in nanoseconds since the call.
func NewCoarse(c Clock, resolution time.Duration) *Coarse {
	k := &Coarse{stop: make(chan struct{}), done: make(chan struct{})}
	start := c.Now()
	go func() {
		defer close(k.done)
		t := c.NewTimer(resolution)
		defer t.Stop()
		for {
			select {
			case <-k.stop:
				return
			case <-t.C():
			}
			k.ns.Store(int64(c.Now().Sub(start)))
			t.Reset(resolution)
		}
	}()
	return k
}

// Nanos is the last reading.
func (k *Coarse) Nanos() int64 { return k.ns.Load() }

// Stop ends the refreshing and waits for its goroutine.
func (k *Coarse) Stop() {
	close(k.stop)
	<-k.done
}
