package esm

import (
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"time"

	"github.com/lambdad/lambdad/internal/account"
	"github.com/lambdad/lambdad/internal/awserr"
	"github.com/lambdad/lambdad/internal/esm/filter"
	"github.com/lambdad/lambdad/internal/invoke"
	"github.com/lambdad/lambdad/internal/store"
	"github.com/lambdad/lambdad/internal/uuid"
)

// AWS's scaling figures for SQS in standard mode (see the package doc).
const (
	startConcurrency = 5
	minConcurrency   = 2
	maxConcurrency   = 1000
	growPerSecond    = 5 // 300 a minute
	idleReset        = 10 * time.Second
	// longPoll is how long one receive waits for a first message.
	longPoll = 20 * time.Second
)

// Stats are a mapping's counters.
type Stats struct {
	Function, Queue                                             string
	Batches, Messages, Deleted, ThrottledBatches, FailedBatches int64
	// Filtered counts the messages that matched none of FilterCriteria's
	// filters and were deleted without an invocation.
	Filtered int64
	// Concurrency is the number of batches the mapping may run at once
	// now; InFlight the ones running.
	Concurrency, InFlight int64
}

type poller struct {
	m       *Manager
	account string
	mp      store.EventSourceMapping
	ctx     context.Context
	cancel  context.CancelFunc
	// filters are FilterCriteria compiled (nil: every message passes).
	filters *filter.Criteria
	// groups, for a FIFO queue, are the message groups whose batch is
	// running (shared with the mapping's pollers before and after this
	// one); nil for a standard queue.
	groups *groupLocks

	target   atomic.Int64 // concurrent batches allowed now
	inFlight atomic.Int64
	// Since the last scaling step: whether batches came full of messages,
	// and whether any was throttled.
	busy, throttled atomic.Bool
	lastMessage     atomic.Int64 // unix nanoseconds

	batches, messages, deleted, throttledBatches, failedBatches, filtered atomic.Int64
}

func newPoller(m *Manager, account string, mp *store.EventSourceMapping, groups *groupLocks) *poller {
	p := &poller{m: m, account: account, mp: *mp}
	p.ctx, p.cancel = context.WithCancel(m.ctx)
	p.target.Store(p.cap(startConcurrency))
	if isFIFO(mp.EventSourceArn) {
		p.groups = groups
	}
	var err error
	if p.filters, err = filter.Compile(mp.Filters); err != nil {
		// The control plane refuses such patterns; a record written
		// otherwise stops the mapping rather than deliver what its filters
		// were meant to hold back, or delete what they were meant to pass.
		m.log.Error("event source mapping: its filters do not compile; not polling", "uuid", mp.UUID, "err", err)
		p.cancel()
	}
	return p
}

// isFIFO says whether a queue ARN names a FIFO queue, whose name ends in
// .fifo.
func isFIFO(arn string) bool { return strings.HasSuffix(arn, ".fifo") }

// cap bounds a concurrency by AWS's maximum and the mapping's own.
func (p *poller) cap(n int64) int64 {
	n = min(max(n, minConcurrency), maxConcurrency)
	if p.mp.MaximumConcurrency > 0 {
		n = min(n, int64(p.mp.MaximumConcurrency))
	}
	return n
}

func (p *poller) start() {
	p.m.wg.Add(1)
	go p.scale()
	// Workers, one per concurrent batch, are started as the target grows,
	// so an idle mapping costs a handful of goroutines.
	p.m.wg.Add(1)
	go p.supervise()
}

func (p *poller) stop() { p.cancel() }

func (p *poller) stats() Stats {
	return Stats{Function: p.mp.Function, Queue: p.mp.EventSourceArn, Batches: p.batches.Load(), Messages: p.messages.Load(), Deleted: p.deleted.Load(),
		ThrottledBatches: p.throttledBatches.Load(), FailedBatches: p.failedBatches.Load(), Filtered: p.filtered.Load(),
		Concurrency: p.target.Load(), InFlight: p.inFlight.Load()}
}

// supervise keeps as many workers as the target allows.
func (p *poller) supervise() {
	defer p.m.wg.Done()
	started := int64(0)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		for ; started < p.target.Load(); started++ {
			p.m.wg.Add(1)
			go p.work(started)
		}
		select {
		case <-p.ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// scale moves the target once a second: up while batches come full, down
// by half on a throttle, back to the start after a while without messages.
func (p *poller) scale() {
	defer p.m.wg.Done()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-tick.C:
		}
		t := p.target.Load()
		switch {
		case p.throttled.Swap(false):
			t = p.cap(t / 2)
		case p.busy.Swap(false):
			t = p.cap(t + growPerSecond)
		case time.Since(time.Unix(0, p.lastMessage.Load())) > idleReset:
			t = p.cap(startConcurrency)
		}
		p.target.Store(t)
	}
}

