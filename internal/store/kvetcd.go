package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// The etcd engine keeps bbolt's model of nested buckets under one key
// prefix of an etcd cluster, so that several nodes share one store.
//
// A bucket is a key prefix P. Under it:
//
//	P "a"          the bucket's guard, rewritten by every transaction that
//	               writes to the bucket
//	P "c"          its sequence (NextSequence)
//	P "k" key      an entry: "v" + value, or "b" for a nested bucket
//	P "z" name \0  the prefix of the nested bucket name
//
// A transaction reads at one etcd revision (its first read's), so what it
// sees is one snapshot. It buffers its writes, and commits them in one etcd
// transaction that holds only if nothing it read has changed since: each
// key it read by itself has the same mod revision, and each bucket it
// listed (a cursor or ForEach) has the same guard, which is how a write
// anywhere in a listed bucket is noticed. A commit that does not hold runs
// the body again on a fresh snapshot. So the transactions of every node
// are serialisable, as bbolt's are on one node, and a check and the write
// it guards (a reservation against the unreserved minimum) are one etcd
// transaction.
//
// Buckets are never deleted once created (nothing in the store does), so
// a bucket seen to exist is remembered by the engine and not read again.

// etcdEngine is the engine on an etcd cluster.
type etcdEngine struct {
	cli  *clientv3.Client
	root string
	// timeout bounds each etcd request.
	timeout time.Duration
	// known holds the prefixes of buckets seen to exist.
	known sync.Map
	// ops counts the etcd requests made (reads, commits).
	ops atomic.Int64
}

// errReadOnly is a write in a View.
var errReadOnly = errors.New("store: write in a read-only transaction")

// maxAttempts bounds the runs of one transaction body under contention.
const maxAttempts = 64

func (e *etcdEngine) view(fn func(kvTx) error) error {
	t := e.begin(false)
	err := fn(t)
	if t.err != nil {
		return t.err
	}
	return err
}

func (e *etcdEngine) update(fn func(kvTx) error) error {
	for attempt := 0; ; attempt++ {
		t := e.begin(true)
		err := fn(t)
		if t.err != nil {
			return t.err
		}
		if err != nil {
			return err
		}
		ok, err := t.commit()
		if err != nil {
			return err
		}
		if ok {
			for _, f := range t.onCommit {
				f()
			}
			return nil
		}
		if attempt+1 >= maxAttempts {
			return fmt.Errorf("store: transaction conflicted %d times", maxAttempts)
		}
		// Another node's commit came first: back off a little, with
		// jitter so that two retrying writers part.
		time.Sleep(time.Duration(rand.IntN(1+attempt)) * time.Millisecond)
	}
}

func (e *etcdEngine) batch(fn func(kvTx) error) error { return e.update(fn) }

func (e *etcdEngine) close() error { return nil }

func (e *etcdEngine) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), e.timeout)
}

func (e *etcdEngine) begin(writable bool) *etcdTx {
	t := &etcdTx{e: e, writable: writable, buckets: map[string]*etcdBucket{}, missing: map[string]bool{}}
	t.root = t.bucketAt(e.root)
	return t
}

// etcdTx is one transaction on the etcd engine.
type etcdTx struct {
	e        *etcdEngine
	writable bool
	// rev is the snapshot's revision, 0 until the first read.
	rev int64
	// err is the first etcd error; the transaction fails with it.
	err     error
	root    *etcdBucket
	buckets map[string]*etcdBucket
	// missing holds the buckets this transaction found not to exist.
	missing  map[string]bool
	order    []*etcdBucket
	onCommit []func()
	// extra are compares and writes of keys outside the buckets (code).
	extraCmps []clientv3.Cmp
	extraOps  []clientv3.Op
}

func (t *etcdTx) bucketAt(prefix string) *etcdBucket {
	if b := t.buckets[prefix]; b != nil {
		return b
	}
	b := &etcdBucket{tx: t, prefix: prefix, data: map[string][]byte{}, seen: map[string]int64{}, writes: map[string][]byte{}}
	t.buckets[prefix] = b
	t.order = append(t.order, b)
	return b
}

// get reads at the snapshot's revision, fixing it on the first read.
func (t *etcdTx) get(key string, opts ...clientv3.OpOption) *clientv3.GetResponse {
	if t.err != nil {
		return nil
	}
	if t.rev != 0 {
		opts = append(opts, clientv3.WithRev(t.rev))
	}
	ctx, cancel := t.e.ctx()
	defer cancel()
	t.e.ops.Add(1)
	r, err := t.e.cli.Get(ctx, key, opts...)
	if err != nil {
		t.err = fmt.Errorf("store: etcd: %w", err)
		return nil
	}
	if t.rev == 0 {
		t.rev = r.Header.Revision
	}
	return r
}

func (t *etcdTx) Bucket(name []byte) kvBucket { return t.root.Bucket(name) }
func (t *etcdTx) CreateBucketIfNotExists(name []byte) (kvBucket, error) {
	return t.root.CreateBucketIfNotExists(name)
}
func (t *etcdTx) OnCommit(fn func()) { t.onCommit = append(t.onCommit, fn) }

