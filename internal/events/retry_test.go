package events_test

import (
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lambdad/lambdad/internal/control"
	"github.com/lambdad/lambdad/internal/events"
)

// forever is longer than any event lives.
const forever = 24 * time.Hour

// steps lists from, from+step, ... up to to, in seconds.
func steps(from, step, to int) []time.Duration {
	var out []time.Duration
	for s := from; s <= to; s += step {
		out = append(out, time.Duration(s)*time.Second)
	}
	return out
}

// TestRetryRules checks AWS's retry rules on one event, attempt by attempt
// on the virtual clock: throttles and service errors back off from 1 s,
// doubling to 5 min, until the event is MaximumEventAgeInSeconds old;
// function errors are retried MaximumRetryAttempts times, 1 and then 2
// minutes apart; a function reserved at 0 does not run its events.
func TestRetryRules(t *testing.T) {
	// The throttle schedule: 1, 2, 4, ... 256 s apart, then every 5 min.
	backoff := seconds(0, 1, 3, 7, 15, 31, 63, 127, 255, 511)
	cases := []struct {
		name    string
		code    code
		retries *int // MaximumRetryAttempts; nil for AWS's default, 2
		maxAge  *int // MaximumEventAgeInSeconds; nil for AWS's default, 21600
		reserve *int
		// holdUntil reserves 1 and keeps that one slot busy until then:
		// every attempt before is throttled.
		holdUntil time.Duration
		// zeroAt, when set, reserves 0 at that time.
		zeroAt time.Duration

		wantAttempts  []time.Duration // every attempt, since the event was sent
		wantRuns      int             // how many attempts ran the code
		wantCondition string          // of the dead letter; "" when the event succeeded
		wantCount     int             // the record's approximateInvokeCount
		wantFnErr     string          // the record's responseContext.functionError
		wantEnd       time.Duration   // when the event succeeded or its dead letter was written
	}{{
		name: "success", code: succeeds,
		wantAttempts: seconds(0), wantRuns: 1,
	}, {
		name: "function errors are retried twice by default, 1 and then 2 minutes apart", code: fails,
		wantAttempts: seconds(0, 60, 180), wantRuns: 3,
		wantCondition: events.ConditionRetriesExhausted, wantCount: 3, wantFnErr: "Unhandled", wantEnd: 180 * time.Second,
	}, {
		name: "MaximumRetryAttempts 1", code: fails, retries: new(1),
		wantAttempts: seconds(0, 60), wantRuns: 2,
		wantCondition: events.ConditionRetriesExhausted, wantCount: 2, wantFnErr: "Unhandled", wantEnd: 60 * time.Second,
	}, {
		name: "MaximumRetryAttempts 0", code: fails, retries: new(0),
		wantAttempts: seconds(0), wantRuns: 1,
		wantCondition: events.ConditionRetriesExhausted, wantCount: 1, wantFnErr: "Unhandled",
	}, {
		name: "a retry that succeeds ends the event", code: failsTimes(1),
		wantAttempts: seconds(0, 60), wantRuns: 2, wantEnd: 60 * time.Second,
	}, {
		name: "a function error retry that would pass MaximumEventAgeInSeconds", code: fails, maxAge: new(60),
		wantAttempts: seconds(0, 60), wantRuns: 2,
		wantCondition: events.ConditionEventAgeExceeded, wantCount: 2, wantFnErr: "Unhandled", wantEnd: 60 * time.Second,
	}, {
		name: "throttles back off until the default MaximumEventAgeInSeconds, 6 hours", code: succeeds, holdUntil: forever,
		wantAttempts:  append(slices.Clone(backoff), steps(811, 300, 21511)...),
		wantCondition: events.ConditionEventAgeExceeded, wantEnd: 21511 * time.Second,
	}, {
		name: "throttles back off until MaximumEventAgeInSeconds 3600", code: succeeds, holdUntil: forever, maxAge: new(3600),
		wantAttempts:  append(slices.Clone(backoff), steps(811, 300, 3511)...),
		wantCondition: events.ConditionEventAgeExceeded, wantEnd: 3511 * time.Second,
	}, {
		name: "throttles back off until MaximumEventAgeInSeconds 60", code: succeeds, holdUntil: forever, maxAge: new(60),
		wantAttempts:  seconds(0, 1, 3, 7, 15, 31),
		wantCondition: events.ConditionEventAgeExceeded, wantEnd: 31 * time.Second,
	}, {
		name: "a throttled event runs when capacity returns", code: succeeds, holdUntil: 10 * time.Second,
		wantAttempts: seconds(0, 1, 3, 7, 15), wantRuns: 1, wantEnd: 15 * time.Second,
	}, {
		name: "service errors back off as throttles do", code: brokenEnvironment, maxAge: new(60),
		wantAttempts: seconds(0, 1, 3, 7, 15, 31), wantRuns: 6,
		wantCondition: events.ConditionEventAgeExceeded, wantEnd: 31 * time.Second,
	}, {
		name: "reserved at 0: never run", code: succeeds, reserve: new(0),
		wantCondition: events.ConditionZeroReserved,
	}, {
		// The record counts the run that happened.
		name: "reserved at 0 while waiting for a retry", code: fails, zeroAt: 30 * time.Second,
		wantAttempts: seconds(0), wantRuns: 1,
		wantCondition: events.ConditionZeroReserved, wantCount: 1, wantEnd: 60 * time.Second,
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t, events.Options{})
				e.create("f", c.code)
				if c.retries != nil || c.maxAge != nil {
					e.configure(control.EventInvokeConfigInput{FunctionName: "f", MaximumRetryAttempts: c.retries, MaximumEventAgeInSeconds: c.maxAge})
				}
				if c.reserve != nil {
					e.reserve("f", *c.reserve)
				}
				if c.holdUntil > 0 {
					e.reserve("f", 1)
					slot, err := e.adm.Acquire("f", "$LATEST")
					if err != nil {
						t.Fatal(err)
					}
					time.AfterFunc(c.holdUntil, slot.Release)
				}
				if c.zeroAt > 0 {
					time.AfterFunc(c.zeroAt, func() {
						if _, err := e.ctl.PutFunctionConcurrency(t.Context(), "f", new(0), nil); err != nil {
							t.Error(err)
						}
					})
				}
				id := e.send("f", `{"n":1}`)
				e.until(forever)

				as := e.attempts(id)
				if got := times(as); !slices.Equal(got, c.wantAttempts) {
					t.Errorf("attempts at\n%v, want\n%v", got, c.wantAttempts)
				}
				if got := e.runs(id); got != c.wantRuns {
					t.Errorf("the code ran %d times, want %d", got, c.wantRuns)
				}
				if left := e.stored(); len(left) != 0 {
					t.Errorf("events left in the store: %v", left)
				}
				dls := e.deadLetters()
				st := e.q.Stats()
				if c.wantCondition == "" {
					if len(dls) != 0 {
						t.Errorf("dead letters %+v, want none", dls[0].Record)
					}
					if st.Succeeded != 1 || st.AsyncEventsDropped != 0 {
						t.Errorf("stats %+v, want one success", st)
					}
					if end := as[len(as)-1].At; end != c.wantEnd {
						t.Errorf("succeeded at %v, want %v", end, c.wantEnd)
					}
					return
				}
				if len(dls) != 1 {
					t.Fatalf("%d dead letters, want 1", len(dls))
				}
				d := dls[0]
				rc := d.Record.RequestContext
				if rc.RequestID != id || rc.Condition != c.wantCondition || rc.ApproximateInvokeCount != c.wantCount {
					t.Errorf("requestContext %+v, want condition %s and approximateInvokeCount %d", rc, c.wantCondition, c.wantCount)
				}
				switch resp := d.Record.ResponseContext; {
				case c.wantFnErr == "" && resp != nil:
					t.Errorf("responseContext %+v, want none", resp)
				case c.wantFnErr != "" && (resp == nil || resp.FunctionError != c.wantFnErr):
					t.Errorf("responseContext %+v, want functionError %s", resp, c.wantFnErr)
				}
				if end := d.At.Sub(e.inv.epoch); end != c.wantEnd {
					t.Errorf("dead letter written at %v, want %v", end, c.wantEnd)
				}
				if st.AsyncEventsDropped != 1 || st.Succeeded != 0 {
					t.Errorf("stats %+v, want one dropped", st)
				}
			})
		})
	}
}
