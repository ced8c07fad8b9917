package events

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/lambdad/lambdad/internal/account"
	"github.com/lambdad/lambdad/internal/awserr"
	"github.com/lambdad/lambdad/internal/function"
	"github.com/lambdad/lambdad/internal/invoke"
	"github.com/lambdad/lambdad/internal/store"
	"github.com/lambdad/lambdad/internal/uuid"
)

// Conditions of a destination record (requestContext.condition).
const (
	ConditionSuccess          = "Success"
	ConditionRetriesExhausted = "RetriesExhausted"
	ConditionEventAgeExceeded = "EventAgeExceeded"
	ConditionZeroReserved     = "ZeroReservedConcurrency"
)

// Record is what a destination receives, as AWS sends it.
type Record struct {
	Version         string           `json:"version"`
	Timestamp       string           `json:"timestamp"`
	RequestContext  RequestContext   `json:"requestContext"`
	RequestPayload  json.RawMessage  `json:"requestPayload"`
	ResponseContext *ResponseContext `json:"responseContext,omitempty"`
	ResponsePayload json.RawMessage  `json:"responsePayload,omitempty"`
}

// RequestContext describes the invocation in a record.
type RequestContext struct {
	RequestID              string `json:"requestId"`
	FunctionArn            string `json:"functionArn"`
	Condition              string `json:"condition"`
	ApproximateInvokeCount int    `json:"approximateInvokeCount"`
}

// ResponseContext describes the last response in a record.
type ResponseContext struct {
	StatusCode      int    `json:"statusCode"`
	ExecutedVersion string `json:"executedVersion"`
	FunctionError   string `json:"functionError,omitempty"`
}

// limits are the retry settings that govern an event.
type limits struct {
	maxRetries int
	maxAge     time.Duration
	onSuccess  string
	onFailure  string
}

func (q *Queue) limitsFor(ev *store.Event) (limits, error) {
	l := limits{maxRetries: DefaultMaxRetryAttempts, maxAge: DefaultMaxEventAge}
	c, err := q.ctl.EventConfigFor(q.ctxOf(ev), ev.Function, ev.Qualifier)
	if err != nil {
		return l, err
	}
	if c != nil {
		if c.MaximumRetryAttempts != nil {
			l.maxRetries = *c.MaximumRetryAttempts
		}
		if c.MaximumEventAgeInSeconds != nil {
			l.maxAge = time.Duration(*c.MaximumEventAgeInSeconds) * time.Second
		}
		l.onSuccess, l.onFailure = c.OnSuccess, c.OnFailure
	}
	return l, nil
}

// run makes one attempt at an event and decides what comes next.
func (q *Queue) run(it *item) {
	ev := it.ev
	// The settings that govern the event, read fresh for each attempt. A
	// read that fails is a service error like any other: the event backs
	// off and tries again, judged by the defaults meanwhile, and is never
	// run under settings that could not be read.
	l, err := q.limitsFor(ev)
	if err == nil && ev.Payload == nil {
		// Waiting events keep their payload only on disk (see push).
		err = q.db.View(q.ctx, func(tx Tx) (err error) {
			ev.Payload, err = tx.EventPayload(ev.Seq)
			return err
		})
	}
	zero := false
	if err == nil {
		zero, err = q.zeroReserved(ev)
	}
	now := q.clock.Now()
	age := now.Sub(ev.ReceivedAt)
	q.lastAge.Store(age.Milliseconds())

	if zero {
		q.finish(it, ConditionZeroReserved, nil, l)
		return
	}
	if age > q.scaled(l.maxAge) {
		q.finish(it, ConditionEventAgeExceeded, nil, l)
		return
	}
	var res *invoke.Response
	if err == nil {
		res, err = q.inv.Invoke(q.ctxOf(ev), &invoke.Request{
			FunctionName: ev.Function, Qualifier: ev.Qualifier, Type: invoke.RequestResponse,
			// Checked when it was accepted, or written by lambdad (a
			// destination's record).
			Payload: ev.Payload, PayloadIsJSON: true, RequestID: ev.RequestID,
			// Every attempt runs for the tenant the event was invoked for.
			TenantID: ev.TenantID,
		})
	} else {
		q.log.Warn("reading an event's settings", "function", ev.Function, "seq", ev.Seq, "err", err)
	}
	switch {
	case q.ctx.Err() != nil:
		// Stopping: the event stays stored and runs after the next start.
		q.done(it, nil)
	case err != nil && awserr.Is(err, awserr.ResourceNotFound):
		// The function or its qualifier went away: nothing will run it.
		q.finish(it, ConditionRetriesExhausted, nil, l)
	case err != nil:
		// Throttled or a service error: back off and try again while the
		// event is young enough. These are not invocations of the code.
		wait := backoff(ev.Attempts)
		ev.Attempts++
		if age+q.scaled(wait) > q.scaled(l.maxAge) {
			q.finish(it, ConditionEventAgeExceeded, nil, l)
			return
		}
		q.retry(it, q.scaled(wait))
	case res.FunctionError != "":
		ev.FunctionErrs++
		if ev.FunctionErrs > l.maxRetries {
			q.finish(it, ConditionRetriesExhausted, res, l)
			return
		}
		// AWS waits about a minute before the first retry, two before the second.
		wait := time.Duration(ev.FunctionErrs) * time.Minute
		if age+q.scaled(wait) > q.scaled(l.maxAge) {
			q.finish(it, ConditionEventAgeExceeded, res, l)
			return
		}
		q.retry(it, q.scaled(wait))
	default:
		q.finish(it, ConditionSuccess, res, l)
	}
}

