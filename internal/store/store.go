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

// The layout: one bucket per account under "accounts", holding that
// account's records and running sums; beside it what the accounts share
// (code references, the event queue, the dead letters, the revision).
var (
	bucketAccounts  = []byte("accounts") // account → its buckets and its sums
	bucketFunctions = []byte("functions")
	bucketVersions  = []byte("versions") // name \x00 versionKey → function.Config
	bucketAliases   = []byte("aliases")  // name \x00 alias → function.Alias
	bucketCodeRefs  = []byte("coderefs") // CodeSha256 → uint64 reference count
	bucketMeta      = []byte("meta")
	keySums         = []byte("sums")   // in an account's bucket
	keyLayout       = []byte("layout") // in meta: layoutAccounts once the records are per account
)

// layoutAccounts marks a database whose records are kept per account.
// Before it, one account's records sat in top-level buckets; Open moves
// them into the account named by Options.LegacyAccount.
const layoutAccounts = "accounts"

// accountBuckets are the buckets every account has, in the order Open
// moves them from the old layout.
var accountBuckets = [][]byte{bucketFunctions, bucketVersions, bucketAliases, bucketEventConfigs, bucketProvisioned, bucketAudit,
	bucketCodeSigning, bucketMappings, bucketLayers, bucketLayerVersions, bucketURLs}

// Sums are one account's totals the concurrency and account-settings
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
	kv   engine
	code codeFiles
	feed feed
	// shared is set when the store is kept in etcd (OpenEtcd).
	shared *shared
}

// Options configure Open.
type Options struct {
	// LegacyAccount is the account that owns the records of a database
	// written before records were kept per account (the server's account
	// id then). Open moves them there once, in one transaction.
	LegacyAccount string
}

