// Package storetest is the contract every store behind the control plane
// must keep, as a test suite: the embedded bbolt store runs it now
// (internal/control's TestStoreContract), and a store shared by several
// nodes runs the same suite. It speaks only through control.Store, the
// interface the control plane declares, and the feed every store offers.
//
// What it holds a store to: records are an account's and never another's;
// the running sums move with the records in the same transaction; a
// transaction that fails leaves nothing behind (no record, no sum, no
// revision, no feed batch); committed transactions reach every subscriber
// once, in revision order, with no gaps, before the writer's call returns;
// code is kept exactly while a record of any account refers to it; a
// caller that has gone starts no transaction.
package storetest

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/lambdad/lambdad/internal/control"
	"github.com/lambdad/lambdad/internal/function"
	"github.com/lambdad/lambdad/internal/store"
)

// Accounts the suite writes to.
const (
	A = "111111111111"
	B = "222222222222"
)

// Run runs the contract against the stores open makes, a new empty one
// for each case.
func Run(t *testing.T, open func(t *testing.T) control.Store) {
	cases := []struct {
		name string
		run  func(t *testing.T, s control.Store)
	}{
		{"records round trip in order", recordsRoundTrip},
		{"accounts are apart", accountsApart},
		{"sums move with the records", sumsFollowRecords},
		{"a failed transaction leaves nothing", failedLeavesNothing},
		{"the feed is ordered, complete and on time", feedOrdered},
		{"code lives as long as a reference", codeLifetime},
		{"a caller that has gone starts nothing", cancelled},
		{"code signing configs are the account's", codeSigningConfigs},
		{"layers round trip in order, per account", layersRoundTrip},
		{"a layer's code lives while a version or a function uses it", layerCodeLifetime},
		{"layer version policies round trip in the layer's record", layerPolicies},
		{"URLs round trip and are found by id", urlsRoundTrip},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.run(t, open(t)) })
	}
}

var ctx = context.Background()

func update(t *testing.T, s control.Store, acct string, fn func(control.Tx) error) {
	t.Helper()
	if err := s.Update(ctx, acct, fn); err != nil {
		t.Fatal(err)
	}
}

func view(t *testing.T, s control.Store, acct string, fn func(control.Tx) error) {
	t.Helper()
	if err := s.View(ctx, acct, fn); err != nil {
		t.Fatal(err)
	}
}

func fn(name string, reserved *int, provisioned int) *function.Function {
	return &function.Function{Name: name, Reserved: reserved, Provisioned: provisioned}
}

// version is a configuration record; code "" stands for code the case
// does not look at.
func version(name, v, code string, size int64) *function.Config {
	if code == "" {
		code = sha([]byte("code of " + name))
	}
	return &function.Config{Name: name, Version: v, CodeSha256: code, CodeSize: size, Runtime: "provided.al2023"}
}

