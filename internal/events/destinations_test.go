package events_test

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lambdad/lambdad/internal/awserr"
	"github.com/lambdad/lambdad/internal/clock"
	"github.com/lambdad/lambdad/internal/control"
	"github.com/lambdad/lambdad/internal/events"
	"github.com/lambdad/lambdad/internal/invoke"
)

const arnPrefix = "arn:aws:lambda:us-east-1:123456789012:function:"

// TestDestinations checks where an event's record goes when it ends, and
// the record itself: a destination function on this server receives it as
// an event of its own; a failure with nowhere to go is kept as a dead
// letter.
func TestDestinations(t *testing.T) {
	cases := []struct {
		name      string
		code      code
		reserve   *int
		onSuccess string
		onFailure string
		// want is the record the destination function receives, with
		// requestId filled in; "" when it receives nothing.
		want           string
		wantDeadLetter string // the condition of the dead letter kept, if any
	}{{
		name: "failure to a function", code: fails, onFailure: arnPrefix + "dest",
		want: `{"version":"1.0","timestamp":"2000-01-01T00:00:00.000Z",
			"requestContext":{"requestId":"ID","functionArn":"` + arnPrefix + `src:$LATEST","condition":"RetriesExhausted","approximateInvokeCount":1},
			"requestPayload":{"order":42},
			"responseContext":{"statusCode":200,"executedVersion":"$LATEST","functionError":"Unhandled"},
			"responsePayload":{"errorMessage":"boom"}}`,
	}, {
		name: "success to a function", code: succeeds, onSuccess: arnPrefix + "dest", onFailure: arnPrefix + "other",
		want: `{"version":"1.0","timestamp":"2000-01-01T00:00:00.000Z",
			"requestContext":{"requestId":"ID","functionArn":"` + arnPrefix + `src:$LATEST","condition":"Success","approximateInvokeCount":1},
			"requestPayload":{"order":42},
			"responseContext":{"statusCode":200,"executedVersion":"$LATEST"},
			"responsePayload":{}}`,
	}, {
		name: "reserved at 0, to a function", code: succeeds, reserve: new(0), onFailure: arnPrefix + "dest",
		want: `{"version":"1.0","timestamp":"2000-01-01T00:00:00.000Z",
			"requestContext":{"requestId":"ID","functionArn":"` + arnPrefix + `src:$LATEST","condition":"ZeroReservedConcurrency","approximateInvokeCount":0},
			"requestPayload":{"order":42}}`,
	}, {
		name: "failure with no destination", code: fails,
		wantDeadLetter: events.ConditionRetriesExhausted,
	}, {
		name: "failure to a destination that is not on this server", code: fails, onFailure: "arn:aws:sqs:us-east-1:123456789012:q",
		wantDeadLetter: events.ConditionRetriesExhausted,
	}, {
		name: "failure to a function that does not exist", code: fails, onFailure: arnPrefix + "absent",
		wantDeadLetter: events.ConditionRetriesExhausted,
	}, {
		name: "success with a failure destination only", code: succeeds, onFailure: arnPrefix + "dest",
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t, events.Options{})
				e.create("src", c.code)
				e.create("dest", succeeds)
				e.create("other", succeeds)
				in := control.EventInvokeConfigInput{FunctionName: "src", MaximumRetryAttempts: new(0),
					DestinationConfig: &control.DestinationConfig{}}
				if c.onSuccess != "" {
					in.DestinationConfig.OnSuccess = &control.Destination{Destination: c.onSuccess}
				}
				if c.onFailure != "" {
					in.DestinationConfig.OnFailure = &control.Destination{Destination: c.onFailure}
				}
				e.configure(in)
				if c.reserve != nil {
					e.reserve("src", *c.reserve)
				}
				id := e.send("src", `{"order":42}`)
				e.until(time.Hour)

				var got []string
				for _, a := range e.attempts("") {
					if a.Function != "src" {
						if a.Function != "dest" {
							t.Errorf("%s received %s", a.Function, a.Payload)
						}
						got = append(got, string(a.Payload))
					}
				}
				switch {
				case c.want == "" && len(got) > 0:
					t.Errorf("the destination received %s", got)
				case c.want != "" && len(got) != 1:
					t.Errorf("the destination received %d records, want 1: %s", len(got), got)
				case c.want != "":
					want := compact(t, strings.ReplaceAll(c.want, `"ID"`, `"`+id+`"`))
					if got[0] != want {
						t.Errorf("record\n%s, want\n%s", got[0], want)
					}
				}
				dls := e.deadLetters()
				switch {
				case c.wantDeadLetter == "" && len(dls) > 0:
					t.Errorf("dead letter %+v", dls[0].Record)
				case c.wantDeadLetter != "" && (len(dls) != 1 || dls[0].Record.RequestContext.Condition != c.wantDeadLetter || dls[0].Event.RequestID != id):
					t.Errorf("dead letters %+v, want one of %s for %s", dls, c.wantDeadLetter, id)
				}
				if left := e.stored(); len(left) != 0 {
					t.Errorf("events left in the store: %v", left)
				}
			})
		})
	}
}