// Open opens (creating if needed) the database under dir.
func Open(dir string, o Options) (*DB, error) {
	if err := os.MkdirAll(filepath.Join(dir, "code"), 0o755); err != nil {
		return nil, err
	}
	b, err := bolt.Open(filepath.Join(dir, "lambdad.db"), 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	d := &DB{kv: boltEngine{b}, code: codeFiles{dir: filepath.Join(dir, "code"), pins: map[string]int{}}}
	err = b.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketAccounts, bucketCodeRefs, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return migrate(tx, o.LegacyAccount)
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

// migrate moves the records of the single-account layout into the bucket
// of account, with the running sums, and marks the database as per
// account. Events and dead letters stay where they are and are given the
// account. It does nothing to a database already in the new layout.
func migrate(tx *bolt.Tx, account string) error {
	meta := tx.Bucket(bucketMeta)
	if string(meta.Get(keyLayout)) == layoutAccounts {
		return nil
	}
	legacy := meta.Get(keySums) != nil
	for _, name := range accountBuckets {
		legacy = legacy || tx.Bucket(name) != nil
	}
	if legacy {
		if account == "" {
			return errors.New("store: the database predates per-account records and no account was given to move them to")
		}
		ab, err := tx.Bucket(bucketAccounts).CreateBucketIfNotExists([]byte(account))
		if err != nil {
			return err
		}
		for _, name := range accountBuckets {
			old := tx.Bucket(name)
			if old == nil {
				continue
			}
			nb, err := ab.CreateBucketIfNotExists(name)
			if err != nil {
				return err
			}
			if err := old.ForEach(func(k, v []byte) error { return nb.Put(bytes.Clone(k), bytes.Clone(v)) }); err != nil {
				return err
			}
			if err := nb.SetSequence(old.Sequence()); err != nil {
				return err
			}
			if err := tx.DeleteBucket(name); err != nil {
				return err
			}
		}
		if v := meta.Get(keySums); v != nil {
			if err := ab.Put(keySums, bytes.Clone(v)); err != nil {
				return err
			}
			if err := meta.Delete(keySums); err != nil {
				return err
			}
		}
		if err := setEventAccounts(tx, account); err != nil {
			return err
		}
	}
	return meta.Put(keyLayout, []byte(layoutAccounts))
}

// Close closes the database.
func (d *DB) Close() error {
	d.closeShared()
	return d.kv.close()
}

// View runs fn in a read-only transaction.
func (d *DB) View(fn func(*Tx) error) error {
	return d.kv.view(func(tx kvTx) error { return fn(d.tx(tx)) })
}

// Update runs fn in a read-write transaction; when it returns nil the
// changes are committed and synced to disk.
func (d *DB) Update(fn func(*Tx) error) error { return d.write(d.kv.update, fn) }

// Batch is Update for many concurrent callers: their functions share one
// commit (and one fsync). fn may run more than once, so it must only
// depend on what it reads in the transaction.
func (d *DB) Batch(fn func(*Tx) error) error { return d.write(d.kv.batch, fn) }

// write runs fn in a transaction of run. On a shared store the batch of a
// transaction that changed records goes to the feed in the same commit,
// and write returns once this node has delivered it.
func (d *DB) write(run func(func(kvTx) error) error, fn func(*Tx) error) error {
	var rev uint64
	err := run(func(tx kvTx) error {
		rev = 0
		t := d.tx(tx)
		if err := fn(t); err != nil {
			return err
		}
		if t.batch != nil && d.shared != nil {
			rev = t.batch.Rev
			return t.writeFeed()
		}
		return nil
	})
	if err == nil && rev != 0 {
		d.feed.wait(rev, d.shared.failed)
	}
	return err
}

func (d *DB) tx(tx kvTx) *Tx { return &Tx{txState: &txState{tx: tx, db: d}} }

// Tx is one transaction. The records of functions and what belongs to them
// are an account's: a Tx reads and writes them in the account In chose,
// and what all accounts share (code, events, dead letters) directly.
type Tx struct {
	*txState
	// account is the account In chose; "" until then.
	account string
}

// txState is what the views of one transaction share.
type txState struct {
	tx kvTx
	db *DB
	// batch is what this transaction changed, published when it commits.
	batch *Batch
}

// In is the view of the same transaction on account's records.
func (t *Tx) In(account string) *Tx { return &Tx{txState: t.txState, account: account} }

// Account is the account the view is on.
func (t *Tx) Account() string { return t.account }

// Accounts lists the accounts that have records, in order.
func (t *Tx) Accounts() ([]string, error) {
	var out []string
	err := t.tx.Bucket(bucketAccounts).ForEach(func(k, _ []byte) error {
		out = append(out, string(k))
		return nil
	})
	return out, err
}

var errNoAccount = errors.New("store: a record of no account")

// abucket returns a bucket of the view's account: nil (reading as empty)
// when it does not exist yet, created when create is set.
func (t *Tx) abucket(name []byte, create bool) (kvBucket, error) {
	if t.account == "" {
		return nil, errNoAccount
	}
	ab := t.tx.Bucket(bucketAccounts).Bucket([]byte(t.account))
	if ab == nil {
		if !create {
			return nil, nil
		}
		var err error
		if ab, err = t.tx.Bucket(bucketAccounts).CreateBucket([]byte(t.account)); err != nil {
			return nil, err
		}
	}
	if name == nil {
		return ab, nil
	}
	if b := ab.Bucket(name); b != nil || !create {
		return b, nil
	}
	return ab.CreateBucket(name)
}

// read and write return a bucket of the view's account for reading (nil
// when it does not exist yet) and for writing.
func (t *Tx) read(name []byte) (kvBucket, error)  { return t.abucket(name, false) }
func (t *Tx) write(name []byte) (kvBucket, error) { return t.abucket(name, true) }

func get[T any](b kvBucket, key []byte) (*T, error) {
	if b == nil {
		return nil, ErrNotFound
	}
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
func scan[T any](b kvBucket, prefix, after []byte, limit int) ([]*T, error) {
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

// unmarshal decodes the record v at key k.
func unmarshal(k, v []byte, r any) error {
	if err := json.Unmarshal(v, r); err != nil {
		return fmt.Errorf("store: decode %q: %w", k, err)
	}
	return nil
}

func put(b kvBucket, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(key, data)
}

// Sums returns the account's running sums. Sums that cannot be read are
// an error, never zero: every concurrency check would pass on zero sums.
func (t *Tx) Sums() (Sums, error) {
	ab, err := t.read(nil)
	if err != nil {
		return Sums{}, err
	}
	s, err := get[Sums](ab, keySums)
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
	ab, err := t.write(nil)
	if err != nil {
		return err
	}
	return put(ab, keySums, s)
}

// Function returns a function's record, or ErrNotFound.
func (t *Tx) Function(name string) (*function.Function, error) {
	b, err := t.read(bucketFunctions)
	if err != nil {
		return nil, err
	}
	return get[function.Function](b, []byte(name))
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
	b, err := t.write(bucketFunctions)
	if err != nil {
		return err
	}
	if err := put(b, []byte(f.Name), f); err != nil {
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
	if err := t.dropURLs(name); err != nil {
		return err
	}
	for _, bn := range [][]byte{bucketVersions, bucketAliases, bucketEventConfigs, bucketProvisioned, bucketURLs} {
		b, err := t.read(bn)
		if err != nil {
			return err
		}
		if b == nil {
			continue
		}
		var keys [][]byte
		c := b.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			keys = append(keys, bytes.Clone(k))
			if bytes.Equal(bn, bucketVersions) {
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
	fb, err := t.write(bucketFunctions)
	if err != nil {
		return err
	}
	if err := fb.Delete([]byte(name)); err != nil {
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
	b, err := t.read(bucketFunctions)
	if err != nil {
		return nil, err
	}
	return scan[function.Function](b, nil, from, limit)
}

// ScanFunctions calls fn for every function record in name order.
func (t *Tx) ScanFunctions(fn func(*function.Function) error) error {
	b, err := t.read(bucketFunctions)
	if b == nil || err != nil {
		return err
	}
	return b.ForEach(func(_, v []byte) error {
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
	b, err := t.read(bucketVersions)
	if err != nil {
		return nil, err
	}
	return get[function.Config](b, versionKey(name, version))
}

// PutVersion stores a version's configuration, keeping the code references
// and the total code size in step.
func (t *Tx) PutVersion(c *function.Config) error {
	key := versionKey(c.Name, c.Version)
	vb, err := t.write(bucketVersions)
	if err != nil {
		return err
	}
	old, err := get[function.Config](vb, key)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	if old != nil {
		if err := t.dropCodeRef(old); err != nil {
			return err
		}
	}
	if err := t.addCodeRefs(c); err != nil {
		return err
	}
	if err := put(vb, key, c); err != nil {
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
	vb, err := t.write(bucketVersions)
	if err != nil {
		return err
	}
	old, err := get[function.Config](vb, key)
	if err != nil {
		return err
	}
	if err := t.dropCodeRef(old); err != nil {
		return err
	}
	if err := vb.Delete(key); err != nil {
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
	b, err := t.read(bucketVersions)
	if err != nil {
		return nil, err
	}
	return scan[function.Config](b, append([]byte(name), 0), from, limit)
}

func aliasKey(name, alias string) []byte { return append(append([]byte(name), 0), alias...) }

// Alias returns one alias of a function.
func (t *Tx) Alias(name, alias string) (*function.Alias, error) {
	b, err := t.read(bucketAliases)
	if err != nil {
		return nil, err
	}
	return get[function.Alias](b, aliasKey(name, alias))
}

// PutAlias creates or replaces an alias of function name.
func (t *Tx) PutAlias(name string, a *function.Alias) error {
	b, err := t.write(bucketAliases)
	if err != nil {
		return err
	}
	if err := put(b, aliasKey(name, a.Name), a); err != nil {
		return err
	}
	return t.record(Change{Kind: KindAlias, Function: name, Key: a.Name, Alias: clone(a)})
}

// DeleteAlias removes an alias.
func (t *Tx) DeleteAlias(name, alias string) error {
	b, err := t.write(bucketAliases)
	if err != nil {
		return err
	}
	if err := b.Delete(aliasKey(name, alias)); err != nil {
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
	b, err := t.read(bucketAliases)
	if err != nil {
		return nil, err
	}
	return scan[function.Alias](b, append([]byte(name), 0), from, limit)
}

var bucketAudit = []byte("audit")

// AuditRecord is one change to a concurrency setting: who changed what, from
// which value to which (nil for "none"); with access control on, also a
// decision that changed nothing (refused, or allowed and then failing).
type AuditRecord struct {
	Seq         uint64    `json:"seq"`
	Time        time.Time `json:"time"`
	RequestID   string    `json:"requestId"`
	AccessKeyID string    `json:"accessKeyId,omitempty"`
	// Principal is the caller's ARN and SourceIP where it called from;
	// both empty without access control.
	Principal string `json:"principal,omitempty"`
	SourceIP  string `json:"sourceIp,omitempty"`
	// Decision is "Allow" or "Deny" with access control on, "" without.
	Decision string `json:"decision,omitempty"`
	// Error is the error code the request was answered with, "" when it
	// made its change.
	Error     string `json:"error,omitempty"`
	Operation string `json:"operation"`
	Function  string `json:"function"`
	Qualifier string `json:"qualifier,omitempty"`
	Old       *int   `json:"old"`
	New       *int   `json:"new"`
}

// AuditKeep is how many audit records the store keeps; older ones are
// dropped as new ones arrive.
const AuditKeep = 10000

// AppendAudit adds a record to the account's audit trail in this transaction, so the
// record is durable exactly when the change it describes is.
func (t *Tx) AppendAudit(r *AuditRecord) error {
	b, err := t.write(bucketAudit)
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
	b, err := t.read(bucketAudit)
	if b == nil || err != nil {
		return nil, err
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