// zeroReserved reports whether ev's function is reserved at 0. It is the
// one place that decides the rule: such an event is not run at all and
// goes to the failure path with ZeroReservedConcurrency. Every attempt asks
// before it invokes, so a reservation set to 0 while an event waits for a
// retry stops it too. Admission, which refuses every invocation of such a
// function, is only the backstop for a reservation set between this check
// and the invocation: that attempt is a throttle, and the next one stops.
func (q *Queue) zeroReserved(ev *store.Event) (bool, error) {
	n, ok, err := q.ctl.Reservation(q.ctxOf(ev), ev.Function)
	return err == nil && ok && n == 0, err
}

// backoff is the wait after the n-th throttle: 1 s doubling to 5 min.
func backoff(n int) time.Duration {
	d := minBackoff
	for range min(n, 20) {
		d *= 2
		if d >= maxBackoff {
			return maxBackoff
		}
	}
	return d
}

// retry stores the event's new counts and schedules it after wait.
func (q *Queue) retry(it *item, wait time.Duration) {
	err := q.db.Update(context.Background(), func(tx Tx) error { return tx.UpdateEvent(it.ev) })
	if err != nil {
		q.log.Error("event: storing retry state", "request_id", it.ev.RequestID, "err", err)
	}
	q.done(it, &item{ev: it.ev, due: q.clock.Now().Add(wait)})
}

// finish ends an event: its record goes to the destination for the
// condition, or (a failure with nowhere to go) to the dead-letter list, in
// the same transaction that removes the event, so it is never lost and
// never delivered twice by us.
func (q *Queue) finish(it *item, condition string, res *invoke.Response, l limits) {
	ev := it.ev
	rec := q.record(ev, condition, res)
	dest := l.onFailure
	if condition == ConditionSuccess {
		dest = l.onSuccess
	}
	destName, destTenant, local := q.localFunction(q.accountOf(ev), dest, ev.TenantID)
	if condition == ConditionSuccess && !local {
		// Nothing to deliver: the removal joins the next group commit,
		// or, when the queue is stopping, Close writes it.
		select {
		case q.finished <- ev.Seq:
		default:
			select {
			case q.finished <- ev.Seq:
			case <-q.ctx.Done():
				q.mu.Lock()
				q.unremoved = append(q.unremoved, ev.Seq)
				q.mu.Unlock()
			}
		}
		q.succeeded.Add(1)
		q.done(it, nil)
		return
	}
	body, _ := json.Marshal(rec)
	var follow *store.Event
	err := q.db.Update(context.Background(), func(tx Tx) error {
		if err := tx.DeleteEvent(ev.Seq); err != nil {
			return err
		}
		switch {
		case local:
			follow = &store.Event{RequestID: uuid.New(), Account: destName.Account, Function: destName.Name,
				Qualifier: destName.Qualifier, Payload: body, ReceivedAt: q.clock.Now(), Node: q.opts.Node, TenantID: destTenant}
			return tx.AddEvent(follow)
		case condition != ConditionSuccess:
			return tx.AddDeadLetter(&store.DeadLetter{Event: *ev, Record: body, At: q.clock.Now()})
		}
		return nil
	})
	if err != nil {
		// The event is still stored; it runs again after a restart.
		q.log.Error("event: finishing", "request_id", ev.RequestID, "err", err)
		q.done(it, nil)
		return
	}
	if condition == ConditionSuccess {
		q.succeeded.Add(1)
	} else {
		q.dropped.Add(1)
		q.log.Warn("event failed", "request_id", ev.RequestID, "function", ev.Function, "condition", condition,
			"attempts", rec.RequestContext.ApproximateInvokeCount, "destination", dest)
	}
	if follow != nil {
		q.mu.Lock()
		q.push(&item{ev: follow, due: q.clock.Now()})
		q.mu.Unlock()
	}
	q.done(it, nil)
}