func recordsRoundTrip(t *testing.T, s control.Store) {
	update(t, s, A, func(tx control.Tx) error {
		for _, n := range []string{"c", "a", "b"} {
			if err := tx.PutFunction(fn(n, nil, 0)); err != nil {
				return err
			}
		}
		// Versions order numerically after $LATEST, whatever order they
		// are written in.
		for _, v := range []string{"10", function.Latest, "2", "1"} {
			if err := tx.PutVersion(version("a", v, "", 0)); err != nil {
				return err
			}
		}
		for _, al := range []string{"live", "beta"} {
			if err := tx.PutAlias("a", &function.Alias{Name: al, FunctionVersion: "1"}); err != nil {
				return err
			}
		}
		if err := tx.PutProvisionedConfig(&store.ProvisionedConfig{Function: "a", Qualifier: "live", Requested: 2}, "1"); err != nil {
			return err
		}
		if err := tx.PutEventConfig(&store.EventConfig{Function: "a", Qualifier: function.Latest}); err != nil {
			return err
		}
		for i := range 3 {
			if err := tx.AppendAudit(&store.AuditRecord{Operation: "PutFunctionConcurrency", Function: fmt.Sprint("f", i)}); err != nil {
				return err
			}
		}
		return nil
	})
	view(t, s, A, func(tx control.Tx) error {
		page, err := tx.Functions("", 2)
		if err != nil || names(page) != "a,b" {
			t.Errorf("first page of functions: %s %v", names(page), err)
		}
		page, err = tx.Functions("b", 2)
		if err != nil || names(page) != "c" {
			t.Errorf("second page of functions: %s %v", names(page), err)
		}
		vs, err := tx.Versions("a", "", -1)
		if err != nil || versions(vs) != "$LATEST,1,2,10" {
			t.Errorf("versions: %s %v", versions(vs), err)
		}
		vs, err = tx.Versions("a", "2", 1)
		if err != nil || versions(vs) != "10" {
			t.Errorf("versions after 2: %s %v", versions(vs), err)
		}
		as, err := tx.Aliases("a", "", -1)
		if err != nil || len(as) != 2 || as[0].Name != "beta" || as[1].Name != "live" {
			t.Errorf("aliases: %+v %v", as, err)
		}
		if p, err := tx.ProvisionedConfig("a", "live"); err != nil || p.Requested != 2 {
			t.Errorf("provisioned config: %+v %v", p, err)
		}
		if _, err := tx.EventConfig("a", function.Latest); err != nil {
			t.Errorf("event config: %v", err)
		}
		recs, err := tx.Audit(0, 2)
		if err != nil || len(recs) != 2 || recs[0].Function != "f2" || recs[1].Function != "f1" {
			t.Errorf("newest audit records: %+v %v", recs, err)
		}
		if recs, err = tx.Audit(recs[1].Seq, 10); err != nil || len(recs) != 1 || recs[0].Function != "f0" {
			t.Errorf("older audit records: %+v %v", recs, err)
		}
		if _, err := tx.Function("absent"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("an absent function: %v, want store.ErrNotFound", err)
		}
		return nil
	})
	// Deleting a function takes everything it had.
	update(t, s, A, func(tx control.Tx) error { return tx.DeleteFunction("a") })
	view(t, s, A, func(tx control.Tx) error {
		vs, _ := tx.Versions("a", "", -1)
		as, _ := tx.Aliases("a", "", -1)
		ps, _ := tx.ProvisionedConfigs("a")
		es, _ := tx.EventConfigs("a")
		if len(vs)+len(as)+len(ps)+len(es) != 0 {
			t.Errorf("left after deleting a: %d versions, %d aliases, %d provisioned, %d event configs", len(vs), len(as), len(ps), len(es))
		}
		return nil
	})
}

func accountsApart(t *testing.T, s control.Store) {
	r := 5
	update(t, s, A, func(tx control.Tx) error {
		if err := tx.PutFunction(fn("f", &r, 0)); err != nil {
			return err
		}
		return tx.AppendAudit(&store.AuditRecord{Function: "f"})
	})
	update(t, s, B, func(tx control.Tx) error {
		if err := tx.PutFunction(fn("f", nil, 0)); err != nil {
			return err
		}
		return tx.PutFunction(fn("g", nil, 0))
	})
	view(t, s, A, func(tx control.Tx) error {
		f, err := tx.Function("f")
		if err != nil || f.Reserved == nil || *f.Reserved != 5 {
			t.Errorf("A's f: %+v %v", f, err)
		}
		if _, err := tx.Function("g"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("A sees B's g: %v", err)
		}
		sums, err := tx.Sums()
		if err != nil || sums.FunctionCount != 1 || sums.Reserved != 5 {
			t.Errorf("A's sums: %+v %v", sums, err)
		}
		return nil
	})
	view(t, s, B, func(tx control.Tx) error {
		f, err := tx.Function("f")
		if err != nil || f.Reserved != nil {
			t.Errorf("B's f: %+v %v", f, err)
		}
		sums, err := tx.Sums()
		if err != nil || sums.FunctionCount != 2 || sums.Reserved != 0 {
			t.Errorf("B's sums: %+v %v", sums, err)
		}
		if recs, err := tx.Audit(0, 10); err != nil || len(recs) != 0 {
			t.Errorf("B's audit trail: %+v %v", recs, err)
		}
		all, err := tx.Functions("", -1)
		if err != nil || names(all) != "f,g" {
			t.Errorf("B's functions: %s %v", names(all), err)
		}
		return nil
	})
	// Deleting B's f leaves A's.
	update(t, s, B, func(tx control.Tx) error { return tx.DeleteFunction("f") })
	view(t, s, A, func(tx control.Tx) error {
		if _, err := tx.Function("f"); err != nil {
			t.Errorf("A's f after B deleted its own: %v", err)
		}
		return nil
	})
}

