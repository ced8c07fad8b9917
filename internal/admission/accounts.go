package admission

import (
	"sort"
	"sync"

	"github.com/lambdad/lambdad/internal/function"
)

// Accounts is admission for every account of a server: a Controller per
// account, each with its own limit L, its own pools and its own counts, so
// that one account's load or settings never take capacity from another's.
// A Controller is made on an account's first use with the limit the
// account's settings give. All methods are safe for concurrent use.
type Accounts struct {
	limit func(account string) int
	// home is the Controller of the server's own account, found without a
	// map lookup: a server without access control has no other.
	homeID string
	home   *Controller
	others sync.Map // account → *Controller
}

// NewAccounts returns admission for the accounts whose limits limit gives;
// home is the server's own account.
func NewAccounts(home string, limit func(account string) int) *Accounts {
	return &Accounts{limit: limit, homeID: home, home: New(limit(home))}
}

// For returns the Controller of account.
func (a *Accounts) For(account string) *Controller {
	if account == a.homeID {
		return a.home
	}
	if c, ok := a.others.Load(account); ok {
		return c.(*Controller)
	}
	c, _ := a.others.LoadOrStore(account, New(a.limit(account)))
	return c.(*Controller)
}

// IDs lists the accounts admission knows, the server's own first.
func (a *Accounts) IDs() []string {
	var ids []string
	a.others.Range(func(k, _ any) bool { ids = append(ids, k.(string)); return true })
	sort.Strings(ids)
	return append([]string{a.homeID}, ids...)
}

// Acquire admits one invocation of target of fn under its account's rules
// (see Controller.Acquire).
func (a *Accounts) Acquire(fn function.Key, target string) (*Slot, error) {
	return a.For(fn.Account).Acquire(fn.Name, target)
}

// SetAccountLimit sets account's limit L.
func (a *Accounts) SetAccountLimit(account string, l int) { a.For(account).SetAccountLimit(l) }

// SetReserved sets or removes fn's reservation (see Controller.SetReserved).
func (a *Accounts) SetReserved(fn function.Key, reserved int, ok bool) {
	a.For(fn.Account).SetReserved(fn.Name, reserved, ok)
}

// SetProvisionedConfigured sets the provisioned concurrency configured for
// one target of fn (see Controller.SetProvisionedConfigured).
func (a *Accounts) SetProvisionedConfigured(fn function.Key, target string, n int) {
	a.For(fn.Account).SetProvisionedConfigured(fn.Name, target, n)
}

// SetProvisioned sets how many provisioned environments are allocated for
// one target of fn (see Controller.SetProvisioned).
func (a *Accounts) SetProvisioned(fn function.Key, target string, allocated int) {
	a.For(fn.Account).SetProvisioned(fn.Name, target, allocated)
}

// RemoveFunction forgets fn's settings (see Controller.RemoveFunction).
func (a *Accounts) RemoveFunction(fn function.Key) { a.For(fn.Account).RemoveFunction(fn.Name) }
