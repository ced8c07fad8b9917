package store

import (
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"github.com/lambdad/lambdad/internal/function"
)

// The change feed: every committed transaction that changed a function,
// version, alias, provisioned-concurrency config or function URL is published, once and
// in commit order, to every subscriber. It is the only way the in-memory
// owners of derived state (admission, the resolve cache, environment
// retirement, the provisioner) hear about changes, which is what keeps them
// in step with the store and with each other; several nodes sharing one
// store will get the same feed from a watch.
//
// Each such transaction takes the next revision number, kept in the
// database in the same transaction, so a transaction that fails takes none
// and the committed revisions have no gaps. A subscriber first loads the
// state as of some revision (a list), then receives every batch after it
// (a watch from that revision), so it neither misses nor repeats a change.

// Kind is the kind of record a Change is about.
type Kind uint8

// Kinds of records on the feed.
const (
	KindFunction Kind = iota + 1
	KindVersion
	KindAlias
	KindProvisioned
	KindMapping // an event source mapping; Key is its UUID
	// KindURL is a function URL written or deleted (URL is set when
	// written); its id stops or starts answering with the batch.
	KindURL
)

func (k Kind) String() string {
	switch k {
	case KindFunction:
		return "function"
	case KindVersion:
		return "version"
	case KindAlias:
		return "alias"
	case KindProvisioned:
		return "provisioned"
	case KindMapping:
		return "mapping"
	case KindURL:
		return "url"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Change is one record written or deleted. Exactly one of the record
// fields is set when the record was written; none when it was deleted.
// Deleting a function is one Change of KindFunction: everything it had
// (versions, aliases, configs) went with it.
type Change struct {
	Kind Kind
	// Account and Function name the function the record belongs to.
	Account  string
	Function string
	// Key is the version, the alias or the qualifier of the config; ""
	// for a function.
	Key string

	Func *function.Function
	// PrevFunc is, for a function, the record before the change (nil for
	// a new function).
	PrevFunc    *function.Function
	Version     *function.Config
	Alias       *function.Alias
	Provisioned *ProvisionedConfig
	Mapping     *EventSourceMapping
	URL         *function.URLConfig
	// ProvisionedVersion is, for a written provisioned config, the version
	// its qualifier named when it was written.
	ProvisionedVersion string
}

// Deleted reports whether the change removed the record.
func (c *Change) Deleted() bool {
	return c.Func == nil && c.Version == nil && c.Alias == nil && c.Provisioned == nil && c.Mapping == nil && c.URL == nil
}

// Batch is the changes of one committed transaction.
type Batch struct {
	Rev     uint64
	Changes []Change
}

// Subscriber keeps in-memory state derived from the store.
type Subscriber interface {
	// Load reads the state from tx, a read transaction as of revision
	// rev; it runs once, when the subscriber is added.
	Load(tx *Tx, rev uint64) error
	// Apply applies one committed batch. Batches come one at a time, in
	// revision order, each with a revision above the loaded one, before
	// the writer's Update returns (so a caller that saw its write succeed
	// finds every subscriber already in step). Apply must not block or
	// call back into the store's writers.
	Apply(b *Batch)
}

var keyRevision = []byte("revision")

// feed orders and delivers committed batches. Commit handlers of bbolt run
// after the write lock is released, so two transactions' handlers can run
// out of order; the feed holds a batch back until the one before it has
// been delivered.
type feed struct {
	mu   sync.Mutex // guards the following fields; held while delivering
	cond *sync.Cond
	// next is the revision to deliver next.
	next    uint64
	pending map[uint64]*Batch
	subs    []Subscriber
}

func (f *feed) init(rev uint64) {
	f.cond = sync.NewCond(&f.mu)
	f.next = rev + 1
	f.pending = map[uint64]*Batch{}
}

// publish delivers b, and any batches it held up, and returns once b has
// been delivered.
func (f *feed) publish(b *Batch) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pending[b.Rev] = b
	f.drainLocked()
	for f.next <= b.Rev {
		f.cond.Wait()
	}
}

// deliver delivers b, and any batches it held up, without waiting; false
// means b is older than what the feed expects.
func (f *feed) deliver(b *Batch) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if b.Rev < f.next {
		return false
	}
	f.pending[b.Rev] = b
	f.drainLocked()
	return true
}

