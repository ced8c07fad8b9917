package esm

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/lambdad/lambdad/internal/invoke"
	"github.com/lambdad/lambdad/internal/store"
)

// loose is a queue that hands out every message on every receive, as SQS
// does once visibility timeouts end while batches still run: nothing on
// its side keeps a message group's batches apart, so only the poller can.
type loose struct {
	mu      sync.Mutex
	msgs    []Message
	next    int
	deleted map[string]int
}

func (q *loose) Receive(ctx context.Context, _ string, max int, _ time.Duration) ([]Message, error) {
	q.mu.Lock()
	var out []Message
	for ; len(out) < max && q.next < len(q.msgs); q.next++ {
		out = append(out, q.msgs[q.next])
	}
	q.mu.Unlock()
	if len(out) == 0 {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return out, nil
}

func (q *loose) Delete(_ context.Context, _ string, msgs []Message) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, m := range msgs {
		q.deleted[m.ID]++
	}
	return len(msgs), nil
}

// groupInvoker records each batch's records and checks that no two
// batches of one message group run at once.
type groupInvoker struct {
	mu       sync.Mutex
	running  map[string]int
	overlap  []string
	peak     int
	bodies   []string
	inFlight int
}

func (g *groupInvoker) Invoke(_ context.Context, req *invoke.Request) (*invoke.Response, error) {
	var ev struct {
		Records []struct {
			Body       string            `json:"body"`
			Attributes map[string]string `json:"attributes"`
		}
	}
	if err := json.Unmarshal(req.Payload, &ev); err != nil {
		return nil, err
	}
	groups := map[string]bool{}
	g.mu.Lock()
	for _, r := range ev.Records {
		g.bodies = append(g.bodies, r.Body)
		groups[r.Attributes["MessageGroupId"]] = true
	}
	for id := range groups {
		if g.running[id]++; g.running[id] > 1 {
			g.overlap = append(g.overlap, id)
		}
	}
	g.inFlight++
	g.peak = max(g.peak, g.inFlight)
	g.mu.Unlock()
	time.Sleep(10 * time.Millisecond)
	g.mu.Lock()
	for id := range groups {
		g.running[id]--
	}
	g.inFlight--
	g.mu.Unlock()
	return &invoke.Response{Payload: []byte("null")}, nil
}

func startMapping(t *testing.T, q Queues, inv Invoker, mp *store.EventSourceMapping) *Manager {
	t.Helper()
	m := New(q, inv, "us-east-1", nil)
	m.Apply(&store.Batch{Changes: []store.Change{{Kind: store.KindMapping, Account: "123456789012", Key: mp.UUID, Mapping: mp}}})
	t.Cleanup(func() { m.Close() })
	return m
}

// TestFIFOGroupsOneBatchAtATime: with a queue that keeps no group apart,
// a FIFO mapping still never runs two batches of a group at once, while
// batches of different groups do run at once.
func TestFIFOGroupsOneBatchAtATime(t *testing.T) {
	q := &loose{deleted: map[string]int{}}
	for i := range 200 {
		// Runs of three of a group, so that batches of 2 straddle groups.
		g := fmt.Sprint((i / 3) % 4)
		q.msgs = append(q.msgs, Message{ID: fmt.Sprint("m", i), Body: fmt.Sprint(i), Attributes: map[string]string{"MessageGroupId": g}})
	}
	inv := &groupInvoker{running: map[string]int{}}
	m := startMapping(t, q, inv, &store.EventSourceMapping{UUID: "u", EventSourceArn: "arn:aws:sqs:us-east-1:123456789012:q.fifo",
		Function: "f", BatchSize: 2, Enabled: true})
	for deadline := time.Now().Add(30 * time.Second); m.Stats()["u"].Deleted < 200; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not all deleted: %+v", m.Stats()["u"])
		}
	}
	inv.mu.Lock()
	defer inv.mu.Unlock()
	if len(inv.overlap) > 0 {
		t.Errorf("batches of one group ran at once %d times (groups %v)", len(inv.overlap), inv.overlap[:min(5, len(inv.overlap))])
	}
	if inv.peak < 2 {
		t.Errorf("at most %d batch ran at once: different groups did not run together", inv.peak)
	}
}

// TestFilteredMessagesDeletedUninvoked: messages that match no filter are
// deleted and never handed to the function; the others are, and are
// deleted after it.
func TestFilteredMessagesDeletedUninvoked(t *testing.T) {
	q := &loose{deleted: map[string]int{}}
	for i := range 50 {
		q.msgs = append(q.msgs, Message{ID: fmt.Sprint("m", i), Body: fmt.Sprintf(`{"i":%d,"even":%v}`, i, i%2 == 0)})
	}
	inv := &groupInvoker{running: map[string]int{}}
	m := startMapping(t, q, inv, &store.EventSourceMapping{UUID: "u", EventSourceArn: "arn:aws:sqs:us-east-1:123456789012:q",
		Function: "f", BatchSize: 10, Enabled: true, Filters: []string{`{"body": {"even": [true]}}`}})
	for deadline := time.Now().Add(30 * time.Second); m.Stats()["u"].Deleted+m.Stats()["u"].Filtered < 50; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not all deleted: %+v", m.Stats()["u"])
		}
	}
	inv.mu.Lock()
	defer inv.mu.Unlock()
	for _, b := range inv.bodies {
		var v struct{ Even bool }
		json.Unmarshal([]byte(b), &v)
		if !v.Even {
			t.Errorf("the function got %s", b)
		}
	}
	if s := m.Stats()["u"]; len(inv.bodies) != 25 || s.Filtered != 25 || s.Deleted != 25 || len(q.deleted) != 50 {
		t.Errorf("%d invoked, stats %+v, %d deleted", len(inv.bodies), s, len(q.deleted))
	}
}
