package account

import "context"

// Caller is who made a request, as the edge established it: the account it
// acts in and the credentials it showed. The edge hands it down in the
// request's context; everything below reads the account from it and never
// from the request itself.
type Caller struct {
	// Account is the twelve-digit account the request acts in.
	Account string
	// AccessKeyID is the access key the request was signed with; "" when
	// unsigned.
	AccessKeyID string
	// Principal is the ARN of the identity behind the key; "" when access
	// control is off.
	Principal string
	// UserID is the unique id of that identity, as STS reports it; ""
	// when access control is off.
	UserID string
	// SourceIP is the address the request came from, for the audit trail.
	SourceIP string
	// RequestID is the request's x-amzn-RequestId, for the audit trail and
	// the logs.
	RequestID string
}

type callerKey struct{}

// WithCaller returns a context carrying c.
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerOf returns the caller ctx carries, and whether it carries one.
func CallerOf(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}

// Settings gives each account its limits. A server without access control
// has one account; with it, each account may have limits of its own.
type Settings interface {
	Limits(account string) Limits
}

// Uniform is Settings in which every account has the same limits.
type Uniform Limits

// Limits returns u for every account.
func (u Uniform) Limits(string) Limits { return Limits(u) }

// Of is the account of the caller ctx carries, or home when it carries
// none (work no request started, such as a retry of a stored event).
func Of(ctx context.Context, home string) string {
	if c, ok := CallerOf(ctx); ok && c.Account != "" {
		return c.Account
	}
	return home
}
