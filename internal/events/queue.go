// Package events is lambdad's asynchronous invocation queue. An event is
// written durably (many concurrent senders share one commit and one fsync)
// before the sender hears 202, and stays in the store until it has run, or
// its record has reached a destination or the dead-letter list: delivery is
// at least once, and nothing acknowledged is lost, even to kill -9.
//
// A dispatcher runs due events through the same invoker, and so the same
// admission, as synchronous invokes, taking functions in turn so that one
// busy or throttled function cannot starve the others. Retries follow AWS:
// throttles and service errors back off from 1 s to 5 min until the event
// is MaximumEventAgeInSeconds old; function errors are retried
// MaximumRetryAttempts times, about 1 and 2 minutes apart.
//
// Every time the queue uses (waits, event ages, timestamps) comes from one
// clock.Clock, Options.Clock, so that it can run on virtual time.
package events

import (
	"container/heap"
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lambdad/lambdad/internal/account"
	"github.com/lambdad/lambdad/internal/awserr"
	"github.com/lambdad/lambdad/internal/clock"
	"github.com/lambdad/lambdad/internal/function"
	"github.com/lambdad/lambdad/internal/invoke"
	"github.com/lambdad/lambdad/internal/store"
)

// Invoker runs one synchronous invocation through admission, as
// *invoke.Invoker does: a function whose pool is full, or that is reserved
// at 0, is answered with a throttle (awserr.TooManyRequests).
type Invoker interface {
	Invoke(ctx context.Context, req *invoke.Request) (*invoke.Response, error)
}

// Control is what the queue reads of the control plane, as
// *control.Service provides it.
type Control interface {
	// Names parses the FunctionName values of an account and builds its
	// ARNs.
	Names(account string) function.Parser
	// ResolveTarget fails with ResourceNotFound when ref does not exist.
	ResolveTarget(ctx context.Context, ref function.Ref) (*function.Config, *function.Alias, error)
	// EventConfigFor is the event invoke configuration that governs
	// name:qualifier in the account of ctx's caller, nil when there is
	// none.
	EventConfigFor(ctx context.Context, name, qualifier string) (*store.EventConfig, error)
	// Reservation is the reserved concurrency of the function of ctx's
	// caller; ok is false when it has none.
	Reservation(ctx context.Context, name string) (n int, ok bool, err error)
}

// AWS's defaults and bounds.
const (
	DefaultMaxRetryAttempts = 2
	DefaultMaxEventAge      = 21600 * time.Second
	minBackoff              = time.Second
	maxBackoff              = 5 * time.Minute
	// MaxEventPayload is the limit of an Event invocation's payload.
	MaxEventPayload = 1048576
)

// Options configure the queue.
type Options struct {
	// Account is the account of an event whose context names no caller,
	// and of events stored before events had one: the server's own.
	Account string
	// TimeScale multiplies every wait (backoffs, retry delays): 1 is AWS's
	// timing (serve's --async-time-scale sets it). Event age is measured in
	// scaled time too, so that MaximumEventAgeInSeconds keeps its meaning.
	TimeScale float64
	// Workers bounds how many events run at once (default 100).
	Workers int
	Logger  *slog.Logger
	// Clock is the source of every time the queue uses: retry waits,
	// backoffs, event age, timestamps. nil means clock.Real.
	Clock clock.Clock
	// Node is this node's name in a cluster whose nodes share the store:
	// the queue runs the events it accepted, and those it takes over from
	// nodes gone, never another live node's. "" on a node of its own,
	// which runs every stored event.
	Node string
	// Members lists the nodes alive now; with Node set, the queue takes
	// over the events of nodes missing from it, every AdoptEvery (default
	// 2 s).
	Members    func() (map[string]string, error)
	AdoptEvery time.Duration
	// MaxBatch bounds the events one commit writes (default 1000), and
	// MaxBatchBytes their payloads' bytes (default no bound; an event
	// larger than it still goes, alone): a store in etcd takes a bounded
	// number of operations and bytes per transaction.
	MaxBatch      int
	MaxBatchBytes int
}