func sumsFollowRecords(t *testing.T, s control.Store) {
	want := func(what string, w store.Sums) {
		t.Helper()
		view(t, s, A, func(tx control.Tx) error {
			got, err := tx.Sums()
			if err != nil || got != w {
				t.Errorf("%s: sums %+v %v, want %+v", what, got, err, w)
			}
			return nil
		})
	}
	r := 10
	update(t, s, A, func(tx control.Tx) error {
		if err := tx.PutFunction(fn("r", &r, 3)); err != nil {
			return err
		}
		if err := tx.PutFunction(fn("p", nil, 4)); err != nil {
			return err
		}
		if err := tx.PutVersion(version("r", function.Latest, "", 100)); err != nil {
			return err
		}
		return tx.PutVersion(version("r", "1", "", 100))
	})
	want("after creating", store.Sums{FunctionCount: 2, TotalCodeSize: 200, Reserved: 10, ProvisionedUnreserved: 4})
	update(t, s, A, func(tx control.Tx) error {
		// A replaced record counts once, with its new values.
		if err := tx.PutFunction(fn("p", &r, 4)); err != nil {
			return err
		}
		return tx.PutVersion(version("r", function.Latest, "", 50))
	})
	want("after replacing", store.Sums{FunctionCount: 2, TotalCodeSize: 150, Reserved: 20})
	update(t, s, A, func(tx control.Tx) error { return tx.DeleteVersion("r", "1") })
	want("after deleting a version", store.Sums{FunctionCount: 2, TotalCodeSize: 50, Reserved: 20})
	update(t, s, A, func(tx control.Tx) error { return tx.DeleteFunction("r") })
	want("after deleting a function", store.Sums{FunctionCount: 1, Reserved: 10})
}

var errRollback = errors.New("roll back")

func failedLeavesNothing(t *testing.T, s control.Store) {
	rec := &recorder{}
	if err := s.Subscribe(rec); err != nil {
		t.Fatal(err)
	}
	r := 7
	err := s.Update(ctx, A, func(tx control.Tx) error {
		if err := tx.PutFunction(fn("f", &r, 0)); err != nil {
			return err
		}
		if err := tx.PutVersion(version("f", function.Latest, "", 10)); err != nil {
			return err
		}
		return errRollback
	})
	if !errors.Is(err, errRollback) {
		t.Fatalf("Update = %v, want the body's error", err)
	}
	view(t, s, A, func(tx control.Tx) error {
		if _, err := tx.Function("f"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("the function of a failed transaction: %v", err)
		}
		if sums, err := tx.Sums(); err != nil || sums != (store.Sums{}) {
			t.Errorf("sums after a failed transaction: %+v %v", sums, err)
		}
		return nil
	})
	update(t, s, A, func(tx control.Tx) error { return tx.PutFunction(fn("g", nil, 0)) })
	if b := rec.batches(); len(b) != 1 || b[0].Rev != rec.loaded+1 {
		t.Errorf("after a failed and a committed transaction, the feed has %+v from revision %d", b, rec.loaded)
	}
}

// recorder is a subscriber that keeps what it is given.
type recorder struct {
	mu     sync.Mutex
	loaded uint64
	got    []store.Batch
}

func (r *recorder) Load(_ *store.Tx, rev uint64) error { r.loaded = rev; return nil }

func (r *recorder) Apply(b *store.Batch) {
	r.mu.Lock()
	r.got = append(r.got, *b)
	r.mu.Unlock()
}

func (r *recorder) batches() []store.Batch {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]store.Batch(nil), r.got...)
}

func feedOrdered(t *testing.T, s control.Store) {
	rec := &recorder{}
	if err := s.Subscribe(rec); err != nil {
		t.Fatal(err)
	}
	const writers, each = 8, 10
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			acct := A
			if w%2 == 1 {
				acct = B
			}
			for i := range each {
				name := fmt.Sprintf("w%d-%d", w, i)
				err := s.Update(ctx, acct, func(tx control.Tx) error { return tx.PutFunction(fn(name, nil, 0)) })
				if err != nil {
					t.Error(err)
					return
				}
				// Delivered before Update returned.
				found := false
				for _, b := range rec.batches() {
					for _, c := range b.Changes {
						found = found || c.Function == name && c.Account == acct
					}
				}
				if !found {
					t.Errorf("%s/%s: Update returned before its change reached the subscriber", acct, name)
				}
			}
		}()
	}
	wg.Wait()
	b := rec.batches()
	if len(b) != writers*each {
		t.Fatalf("%d batches, want %d", len(b), writers*each)
	}
	for i, batch := range b {
		if batch.Rev != rec.loaded+uint64(i)+1 {
			t.Fatalf("batch %d has revision %d, want %d (in order, no gaps)", i, batch.Rev, rec.loaded+uint64(i)+1)
		}
		if len(batch.Changes) != 1 || batch.Changes[0].Kind != store.KindFunction || batch.Changes[0].Func == nil {
			t.Errorf("batch %d: %+v", i, batch.Changes)
		}
	}
	// A subscriber added later starts from the committed state.
	late := &recorder{}
	if err := s.Subscribe(late); err != nil {
		t.Fatal(err)
	}
	if late.loaded != b[len(b)-1].Rev {
		t.Errorf("a late subscriber loaded revision %d, want %d", late.loaded, b[len(b)-1].Rev)
	}
}

