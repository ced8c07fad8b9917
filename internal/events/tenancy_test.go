package events_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lambdad/lambdad/internal/awserr"
	"github.com/lambdad/lambdad/internal/control"
	"github.com/lambdad/lambdad/internal/events"
	"github.com/lambdad/lambdad/internal/invoke"
)

// TestTenantKeptThroughTheQueue: Enqueue refuses an event without a tenant
// for a function with tenant isolation, and one with a tenant for a
// function without; an accepted event keeps its tenant in the store, across
// a restart and through its retries, and its record runs for the tenant in
// a destination with isolation, for none in a destination without, and goes
// to the dead letters when a destination with isolation gets a record of
// an event without a tenant.
func TestTenantKeptThroughTheQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, events.Options{})
		e.createIsolated("iso", failsTimes(1))
		e.createIsolated("isodest", succeeds)
		e.create("plain", fails)
		e.create("plaindest", succeeds)
		for _, c := range []struct{ fn, tenant string }{{"iso", ""}, {"plain", "blue"}} {
			err := e.q.Enqueue(context.Background(), &invoke.Request{FunctionName: c.fn, TenantID: c.tenant, RequestID: "r", Payload: []byte(`{}`)})
			if !awserr.Is(err, awserr.InvalidParameterValue) {
				t.Errorf("Enqueue %s with tenant %q: %v", c.fn, c.tenant, err)
			}
		}
		e.configure(control.EventInvokeConfigInput{FunctionName: "iso",
			DestinationConfig: &control.DestinationConfig{OnSuccess: &control.Destination{Destination: arnPrefix + "isodest"}}})
		e.configure(control.EventInvokeConfigInput{FunctionName: "plain", MaximumRetryAttempts: new(0),
			DestinationConfig: &control.DestinationConfig{OnFailure: &control.Destination{Destination: arnPrefix + "isodest"}}})

		id := e.sendFor("iso", "blue", `{"n":1}`)
		if st := e.storedEvents(); len(st) != 1 || st[0].TenantID != "blue" {
			t.Fatalf("stored events %+v", st)
		}
		e.reopen()
		e.until(time.Hour)
		as := e.attempts(id)
		if len(as) != 2 {
			t.Fatalf("attempts %+v, want a failure and its retry", as)
		}
		for _, a := range as {
			if a.TenantID != "blue" {
				t.Errorf("attempt at %v ran for tenant %q", a.At, a.TenantID)
			}
		}
		var dest []attempt
		for _, a := range e.attempts("") {
			if a.Function == "isodest" {
				dest = append(dest, a)
			}
		}
		if len(dest) != 1 || dest[0].TenantID != "blue" {
			t.Errorf("the destination with isolation ran %+v, want one run for blue", dest)
		}

		// A destination without isolation runs the record for no tenant.
		e.configure(control.EventInvokeConfigInput{FunctionName: "iso",
			DestinationConfig: &control.DestinationConfig{OnSuccess: &control.Destination{Destination: arnPrefix + "plaindest"}}})
		e.sendFor("iso", "green", `{}`)
		e.until(2 * time.Hour)
		ran := 0
		for _, a := range e.attempts("") {
			if a.Function == "plaindest" {
				ran++
				if a.TenantID != "" {
					t.Errorf("the destination without isolation ran for %q", a.TenantID)
				}
			}
		}
		if ran != 1 {
			t.Errorf("the destination without isolation ran %d times, want 1", ran)
		}
		// An event without a tenant cannot run in a destination with
		// isolation: its record is a dead letter.
		e.send("plain", `{}`)
		e.until(3 * time.Hour)
		if dls := e.deadLetters(); len(dls) != 1 || dls[0].Record.RequestContext.Condition != events.ConditionRetriesExhausted {
			t.Errorf("dead letters %+v, want plain's record", dls)
		}
		// A dead letter keeps its tenant, and replayed it runs for it again.
		e.createIsolated("isofail", fails)
		e.configure(control.EventInvokeConfigInput{FunctionName: "isofail", MaximumRetryAttempts: new(0)})
		failed := e.sendFor("isofail", "blue", `{}`)
		e.until(4 * time.Hour)
		dls := e.deadLetters()
		if len(dls) != 2 || dls[1].Event.TenantID != "blue" {
			t.Fatalf("dead letters %+v, want isofail's for blue", dls)
		}
		ev, err := e.q.Replay(context.Background(), dls[1].Seq)
		if err != nil || ev.TenantID != "blue" {
			t.Fatalf("Replay: %v %+v", err, ev)
		}
		e.until(5 * time.Hour)
		if as := e.attempts(failed); len(as) != 2 || as[1].TenantID != "blue" {
			t.Errorf("attempts of the replayed event %+v, want a second for blue", as)
		}
		if left := e.stored(); len(left) != 0 {
			t.Errorf("events left in the store: %v", left)
		}
	})
}