func compact(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(s)); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestReplay moves a dead letter back into the queue: it runs again as a
// new event with its counts reset, and the old dead letter is gone.
func TestReplay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, events.Options{})
		e.create("f", fails)
		e.configure(control.EventInvokeConfigInput{FunctionName: "f", MaximumRetryAttempts: new(1)})
		id := e.send("f", `{}`)
		e.until(time.Hour)
		dls := e.deadLetters()
		if len(dls) != 1 || dls[0].Record.RequestContext.ApproximateInvokeCount != 2 {
			t.Fatalf("dead letters before the replay: %+v", dls)
		}
		ev, err := e.q.Replay(context.Background(), dls[0].Seq)
		if err != nil || ev.RequestID != id || ev.FunctionErrs != 0 {
			t.Fatalf("Replay: %+v %v", ev, err)
		}
		e.until(2 * time.Hour)
		if got, want := times(e.attempts(id)), seconds(0, 60, 3600, 3660); !slices.Equal(got, want) {
			t.Errorf("attempts at %v, want %v", got, want)
		}
		after := e.deadLetters()
		if len(after) != 1 || after[0].Seq == dls[0].Seq || after[0].Record.RequestContext.ApproximateInvokeCount != 2 {
			t.Errorf("dead letters after the replay: %+v", after)
		}
		if _, err := e.q.Replay(context.Background(), dls[0].Seq); !awserr.Is(err, awserr.ResourceNotFound) {
			t.Errorf("replaying it twice: %v", err)
		}
	})
}

// TestEnqueueRefuses checks what Enqueue refuses: nothing of it is stored
// or counted.
func TestEnqueueRefuses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, events.Options{})
		e.create("f", succeeds)
		for _, c := range []struct {
			name, function, qualifier string
			payload                   []byte
			want                      awserr.Code
		}{
			{"a payload over 1 MB", "f", "", []byte(`"` + strings.Repeat("x", events.MaxEventPayload-1) + `"`), awserr.RequestTooLarge},
			{"a payload that is not JSON", "f", "", []byte(`{`), awserr.InvalidRequestContent},
			{"a function that does not exist", "absent", "", nil, awserr.ResourceNotFound},
			{"a version that does not exist", "f", "7", nil, awserr.ResourceNotFound},
			{"a name that does not parse", "f:1:2:3", "", nil, awserr.InvalidParameterValue},
		} {
			err := e.q.Enqueue(context.Background(), &invoke.Request{FunctionName: c.function, Qualifier: c.qualifier, Payload: c.payload, RequestID: "r"})
			if !awserr.Is(err, c.want) {
				t.Errorf("%s: %v, want %s", c.name, err, c.want)
			}
		}
		e.until(time.Hour)
		if st := e.q.Stats(); st.AsyncEventsReceived != 0 || len(e.attempts("")) != 0 || len(e.stored()) != 0 {
			t.Errorf("refused events were kept: %+v", st)
		}
		// Exactly 1 MB is accepted.
		if err := e.q.Enqueue(context.Background(), &invoke.Request{FunctionName: "f",
			Payload: []byte(`"` + strings.Repeat("x", events.MaxEventPayload-2) + `"`), RequestID: "r"}); err != nil {
			t.Errorf("a payload of 1 MB: %v", err)
		}
		e.q.Close()
		if err := e.q.Enqueue(context.Background(), &invoke.Request{FunctionName: "f", RequestID: "r"}); !awserr.Is(err, awserr.Service) {
			t.Errorf("Enqueue after Close: %v", err)
		}
	})
}

