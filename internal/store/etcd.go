package store

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// A store shared by several nodes keeps its records in etcd (the engine of
// kvetcd.go) and everything else the same way the embedded one does, with
// three differences:
//
//   - The feed. Each transaction that changes records writes its batch to
//     the feed bucket, in the same etcd transaction, under its revision.
//     Every node watches that bucket from the etcd revision it loaded at,
//     and delivers the batches in revision order to its subscribers, its
//     own writes included: a writer's Update returns once its node has
//     delivered the batch, as on one node. The watch resumes after a
//     disconnect from the last etcd revision it saw, so no batch is
//     skipped. The feed keeps the last FeedKeep batches; a node that falls
//     further behind than that (or whose etcd revisions were compacted
//     away) stops with an error rather than miss a change.
//   - Code. An archive is also kept in etcd, in chunks under its hash
//     (code/<hex>/<n>, with code/<hex>/head last), written before the
//     transaction that refers to it, so that any node can run a function
//     whatever became of the node that took its upload. A node fetches an
//     archive into its own data directory the first time it needs it, and
//     checks its hash. A transaction that refers to an archive checks that
//     its chunks are still there, and the chunks are removed, after the
//     last reference goes, in an etcd transaction that holds only while no
//     reference came back.
//   - Nothing to migrate: a shared store starts in the per-account layout.

// FeedKeep is how many batches the shared feed keeps.
const FeedKeep = 10000

// codeChunk is the size of one chunk of an archive in etcd, below etcd's
// default request limit of 1.5 MiB.
const codeChunk = 1 << 20

var bucketFeed = []byte("feed")

// EtcdOptions configure OpenEtcd.
type EtcdOptions struct {
	// Endpoints are the etcd cluster's client URLs; the store dials them
	// and closes its client with Close. Client, if set, is used instead
	// and left open.
	Endpoints []string
	Client    *clientv3.Client
	// Prefix is the key prefix of the store in etcd ("/lambdad/" if empty);
	// several stores can share one etcd cluster under different prefixes.
	Prefix string
	// Timeout bounds each etcd request (10 s if zero).
	Timeout time.Duration
	// Log reports a watch that had to start again; nil logs nothing.
	Log *slog.Logger
}

// shared is the state of a store shared through etcd.
type shared struct {
	e      *etcdEngine
	log    *slog.Logger
	own    *clientv3.Client // closed with the store
	cancel context.CancelFunc
	done   chan struct{}
	// failed is closed, with err set, when the feed cannot go on.
	mu     sync.Mutex
	err    error
	failed chan struct{}
	// lease is this node's membership (Join), leaveKeep stops its
	// keepalive.
	lease     clientv3.LeaseID
	leaveKeep context.CancelFunc
	node      string // this node's id, once it joined
}

