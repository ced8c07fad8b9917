package control_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/lambdad/lambdad/internal/admission"
	"github.com/lambdad/lambdad/internal/awserr"
	"github.com/lambdad/lambdad/internal/control"
	"github.com/lambdad/lambdad/internal/function"
	"github.com/lambdad/lambdad/internal/lambdatest"
	"github.com/lambdad/lambdad/internal/store"
)

var ctx = context.Background()

// fixture is a control plane over a real store in a temporary directory,
// with admission and a retirement log fed from the store's feed, on a
// clock the test sets.
type fixture struct {
	db      *store.DB
	svc     *control.Service
	adm     *admission.Controller
	retired *retireLog
	now     time.Time
}

type retireLog struct{ names []string }

func (r *retireLog) Retire(fn function.Key) { r.names = append(r.names, fn.Name) }

func newFixture(t *testing.T, limit, minUnreserved int) *fixture {
	return newFixtureOn(t, limit, minUnreserved, control.Bolt)
}

func newFixtureOn(t *testing.T, limit, minUnreserved int, wrap func(*store.DB) control.Store) *fixture {
	t.Helper()
	db, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	accts := admission.NewAccounts("123456789012", func(string) int { return limit })
	f := &fixture{db: db, adm: accts.For("123456789012"), retired: &retireLog{}, now: time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)}
	for _, s := range []store.Subscriber{control.AdmissionFeed(accts), control.RetireFeed(f.retired)} {
		if err := db.Subscribe(s); err != nil {
			t.Fatal(err)
		}
	}
	f.svc, err = control.New(wrap(db), control.Options{
		Region: "us-east-1", AccountID: "123456789012", AccountConcurrency: limit, MinUnreserved: minUnreserved,
		Logger: lambdatest.Logger(t), Now: func() time.Time { return f.now },
		LookPath: func(string) (string, error) { return "/usr/bin/true", nil },
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) create(t *testing.T, name string, publish bool) {
	t.Helper()
	_, err := f.svc.CreateFunction(ctx, &control.CreateFunctionInput{
		FunctionName: name, Runtime: "provided.al2023", Handler: "bootstrap",
		Role:    "arn:aws:iam::123456789012:role/r",
		Code:    control.Code{ZipFile: lambdatest.Zip(t, map[string]string{"bootstrap": "#!/bin/sh\n# " + name + "\n"})},
		Publish: publish,
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) reserved(name string) (int, bool) {
	fs, ok := f.adm.Function(name)
	return fs.Reserved, ok && fs.HasReserved
}

// wantAWS checks that err is AWS's error of the code with the message.
func wantAWS(t *testing.T, err error, code awserr.Code, message string) {
	t.Helper()
	e, ok := awserr.As(err)
	if !ok {
		t.Fatalf("got %v, want %s %q", err, code, message)
	}
	if e.Code != code || e.Message != message {
		t.Fatalf("got %s %q, want %s %q", e.Code, e.Message, code, message)
	}
}

func TestPutFunctionConcurrencyChecks(t *testing.T) {
	below := func(m int) string {
		return "Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [" + strconv.Itoa(m) + "]."
	}
	for _, c := range []struct {
		name          string
		limit, min    int
		others        []int // reservations of other functions
		n             int
		wantMessage   string
		wantUnreserve int
	}{
		{name: "fits", limit: 1000, min: 100, n: 100, wantUnreserve: 900},
		{name: "exactly the minimum left", limit: 1000, min: 100, others: []int{400}, n: 500, wantUnreserve: 100},
		{name: "one past the minimum", limit: 1000, min: 100, others: []int{400}, n: 501, wantMessage: below(100)},
		{name: "minimum above L is min(M, L)", limit: 50, min: 100, n: 1, wantMessage: below(50)},
		{name: "M = 0 allows all of L", limit: 10, min: 0, n: 10, wantUnreserve: 0},
		{name: "zero always fits", limit: 10, min: 10, n: 0, wantUnreserve: 10},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, c.limit, c.min)
			for i, r := range c.others {
				name := "other" + strconv.Itoa(i)
				f.create(t, name, false)
				if _, err := f.svc.PutFunctionConcurrency(ctx, name, &r, nil); err != nil {
					t.Fatal(err)
				}
			}
			f.create(t, "f", false)
			n := c.n
			_, err := f.svc.PutFunctionConcurrency(ctx, "f", &n, nil)
			if c.wantMessage != "" {
				wantAWS(t, err, awserr.InvalidParameterValue, c.wantMessage)
				if _, ok := f.reserved("f"); ok {
					t.Fatal("a refused reservation reached admission")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			settings, err := f.svc.GetAccountSettings(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if settings.UnreservedConcurrentExecutions != c.wantUnreserve || f.adm.Unreserved() != c.wantUnreserve {
				t.Fatalf("unreserved: settings %d, admission %d, want %d", settings.UnreservedConcurrentExecutions, f.adm.Unreserved(), c.wantUnreserve)
			}
			if r, ok := f.reserved("f"); !ok || r != c.n {
				t.Fatalf("admission has reservation %d (%v), want %d", r, ok, c.n)
			}
		})
	}
}

// TestFeedKeepsOwnersInStep follows each write to what the feed's
// subscribers hold: admission's reservation and provisioned
// configuration, and which functions' environments were retired.
func TestFeedKeepsOwnersInStep(t *testing.T) {
	f := newFixture(t, 100, 10)
	f.create(t, "f", true)
	f.retired.names = nil

	five := 5
	if _, err := f.svc.PutFunctionConcurrency(ctx, "f", &five, nil); err != nil {
		t.Fatal(err)
	}
	if r, ok := f.reserved("f"); !ok || r != 5 {
		t.Fatalf("after Put: reservation %d %v", r, ok)
	}
	if _, err := f.svc.PutProvisionedConcurrency(ctx, "f", "1", 2); err != nil {
		t.Fatal(err)
	}
	if fs, _ := f.adm.Function("f"); fs.ProvisionedConfigured != 2 || fs.ReservedCapacity != 3 {
		t.Fatalf("after provisioning: %+v", fs)
	}
	if len(f.retired.names) != 0 {
		t.Fatalf("settings changes retired %v", f.retired.names)
	}

	// Publishing leaves the environments alone; changing $LATEST does not.
	if _, err := f.svc.PublishVersion(ctx, &control.PublishVersionInput{FunctionName: "f"}); err != nil {
		t.Fatal(err)
	}
	if len(f.retired.names) != 0 {
		t.Fatalf("publishing retired %v", f.retired.names)
	}
	timeout := 9
	if _, err := f.svc.UpdateFunctionConfiguration(ctx, &control.UpdateFunctionConfigurationInput{FunctionName: "f", Timeout: &timeout}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(f.retired.names, []string{"f"}) {
		t.Fatalf("a configuration change retired %v", f.retired.names)
	}

	if err := f.svc.DeleteProvisionedConcurrency(ctx, "f", "1"); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.DeleteFunctionConcurrency(ctx, "f"); err != nil {
		t.Fatal(err)
	}
	if fs, _ := f.adm.Function("f"); fs.HasReserved || fs.ProvisionedConfigured != 0 {
		t.Fatalf("after deletes: %+v", fs)
	}
	if _, err := f.svc.PutProvisionedConcurrency(ctx, "f", "1", 3); err != nil {
		t.Fatal(err)
	}
	if fs, _ := f.adm.Function("f"); fs.ProvisionedConfigured != 3 {
		t.Fatalf("provisioned again: %+v", fs)
	}
	f.retired.names = nil
	if err := f.svc.DeleteFunction(ctx, "f", ""); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.adm.Function("f"); ok {
		t.Fatal("admission still knows a deleted function with nothing running")
	}
	if !slices.Equal(f.retired.names, []string{"f"}) {
		t.Fatalf("deleting retired %v", f.retired.names)
	}
	if got := f.adm.Unreserved(); got != 100 {
		t.Fatalf("unreserved after everything went: %d", got)
	}
}

// TestFailedWriteReachesNoOne: a refused write publishes nothing.
func TestFailedWriteReachesNoOne(t *testing.T) {
	f := newFixture(t, 100, 10)
	f.create(t, "f", false)
	before, err := f.db.Revision()
	if err != nil {
		t.Fatal(err)
	}
	n := 95
	if _, err := f.svc.PutFunctionConcurrency(ctx, "f", &n, nil); err == nil {
		t.Fatal("a reservation past the minimum was accepted")
	}
	if after, _ := f.db.Revision(); after != before {
		t.Fatalf("a refused write moved the revision from %d to %d", before, after)
	}
	if _, ok := f.reserved("f"); ok {
		t.Fatal("a refused reservation reached admission")
	}
}

// TestResolveSeesEveryWrite: the resolve cache never answers with what a
// committed write replaced.
func TestResolveSeesEveryWrite(t *testing.T) {
	f := newFixture(t, 100, 10)
	f.create(t, "f", true)
	if _, err := f.svc.PublishVersion(ctx, &control.PublishVersionInput{FunctionName: "f"}); err != nil {
		t.Fatal(err)
	}
	one, two := "1", "2"
	// The clock stands still: the change must be seen all the same.
	timeout := 4
	if _, err := f.svc.UpdateFunctionConfiguration(ctx, &control.UpdateFunctionConfigurationInput{FunctionName: "f", Timeout: &timeout}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.PublishVersion(ctx, &control.PublishVersionInput{FunctionName: "f"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.CreateAlias(ctx, &control.AliasInput{FunctionName: "f", Name: "live", FunctionVersion: &one}); err != nil {
		t.Fatal(err)
	}
	for _, v := range []*string{&two, &one, &two} {
		cfg, _, err := f.svc.ResolveTarget(ctx, function.Ref{Account: "123456789012", Name: "f", Qualifier: "live"})
		if err != nil {
			t.Fatal(err)
		}
		// Read twice: the second answer comes from the cache.
		again, _, _ := f.svc.ResolveTarget(ctx, function.Ref{Account: "123456789012", Name: "f", Qualifier: "live"})
		if again != cfg {
			t.Fatal("a repeated resolve was not served from the cache")
		}
		if _, err := f.svc.UpdateAlias(ctx, &control.AliasInput{FunctionName: "f", Name: "live", FunctionVersion: v}); err != nil {
			t.Fatal(err)
		}
		cfg, _, err = f.svc.ResolveTarget(ctx, function.Ref{Account: "123456789012", Name: "f", Qualifier: "live"})
		if err != nil || cfg.Version != *v {
			t.Fatalf("after moving live to %s, resolve answers %v %v", *v, cfg.Version, err)
		}
	}
	cfg, _, err := f.svc.ResolveTarget(ctx, function.Ref{Account: "123456789012", Name: "f", Qualifier: ""})
	if err != nil || cfg.Timeout != 4 || !cfg.LastModified.Equal(f.now) {
		t.Fatalf("$LATEST resolves to %+v %v", cfg, err)
	}
}

// retrying is the embedded store with every transaction body run twice, as
// a shared store's transaction runs again after a conflict: the first run
// of a write is rolled back, the first run of a read is thrown away.
type retrying struct{ control.Store }

var errAgain = errors.New("run the body again")

func (r retrying) Update(ctx context.Context, account string, fn func(control.Tx) error) error {
	err := r.Store.Update(ctx, account, func(tx control.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		return errAgain
	})
	if !errors.Is(err, errAgain) {
		return err
	}
	return r.Store.Update(ctx, account, fn)
}

func (r retrying) View(ctx context.Context, account string, fn func(control.Tx) error) error {
	return r.Store.View(ctx, account, func(tx control.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		return fn(tx)
	})
}

// TestBodiesMayRunAgain runs the operations on a store that runs every
// transaction body twice: answers, lists and the feed's owners must be
// what one run gives.
func TestBodiesMayRunAgain(t *testing.T) {
	f := newFixtureOn(t, 100, 10, func(db *store.DB) control.Store { return retrying{control.Bolt(db)} })
	for _, name := range []string{"a", "b", "c"} {
		f.create(t, name, true)
	}
	one := "1"
	for _, alias := range []string{"x", "y"} {
		if _, err := f.svc.CreateAlias(ctx, &control.AliasInput{FunctionName: "a", Name: alias, FunctionVersion: &one}); err != nil {
			t.Fatal(err)
		}
	}
	seven := 7
	if _, err := f.svc.PutFunctionConcurrency(ctx, "b", &seven, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.PutProvisionedConcurrency(ctx, "a", "x", 2); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.DeleteFunction(ctx, "c", ""); err != nil {
		t.Fatal(err)
	}

	fns, _, err := f.svc.ListFunctions(ctx, &control.ListFunctionsInput{FunctionVersion: "ALL"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range fns {
		got = append(got, c.Name+":"+c.Version)
	}
	if want := []string{"a:$LATEST", "a:1", "b:$LATEST", "b:1"}; !slices.Equal(got, want) {
		t.Fatalf("ListFunctions ALL = %v, want %v", got, want)
	}
	aliases, _, err := f.svc.ListAliases(ctx, "a", "", "", nil)
	if err != nil || len(aliases) != 2 {
		t.Fatalf("ListAliases = %d aliases, %v", len(aliases), err)
	}
	if r, ok := f.reserved("b"); !ok || r != 7 {
		t.Fatalf("admission has b reserved %d %v", r, ok)
	}
	if fs, _ := f.adm.Function("a"); fs.ProvisionedConfigured != 2 {
		t.Fatalf("admission has a provisioned %+v", fs)
	}
	settings, err := f.svc.GetAccountSettings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if settings.FunctionCount != 2 || settings.UnreservedConcurrentExecutions != 100-7-2 {
		t.Fatalf("account settings %+v", settings)
	}
	rev, err := f.db.Revision()
	if err != nil {
		t.Fatal(err)
	}
	// 3 creates (each one transaction), 2 aliases, 1 reservation, 1
	// provisioned config, 1 delete: a rolled-back run takes no revision.
	if rev != 8 {
		t.Fatalf("revision %d after 8 committed writes", rev)
	}
}
