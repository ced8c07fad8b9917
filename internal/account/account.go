// Package account holds the concurrency rules of an account, the one
// place they are written: its limit L, the minimum M that must stay
// unreserved, and how the unreserved pool follows from what the functions
// claim. The control plane checks writes against them and admission sizes
// its pools by them. It also names who a request comes from (Caller),
// which is how the account of every operation is known.
package account

// Limits are an account's concurrency settings.
type Limits struct {
	// Concurrency is the account limit L (AWS's default is 1000).
	Concurrency int
	// MinUnreserved is M, what must stay unreserved (AWS's default is
	// 100); the minimum in force is min(M, L).
	MinUnreserved int
}

// Minimum is the unreserved concurrency that must remain: min(M, L).
func (l Limits) Minimum() int { return min(l.MinUnreserved, l.Concurrency) }

// Unreserved is U = L − claimed: the pool the functions without a
// reservation share, where claimed is Σ R over the reserved functions plus
// Σ P (configured provisioned concurrency) over the others. It is negative
// only when L was lowered under what is already claimed.
func (l Limits) Unreserved(claimed int64) int64 { return int64(l.Concurrency) - claimed }

// Allows reports whether claims totalling claimed leave at least the
// minimum unreserved, which every reservation and every provisioned
// configuration of a function without one must keep.
func (l Limits) Allows(claimed int64) bool { return l.Unreserved(claimed) >= int64(l.Minimum()) }