// work runs batches one after another while its index is within the
// target.
func (p *poller) work(index int64) {
	defer p.m.wg.Done()
	for p.ctx.Err() == nil {
		if index >= p.target.Load() {
			select {
			case <-p.ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		msgs, err := p.gather()
		if err != nil {
			if p.ctx.Err() == nil {
				p.m.log.Warn("event source mapping: receiving", "uuid", p.mp.UUID, "queue", p.mp.EventSourceArn, "err", err)
				select {
				case <-p.ctx.Done():
				case <-time.After(time.Second):
				}
			}
			continue
		}
		if len(msgs) == 0 {
			continue
		}
		p.lastMessage.Store(time.Now().UnixNano())
		if len(msgs) >= min(p.mp.BatchSize, 10) {
			p.busy.Store(true)
		}
		p.run(msgs)
	}
}

// gather receives one batch: up to BatchSize messages, waiting for more
// until the batching window ends once the first has come.
func (p *poller) gather() ([]Message, error) {
	var msgs []Message
	var deadline time.Time
	for len(msgs) < p.mp.BatchSize {
		wait := longPoll
		if !deadline.IsZero() {
			left := time.Until(deadline)
			if left < time.Second {
				break
			}
			wait = min(wait, left)
		}
		got, err := p.m.sqs.Receive(p.ctx, p.mp.EventSourceArn, min(10, p.mp.BatchSize-len(msgs)), wait)
		if err != nil {
			if len(msgs) > 0 {
				return msgs, nil
			}
			return nil, err
		}
		// The window starts with the first message received, filtered out
		// or not; the batch counts only the messages that pass.
		if deadline.IsZero() && len(got) > 0 {
			deadline = time.Now().Add(time.Duration(p.mp.BatchingWindowSeconds) * time.Second)
		}
		got = p.filter(got)
		msgs = append(msgs, got...)
		if len(msgs) > 0 && (p.mp.BatchingWindowSeconds == 0 || len(got) == 0) {
			break
		}
		if len(msgs) == 0 && !deadline.IsZero() && p.mp.BatchingWindowSeconds == 0 {
			// Everything received was filtered out: long-poll afresh.
			deadline = time.Time{}
		}
	}
	return msgs, nil
}

// record is one message in AWS's SQS event.
type record struct {
	MessageID         string            `json:"messageId"`
	ReceiptHandle     string            `json:"receiptHandle"`
	Body              string            `json:"body"`
	Attributes        map[string]string `json:"attributes"`
	MessageAttributes map[string]any    `json:"messageAttributes"`
	MD5OfBody         string            `json:"md5OfBody"`
	EventSource       string            `json:"eventSource"`
	EventSourceARN    string            `json:"eventSourceARN"`
	AWSRegion         string            `json:"awsRegion"`
}

func (p *poller) event(msgs []Message) []byte {
	recs := make([]record, len(msgs))
	for i, m := range msgs {
		recs[i] = p.record(m)
	}
	b, _ := json.Marshal(map[string]any{"Records": recs})
	return b
}

func (p *poller) record(m Message) record {
	attrs := map[string]any{}
	for name, v := range m.MessageAttributes {
		a := map[string]any{"dataType": derefOr(v.DataType), "stringListValues": []string{}, "binaryListValues": []string{}}
		if v.StringValue != nil {
			a["stringValue"] = *v.StringValue
		}
		if v.BinaryValue != nil {
			a["binaryValue"] = v.BinaryValue
		}
		attrs[name] = a
	}
	a := m.Attributes
	if a == nil {
		a = map[string]string{}
	}
	return record{MessageID: m.ID, ReceiptHandle: m.ReceiptHandle, Body: m.Body, Attributes: a, MessageAttributes: attrs,
		MD5OfBody: m.MD5OfBody, EventSource: "aws:sqs", EventSourceARN: p.mp.EventSourceArn, AWSRegion: p.m.region}
}

// fields are a record's fields but the body as filter patterns see them:
// the event's JSON, decoded.
func (r *record) fields() map[string]any {
	attrs := make(map[string]any, len(r.Attributes))
	for k, v := range r.Attributes {
		attrs[k] = v
	}
	mattrs := make(map[string]any, len(r.MessageAttributes))
	for k, v := range r.MessageAttributes {
		a := map[string]any{}
		for ak, av := range v.(map[string]any) {
			switch av := av.(type) {
			case string:
				a[ak] = av
			case []string:
				a[ak] = []any{}
			default: // binary values, as the event's base64
				b, _ := json.Marshal(av)
				var s string
				json.Unmarshal(b, &s)
				a[ak] = s
			}
		}
		mattrs[k] = a
	}
	return map[string]any{"messageId": r.MessageID, "receiptHandle": r.ReceiptHandle, "md5OfBody": r.MD5OfBody,
		"eventSource": r.EventSource, "eventSourceARN": r.EventSourceARN, "awsRegion": r.AWSRegion,
		"attributes": attrs, "messageAttributes": mattrs}
}

// filter returns the messages that pass FilterCriteria and deletes the
// others without an invocation, as AWS does with SQS messages that match
// no filter. A deletion that fails leaves the message to come again and be
// filtered again.
func (p *poller) filter(msgs []Message) []Message {
	if p.filters == nil || len(msgs) == 0 {
		return msgs
	}
	var pass, drop []Message
	for _, m := range msgs {
		r := p.record(m)
		if p.filters.Match(r.fields(), m.Body) {
			pass = append(pass, m)
		} else {
			drop = append(drop, m)
		}
	}
	if len(drop) > 0 {
		n, err := p.m.sqs.Delete(context.WithoutCancel(p.ctx), p.mp.EventSourceArn, drop)
		p.filtered.Add(int64(n))
		if err != nil {
			p.m.log.Warn("event source mapping: deleting filtered messages", "uuid", p.mp.UUID, "err", err)
		}
	}
	return pass
}

func derefOr(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// run invokes the function with one batch and deletes what it processed.
func (p *poller) run(msgs []Message) {
	if p.groups != nil {
		// FIFO: a group's batch waits for the group's batch before it,
		// which SQS alone does not ensure once a visibility timeout ends
		// while that batch still runs.
		groups := messageGroups(msgs)
		if err := p.groups.acquire(p.ctx, groups); err != nil {
			return // stopped: the batch comes back after the visibility timeout
		}
		defer p.groups.release(groups)
	}
	if p.ctx.Err() != nil {
		return // stopped between receiving and invoking: invoke nothing more
	}
	p.inFlight.Add(1)
	defer p.inFlight.Add(-1)
	p.batches.Add(1)
	p.messages.Add(int64(len(msgs)))
	ctx := account.WithCaller(p.ctx, account.Caller{Account: p.account})
	res, err := p.m.inv.Invoke(ctx, &invoke.Request{FunctionName: p.mp.Function, Qualifier: p.mp.Qualifier,
		Type: invoke.RequestResponse, Payload: p.event(msgs), PayloadIsJSON: true, RequestID: uuid.New()})
	if err != nil {
		if e, ok := awserr.As(err); ok && e.Code == awserr.TooManyRequests {
			p.throttledBatches.Add(1)
			p.throttled.Store(true)
		} else {
			p.failedBatches.Add(1)
		}
		return // the batch comes back after the visibility timeout
	}
	if res.FunctionError != "" {
		p.failedBatches.Add(1)
		return
	}
	done := msgs
	if p.mp.ReportBatchItemFail {
		var ok bool
		if done, ok = succeeded(msgs, res.Payload); !ok {
			p.failedBatches.Add(1)
			return
		}
	}
	// The deletion outlives a stop that comes now: the function has
	// processed these messages.
	n, err := p.m.sqs.Delete(context.WithoutCancel(p.ctx), p.mp.EventSourceArn, done)
	p.deleted.Add(int64(n))
	if err != nil {
		p.m.log.Warn("event source mapping: deleting", "uuid", p.mp.UUID, "err", err)
	}
}

// succeeded reads a ReportBatchItemFailures answer: the messages not
// reported as failed. An answer that is not of that shape, or that names
// a message not in the batch, fails the whole batch, as on AWS.
func succeeded(msgs []Message, payload []byte) ([]Message, bool) {
	var resp struct {
		BatchItemFailures []struct {
			ItemIdentifier *string `json:"itemIdentifier"`
		} `json:"batchItemFailures"`
	}
	if len(payload) == 0 || string(payload) == "null" {
		return msgs, true
	}
	if err := json.Unmarshal(payload, &resp); err != nil {
		return nil, false
	}
	failed := map[string]bool{}
	for _, f := range resp.BatchItemFailures {
		if f.ItemIdentifier == nil || *f.ItemIdentifier == "" {
			return nil, false
		}
		failed[*f.ItemIdentifier] = true
	}
	var out []Message
	for _, m := range msgs {
		if !failed[m.ID] {
			out = append(out, m)
		}
		delete(failed, m.ID)
	}
	if len(failed) > 0 {
		return nil, false
	}
	return out, true
}