// OpenEtcd opens the store kept in etcd, with dir as this node's own data
// directory (its copies of the code and their unpacked trees).
func OpenEtcd(dir string, o EtcdOptions) (*DB, error) {
	var own *clientv3.Client
	if o.Client == nil {
		if len(o.Endpoints) == 0 {
			return nil, errors.New("store: no etcd endpoints")
		}
		// The client's own log (zap, JSON on stderr) is off: what matters
		// of a failed request is the error lambdad reports.
		cli, err := clientv3.New(clientv3.Config{Endpoints: o.Endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			return nil, fmt.Errorf("store: etcd: %w", err)
		}
		o.Client, own = cli, cli
	}
	ok := false
	defer func() {
		if !ok && own != nil {
			own.Close()
		}
	}()
	if o.Prefix == "" {
		o.Prefix = "/lambdad/"
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(filepath.Join(dir, "code"), 0o755); err != nil {
		return nil, err
	}
	e := &etcdEngine{cli: o.Client, root: o.Prefix, timeout: o.Timeout}
	s := &shared{e: e, log: o.Log, own: own, done: make(chan struct{}), failed: make(chan struct{})}
	d := &DB{kv: e, shared: s, code: codeFiles{dir: filepath.Join(dir, "code"), pins: map[string]int{}}}
	err := e.update(func(tx kvTx) error {
		for _, name := range [][]byte{bucketAccounts, bucketCodeRefs, bucketMeta, bucketFeed} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		if string(meta.Get(keyLayout)) != layoutAccounts {
			return meta.Put(keyLayout, []byte(layoutAccounts))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: etcd at %v does not answer: %w", o.Client.Endpoints(), err)
	}
	if err := d.removeOrphanCode(); err != nil {
		return nil, err
	}
	// The revision to deliver from and the etcd revision it was read at:
	// the watch starts right after it, so it neither misses nor repeats.
	var rev uint64
	var at int64
	err = e.view(func(tx kvTx) error {
		rev = d.tx(tx).revision()
		at = tx.(*etcdTx).rev
		return nil
	})
	if err != nil {
		return nil, err
	}
	d.feed.init(rev)
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go s.watch(ctx, d, at+1)
	ok = true
	return d, nil
}

// Failed is closed when the shared feed has stopped for good (Err says
// why); it never closes for the embedded store.
func (d *DB) Failed() <-chan struct{} {
	if d.shared == nil {
		return nil
	}
	return d.shared.failed
}

// Err is why Failed closed.
func (d *DB) Err() error {
	if d.shared == nil {
		return nil
	}
	d.shared.mu.Lock()
	defer d.shared.mu.Unlock()
	return d.shared.err
}

// Shared reports whether the store is shared through etcd.
func (d *DB) Shared() bool { return d.shared != nil }

// EtcdOps is the number of etcd requests the store has made.
func (d *DB) EtcdOps() int64 {
	if d.shared == nil {
		return 0
	}
	return d.shared.e.ops.Load()
}

func (s *shared) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = err
		close(s.failed)
	}
}

// feedPrefix is where the feed bucket's entries are in etcd.
func (e *etcdEngine) feedPrefix() string { return e.root + "z" + string(bucketFeed) + "\x00k" }

// watch delivers the feed's batches from etcd revision from on.
func (s *shared) watch(ctx context.Context, d *DB, from int64) {
	defer close(s.done)
	prefix := s.e.feedPrefix()
	for ctx.Err() == nil {
		wch := s.e.cli.Watch(clientv3.WithRequireLeader(ctx), prefix, clientv3.WithPrefix(), clientv3.WithRev(from))
		for wr := range wch {
			if err := wr.Err(); err != nil {
				if wr.CompactRevision != 0 {
					s.fail(fmt.Errorf("store: the feed was compacted past revision %d", from))
					return
				}
				s.log.Warn("feed watch", "err", err)
				break
			}
			for _, ev := range wr.Events {
				from = ev.Kv.ModRevision + 1
				if ev.Type != clientv3.EventTypePut {
					continue
				}
				b := new(Batch)
				if err := json.Unmarshal(value(ev.Kv.Value), b); err != nil {
					s.fail(fmt.Errorf("store: decode feed batch %q: %w", ev.Kv.Key, err))
					return
				}
				if !d.feed.deliver(b) {
					s.fail(fmt.Errorf("store: feed batch %d arrived after %d was expected: a batch is missing", b.Rev, d.feed.expected()))
					return
				}
			}
		}
		if ctx.Err() == nil {
			// The watch ended (a lost leader, a closed stream): start
			// again right after the last revision seen.
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// writeFeed adds the transaction's batch to the feed bucket, and drops the
// batch FeedKeep revisions older.
func (t *Tx) writeFeed() error {
	data, err := json.Marshal(t.batch)
	if err != nil {
		return err
	}
	b := t.tx.Bucket(bucketFeed)
	if err := b.Put(seqKey(t.batch.Rev), data); err != nil {
		return err
	}
	if t.batch.Rev > FeedKeep {
		return b.Delete(seqKey(t.batch.Rev - FeedKeep))
	}
	return nil
}

// closeShared stops the watch.
func (d *DB) closeShared() {
	if d.shared != nil {
		d.shared.leave()
		d.shared.cancel()
		<-d.shared.done
		if d.shared.own != nil {
			d.shared.own.Close()
		}
	}
}

// codeKey is where chunk n of an archive is in etcd ("head" for its head).
func (e *etcdEngine) codeKey(sha, n string) string {
	raw, err := base64.StdEncoding.DecodeString(sha)
	if err != nil {
		raw = []byte(sha)
	}
	return e.root + "code/" + hex.EncodeToString(raw) + "/" + n
}

// codeHead is an archive's head in etcd.
type codeHead struct {
	Size   int64 `json:"size"`
	Chunks int   `json:"chunks"`
}

func chunkName(i int) string { return fmt.Sprintf("%06d", i) }

// putCode stores an archive's chunks in etcd unless its head is there.
func (s *shared) putCode(sha string, zip []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.e.timeout+time.Duration(len(zip)/codeChunk)*s.e.timeout)
	defer cancel()
	s.e.ops.Add(1)
	r, err := s.e.cli.Get(ctx, s.e.codeKey(sha, "head"))
	if err != nil {
		return fmt.Errorf("store: etcd: %w", err)
	}
	if len(r.Kvs) == 1 {
		return nil
	}
	n := 0
	for off := 0; off < len(zip) || n == 0; off += codeChunk {
		end := min(off+codeChunk, len(zip))
		s.e.ops.Add(1)
		if _, err := s.e.cli.Put(ctx, s.e.codeKey(sha, chunkName(n)), string(zip[off:end])); err != nil {
			return fmt.Errorf("store: etcd: %w", err)
		}
		n++
	}
	head, _ := json.Marshal(codeHead{Size: int64(len(zip)), Chunks: n})
	s.e.ops.Add(1)
	if _, err := s.e.cli.Put(ctx, s.e.codeKey(sha, "head"), string(head)); err != nil {
		return fmt.Errorf("store: etcd: %w", err)
	}
	return nil
}

// fetchCode reads an archive from etcd and checks it against its hash.
func (s *shared) fetchCode(sha string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*s.e.timeout)
	defer cancel()
	s.e.ops.Add(1)
	r, err := s.e.cli.Get(ctx, s.e.codeKey(sha, "head"))
	if err != nil {
		return nil, fmt.Errorf("store: etcd: %w", err)
	}
	if len(r.Kvs) != 1 {
		return nil, ErrNotFound
	}
	var h codeHead
	if err := json.Unmarshal(r.Kvs[0].Value, &h); err != nil {
		return nil, fmt.Errorf("store: code head of %s: %w", sha, err)
	}
	zip := make([]byte, 0, h.Size)
	for i := range h.Chunks {
		s.e.ops.Add(1)
		c, err := s.e.cli.Get(ctx, s.e.codeKey(sha, chunkName(i)), clientv3.WithRev(r.Header.Revision))
		if err != nil {
			return nil, fmt.Errorf("store: etcd: %w", err)
		}
		if len(c.Kvs) != 1 {
			return nil, ErrNotFound
		}
		zip = append(zip, c.Kvs[0].Value...)
	}
	sum := sha256.Sum256(zip)
	if base64.StdEncoding.EncodeToString(sum[:]) != sha && hex.EncodeToString(sum[:]) != sha {
		return nil, fmt.Errorf("store: code %s from etcd does not match its hash", sha)
	}
	return zip, nil
}

// ensureLocal fetches an archive from etcd into this node's data directory
// if it is not there yet.
func (d *DB) ensureLocal(sha string) error {
	if d.shared == nil {
		return nil
	}
	c := &d.code
	if _, err := os.Stat(c.path(sha)); err == nil {
		return nil
	}
	zip, err := d.shared.fetchCode(sha)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.write(sha, zip)
}

// dropCodeShared removes an archive's chunks from etcd if no reference to
// it is stored, in one etcd transaction that checks just that.
func (s *shared) dropCode(sha string) {
	ref := s.e.root + "z" + string(bucketCodeRefs) + "\x00k" + sha
	ctx, cancel := s.e.ctx()
	defer cancel()
	s.e.ops.Add(1)
	_, err := s.e.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(ref), "=", 0)).
		Then(clientv3.OpDelete(s.e.codeKey(sha, ""), clientv3.WithPrefix())).
		Commit()
	if err != nil {
		s.log.Warn("remove code from etcd", "sha", sha, "err", err)
	}
}

// requireCode makes the transaction hold only while the archive's chunks
// stay as they are in etcd, so that no record comes to refer to code that
// a concurrent removal (of another node, after the last reference went)
// took away. Chunks already gone are put back from this node's copy; with
// no copy either (a record of code never uploaded, as the embedded store
// allows too), the transaction holds only while there are still none.
func (t *etcdTx) requireCode(d *DB, sha string) error {
	key := t.e.codeKey(sha, "head")
	r := t.get(key)
	if r == nil {
		return t.err
	}
	if len(r.Kvs) == 0 {
		if zip, err := os.ReadFile(d.code.path(sha)); err == nil {
			if err := d.shared.putCode(sha, zip); err != nil {
				return err
			}
			// Read past the snapshot: the chunks are newer than it.
			ctx, cancel := t.e.ctx()
			defer cancel()
			t.e.ops.Add(1)
			if r, err = t.e.cli.Get(ctx, key); err != nil {
				return fmt.Errorf("store: etcd: %w", err)
			}
		}
	}
	var rev int64
	if len(r.Kvs) == 1 {
		rev = r.Kvs[0].ModRevision
	}
	t.extraCmps = append(t.extraCmps, clientv3.Compare(clientv3.ModRevision(key), "=", rev))
	return nil
}

// Join makes this node a member of the cluster under id, with info (its
// URL, say) for the others to read, for as long as it keeps its etcd lease
// of ttl alive: a node that dies leaves the members ttl after its last
// keepalive. A node whose lease is lost all the same (cut off from etcd
// for longer than ttl) can no longer hold anything the others trust, so
// its store fails (Failed closes). Close leaves the cluster at once.
func (d *DB) Join(id, info string, ttl time.Duration) error {
	s := d.shared
	if s == nil {
		return errors.New("store: only a shared store has members")
	}
	secs := int64(ttl / time.Second)
	if secs < 1 {
		secs = 1
	}
	ctx, cancel := s.e.ctx()
	defer cancel()
	s.e.ops.Add(2)
	lease, err := s.e.cli.Grant(ctx, secs)
	if err != nil {
		return fmt.Errorf("store: etcd lease: %w", err)
	}
	key := s.e.root + "nodes/" + id
	r, err := s.e.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, info, clientv3.WithLease(lease.ID))).
		Commit()
	if err != nil {
		return fmt.Errorf("store: etcd: %w", err)
	}
	if !r.Succeeded {
		s.e.cli.Revoke(ctx, lease.ID)
		return fmt.Errorf("store: a node named %q is already a member of the cluster", id)
	}
	kctx, kcancel := context.WithCancel(context.Background())
	keep, err := s.e.cli.KeepAlive(kctx, lease.ID)
	if err != nil {
		kcancel()
		return fmt.Errorf("store: etcd keepalive: %w", err)
	}
	s.mu.Lock()
	s.lease, s.leaveKeep, s.node = lease.ID, kcancel, id
	s.mu.Unlock()
	go func() {
		for range keep {
		}
		if kctx.Err() == nil {
			s.fail(fmt.Errorf("store: this node's etcd lease was lost; the others count it gone"))
		}
	}()
	return nil
}