// drainLocked delivers the pending batches that are next in order, and
// wakes whoever waits for one; f.mu held.
func (f *feed) drainLocked() {
	for {
		p, ok := f.pending[f.next]
		if !ok {
			break
		}
		delete(f.pending, f.next)
		for _, s := range f.subs {
			s.Apply(p)
		}
		f.next++
	}
	f.cond.Broadcast()
}

func (f *feed) expected() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.next
}

// feedWait bounds how long a writer waits for its own batch to come back
// through a shared store's watch; past it the write has still committed.
const feedWait = 30 * time.Second

// wait returns once the batch of revision rev has been delivered, or the
// feed failed, or feedWait passed.
func (f *feed) wait(rev uint64, failed <-chan struct{}) {
	expired := false // guarded by f.mu
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		t := time.NewTimer(feedWait)
		defer t.Stop()
		select {
		case <-stop:
			return
		case <-failed:
		case <-t.C:
		}
		f.mu.Lock()
		expired = true
		f.cond.Broadcast()
		f.mu.Unlock()
	}()
	f.mu.Lock()
	defer f.mu.Unlock()
	for f.next <= rev && !expired {
		f.cond.Wait()
	}
}

// Subscribe loads s with the committed state and adds it to the feed: from
// then on it receives every batch after the state it loaded.
func (d *DB) Subscribe(s Subscriber) error {
	f := &d.feed
	f.mu.Lock()
	defer f.mu.Unlock()
	// Holding the feed's lock, no batch is delivered meanwhile. A
	// transaction may have committed and not yet been delivered: then its
	// revision is at least f.next, the snapshot already holds it, and its
	// batch is delivered to the others but skipped for s by the check in
	// skipTo.
	var rev uint64
	err := d.View(func(tx *Tx) error {
		rev = tx.revision()
		return s.Load(tx, rev)
	})
	if err != nil {
		return err
	}
	if rev >= f.next {
		s = &skipTo{Subscriber: s, rev: rev}
	}
	f.subs = append(f.subs, s)
	return nil
}

// skipTo passes on the batches after rev.
type skipTo struct {
	Subscriber
	rev uint64
}

func (s *skipTo) Apply(b *Batch) {
	if b.Rev > s.rev {
		s.Subscriber.Apply(b)
	}
}

// Revision is the revision of the last committed change.
func (d *DB) Revision() (uint64, error) {
	var rev uint64
	err := d.View(func(tx *Tx) error { rev = tx.revision(); return nil })
	return rev, err
}

func (t *Tx) revision() uint64 {
	v := t.tx.Bucket(bucketMeta).Get(keyRevision)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// record adds a change to this transaction's batch, taking the next
// revision for the transaction on its first change.
func (t *Tx) record(c Change) error {
	if t.batch == nil {
		rev := t.revision() + 1
		if err := t.tx.Bucket(bucketMeta).Put(keyRevision, binary.BigEndian.AppendUint64(nil, rev)); err != nil {
			return err
		}
		t.batch = &Batch{Rev: rev}
		b := t.batch
		if t.db.shared == nil {
			// A shared store's batches come back through its watch.
			t.tx.OnCommit(func() { t.db.feed.publish(b) })
		}
	}
	c.Account = t.account
	t.batch.Changes = append(t.batch.Changes, c)
	return nil
}

// FunctionKey is the function the changed record belongs to.
func (c *Change) FunctionKey() function.Key {
	return function.Key{Account: c.Account, Name: c.Function}
}