// Stats are the queue's counters, as CloudWatch names them.
type Stats struct {
	// AsyncEventsReceived counts events accepted (202).
	AsyncEventsReceived int64
	// AsyncEventsDropped counts events that failed and went to a
	// destination or the dead-letter list without running successfully.
	AsyncEventsDropped int64
	// AsyncEventAgeMillis is the age of the last event taken to run,
	// from acceptance to the start of that attempt.
	AsyncEventAgeMillis int64
	Succeeded           int64
	Pending             int64
	Running             int64
	// Commits counts durable commits of new events; Received/Commits is
	// how many events share one fsync.
	Commits int64
}

// Queue is the durable event queue and its dispatcher.
type Queue struct {
	db    Store
	ctl   Control
	inv   Invoker
	opts  Options
	log   *slog.Logger
	clock clock.Clock

	incoming chan *pendingWrite
	// committerDone is closed when the committer has stopped: a write it
	// never took will not be taken.
	committerDone chan struct{}
	// finished carries events that ran successfully and have no record to
	// deliver: the committer removes them in its next group commit. Until
	// then a crash would run them again, which at-least-once allows.
	finished chan uint64
	wake     chan struct{}
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup

	mu sync.Mutex // guards the following fields
	// byFn holds the due-ordered events waiting per function.
	byFn map[function.Key]*fnQueue
	// ring is the order in which functions take turns.
	ring    []function.Key
	cursor  int
	running int
	// unremoved holds the finished events the committer had stopped for
	// when they finished; Close removes them with what finished holds.
	unremoved []uint64

	received, dropped, succeeded, commits, lastAge atomic.Int64
}

type item struct {
	ev  *store.Event
	due time.Time
}

// fnQueue is one function's waiting events, a min-heap by due time.
type fnQueue struct {
	items   []*item
	running int
}

func (f *fnQueue) Len() int { return len(f.items) }
func (f *fnQueue) Less(i, j int) bool {
	a, b := f.items[i], f.items[j]
	return a.due.Before(b.due) || a.due.Equal(b.due) && a.ev.Seq < b.ev.Seq
}
func (f *fnQueue) Swap(i, j int) { f.items[i], f.items[j] = f.items[j], f.items[i] }
func (f *fnQueue) Push(x any)    { f.items = append(f.items, x.(*item)) }
func (f *fnQueue) Pop() any {
	it := f.items[len(f.items)-1]
	f.items = f.items[:len(f.items)-1]
	return it
}

type pendingWrite struct {
	ev   *store.Event
	done chan error
}