// fastClock runs x times as fast as the bubble's clock, from epoch. Its
// timers round up, so that they never fire before their time on it.
type fastClock struct {
	epoch time.Time
	x     time.Duration
}

func (c fastClock) Now() time.Time { return c.epoch.Add(time.Since(c.epoch) * c.x) }
func (c fastClock) NewTimer(d time.Duration) clock.Timer {
	return fastTimer{time.NewTimer(slower(d, c.x)), c.x}
}
func (c fastClock) AfterFunc(d time.Duration, f func()) clock.Timer {
	return fastTimer{time.AfterFunc(slower(d, c.x), f), c.x}
}

func slower(d, x time.Duration) time.Duration { return (d + x - 1) / x }

type fastTimer struct {
	t *time.Timer
	x time.Duration
}

func (t fastTimer) C() <-chan time.Time        { return t.t.C }
func (t fastTimer) Stop() bool                 { return t.t.Stop() }
func (t fastTimer) Reset(d time.Duration) bool { return t.t.Reset(slower(d, t.x)) }

// near reports whether a and b are less than a millisecond apart: the fast
// clock's rounding moves its timers by nanoseconds.
func near(a, b time.Time) bool { return a.Sub(b).Abs() < time.Millisecond }

// TestQueueRunsOnItsClock gives the queue a clock that runs 60 times as
// fast as the bubble's: AWS's waits pass 60 times as fast, so every wait
// and every time the queue keeps must come from that clock, not from the
// time package.
func TestQueueRunsOnItsClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		fast := fastClock{epoch: start, x: 60}
		e := newEnv(t, events.Options{Clock: fast})
		e.create("flaky", fails)
		e.create("throttled", succeeds)
		e.reserve("throttled", 1)
		if _, err := e.adm.Acquire("throttled", "$LATEST"); err != nil {
			t.Fatal(err)
		}
		e.configure(control.EventInvokeConfigInput{FunctionName: "throttled", MaximumEventAgeInSeconds: new(3600)})
		// Sent at 1 s, which is 1 min on the queue's clock.
		e.until(time.Second)
		flaky := e.send("flaky", `{}`)
		throttled := e.send("throttled", `{}`)
		var received time.Time
		for _, ev := range e.storedEvents() {
			if ev.RequestID == flaky {
				received = ev.ReceivedAt
			}
		}
		if want := start.Add(time.Minute); !received.Equal(want) {
			t.Errorf("received at %v, want %v", received, want)
		}
		e.until(2 * time.Hour)
		// On the bubble's clock: 1 s, then 1 s and 2 s later.
		if got, want := times(e.attempts(flaky)), seconds(1, 2, 4); !slices.Equal(got, want) {
			t.Errorf("flaky's attempts at %v, want %v", got, want)
		}
		// The throttles' waits: the last at 3511 s on the queue's clock,
		// 58.5 s on the bubble's after the 1 s it was sent at.
		if got := e.attempts(throttled); len(got) != 20 || !near(start.Add(got[19].At), start.Add(time.Second+3511*time.Second/60)) {
			t.Errorf("throttled's attempts at %v", times(got))
		}
		dls := e.deadLetters()
		if len(dls) != 2 {
			t.Fatalf("%d dead letters, want 2", len(dls))
		}
		for _, d := range dls {
			var want time.Time
			switch d.Event.RequestID {
			case flaky:
				want = start.Add(time.Minute + 3*time.Minute)
			case throttled:
				want = start.Add(time.Minute + 3511*time.Second)
			}
			if !near(d.At, want) || d.Record.Timestamp != d.At.UTC().Format("2006-01-02T15:04:05.000Z") {
				t.Errorf("dead letter of %s at %v, stamped %s; want %v", d.Event.RequestID, d.At, d.Record.Timestamp, want)
			}
		}
	})
}
