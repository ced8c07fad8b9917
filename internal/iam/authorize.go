package iam

import (
	"context"
	"net/http"
	"strings"

	"github.com/lambdad/lambdad/internal/account"
	"github.com/lambdad/lambdad/internal/awserr"
	"github.com/lambdad/lambdad/internal/policy"
)

// Decision is an authorization outcome with the reason IAM gives.
type Decision struct {
	Allowed bool
	// Caller is who the request then acts as: the caller itself, or, for
	// a request another account's resource policy grants, the caller
	// acting in that account.
	Caller account.Caller
	// Err is the AccessDeniedException when not allowed.
	Err error
}

// Authorize decides whether caller may perform action ("lambda:GetFunction")
// on resource (a function ARN, or "*"), by IAM's rules:
//   - an explicit Deny in the caller's identity policy, or in the
//     resource's policy for the caller, refuses;
//   - in the caller's own account, an Allow in either policy allows;
//   - on another account's resource, both must allow: the caller's
//     identity policy and the resource's policy naming the caller or its
//     account.
//
// It returns the caller to act as, or the AccessDeniedException.
func (g *Guard) Authorize(r *http.Request, caller account.Caller, action, resource string) (account.Caller, error) {
	d := g.Decide(r.Context(), r, caller, action, resource)
	return d.Caller, d.Err
}

// Decide is Authorize with the whole decision.
func (g *Guard) Decide(ctx context.Context, r *http.Request, caller account.Caller, action, resource string) Decision {
	return g.decide(ctx, r, caller, action, resource, nil)
}

// decide is Decide with further condition keys (lower case) the request
// carries.
func (g *Guard) decide(ctx context.Context, r *http.Request, caller account.Caller, action, resource string, keys map[string]string) Decision {
	c := g.creds.Load()
	identityPolicy := g.identityPolicy(c, caller)
	req := &policy.Request{Action: action, Resource: resource, PrincipalARN: caller.Principal, PrincipalAccount: caller.Account,
		Time: g.opts.Now(), Keys: keys}
	if r != nil {
		req.SourceIP = sourceIP(r)
	}
	owner, name, qualifier, isFunction := parseFunctionARN(resource)
	if isFunction {
		req.FunctionARN = resource
	}
	idDecision := identityPolicy.Evaluate(req)
	deny := func(why string) Decision {
		return Decision{Caller: caller, Err: awserr.New(awserr.AccessDenied, "User: %s is not authorized to perform: %s on resource: %s %s",
			caller.Principal, action, resource, why)}
	}
	if idDecision == policy.ExplicitDeny {
		return deny("with an explicit deny in an identity-based policy")
	}
	crossAccount := isFunction && owner != caller.Account
	resDecision := policy.ImplicitDeny
	if isFunction && g.policies != nil && (crossAccount || idDecision != policy.Allowed) {
		doc, err := g.policies.ResourcePolicy(ctx, owner, name, qualifier)
		if err != nil {
			return Decision{Caller: caller, Err: err}
		}
		resDecision = doc.EvaluateResource(req, resource)
	}
	if resDecision == policy.ExplicitDeny {
		return deny("with an explicit deny in a resource-based policy")
	}
	if crossAccount {
		if idDecision != policy.Allowed {
			return deny("because no identity-based policy allows the " + action + " action")
		}
		if resDecision != policy.Allowed {
			return deny("because no resource-based policy allows the " + action + " action")
		}
		acting := caller
		acting.Account = owner
		return Decision{Allowed: true, Caller: acting}
	}
	if idDecision != policy.Allowed && resDecision != policy.Allowed {
		return deny("because no identity-based policy allows the " + action + " action")
	}
	return Decision{Allowed: true, Caller: caller}
}

// identityPolicy is the policy of the caller's identity in the credentials
// in force: its user's, or its session's role's.
func (g *Guard) identityPolicy(c *Credentials, caller account.Caller) *policy.Document {
	if p, ok := c.keys[caller.AccessKeyID]; ok {
		return p.Policy
	}
	if s, ok := g.sessions.get(caller.AccessKeyID); ok {
		if role, ok := c.roles[s.role]; ok {
			return role.Policy
		}
	}
	return nil
}

// parseFunctionARN splits arn:aws:lambda:region:account:function:name[:qualifier].
func parseFunctionARN(arn string) (account, name, qualifier string, ok bool) {
	p := strings.Split(arn, ":")
	if len(p) < 7 || len(p) > 8 || p[0] != "arn" || p[2] != "lambda" || p[5] != "function" {
		return "", "", "", false
	}
	if len(p) == 8 {
		qualifier = p[7]
	}
	return p[4], p[6], qualifier, true
}