// localFunction reports whether a destination is a function of account on
// this server that exists and can run the record of an event of tenant,
// and the tenant the record runs for there. A destination with tenant
// isolation runs it for the event's tenant, in that tenant's
// environments, so a tenant's record never reaches another's; it cannot
// run the record of an event without a tenant, which then goes where a
// record with no destination goes. A destination without tenant isolation
// runs it with no tenant.
func (q *Queue) localFunction(account, arn, tenant string) (function.Ref, string, bool) {
	if arn == "" || !strings.Contains(arn, ":lambda:") {
		return function.Ref{}, "", false
	}
	r, err := q.ctl.Names(account).Parse(arn)
	if err != nil {
		return function.Ref{}, "", false
	}
	cfg, _, err := q.ctl.ResolveTarget(context.Background(), r)
	if err != nil {
		return function.Ref{}, "", false
	}
	if cfg.TenantIsolation == "" {
		return r, "", true
	}
	return r, tenant, tenant != ""
}

func (q *Queue) record(ev *store.Event, condition string, res *invoke.Response) *Record {
	qualifier := ev.Qualifier
	if qualifier == "" {
		qualifier = "$LATEST"
	}
	payload := json.RawMessage(ev.Payload)
	if len(payload) == 0 {
		payload = json.RawMessage("{}")
	}
	r := &Record{
		Version:   "1.0",
		Timestamp: q.clock.Now().UTC().Format("2006-01-02T15:04:05.000Z"),
		RequestContext: RequestContext{
			RequestID: ev.RequestID, FunctionArn: q.ctl.Names(q.accountOf(ev)).QualifiedARN(ev.Function, qualifier),
			Condition: condition, ApproximateInvokeCount: ev.FunctionErrs,
		},
		RequestPayload: payload,
	}
	if res != nil {
		// The attempt that answered counts too when it succeeded; a failed
		// one is already in FunctionErrs.
		if res.FunctionError == "" {
			r.RequestContext.ApproximateInvokeCount++
		}
		r.ResponseContext = &ResponseContext{StatusCode: res.Status, ExecutedVersion: res.ExecutedVersion, FunctionError: res.FunctionError}
		if json.Valid(res.Payload) {
			r.ResponsePayload = res.Payload
		} else {
			b, _ := json.Marshal(string(res.Payload))
			r.ResponsePayload = b
		}
	}
	return r
}

// Replay moves a dead letter of the caller's account back into the queue
// as a new event, and returns it as it was stored.
func (q *Queue) Replay(ctx context.Context, seq uint64) (*store.Event, error) {
	var ev *store.Event
	acct := account.Of(ctx, q.opts.Account)
	err := q.db.Update(ctx, func(tx Tx) error {
		d, err := tx.DeadLetter(seq)
		if errors.Is(err, store.ErrNotFound) || err == nil && q.accountOf(&d.Event) != acct {
			return awserr.New(awserr.ResourceNotFound, "No dead letter %d", seq)
		} else if err != nil {
			return err
		}
		ev = &d.Event
		ev.Attempts, ev.FunctionErrs, ev.ReceivedAt, ev.Node = 0, 0, q.clock.Now(), q.opts.Node
		if err := tx.DeleteDeadLetter(seq); err != nil {
			return err
		}
		return tx.AddEvent(ev)
	})
	if err != nil {
		return nil, err
	}
	// The caller gets a copy: the queue changes its own as the event runs.
	out := *ev
	q.mu.Lock()
	q.push(&item{ev: ev, due: q.clock.Now()})
	q.mu.Unlock()
	q.poke()
	return &out, nil
}

// DeadLetters lists the dead letters of the caller's account, oldest
// first, after sequence after, at most limit of them.
func (q *Queue) DeadLetters(ctx context.Context, after uint64, limit int) ([]*store.DeadLetter, error) {
	acct := account.Of(ctx, q.opts.Account)
	var out []*store.DeadLetter
	err := q.db.View(ctx, func(tx Tx) error {
		out = out[:0]
		// The list is shared by the accounts; pages are read until limit
		// of the caller's are found or the list ends.
		for from := after; len(out) < limit; {
			page, err := tx.DeadLetters(from, limit)
			if err != nil || len(page) == 0 {
				return err
			}
			for _, d := range page {
				if q.accountOf(&d.Event) == acct && len(out) < limit {
					out = append(out, d)
				}
			}
			from = page[len(page)-1].Seq
		}
		return nil
	})
	return out, err
}