// Members lists the nodes of the cluster alive now, with their info.
func (d *DB) Members() (map[string]string, error) {
	s := d.shared
	if s == nil {
		return nil, errors.New("store: only a shared store has members")
	}
	ctx, cancel := s.e.ctx()
	defer cancel()
	s.e.ops.Add(1)
	prefix := s.e.root + "nodes/"
	r, err := s.e.cli.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("store: etcd: %w", err)
	}
	out := map[string]string{}
	for _, kv := range r.Kvs {
		out[string(kv.Key[len(prefix):])] = string(kv.Value)
	}
	return out, nil
}

// leave ends the membership Join began.
func (s *shared) leave() {
	s.mu.Lock()
	lease, stop := s.lease, s.leaveKeep
	s.lease, s.leaveKeep = 0, nil
	s.mu.Unlock()
	if stop == nil {
		return
	}
	stop()
	ctx, cancel := s.e.ctx()
	defer cancel()
	s.e.ops.Add(1)
	s.e.cli.Revoke(ctx, lease)
}

// SetNodeValue publishes value under key as this node's, for as long as
// it is a member (the value goes with its lease); "" removes it.
func (d *DB) SetNodeValue(key, value string) error {
	s := d.shared
	if s == nil {
		return errors.New("store: only a shared store has node values")
	}
	s.mu.Lock()
	lease := s.lease
	s.mu.Unlock()
	if lease == 0 {
		return errors.New("store: this node is not a member of the cluster")
	}
	ctx, cancel := s.e.ctx()
	defer cancel()
	s.e.ops.Add(1)
	k := s.e.root + "values/" + key + "\x00" + s.node
	var err error
	if value == "" {
		_, err = s.e.cli.Delete(ctx, k)
	} else {
		_, err = s.e.cli.Put(ctx, k, value, clientv3.WithLease(lease))
	}
	if err != nil {
		return fmt.Errorf("store: etcd: %w", err)
	}
	return nil
}

// NodeValues returns what each live node published under key.
func (d *DB) NodeValues(key string) (map[string]string, error) {
	s := d.shared
	if s == nil {
		return nil, errors.New("store: only a shared store has node values")
	}
	ctx, cancel := s.e.ctx()
	defer cancel()
	s.e.ops.Add(1)
	prefix := s.e.root + "values/" + key + "\x00"
	r, err := s.e.cli.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("store: etcd: %w", err)
	}
	out := map[string]string{}
	for _, kv := range r.Kvs {
		out[string(kv.Key[len(prefix):])] = string(kv.Value)
	}
	return out, nil
}

// EtcdClient is the shared store's etcd client (nil for the embedded
// store), for the other parts of a node that keep state in the same
// cluster; it stays the store's, closed with it.
func (d *DB) EtcdClient() *clientv3.Client {
	if d.shared == nil {
		return nil
	}
	return d.shared.e.cli
}

// EtcdPrefix is the shared store's key prefix.
func (d *DB) EtcdPrefix() string {
	if d.shared == nil {
		return ""
	}
	return d.shared.e.root
}
