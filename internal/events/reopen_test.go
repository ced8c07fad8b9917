package events_test

import (
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lambdad/lambdad/internal/control"
	"github.com/lambdad/lambdad/internal/events"
)

// TestEventsSurviveReopen stops a queue mid-work, closes the store, opens
// it again and starts a new queue, as a restart does. The queue promises
// at-least-once: an accepted event stays stored until it has run (or its
// record has been kept), and every event still stored runs again.
func TestEventsSurviveReopen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, events.Options{Workers: 4})
		e.create("f", sleeps(10*time.Second))
		var sent []string
		for range 10 {
			sent = append(sent, e.send("f", `{}`))
		}
		// At 15 s four events have run, four are running and two wait.
		e.until(15 * time.Second)
		stopped := e.stored()
		e.reopen()
		e.until(time.Hour)

		succeeded := map[string]bool{}
		var again []string
		for _, a := range e.attempts("") {
			if a.Err == nil && a.FnErr == "" {
				succeeded[a.RequestID] = true
			}
			if a.At >= 15*time.Second {
				again = append(again, a.RequestID)
			}
		}
		for _, id := range sent {
			if !succeeded[id] {
				t.Errorf("event %s never ran to the end", id)
			}
		}
		slices.Sort(again)
		if !slices.Equal(again, stopped) {
			t.Errorf("after the restart these ran\n%v; these were stored at the stop\n%v", again, stopped)
		}
		if len(stopped) != 6 {
			t.Errorf("%d events were stored at the stop, want the 6 that had not run to the end", len(stopped))
		}
		if left := e.stored(); len(left) != 0 {
			t.Errorf("events left in the store: %v", left)
		}
		if dls := e.deadLetters(); len(dls) != 0 {
			t.Errorf("dead letters: %+v", dls[0].Record)
		}
	})
}

// TestRetryStateSurvivesReopen checks that the retry counts are stored:
// after a restart an event does not start its retries over, and an event
// that grew too old while the server was down is not run.
func TestRetryStateSurvivesReopen(t *testing.T) {
	cases := []struct {
		name   string
		maxAge *int
		// The queue stops at stop and starts again at start.
		stop, start   time.Duration
		wantAttempts  []time.Duration
		wantCondition string
		wantCount     int
		wantEnd       time.Duration
		wantResponse  bool
	}{{
		// The retry due at 60 s runs at once on the restart, and the
		// second retry comes two minutes after it.
		name: "function errors", stop: 30 * time.Second, start: 30 * time.Second,
		wantAttempts:  seconds(0, 30, 150),
		wantCondition: events.ConditionRetriesExhausted, wantCount: 3, wantEnd: 150 * time.Second, wantResponse: true,
	}, {
		name: "too old when the queue starts", maxAge: new(60), stop: 30 * time.Second, start: 120 * time.Second,
		wantAttempts:  seconds(0),
		wantCondition: events.ConditionEventAgeExceeded, wantCount: 1, wantEnd: 120 * time.Second,
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t, events.Options{})
				e.create("f", fails)
				if c.maxAge != nil {
					e.configure(control.EventInvokeConfigInput{FunctionName: "f", MaximumEventAgeInSeconds: c.maxAge})
				}
				id := e.send("f", `{}`)
				e.until(c.stop)
				e.close()
				e.until(c.start)
				e.open()
				e.until(forever)

				if got := times(e.attempts(id)); !slices.Equal(got, c.wantAttempts) {
					t.Errorf("attempts at %v, want %v", got, c.wantAttempts)
				}
				dls := e.deadLetters()
				if len(dls) != 1 {
					t.Fatalf("%d dead letters, want 1", len(dls))
				}
				d := dls[0]
				if rc := d.Record.RequestContext; rc.Condition != c.wantCondition || rc.ApproximateInvokeCount != c.wantCount {
					t.Errorf("requestContext %+v, want condition %s and approximateInvokeCount %d", rc, c.wantCondition, c.wantCount)
				}
				if got := d.Record.ResponseContext != nil; got != c.wantResponse {
					t.Errorf("responseContext %+v", d.Record.ResponseContext)
				}
				if end := d.At.Sub(e.inv.epoch); end != c.wantEnd {
					t.Errorf("dead letter written at %v, want %v", end, c.wantEnd)
				}
				if left := e.stored(); len(left) != 0 {
					t.Errorf("events left in the store: %v", left)
				}
			})
		})
	}
}

// TestBacklogPayloadsStayOnDisk fills a backlog with large events behind
// one that does not end: the queue's memory does not grow with their
// payloads (they wait on disk), and after a restart each runs with its own
// payload.
func TestBacklogPayloadsStayOnDisk(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, events.Options{Workers: 1})
		e.create("f", sleeps(time.Minute))
		pad := strings.Repeat("x", 256<<10)
		e.send("f", `{"n":0}`) // runs for a minute; the rest wait
		e.until(time.Second)
		heap := func() int64 {
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			return int64(ms.HeapAlloc)
		}
		before := heap()
		const n = 100
		for i := 1; i <= n; i++ {
			e.send("f", fmt.Sprintf(`{"n":%d,"pad":%q}`, i, pad))
		}
		if grew := heap() - before; grew > 8<<20 {
			t.Errorf("a backlog of %d MB of payloads grew the heap by %d MB", n*len(pad)>>20, grew>>20)
		}
		e.reopen()
		e.until(3 * time.Hour)
		seen := map[string]bool{}
		for _, a := range e.attempts("") {
			var ev struct {
				N   int    `json:"n"`
				Pad string `json:"pad"`
			}
			if err := json.Unmarshal(a.Payload, &ev); err != nil || ev.N > 0 && ev.Pad != pad {
				t.Fatalf("attempt %s ran with payload %.40q", a.RequestID, a.Payload)
			}
			seen[fmt.Sprint(ev.N)] = true
		}
		if len(seen) != n+1 {
			t.Errorf("%d distinct events ran, want %d", len(seen), n+1)
		}
	})
}
