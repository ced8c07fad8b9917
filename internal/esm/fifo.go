package esm

import (
	"context"
	"slices"
	"sync"
)

// FIFO queues: SQS hands out no message of a group while another of the
// group is in flight, so one batch of a group runs at a time and in the
// queue's order. That holds only as long as the visibility timeout: a
// batch that outlives it lets SQS hand its messages, or the group's next
// ones, to another worker. groupLocks keeps the rule on this side too: a
// batch runs only when no running batch of the mapping shares a group with
// it.

// groupLocks are the message groups whose batch is running.
type groupLocks struct {
	mu      sync.Mutex
	busy    map[string]bool
	changed chan struct{} // closed and replaced at each release
}

func newGroupLocks() *groupLocks {
	return &groupLocks{busy: map[string]bool{}, changed: make(chan struct{})}
}

// acquire waits until none of groups is busy and takes them all at once
// (a batch holding groups never waits for others, so there is no
// deadlock), or returns ctx's error.
func (g *groupLocks) acquire(ctx context.Context, groups []string) error {
	for {
		g.mu.Lock()
		free := true
		for _, id := range groups {
			free = free && !g.busy[id]
		}
		if free {
			for _, id := range groups {
				g.busy[id] = true
			}
			g.mu.Unlock()
			return nil
		}
		ch := g.changed
		g.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (g *groupLocks) release(groups []string) {
	g.mu.Lock()
	for _, id := range groups {
		delete(g.busy, id)
	}
	close(g.changed)
	g.changed = make(chan struct{})
	g.mu.Unlock()
}

// messageGroups are the distinct MessageGroupIds of a batch.
func messageGroups(msgs []Message) []string {
	var out []string
	for _, m := range msgs {
		if id := m.Attributes["MessageGroupId"]; id != "" && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}
