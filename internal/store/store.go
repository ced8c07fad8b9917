// Package store is lambdad's embedded database: functions, versions,
// aliases and the account-wide running sums, kept in one bbolt file under the
// data directory, plus the content-addressed code archives beside it.
//
// Every mutation goes through a Tx, and the running sums (function count,
// total code size, reserved and provisioned concurrency) are updated by the
// same Tx methods that change what they sum, so they are always in step with
// the records and no check ever needs to scan all functions. A committed
// transaction is on disk (bbolt fsyncs on commit) before the caller answers.
package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/lambdad/lambdad/internal/function"
	bolt "go.etcd.io/bbolt"
)

// ErrNotFound is returned when a record does not exist.
var ErrNotFound = errors.New("store: not found")

var (
	bucketFunctions = []byte("functions")
	bucketVersions  = []byte("versions") // name \x00 versionKey → function.Config
	bucketAliases   = []byte("aliases")  // name \x00 alias → function.Alias
	bucketCodeRefs  = []byte("coderefs") // CodeSha256 → uint64 reference count
	bucketMeta      = []byte("meta")
	keySums         = []byte("sums")
)

// Sums are the account-wide totals the concurrency and account-settings
// checks need, kept in step with the records.
type Sums struct {
	FunctionCount int64 `json:"functionCount"`
	// TotalCodeSize counts the code of $LATEST and of every published
	// version, as AWS's AccountUsage does.
	TotalCodeSize int64 `json:"totalCodeSize"`
	// Reserved is Σ reserved concurrency over all functions.
	Reserved int64 `json:"reserved"`
	// ProvisionedUnreserved is Σ provisioned concurrency of functions
	// without a reservation (it comes out of the unreserved pool).
	ProvisionedUnreserved int64 `json:"provisionedUnreserved"`
}

// DB is the open database.
type DB struct {
	bolt *bolt.DB
	code codeFiles
	feed feed
}

// Open opens (creating if needed) the database under dir.
func Open(dir string) (*DB, error) {
	if err := os.MkdirAll(filepath.Join(dir, "code"), 0o755); err != nil {
		return nil, err
	}
	b, err := bolt.Open(filepath.Join(dir, "lambdad.db"), 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	d := &DB{bolt: b, code: codeFiles{dir: filepath.Join(dir, "code"), pins: map[string]int{}}}
	err = b.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketFunctions, bucketVersions, bucketAliases, bucketCodeRefs, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		err = d.removeOrphanCode()
	}
	if err == nil {
		var rev uint64
		if rev, err = d.Revision(); err == nil {
			d.feed.init(rev)
		}
	}
	if err != nil {
		b.Close()
		return nil, err
	}
	return d, nil
}

// Close closes the database.
func (d *DB) Close() error { return d.bolt.Close() }

// View runs fn in a read-only transaction.
func (d *DB) View(fn func(*Tx) error) error {
	return d.bolt.View(func(tx *bolt.Tx) error { return fn(&Tx{tx: tx, db: d}) })
}

// Update runs fn in a read-write transaction; when it returns nil the
// changes are committed and synced to disk.
func (d *DB) Update(fn func(*Tx) error) error {
	return d.bolt.Update(func(tx *bolt.Tx) error { return fn(&Tx{tx: tx, db: d}) })
}

// Batch is Update for many concurrent callers: their functions share one
// commit (and one fsync). fn may run more than once, so it must only
// depend on what it reads in the transaction.
func (d *DB) Batch(fn func(*Tx) error) error {
	return d.bolt.Batch(func(tx *bolt.Tx) error { return fn(&Tx{tx: tx, db: d}) })
}

// Tx is one transaction.
type Tx struct {
	tx *bolt.Tx
	db *DB
	// batch is what this transaction changed, published when it commits.
	batch *Batch
}

