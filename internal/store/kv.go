package store

import (
	bolt "go.etcd.io/bbolt"
)

// The records of the store are kept in an ordered key-value engine of
// nested buckets, bbolt's model: the embedded database is bbolt itself,
// and a store shared by several nodes is the same model kept in etcd
// (kvetcd.go). Everything above this file reads and writes through these
// interfaces, so both engines hold the same records under the same rules.

// kvTx is one transaction of the engine.
type kvTx interface {
	// Bucket returns a top-level bucket, nil when it does not exist.
	Bucket(name []byte) kvBucket
	CreateBucketIfNotExists(name []byte) (kvBucket, error)
	// OnCommit runs fn once the transaction has committed, and only then.
	OnCommit(fn func())
}

// kvBucket is one bucket: keys in byte order, each holding a value or a
// nested bucket.
type kvBucket interface {
	// Get returns the value of key, nil when there is none or key names
	// a nested bucket. It is valid for the life of the transaction.
	Get(key []byte) []byte
	Put(key, value []byte) error
	Delete(key []byte) error
	Cursor() kvCursor
	// ForEach calls fn for every key in order; v is nil for a nested
	// bucket.
	ForEach(fn func(k, v []byte) error) error
	// NextSequence returns the bucket's next sequence number, from 1.
	NextSequence() (uint64, error)
	Bucket(name []byte) kvBucket
	CreateBucket(name []byte) (kvBucket, error)
	CreateBucketIfNotExists(name []byte) (kvBucket, error)
}

// kvCursor walks a bucket in key order; each move returns a nil key past
// either end.
type kvCursor interface {
	First() (k, v []byte)
	Last() (k, v []byte)
	Next() (k, v []byte)
	Prev() (k, v []byte)
	Seek(seek []byte) (k, v []byte)
}

// boltTx and boltBucket are bbolt's transaction and bucket as the engine:
// bbolt's nil bucket becomes a nil interface, so that "does not exist"
// reads the same through both.
type boltTx struct{ tx *bolt.Tx }

func (t boltTx) Bucket(name []byte) kvBucket { return boltWrap(t.tx.Bucket(name)) }
func (t boltTx) CreateBucketIfNotExists(name []byte) (kvBucket, error) {
	b, err := t.tx.CreateBucketIfNotExists(name)
	return boltWrap(b), err
}
func (t boltTx) OnCommit(fn func()) { t.tx.OnCommit(fn) }

type boltBucket struct{ b *bolt.Bucket }

func boltWrap(b *bolt.Bucket) kvBucket {
	if b == nil {
		return nil
	}
	return boltBucket{b}
}

func (b boltBucket) Get(key []byte) []byte                    { return b.b.Get(key) }
func (b boltBucket) Put(key, value []byte) error              { return b.b.Put(key, value) }
func (b boltBucket) Delete(key []byte) error                  { return b.b.Delete(key) }
func (b boltBucket) Cursor() kvCursor                         { return b.b.Cursor() }
func (b boltBucket) ForEach(fn func(k, v []byte) error) error { return b.b.ForEach(fn) }
func (b boltBucket) NextSequence() (uint64, error)            { return b.b.NextSequence() }
func (b boltBucket) Bucket(name []byte) kvBucket              { return boltWrap(b.b.Bucket(name)) }
func (b boltBucket) CreateBucket(name []byte) (kvBucket, error) {
	n, err := b.b.CreateBucket(name)
	return boltWrap(n), err
}
func (b boltBucket) CreateBucketIfNotExists(name []byte) (kvBucket, error) {
	n, err := b.b.CreateBucketIfNotExists(name)
	return boltWrap(n), err
}

// engine is the database under the store.
type engine interface {
	view(fn func(kvTx) error) error
	update(fn func(kvTx) error) error
	// batch is update for many concurrent callers, which may share one
	// commit; fn may run more than once.
	batch(fn func(kvTx) error) error
	close() error
}

type boltEngine struct{ db *bolt.DB }

func (e boltEngine) view(fn func(kvTx) error) error {
	return e.db.View(func(tx *bolt.Tx) error { return fn(boltTx{tx}) })
}
func (e boltEngine) update(fn func(kvTx) error) error {
	return e.db.Update(func(tx *bolt.Tx) error { return fn(boltTx{tx}) })
}
func (e boltEngine) batch(fn func(kvTx) error) error {
	return e.db.Batch(func(tx *bolt.Tx) error { return fn(boltTx{tx}) })
}
func (e boltEngine) close() error { return e.db.Close() }
