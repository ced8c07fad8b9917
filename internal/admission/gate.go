package admission

import "github.com/lambdad/lambdad/internal/awserr"

// On a node of a cluster whose nodes share their accounts' limits, the
// rules above are applied twice: by the node, on what runs on it, and by
// the cluster, on what runs anywhere. A Gate is the cluster's side. An
// admission the node's rules allow also takes one slot of each
// cluster-wide pool it counts in, and gives them back with its release:
//
//   - a reserved function's on-demand pool (R − P) or the unreserved pool
//     (U), as the node's own rules chose;
//   - the account's on-demand pool (L − Σ P), for every on-demand slot;
//   - the account's pool (L), for every slot, provisioned ones too.
//
// Provisioned environments are divided among the nodes (each counted once,
// by its node's own rules), so they take no pool of their own. The node's
// own rules are what they are on one node: they never admit more than the
// cluster's, and refuse nothing the cluster would admit, so the cluster's
// pools alone decide where the node's limits are larger than its share.

// Kind is what an admission counts in.
type Kind uint8

// Kinds of admissions, by the pool that admitted them on the node.
const (
	KindProvisioned Kind = iota
	KindReserved
	KindUnreserved
)

// Pools is one admission as a Gate sees it: whose it is, what it counts in,
// and each pool's limit by the settings the node judged it by.
type Pools struct {
	Account, Function string
	Kind              Kind
	// Function is R − P of a reserved function (KindReserved only).
	FunctionLimit int
	// Unreserved is U, OnDemand L − Σ P, All L.
	Unreserved, OnDemand, All int
}

// Gate takes the cluster's slots for admissions the node allowed.
type Gate interface {
	// Enter takes a slot of each pool p counts in, or none: ok false
	// refuses the admission, with the AWS Reason of the pool that was full.
	Enter(p Pools) (leave func(), reason string, ok bool)
}

// gateRef lets a Controller swap its Gate atomically.
type gateRef struct{ g Gate }

// SetGate puts every admission of this Controller, whose account is
// account, through g as well (nil: the node's rules alone).
func (c *Controller) SetGate(account string, g Gate) {
	c.account = account
	if g == nil {
		c.gate.Store(nil)
		return
	}
	c.gate.Store(&gateRef{g})
}

// SetGate puts the admissions of every account through g, now and for
// accounts seen later.
func (a *Accounts) SetGate(g Gate) {
	a.gate.Store(&gateRef{g})
	a.home.SetGate(a.homeID, g)
	a.others.Range(func(id, c any) bool { c.(*Controller).SetGate(id.(string), g); return true })
}

// enter takes the cluster's slots for s, admitted on this node for e under
// cfg; on a refusal s is released and the throttle returned.
func (c *Controller) enter(g Gate, e *entry, cfg *fnConfig, s *Slot) (*Slot, error) {
	caps := c.caps.Load()
	p := Pools{Account: c.account, Function: e.name,
		All: field(caps, 0), OnDemand: field(caps, onDemandShift), Unreserved: field(caps, unreservedShift)}
	switch s.kind {
	case reservedSlot:
		p.Kind, p.FunctionLimit = KindReserved, int(cfg.onDemandCap)
	case unreservedSlot:
		p.Kind = KindUnreserved
	default:
		p.Kind = KindProvisioned
	}
	leave, reason, ok := g.Enter(p)
	if !ok {
		s.Release()
		if reason == "" {
			reason = awserr.ReasonConcurrentInvocationLimitExceeded
		}
		return nil, c.throttle(e, reason)
	}
	s.leave = leave
	return s, nil
}
