package events_test

import (
	"cmp"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lambdad/lambdad/internal/events"
)

// TestFairDispatch checks that functions take turns at the workers: a
// function with events waiting and none running always starts one, even
// when every worker is busy with another function's backlog, and functions
// with backlogs share the workers.
func TestFairDispatch(t *testing.T) {
	type batch struct {
		function string
		code     code
		n        int
		at       time.Duration // when the batch is sent
		every    time.Duration // when set, its events are sent this far apart
	}
	cases := []struct {
		name    string
		workers int
		batches []batch
		// want is when each function's events started, in order.
		want map[string][]time.Duration
		// retried: some events are tried more than once, so the attempts
		// outnumber the sends.
		retried bool
	}{{
		name: "a function with nothing running starts at once", workers: 4,
		batches: []batch{
			{"busy", sleeps(2 * time.Second), 12, 0, 0},
			{"quick", succeeds, 3, 200 * time.Millisecond, 0},
		},
		want: map[string][]time.Duration{
			"busy":  seconds(0, 0, 0, 0, 2, 2, 2, 2, 4, 4, 4, 4),
			"quick": {200 * time.Millisecond, 200 * time.Millisecond, 200 * time.Millisecond},
		},
	}, {
		name: "backlogs share the workers", workers: 4,
		batches: []batch{
			{"a", sleeps(time.Second), 8, 0, 0},
			{"b", sleeps(time.Second), 8, 0, 0},
		},
		want: map[string][]time.Duration{
			// a took every worker before b's events came, and b ran one
			// at once; then each has half of them, and b all once a is done.
			"a": seconds(0, 0, 0, 0, 1, 1, 2, 2),
			"b": seconds(0, 1, 1, 2, 2, 3, 3, 3),
		},
	}, {
		// With b active, a keeps to its half of the workers even when b
		// has nothing waiting, so each of b's events starts as it comes.
		name: "a backlog leaves another function its share", workers: 4,
		batches: []batch{
			{"a", sleeps(time.Second), 20, 0, 0},
			{"b", sleeps(2 * time.Second), 4, 500 * time.Millisecond, time.Second},
		},
		want: map[string][]time.Duration{
			"b": {500 * time.Millisecond, 1500 * time.Millisecond, 2500 * time.Millisecond, 3500 * time.Millisecond},
		},
	}, {
		// A function whose events all wait out a backoff uses no worker
		// and takes no share: the other has them all.
		name: "a backlog waiting out its backoff takes no share", workers: 2,
		batches: []batch{
			{"broken", brokenEnvironment, 3, 0, 0},
			{"b", sleeps(time.Second), 6, 500 * time.Millisecond, 0},
		},
		want: map[string][]time.Duration{
			"b": {500 * time.Millisecond, 500 * time.Millisecond, 1500 * time.Millisecond, 1500 * time.Millisecond, 2500 * time.Millisecond, 2500 * time.Millisecond},
		},
		retried: true,
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t, events.Options{Workers: c.workers})
				for _, b := range c.batches {
					if _, ok := e.inv.code[b.function]; !ok {
						e.create(b.function, b.code)
					}
				}
				// Every send, in time order.
				type send struct {
					at       time.Duration
					function string
				}
				var sends []send
				for _, b := range c.batches {
					for i := range b.n {
						sends = append(sends, send{b.at + time.Duration(i)*b.every, b.function})
					}
				}
				slices.SortStableFunc(sends, func(x, y send) int { return cmp.Compare(x.at, y.at) })
				for _, s := range sends {
					// Each comes once the dispatcher has taken the one before.
					e.until(s.at)
					e.send(s.function, `{}`)
				}
				e.until(time.Hour)
				sent := len(sends)
				if n := len(e.attempts("")); n != sent && !c.retried {
					t.Errorf("%d events ran, want %d", n, sent)
				}
				got := map[string][]time.Duration{}
				for _, a := range e.attempts("") {
					got[a.Function] = append(got[a.Function], a.At)
				}
				for name, want := range c.want {
					slices.Sort(got[name])
					if !slices.Equal(got[name], want) {
						t.Errorf("%s's events started at\n%v, want\n%v", name, got[name], want)
					}
				}
			})
		})
	}
}