// commit writes what the transaction changed if nothing it read changed
// since; ok false means another commit came first.
func (t *etcdTx) commit() (ok bool, err error) {
	cmps := append([]clientv3.Cmp(nil), t.extraCmps...)
	ops := append([]clientv3.Op(nil), t.extraOps...)
	for _, b := range t.order {
		if b.listed {
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(b.prefix+"a"), "=", b.guardRev))
		}
		for k, rev := range b.seen {
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(b.prefix+"k"+k), "=", rev))
		}
		if b.seqRead {
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(b.prefix+"c"), "=", b.seqRev))
		}
		keys := make([]string, 0, len(b.writes))
		for k := range b.writes {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if v := b.writes[k]; v == nil {
				ops = append(ops, clientv3.OpDelete(b.prefix+"k"+k))
			} else {
				ops = append(ops, clientv3.OpPut(b.prefix+"k"+k, string(v)))
			}
		}
		if len(keys) > 0 || b.created {
			ops = append(ops, clientv3.OpPut(b.prefix+"a", ""))
		}
		if b.seqDirty {
			ops = append(ops, clientv3.OpPut(b.prefix+"c", string(binary.BigEndian.AppendUint64(nil, b.seq))))
		}
	}
	if len(ops) == 0 {
		return true, nil
	}
	if !t.writable {
		return false, errReadOnly
	}
	ctx, cancel := t.e.ctx()
	defer cancel()
	t.e.ops.Add(1)
	r, err := t.e.cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
	if err != nil {
		return false, fmt.Errorf("store: etcd commit: %w", err)
	}
	if r.Succeeded {
		for _, b := range t.order {
			if b.created {
				t.e.known.Store(b.prefix, true)
			}
		}
	}
	return r.Succeeded, nil
}

// etcdBucket is one bucket as a transaction sees it: what it read, merged
// with what it wrote.
type etcdBucket struct {
	tx     *etcdTx
	prefix string
	// data holds the entries read or written ("v"+value or "b"), nil for
	// an entry known to be absent.
	data map[string][]byte
	// seen holds the mod revision of each entry read by itself (0:
	// absent), checked at commit.
	seen map[string]int64
	// listed is set once the whole bucket has been read (guardRev is its
	// guard's mod revision then); sorted then holds every present key.
	listed   bool
	guardRev int64
	sorted   []string
	writes   map[string][]byte
	created  bool
	seqRead  bool
	seq      uint64
	seqRev   int64
	seqDirty bool
}

// entry returns the raw entry of key, reading it if needed.
func (b *etcdBucket) entry(k string) []byte {
	if v, ok := b.data[k]; ok {
		return v
	}
	if b.listed {
		return nil
	}
	r := b.tx.get(b.prefix + "k" + k)
	if r == nil {
		return nil
	}
	var v []byte
	var rev int64
	if len(r.Kvs) == 1 {
		v, rev = r.Kvs[0].Value, r.Kvs[0].ModRevision
	}
	b.data[k] = v
	b.seen[k] = rev
	return v
}

// list reads the whole bucket, once per transaction.
func (b *etcdBucket) list() {
	if b.listed {
		return
	}
	r := b.tx.get(b.prefix+"a", clientv3.WithRange(b.prefix+"l"))
	if r == nil {
		return
	}
	b.listed = true
	present := map[string]bool{}
	for k, v := range b.data {
		if v != nil {
			present[k] = true
		}
	}
	for _, kv := range r.Kvs {
		key := string(kv.Key[len(b.prefix):])
		switch {
		case key == "a":
			b.guardRev = kv.ModRevision
		case key == "c":
			if !b.seqRead {
				b.seqRead, b.seqRev = true, kv.ModRevision
				b.seq = binary.BigEndian.Uint64(kv.Value)
			}
		case key[0] == 'k':
			k := key[1:]
			if _, ok := b.data[k]; !ok {
				b.data[k] = kv.Value
				present[k] = true
			}
		}
	}
	b.sorted = b.sorted[:0]
	for k := range present {
		b.sorted = append(b.sorted, k)
	}
	sort.Strings(b.sorted)
}

func (b *etcdBucket) set(k string, v []byte) error {
	if !b.tx.writable {
		return errReadOnly
	}
	b.data[k] = v
	b.writes[k] = v
	if b.listed {
		i := sort.SearchStrings(b.sorted, k)
		has := i < len(b.sorted) && b.sorted[i] == k
		switch {
		case v != nil && !has:
			b.sorted = append(b.sorted, "")
			copy(b.sorted[i+1:], b.sorted[i:])
			b.sorted[i] = k
		case v == nil && has:
			b.sorted = append(b.sorted[:i], b.sorted[i+1:]...)
		}
	}
	return nil
}

func value(e []byte) []byte {
	if len(e) == 0 || e[0] != 'v' {
		return nil
	}
	return e[1:]
}

func (b *etcdBucket) Get(key []byte) []byte { return value(b.entry(string(key))) }