func sha(zip []byte) string {
	h := sha256.Sum256(zip)
	return base64.StdEncoding.EncodeToString(h[:])
}

func exists(path string) bool { _, err := os.Stat(path); return err == nil }

func codeLifetime(t *testing.T, s control.Store) {
	zip := []byte("PK\x05\x06" + string(make([]byte, 18))) // an empty archive
	digest := sha(zip)
	put := func(acct, name string) {
		t.Helper()
		release, err := s.SaveCode(digest, zip)
		if err != nil {
			t.Fatal(err)
		}
		defer release()
		update(t, s, acct, func(tx control.Tx) error {
			if err := tx.PutFunction(fn(name, nil, 0)); err != nil {
				return err
			}
			return tx.PutVersion(version(name, function.Latest, digest, int64(len(zip))))
		})
	}
	// Saved and never referenced: gone once released.
	release, err := s.SaveCode(digest, zip)
	if err != nil {
		t.Fatal(err)
	}
	if !exists(s.CodePath(digest)) {
		t.Fatal("saved code is not there while pinned")
	}
	release()
	if exists(s.CodePath(digest)) {
		t.Error("code nothing refers to outlived its upload")
	}
	// Referenced from two accounts: kept until the last reference goes.
	put(A, "f")
	put(B, "f")
	update(t, s, A, func(tx control.Tx) error { return tx.DeleteFunction("f") })
	if !exists(s.CodePath(digest)) {
		t.Fatal("code removed while another account's function refers to it")
	}
	update(t, s, B, func(tx control.Tx) error { return tx.DeleteFunction("f") })
	if exists(s.CodePath(digest)) {
		t.Error("code outlived its last reference")
	}
	// A failed transaction's upload is not kept.
	release, err = s.SaveCode(digest, zip)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Update(ctx, A, func(tx control.Tx) error {
		if err := tx.PutVersion(version("f", function.Latest, digest, 1)); err != nil {
			return err
		}
		return errRollback
	})
	release()
	if !errors.Is(err, errRollback) || exists(s.CodePath(digest)) {
		t.Errorf("after a failed transaction: %v, code kept %v", err, exists(s.CodePath(digest)))
	}
}

func cancelled(t *testing.T, s control.Store) {
	c, cancel := context.WithCancel(ctx)
	cancel()
	ran := false
	body := func(control.Tx) error { ran = true; return nil }
	if err := s.Update(c, A, body); !errors.Is(err, context.Canceled) || ran {
		t.Errorf("Update with a cancelled context: %v, ran %v", err, ran)
	}
	if err := s.View(c, A, body); !errors.Is(err, context.Canceled) || ran {
		t.Errorf("View with a cancelled context: %v, ran %v", err, ran)
	}
}

func names(fs []*function.Function) string {
	out := ""
	for i, f := range fs {
		if i > 0 {
			out += ","
		}
		out += f.Name
	}
	return out
}

func versions(cs []*function.Config) string {
	out := ""
	for i, c := range cs {
		if i > 0 {
			out += ","
		}
		out += c.Version
	}
	return out
}

func codeSigningConfigs(t *testing.T, s control.Store) {
	update(t, s, A, func(tx control.Tx) error {
		for _, id := range []string{"csc-b", "csc-a", "csc-c"} {
			if err := tx.PutCodeSigningConfig(&store.CodeSigningConfig{ID: id, UntrustedArtifact: "Warn"}); err != nil {
				return err
			}
		}
		return tx.DeleteCodeSigningConfig("csc-c")
	})
	view(t, s, A, func(tx control.Tx) error {
		all, err := tx.CodeSigningConfigs("", -1)
		if err != nil || len(all) != 2 || all[0].ID != "csc-a" || all[1].ID != "csc-b" {
			t.Errorf("A's configs: %+v %v", all, err)
		}
		if page, err := tx.CodeSigningConfigs("csc-a", 5); err != nil || len(page) != 1 || page[0].ID != "csc-b" {
			t.Errorf("A's configs after csc-a: %+v %v", page, err)
		}
		return nil
	})
	view(t, s, B, func(tx control.Tx) error {
		if _, err := tx.CodeSigningConfig("csc-a"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("B reads A's config: %v", err)
		}
		return nil
	})
}
