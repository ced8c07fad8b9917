package control

import (
	"github.com/lambdad/lambdad/internal/function"
	"github.com/lambdad/lambdad/internal/store"
)

// What the records mean to the in-memory owners. Each owner hears about
// committed changes only from the store's feed, in revision order, through
// one of the subscribers below; the operations never push state into them.

// Limits is what admission needs to hear of the stored settings, for the
// functions of every account. (Each account's limit L comes from its
// settings, not from the store.)
type Limits interface {
	SetReserved(fn function.Key, reserved int, ok bool)
	SetProvisionedConfigured(fn function.Key, target string, n int)
	RemoveFunction(fn function.Key)
}

// AdmissionFeed keeps admission's settings in step with the store: every
// reservation and every configured provisioned concurrency, of every
// account.
func AdmissionFeed(l Limits) store.Subscriber { return &admissionFeed{limits: l} }

type admissionFeed struct{ limits Limits }

func (a *admissionFeed) Load(tx *store.Tx, _ uint64) error {
	return ForEachAccount(tx, func(tx *store.Tx) error {
		err := tx.ScanFunctions(func(f *function.Function) error {
			if f.Reserved != nil {
				a.limits.SetReserved(function.Key{Account: tx.Account(), Name: f.Name}, *f.Reserved, true)
			}
			return nil
		})
		if err != nil {
			return err
		}
		cfgs, err := tx.ProvisionedConfigs("")
		for _, c := range cfgs {
			a.limits.SetProvisionedConfigured(function.Key{Account: tx.Account(), Name: c.Function}, c.Qualifier, c.Requested)
		}
		return err
	})
}

// ForEachAccount calls fn with the view of tx on each account that has
// records, in order: how a subscriber loads the state of all of them.
func ForEachAccount(tx *store.Tx, fn func(*store.Tx) error) error {
	ids, err := tx.Accounts()
	if err != nil {
		return err
	}
	for _, id := range ids {
		if err := fn(tx.In(id)); err != nil {
			return err
		}
	}
	return nil
}

func (a *admissionFeed) Apply(b *store.Batch) {
	for i := range b.Changes {
		c := &b.Changes[i]
		key := c.FunctionKey()
		switch c.Kind {
		case store.KindFunction:
			if c.Func == nil {
				a.limits.RemoveFunction(key)
				continue
			}
			// Most writes of a function record (publishing, tags) leave
			// its reservation alone; only a change is passed on, so that
			// functions never configured cost admission nothing.
			n, ok := reservationOf(c.Func)
			if pn, pok := reservationOf(c.PrevFunc); n != pn || ok != pok {
				a.limits.SetReserved(key, n, ok)
			}
		case store.KindProvisioned:
			n := 0
			if c.Provisioned != nil {
				n = c.Provisioned.Requested
			}
			a.limits.SetProvisionedConfigured(key, c.Key, n)
		}
	}
}

// reservationOf is a function record's reservation; ok is false when it
// has none (or there is no record).
func reservationOf(f *function.Function) (n int, ok bool) {
	if f == nil || f.Reserved == nil {
		return 0, false
	}
	return *f.Reserved, true
}

// Retirer stops the environments of a function whose code or configuration
// changed, or that went away, so that no invocation runs what is no longer
// stored.
type Retirer interface {
	Retire(fn function.Key)
}

// RetireFeed retires a function's on-demand environments when its $LATEST
// is rewritten, a version is deleted, or the function is deleted.
func RetireFeed(r Retirer) store.Subscriber { return retireFeed{r} }

type retireFeed struct{ r Retirer }

func (retireFeed) Load(*store.Tx, uint64) error { return nil }

func (f retireFeed) Apply(b *store.Batch) {
	var last function.Key
	for i := range b.Changes {
		c := &b.Changes[i]
		retire := (c.Kind == store.KindFunction && c.Func == nil) ||
			(c.Kind == store.KindVersion && (c.Version == nil || c.Key == function.Latest))
		if key := c.FunctionKey(); retire && key != last {
			f.r.Retire(key)
			last = key
		}
	}
}