func (b *etcdBucket) Put(key, v []byte) error {
	if len(key) == 0 {
		return errors.New("store: empty key")
	}
	// A write is blind, as it is in bbolt: it reads nothing, so it adds
	// nothing to check at commit. Only an entry already seen is checked
	// for being a bucket.
	if e := b.data[string(key)]; len(e) > 0 && e[0] == 'b' {
		return errors.New("store: a key names a bucket")
	}
	return b.set(string(key), append([]byte{'v'}, v...))
}

func (b *etcdBucket) Delete(key []byte) error {
	if e := b.data[string(key)]; len(e) > 0 && e[0] == 'b' {
		return errors.New("store: a key names a bucket")
	}
	return b.set(string(key), nil)
}

func (b *etcdBucket) ForEach(fn func(k, v []byte) error) error {
	b.list()
	for _, k := range append([]string(nil), b.sorted...) {
		if err := fn([]byte(k), value(b.data[k])); err != nil {
			return err
		}
	}
	return nil
}

func (b *etcdBucket) NextSequence() (uint64, error) {
	if !b.tx.writable {
		return 0, errReadOnly
	}
	if !b.seqRead {
		r := b.tx.get(b.prefix + "c")
		if r == nil {
			return 0, b.tx.err
		}
		b.seqRead = true
		if len(r.Kvs) == 1 {
			b.seq, b.seqRev = binary.BigEndian.Uint64(r.Kvs[0].Value), r.Kvs[0].ModRevision
		}
	}
	b.seq++
	b.seqDirty = true
	return b.seq, nil
}

func (b *etcdBucket) childPrefix(name []byte) string { return b.prefix + "z" + string(name) + "\x00" }

func (b *etcdBucket) Bucket(name []byte) kvBucket {
	p := b.childPrefix(name)
	if c := b.tx.buckets[p]; c != nil && (c.created || c.exists()) {
		return c
	}
	// Once missing, missing for the whole transaction, whatever other
	// transactions of this engine commit meanwhile: its view is one
	// snapshot.
	if b.tx.missing[p] {
		return nil
	}
	if _, ok := b.tx.e.known.Load(p); ok {
		return b.tx.bucketAt(p)
	}
	e := b.entry(string(name))
	if len(e) == 0 || e[0] != 'b' {
		b.tx.missing[p] = true
		return nil
	}
	// A bucket is never deleted, so its existence needs no check at
	// commit.
	delete(b.seen, string(name))
	b.tx.e.known.Store(p, true)
	return b.tx.bucketAt(p)
}

// exists reports whether a bucket object of this transaction is one that
// exists (it may have been made for a lookup that found none).
func (b *etcdBucket) exists() bool {
	_, ok := b.tx.e.known.Load(b.prefix)
	return ok
}

func (b *etcdBucket) CreateBucket(name []byte) (kvBucket, error) {
	if b.Bucket(name) != nil {
		return nil, errors.New("store: bucket already exists")
	}
	return b.create(name)
}

// create makes the nested bucket name, which this transaction has found
// missing. (Looking again could find it: another transaction of this
// engine may have committed it meanwhile; then this one conflicts at
// commit, on the entry it read as missing, and runs again.)
func (b *etcdBucket) create(name []byte) (kvBucket, error) {
	if b.tx.err != nil {
		return nil, b.tx.err
	}
	if err := b.set(string(name), []byte{'b'}); err != nil {
		return nil, err
	}
	p := b.childPrefix(name)
	delete(b.tx.missing, p)
	c := b.tx.bucketAt(p)
	c.created = true
	return c, nil
}

func (b *etcdBucket) CreateBucketIfNotExists(name []byte) (kvBucket, error) {
	if c := b.Bucket(name); c != nil {
		return c, nil
	}
	return b.create(name)
}

func (b *etcdBucket) Cursor() kvCursor { b.list(); return &etcdCursor{b: b} }

// etcdCursor walks a bucket's keys as they are when it moves, so writes
// through the same transaction between moves are seen.
type etcdCursor struct {
	b   *etcdBucket
	key string
	at  bool // positioned on key
}

func (c *etcdCursor) move(i int) (k, v []byte) {
	s := c.b.sorted
	if i < 0 || i >= len(s) {
		c.at = false
		return nil, nil
	}
	c.key, c.at = s[i], true
	return []byte(s[i]), value(c.b.data[s[i]])
}

func (c *etcdCursor) First() (k, v []byte) { return c.move(0) }
func (c *etcdCursor) Last() (k, v []byte)  { return c.move(len(c.b.sorted) - 1) }
func (c *etcdCursor) Seek(seek []byte) (k, v []byte) {
	return c.move(sort.SearchStrings(c.b.sorted, string(seek)))
}
func (c *etcdCursor) Next() (k, v []byte) {
	if !c.at {
		return nil, nil
	}
	i := sort.SearchStrings(c.b.sorted, c.key)
	if i < len(c.b.sorted) && c.b.sorted[i] == c.key {
		i++
	}
	return c.move(i)
}
func (c *etcdCursor) Prev() (k, v []byte) {
	if !c.at {
		return nil, nil
	}
	return c.move(sort.SearchStrings(c.b.sorted, c.key) - 1)
}