// New opens the queue over db, loading every event a previous run left
// unfinished. Start begins dispatching.
func New(db Store, ctl Control, inv Invoker, opts Options) (*Queue, error) {
	if opts.Account == "" {
		return nil, errors.New("events: no account for events that name none")
	}
	if opts.TimeScale <= 0 {
		opts.TimeScale = 1
	}
	if opts.Workers <= 0 {
		opts.Workers = 100
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real
	}
	q := &Queue{db: db, ctl: ctl, inv: inv, opts: opts, log: opts.Logger, clock: opts.Clock,
		incoming: make(chan *pendingWrite, 1024), committerDone: make(chan struct{}), finished: make(chan uint64, 1024), wake: make(chan struct{}, 1),
		byFn: map[function.Key]*fnQueue{}}
	q.ctx, q.cancel = context.WithCancel(context.Background())
	now := opts.Clock.Now()
	err := db.View(context.Background(), func(tx Tx) error {
		return tx.Events(func(e *store.Event) error {
			if e.Node == opts.Node {
				q.push(&item{ev: e, due: now})
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	if q.opts.MaxBatch <= 0 {
		q.opts.MaxBatch = 1000
	}
	if q.opts.AdoptEvery <= 0 {
		q.opts.AdoptEvery = 2 * time.Second
	}
	return q, nil
}

// adoptLoop takes over, every AdoptEvery, the events of nodes that have
// left the cluster.
func (q *Queue) adoptLoop() {
	defer q.wg.Done()
	for {
		select {
		case <-q.ctx.Done():
			return
		case <-time.After(q.opts.AdoptEvery):
			// Real time, not the queue's clock: this is the cluster's
			// liveness, which etcd measures in real time.
		}
		if n, err := q.adopt(); err != nil {
			q.log.Warn("taking over the events of nodes gone", "err", err)
		} else if n > 0 {
			q.log.Info("took over the events of nodes gone", "events", n)
		}
	}
}

// adopt takes over the stored events whose node is not a member any more:
// one transaction makes them this node's, so that of several nodes taking
// over at once each event goes to one. Events of a node that died while
// running them run again here, which at-least-once delivery allows.
func (q *Queue) adopt() (int, error) {
	members, err := q.opts.Members()
	if err != nil {
		return 0, err
	}
	orphaned := func(e *store.Event) bool {
		_, alive := members[e.Node]
		return e.Node != q.opts.Node && !alive
	}
	any := false
	err = q.db.View(q.ctx, func(tx Tx) error {
		any = false
		return tx.Events(func(e *store.Event) error {
			any = any || orphaned(e)
			return nil
		})
	})
	if err != nil || !any {
		return 0, err
	}
	var taken []*store.Event
	err = q.db.Update(q.ctx, func(tx Tx) error {
		taken = taken[:0]
		return tx.Events(func(e *store.Event) error {
			if !orphaned(e) {
				return nil
			}
			e.Node = q.opts.Node
			taken = append(taken, e)
			return tx.UpdateEvent(e)
		})
	})
	if err != nil {
		return 0, err
	}
	now := q.clock.Now()
	q.mu.Lock()
	for _, e := range taken {
		q.push(&item{ev: e, due: now})
	}
	q.mu.Unlock()
	if len(taken) > 0 {
		q.poke()
	}
	return len(taken), nil
}

// Start runs the committer and the dispatcher until Close.
func (q *Queue) Start() {
	q.wg.Add(2)
	go q.commitLoop()
	go q.dispatchLoop()
	if q.opts.Node != "" && q.opts.Members != nil {
		q.wg.Add(1)
		go q.adoptLoop()
	}
}

// Close stops dispatching and cancels running events; they stay stored and
// run again after the next start.
func (q *Queue) Close() error {
	q.cancel()
	q.wg.Wait()
	// The removals of events that ran to the end while the queue stopped
	// are written now, so that a clean stop runs none of them again.
	var seqs []uint64
	for drained := false; !drained; {
		select {
		case seq := <-q.finished:
			seqs = append(seqs, seq)
		default:
			drained = true
		}
	}
	q.mu.Lock()
	seqs = append(seqs, q.unremoved...)
	q.unremoved = nil
	q.mu.Unlock()
	if len(seqs) == 0 {
		return nil
	}
	return q.db.Update(context.Background(), func(tx Tx) error {
		for _, seq := range seqs {
			if err := tx.DeleteEvent(seq); err != nil {
				return err
			}
		}
		return nil
	})
}

// Stats returns the counters.
func (q *Queue) Stats() Stats {
	q.mu.Lock()
	pending := 0
	for _, f := range q.byFn {
		pending += f.Len()
	}
	running := q.running
	q.mu.Unlock()
	return Stats{
		AsyncEventsReceived: q.received.Load(), AsyncEventsDropped: q.dropped.Load(),
		AsyncEventAgeMillis: q.lastAge.Load(), Succeeded: q.succeeded.Load(),
		Pending: int64(pending), Running: int64(running), Commits: q.commits.Load(),
	}
}

// Enqueue validates an Event invocation and stores it; when it returns nil
// the event is on disk and will run.
func (q *Queue) Enqueue(ctx context.Context, req *invoke.Request) error {
	if len(req.Payload) > MaxEventPayload {
		return awserr.New(awserr.RequestTooLarge, "Request must be smaller than %d bytes for the InvokeFunction operation", MaxEventPayload)
	}
	ref, err := q.ctl.Names(account.Of(ctx, q.opts.Account)).ParseWithQualifier(req.FunctionName, req.Qualifier)
	if err != nil {
		return err
	}
	cfg, _, err := q.ctl.ResolveTarget(ctx, ref)
	if err != nil {
		return err
	}
	if err := function.CheckTenant(cfg, q.ctl.Names(ref.Account).QualifiedARN(ref.Name, ref.Qualifier), req.TenantID); err != nil {
		return err
	}
	if err := invoke.CheckPayload(req.Payload); err != nil {
		return err
	}
	ev := &store.Event{RequestID: req.RequestID, Account: ref.Account, Function: ref.Name, Qualifier: ref.Qualifier, Payload: req.Payload,
		ReceivedAt: q.clock.Now(), Node: q.opts.Node, TenantID: req.TenantID}
	return q.add(ctx, ev)
}

// add writes an event through the group commit and schedules it.
func (q *Queue) add(ctx context.Context, ev *store.Event) error {
	w := &pendingWrite{ev: ev, done: make(chan error, 1)}
	select {
	case q.incoming <- w:
	case <-q.ctx.Done():
		return awserr.New(awserr.Service, "The server is shutting down.")
	}
	// Once handed over, wait for the commit even if the client goes: the
	// event may already be durable.
	select {
	case err := <-w.done:
		if err != nil {
			return err
		}
		q.received.Add(1)
		return nil
	case <-q.committerDone:
		// Stopped without taking it (it answers every write it took).
		select {
		case err := <-w.done:
			if err == nil {
				q.received.Add(1)
			}
			return err
		default:
			return awserr.New(awserr.Service, "The server is shutting down.")
		}
	}
}

// commitLoop writes new events, and removes finished ones, in groups:
// everything that arrives while one commit is being synced goes into the
// next, so concurrent senders share fsyncs without any added delay.
func (q *Queue) commitLoop() {
	defer q.wg.Done()
	defer close(q.committerDone)
	// carry is a write taken that did not fit the last commit.
	var carry *pendingWrite
	for {
		var batch []*pendingWrite
		var done []uint64
		bytes := 0
		add := func(w *pendingWrite) bool {
			if len(batch) > 0 && q.opts.MaxBatchBytes > 0 && bytes+len(w.ev.Payload) > q.opts.MaxBatchBytes {
				carry = w
				return false
			}
			batch = append(batch, w)
			bytes += len(w.ev.Payload)
			return true
		}
		if carry != nil {
			w := carry
			carry = nil
			add(w)
		} else {
			select {
			case w := <-q.incoming:
				add(w)
			case seq := <-q.finished:
				done = append(done, seq)
			case <-q.ctx.Done():
				q.failPending()
				return
			}
		}
	more:
		for len(batch)+len(done) < q.opts.MaxBatch && carry == nil {
			select {
			case w := <-q.incoming:
				if !add(w) {
					break more
				}
			case seq := <-q.finished:
				done = append(done, seq)
			default:
				break more
			}
		}
		err := q.db.Update(context.Background(), func(tx Tx) error {
			for _, w := range batch {
				if err := tx.AddEvent(w.ev); err != nil {
					return err
				}
			}
			for _, seq := range done {
				if err := tx.DeleteEvent(seq); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			q.log.Error("event queue: commit failed", "events", len(batch), "finished", len(done), "err", err)
		}
		q.commits.Add(1)
		now := q.clock.Now()
		for _, w := range batch {
			if err == nil {
				q.mu.Lock()
				q.push(&item{ev: w.ev, due: now})
				q.mu.Unlock()
			}
			w.done <- err
		}
		q.poke()
	}
}

// failPending answers the senders still waiting when the queue stops.
func (q *Queue) failPending() {
	for {
		select {
		case w := <-q.incoming:
			w.done <- awserr.New(awserr.Service, "The server is shutting down.")
		default:
			return
		}
	}
}

// push adds an item; q.mu must be held (or the queue not yet started).
func (q *Queue) push(it *item) {
	// A waiting event holds no payload: it is on disk, and run reads it
	// back, so the backlog's memory does not grow with its payloads.
	it.ev.Payload = nil
	fn := q.fnOf(it.ev)
	f := q.byFn[fn]
	if f == nil {
		f = &fnQueue{}
		q.byFn[fn] = f
		q.ring = append(q.ring, fn)
	}
	heap.Push(f, it)
}

func (q *Queue) poke() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// dispatchLoop starts due events, functions taking turns, each function
// limited to a fair share of the workers while others wait, and each
// function with events waiting always able to run one.
func (q *Queue) dispatchLoop() {
	defer q.wg.Done()
	var running sync.WaitGroup
	defer running.Wait()
	var timer clock.Timer
	for {
		it, wait := q.next()
		if it != nil {
			running.Add(1)
			go func() {
				defer running.Done()
				q.run(it)
			}()
			continue
		}
		if timer == nil {
			timer = q.clock.NewTimer(wait)
		} else {
			timer.Reset(wait)
		}
		select {
		case <-q.ctx.Done():
			timer.Stop()
			return
		case <-q.wake:
		case <-timer.C():
		}
		// Stopped, so that the next Reset starts afresh; should a clock
		// still deliver a stale fire, it costs one more turn of the loop.
		timer.Stop()
	}
}

// next takes the next due event, or says how long to wait for one.
func (q *Queue) next() (*item, time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	wait := time.Hour
	// With every worker busy, only a function with nothing running may
	// start one event: no function waits behind another's backlog, at the
	// cost of exceeding Workers by at most the number of such functions.
	full := q.running >= q.opts.Workers
	now := q.clock.Now()
	// A function shares the workers while it runs events or has one due; a
	// backlog that waits out its backoff uses none and takes no share.
	active := 0
	for _, f := range q.byFn {
		if f.running > 0 || f.Len() > 0 && !f.items[0].due.After(now) {
			active++
		}
	}
	share := max(1, q.opts.Workers/max(1, active))
	for range len(q.ring) {
		q.cursor = (q.cursor + 1) % len(q.ring)
		name := q.ring[q.cursor]
		f := q.byFn[name]
		if f.Len() == 0 {
			if f.running == 0 {
				q.dropFunction(name)
			}
			continue
		}
		if d := f.items[0].due.Sub(now); d > 0 {
			wait = min(wait, d)
			continue
		}
		if f.running >= share || full && f.running > 0 {
			continue
		}
		it := heap.Pop(f).(*item)
		f.running++
		q.running++
		return it, 0
	}
	return nil, wait
}

// fnOf is the function an event is for.
func (q *Queue) fnOf(ev *store.Event) function.Key {
	return function.Key{Account: q.accountOf(ev), Name: ev.Function}
}

// accountOf is the account an event belongs to.
func (q *Queue) accountOf(ev *store.Event) string {
	if ev.Account == "" {
		return q.opts.Account
	}
	return ev.Account
}

// ctxOf is the context an event's attempt runs in: the queue's, acting in
// the event's account.
func (q *Queue) ctxOf(ev *store.Event) context.Context {
	return account.WithCaller(q.ctx, account.Caller{Account: q.accountOf(ev), RequestID: ev.RequestID})
}

// dropFunction forgets an idle function's queue; q.mu must be held.
func (q *Queue) dropFunction(name function.Key) {
	delete(q.byFn, name)
	for i, n := range q.ring {
		if n == name {
			q.ring = append(q.ring[:i], q.ring[i+1:]...)
			if q.cursor >= i && q.cursor > 0 {
				q.cursor--
			}
			return
		}
	}
}

// done marks an event's attempt finished; again, if not nil, is its next
// attempt.
func (q *Queue) done(it *item, again *item) {
	q.mu.Lock()
	// The function's queue is never dropped while one of its events runs.
	f := q.byFn[q.fnOf(it.ev)]
	f.running--
	q.running--
	if again != nil {
		again.ev.Payload = nil // as push
		heap.Push(f, again)
	}
	q.mu.Unlock()
	q.poke()
}

// scaled converts one of AWS's waits to this queue's time scale.
func (q *Queue) scaled(d time.Duration) time.Duration {
	return time.Duration(float64(d) * q.opts.TimeScale)
}