func get[T any](b *bolt.Bucket, key []byte) (*T, error) {
	v := b.Get(key)
	if v == nil {
		return nil, ErrNotFound
	}
	t := new(T)
	if err := json.Unmarshal(v, t); err != nil {
		return nil, fmt.Errorf("store: decode %q: %w", key, err)
	}
	return t, nil
}

// scan decodes the records of b whose keys start with prefix, in key
// order, beginning after the key after (nil: at the first), at most limit
// of them (limit < 0: all). Every list of the store is this one loop. A
// record that cannot be decoded is an error naming its key.
func scan[T any](b *bolt.Bucket, prefix, after []byte, limit int) ([]*T, error) {
	if b == nil {
		return nil, nil
	}
	var out []*T
	c := b.Cursor()
	var k, v []byte
	if after != nil {
		if k, v = c.Seek(after); k != nil && bytes.Equal(k, after) {
			k, v = c.Next()
		}
	} else {
		k, v = c.Seek(prefix)
	}
	for ; k != nil && bytes.HasPrefix(k, prefix) && (limit < 0 || len(out) < limit); k, v = c.Next() {
		r := new(T)
		if err := json.Unmarshal(v, r); err != nil {
			return nil, fmt.Errorf("store: decode %q: %w", k, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// clone copies a record for the feed, so that a caller changing its own
// copy after the write cannot change what subscribers see.
func clone[T any](v *T) *T {
	c := *v
	return &c
}

func put(b *bolt.Bucket, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(key, data)
}

// Sums returns the running sums. Sums that cannot be read are an error,
// never zero: every concurrency check would pass on zero sums.
func (t *Tx) Sums() (Sums, error) {
	s, err := get[Sums](t.tx.Bucket(bucketMeta), keySums)
	if errors.Is(err, ErrNotFound) {
		return Sums{}, nil
	}
	if err != nil {
		return Sums{}, err
	}
	return *s, nil
}

func (t *Tx) addSums(d Sums) error {
	s, err := t.Sums()
	if err != nil {
		return err
	}
	s.FunctionCount += d.FunctionCount
	s.TotalCodeSize += d.TotalCodeSize
	s.Reserved += d.Reserved
	s.ProvisionedUnreserved += d.ProvisionedUnreserved
	return put(t.tx.Bucket(bucketMeta), keySums, s)
}

// Function returns a function's record, or ErrNotFound.
func (t *Tx) Function(name string) (*function.Function, error) {
	return get[function.Function](t.tx.Bucket(bucketFunctions), []byte(name))
}

// contribution is what one function record adds to the sums.
func contribution(f *function.Function) Sums {
	if f == nil {
		return Sums{}
	}
	s := Sums{FunctionCount: 1}
	if f.Reserved != nil {
		s.Reserved = int64(*f.Reserved)
	} else {
		s.ProvisionedUnreserved = int64(f.Provisioned)
	}
	return s
}

// Claimed is what the functions take out of the account limit: Σ R over
// the reserved ones and Σ P over the others (see package account).
func (s Sums) Claimed() int64 { return s.Reserved + s.ProvisionedUnreserved }

func (s Sums) minus(o Sums) Sums {
	return Sums{s.FunctionCount - o.FunctionCount, s.TotalCodeSize - o.TotalCodeSize, s.Reserved - o.Reserved, s.ProvisionedUnreserved - o.ProvisionedUnreserved}
}

// PutFunction creates or replaces a function's record.
func (t *Tx) PutFunction(f *function.Function) error {
	old, err := t.Function(f.Name)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	if err := put(t.tx.Bucket(bucketFunctions), []byte(f.Name), f); err != nil {
		return err
	}
	if err := t.record(Change{Kind: KindFunction, Function: f.Name, Func: clone(f), PrevFunc: old}); err != nil {
		return err
	}
	return t.addSums(contribution(f).minus(contribution(old)))
}

// DeleteFunction removes a function with all its versions and aliases and
// drops its code references.
func (t *Tx) DeleteFunction(name string) error {
	old, err := t.Function(name)
	if err != nil {
		return err
	}
	prefix := append([]byte(name), 0)
	gone := contribution(old)
	for _, b := range []*bolt.Bucket{t.tx.Bucket(bucketVersions), t.tx.Bucket(bucketAliases), t.tx.Bucket(bucketEventConfigs), t.tx.Bucket(bucketProvisioned)} {
		if b == nil {
			continue
		}
		var keys [][]byte
		c := b.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			keys = append(keys, bytes.Clone(k))
			if b == t.tx.Bucket(bucketVersions) {
				var cfg function.Config
				if err := json.Unmarshal(v, &cfg); err != nil {
					return err
				}
				if err := t.dropCodeRef(&cfg); err != nil {
					return err
				}
				gone.TotalCodeSize += cfg.CodeSize
			}
		}
		for _, k := range keys {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
	}
	if err := t.tx.Bucket(bucketFunctions).Delete([]byte(name)); err != nil {
		return err
	}
	if err := t.record(Change{Kind: KindFunction, Function: name}); err != nil {
		return err
	}
	return t.addSums(Sums{}.minus(gone))
}

// Functions lists function records in name order, starting after the name
// after ("" for the first page), at most limit of them.
func (t *Tx) Functions(after string, limit int) ([]*function.Function, error) {
	var from []byte
	if after != "" {
		from = []byte(after)
	}
	return scan[function.Function](t.tx.Bucket(bucketFunctions), nil, from, limit)
}

// ScanFunctions calls fn for every function record in name order.
func (t *Tx) ScanFunctions(fn func(*function.Function) error) error {
	return t.tx.Bucket(bucketFunctions).ForEach(func(_, v []byte) error {
		f := new(function.Function)
		if err := json.Unmarshal(v, f); err != nil {
			return fmt.Errorf("store: decode function: %w", err)
		}
		return fn(f)
	})
}

// versionKey orders $LATEST first, then versions numerically.
func versionKey(name, version string) []byte {
	k := append([]byte(name), 0)
	if version == function.Latest {
		return append(k, '0')
	}
	n, _ := strconv.ParseUint(version, 10, 64)
	k = append(k, '1')
	return binary.BigEndian.AppendUint64(k, n)
}

// Version returns one version's configuration ("$LATEST" or a number).
func (t *Tx) Version(name, version string) (*function.Config, error) {
	return get[function.Config](t.tx.Bucket(bucketVersions), versionKey(name, version))
}

// PutVersion stores a version's configuration, keeping the code references
// and the total code size in step.
func (t *Tx) PutVersion(c *function.Config) error {
	key := versionKey(c.Name, c.Version)
	old, err := get[function.Config](t.tx.Bucket(bucketVersions), key)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	if old != nil {
		if err := t.dropCodeRef(old); err != nil {
			return err
		}
	}
	if err := t.addCodeRef(c.CodeSha256); err != nil {
		return err
	}
	if err := put(t.tx.Bucket(bucketVersions), key, c); err != nil {
		return err
	}
	if err := t.record(Change{Kind: KindVersion, Function: c.Name, Key: c.Version, Version: clone(c)}); err != nil {
		return err
	}
	d := Sums{TotalCodeSize: c.CodeSize}
	if old != nil {
		d.TotalCodeSize -= old.CodeSize
	}
	return t.addSums(d)
}

// DeleteVersion removes one published version.
func (t *Tx) DeleteVersion(name, version string) error {
	key := versionKey(name, version)
	old, err := get[function.Config](t.tx.Bucket(bucketVersions), key)
	if err != nil {
		return err
	}
	if err := t.dropCodeRef(old); err != nil {
		return err
	}
	if err := t.tx.Bucket(bucketVersions).Delete(key); err != nil {
		return err
	}
	if err := t.record(Change{Kind: KindVersion, Function: name, Key: version}); err != nil {
		return err
	}
	return t.addSums(Sums{TotalCodeSize: -old.CodeSize})
}

// Versions lists a function's versions in order ($LATEST first), starting
// after the version after ("" for the first page), at most limit of them.
func (t *Tx) Versions(name, after string, limit int) ([]*function.Config, error) {
	var from []byte
	if after != "" {
		from = versionKey(name, after)
	}
	return scan[function.Config](t.tx.Bucket(bucketVersions), append([]byte(name), 0), from, limit)
}

func aliasKey(name, alias string) []byte { return append(append([]byte(name), 0), alias...) }

// Alias returns one alias of a function.
func (t *Tx) Alias(name, alias string) (*function.Alias, error) {
	return get[function.Alias](t.tx.Bucket(bucketAliases), aliasKey(name, alias))
}

// PutAlias creates or replaces an alias of function name.
func (t *Tx) PutAlias(name string, a *function.Alias) error {
	if err := put(t.tx.Bucket(bucketAliases), aliasKey(name, a.Name), a); err != nil {
		return err
	}
	return t.record(Change{Kind: KindAlias, Function: name, Key: a.Name, Alias: clone(a)})
}

// DeleteAlias removes an alias.
func (t *Tx) DeleteAlias(name, alias string) error {
	if err := t.tx.Bucket(bucketAliases).Delete(aliasKey(name, alias)); err != nil {
		return err
	}
	return t.record(Change{Kind: KindAlias, Function: name, Key: alias})
}

// Aliases lists a function's aliases in name order after the alias after,
// at most limit of them.
func (t *Tx) Aliases(name, after string, limit int) ([]*function.Alias, error) {
	var from []byte
	if after != "" {
		from = aliasKey(name, after)
	}
	return scan[function.Alias](t.tx.Bucket(bucketAliases), append([]byte(name), 0), from, limit)
}

var bucketAudit = []byte("audit")

// AuditRecord is one change to a concurrency setting: who changed what, from
// which value to which (nil for "none").
type AuditRecord struct {
	Seq         uint64    `json:"seq"`
	Time        time.Time `json:"time"`
	RequestID   string    `json:"requestId"`
	AccessKeyID string    `json:"accessKeyId,omitempty"`
	Operation   string    `json:"operation"`
	Function    string    `json:"function"`
	Qualifier   string    `json:"qualifier,omitempty"`
	Old         *int      `json:"old"`
	New         *int      `json:"new"`
}

// AuditKeep is how many audit records the store keeps; older ones are
// dropped as new ones arrive.
const AuditKeep = 10000

// AppendAudit adds a record to the audit trail in this transaction, so the
// record is durable exactly when the change it describes is.
func (t *Tx) AppendAudit(r *AuditRecord) error {
	b, err := t.tx.CreateBucketIfNotExists(bucketAudit)
	if err != nil {
		return err
	}
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	r.Seq = seq
	if err := put(b, binary.BigEndian.AppendUint64(nil, seq), r); err != nil {
		return err
	}
	if seq > AuditKeep {
		return b.Delete(binary.BigEndian.AppendUint64(nil, seq-AuditKeep))
	}
	return nil
}

// Audit returns up to limit audit records, newest first, older than
// sequence before (0 for the newest).
func (t *Tx) Audit(before uint64, limit int) ([]*AuditRecord, error) {
	b := t.tx.Bucket(bucketAudit)
	if b == nil {
		return nil, nil
	}
	var out []*AuditRecord
	c := b.Cursor()
	var k, v []byte
	if before == 0 {
		k, v = c.Last()
	} else {
		c.Seek(binary.BigEndian.AppendUint64(nil, before))
		k, v = c.Prev()
	}
	for ; k != nil && len(out) < limit; k, v = c.Prev() {
		r := new(AuditRecord)
		if err := json.Unmarshal(v, r); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// OnCommit runs fn after the transaction has committed (and only then).
func (t *Tx) OnCommit(fn func()) { t.tx.OnCommit(fn) }
