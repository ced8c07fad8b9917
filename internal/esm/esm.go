// Package esm runs event source mappings: it reads SQS queues in batches
// and hands each batch to the mapped function through the same invoker,
// and so the same admission, as every other invocation, as AWS's pollers
// do.
//
// A mapping's messages are deleted only after the function has succeeded
// with them (with ReportBatchItemFailures, all but the ones it reported).
// A batch that fails, is throttled or is cut short by a stop is left to
// become visible again after the queue's visibility timeout; redrive to a
// dead-letter queue is the queue's own RedrivePolicy. Nothing is deleted
// unprocessed, so a kill of the server loses nothing.
//
// Scaling follows AWS's documentation for SQS in standard mode: a mapping
// starts with 5 concurrent batches and, while messages keep coming, adds
// up to 300 a minute (5 a second here) up to 1,000; a throttle halves the
// concurrency (to no fewer than 2), and after 10 s without messages it
// goes back to 5. ScalingConfig.MaximumConcurrency caps it. Each batch is
// one invocation at a time, so the number of concurrent batches is the
// mapping's concurrency.
//
// FilterCriteria (package filter) are applied to each message as it is
// received: one that matches no filter is deleted without an invocation,
// as on AWS, and the batch fills with the ones that pass.
//
// FIFO queues (.fifo): SQS gives out no message of a group while another
// of it is in flight; the poller also runs a batch only when none of its
// groups has a batch running (fifo.go), since SQS's rule lapses when a
// visibility timeout ends during a batch.
//
// The Manager follows the store's feed: a mapping created, changed or
// deleted starts, restarts or stops its poller; at start it resumes every
// stored mapping.
package esm

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/lambdad/lambdad/internal/control"
	"github.com/lambdad/lambdad/internal/invoke"
	"github.com/lambdad/lambdad/internal/store"
)

// Invoker runs one synchronous invocation through admission, as
// *invoke.Invoker does.
type Invoker interface {
	Invoke(ctx context.Context, req *invoke.Request) (*invoke.Response, error)
}

// Manager runs a poller per enabled mapping.
type Manager struct {
	sqs    Queues
	inv    Invoker
	region string
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	// wg counts every poller's goroutines, of pollers running and of
	// pollers stopped but still finishing a batch.
	wg sync.WaitGroup

	mu      sync.Mutex // guards pollers, groups and closed
	pollers map[key]*poller
	// groups are each FIFO mapping's running message groups, kept across
	// its pollers: a poller started by an update must wait for the
	// groups of the one it replaces.
	groups map[key]*groupLocks
	closed bool
	// mappings holds every stored mapping, run or not; owns, when set,
	// says which of them this node runs (one node of a cluster polls
	// each mapping, so that its MaximumConcurrency and scaling hold as on
	// one node).
	mappings map[key]*store.EventSourceMapping
	owns     func(account, uuid string) bool
}

type key struct{ account, uuid string }

// New returns a Manager that reads queues through sqs and invokes through
// inv. It is a store.Subscriber: subscribe it to start the stored
// mappings.
func New(sqs Queues, inv Invoker, region string, log *slog.Logger) *Manager {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Manager{sqs: sqs, inv: inv, region: region, log: log, pollers: map[key]*poller{}, groups: map[key]*groupLocks{},
		mappings: map[key]*store.EventSourceMapping{}}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	return m
}

// Load starts every stored mapping.
func (m *Manager) Load(tx *store.Tx, _ uint64) error {
	return control.ForEachAccount(tx, func(tx *store.Tx) error {
		all, err := tx.EventSourceMappings("", -1)
		for _, mp := range all {
			m.set(tx.Account(), mp.UUID, mp)
		}
		return err
	})
}

// Apply follows the mappings written and deleted.
func (m *Manager) Apply(b *store.Batch) {
	for i := range b.Changes {
		if c := &b.Changes[i]; c.Kind == store.KindMapping {
			m.set(c.Account, c.Key, c.Mapping)
		}
	}
}

// set stops the mapping's poller and starts a new one for mp when it is
// enabled. It does not wait for the old poller, which only finishes its
// batch in flight (Close waits for it).
func (m *Manager) set(account, uuid string, mp *store.EventSourceMapping) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := key{account, uuid}
	if mp == nil {
		delete(m.mappings, k)
	} else {
		m.mappings[k] = mp
	}
	m.runLocked(k, mp)
}

// Own makes the Manager run only the mappings owns gives to this node,
// looking again every every (a node joining or leaving the cluster moves
// mappings between nodes). Call it before the Manager is subscribed.
func (m *Manager) Own(owns func(account, uuid string) bool, every time.Duration) {
	m.owns = owns
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-m.ctx.Done():
				return
			case <-t.C:
			}
			m.rebalance()
		}
	}()
}

// rebalance starts the mappings this node has come to own and stops those
// it no longer does.
func (m *Manager) rebalance() {
	m.mu.Lock()
	keys := make([]key, 0, len(m.mappings))
	for k := range m.mappings {
		keys = append(keys, k)
	}
	m.mu.Unlock()
	for _, k := range keys {
		own := m.owns(k.account, k.uuid) // outside the lock: it may ask the cluster
		m.mu.Lock()
		mp, known := m.mappings[k]
		_, running := m.pollers[k]
		if known && mp.Enabled && own != running {
			m.runLocked(k, mp)
		}
		m.mu.Unlock()
	}
}

// runLocked stops the poller of k and starts one for mp if it is enabled
// and this node's to run; m.mu held.
func (m *Manager) runLocked(k key, mp *store.EventSourceMapping) {
	account, uuid := k.account, k.uuid
	if p := m.pollers[k]; p != nil {
		p.stop()
		delete(m.pollers, k)
	}
	if mp == nil {
		delete(m.groups, k) // the stopped poller keeps its own reference
	}
	if mp == nil || !mp.Enabled || m.closed || m.owns != nil && !m.owns(account, uuid) {
		return
	}
	g := m.groups[k]
	if g == nil {
		g = newGroupLocks()
		m.groups[k] = g
	}
	p := newPoller(m, account, mp, g)
	m.pollers[k] = p
	p.start()
}

// Stats returns the counters of each running mapping, by UUID.
func (m *Manager) Stats() map[string]Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]Stats{}
	for k, p := range m.pollers {
		out[k.uuid] = p.stats()
	}
	return out
}

// StatsOf returns the counters of each running mapping of account, by
// UUID.
func (m *Manager) StatsOf(account string) map[string]Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]Stats{}
	for k, p := range m.pollers {
		if k.account == account {
			out[k.uuid] = p.stats()
		}
	}
	return out
}

// Close stops every poller and waits for them; batches in flight are
// abandoned to the visibility timeout.
func (m *Manager) Close() error {
	m.mu.Lock()
	m.closed = true
	clear(m.pollers)
	m.mu.Unlock()
	m.cancel()
	m.wg.Wait()
	return nil
}
