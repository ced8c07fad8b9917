package control

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"sync"

	"github.com/lambdad/lambdad/internal/awserr"
	"github.com/lambdad/lambdad/internal/function"
	"github.com/lambdad/lambdad/internal/policy"
	"github.com/lambdad/lambdad/internal/uuid"
)

// AddPermissionInput is AddPermission's request.
type AddPermissionInput struct {
	FunctionName   string
	Qualifier      string
	StatementId    string
	Action         string
	Principal      string
	SourceArn      string
	SourceAccount  string
	PrincipalOrgID string
	RevisionId     string
	// EventSourceToken, FunctionUrlAuthType and InvokedViaFunctionUrl
	// become conditions too; clients such as Terraform read them back
	// from the statement, so one left out reads as a change.
	EventSourceToken      string
	FunctionUrlAuthType   string
	InvokedViaFunctionUrl bool
}

var accountPrincipal = regexp.MustCompile(`^[0-9]{12}$`)

// statement is one statement of a resource-based policy as AWS writes it.
type statement struct {
	Sid       string          `json:"Sid"`
	Effect    string          `json:"Effect"`
	Principal any             `json:"Principal"`
	Action    string          `json:"Action"`
	Resource  string          `json:"Resource"`
	Condition json.RawMessage `json:"Condition,omitempty"`
}

// AddPermission adds a statement to the resource-based policy of a
// function, version or alias, as AWS writes it: an account principal
// becomes its root ARN, a service principal a Service principal, and
// SourceArn (ArnLike), SourceAccount, PrincipalOrgID, EventSourceToken
// and FunctionUrlAuthType (StringEquals) and InvokedViaFunctionUrl (Bool)
// conditions. It returns the statement.
func (s *Service) AddPermission(ctx context.Context, in *AddPermissionInput) (string, error) {
	ref, err := s.names(ctx).ParseWithQualifier(in.FunctionName, in.Qualifier)
	if err != nil {
		return "", err
	}
	if ref.Qualifier == function.Latest {
		return "", awserr.New(awserr.InvalidParameterValue, "We currently do not support adding policies for $LATEST.")
	}
	arn := s.ARN(ctx, ref.Name, ref.Qualifier)
	st := statement{Sid: in.StatementId, Effect: "Allow", Action: in.Action, Resource: arn}
	switch p := in.Principal; {
	case p == "*":
		st.Principal = "*"
	case accountPrincipal.MatchString(p):
		st.Principal = map[string]string{"AWS": "arn:aws:iam::" + p + ":root"}
	case strings.HasPrefix(p, "arn:"):
		st.Principal = map[string]string{"AWS": p}
	default:
		st.Principal = map[string]string{"Service": p}
	}
	cond := map[string]map[string]string{}
	if in.SourceArn != "" {
		cond["ArnLike"] = map[string]string{"AWS:SourceArn": in.SourceArn}
	}
	equals := map[string]string{}
	for key, v := range map[string]string{"AWS:SourceAccount": in.SourceAccount, "aws:PrincipalOrgID": in.PrincipalOrgID,
		"lambda:EventSourceToken": in.EventSourceToken, "lambda:FunctionUrlAuthType": in.FunctionUrlAuthType} {
		if v != "" {
			equals[key] = v
		}
	}
	if len(equals) > 0 {
		cond["StringEquals"] = equals
	}
	if in.InvokedViaFunctionUrl {
		cond["Bool"] = map[string]string{"lambda:InvokedViaFunctionUrl": "true"}
	}
	if len(cond) > 0 {
		st.Condition, _ = json.Marshal(cond)
	}
	raw, err := json.Marshal(st)
	if err != nil {
		return "", err
	}
	err = s.update(ctx, func(tx Tx) error {
		f, err := policyTarget(tx, ref, arn)
		if err != nil {
			return err
		}
		old := f.Policies[ref.Qualifier]
		if err := checkPolicyRevision(old, in.RevisionId, "GetPolicy"); err != nil {
			return err
		}
		p, err := withStatement(old, in.StatementId, raw)
		if err != nil {
			return err
		}
		f.Policies = withPolicy(f.Policies, ref.Qualifier, p)
		return tx.PutFunction(f)
	})
	if err != nil {
		return "", internal("add permission", err)
	}
	return string(raw), nil
}

// RemovePermission removes a statement by its id.
func (s *Service) RemovePermission(ctx context.Context, name, qualifier, sid, revision string) error {
	ref, err := s.names(ctx).ParseWithQualifier(name, qualifier)
	if err != nil {
		return err
	}
	arn := s.ARN(ctx, ref.Name, ref.Qualifier)
	err = s.update(ctx, func(tx Tx) error {
		f, err := mustFunction(tx, ref.Name, arn)
		if err != nil {
			return err
		}
		old := f.Policies[ref.Qualifier]
		if old == nil {
			return noPolicy()
		}
		if err := checkPolicyRevision(old, revision, "GetPolicy"); err != nil {
			return err
		}
		p, err := withoutStatement(old, sid)
		if err != nil {
			return err
		}
		f.Policies = withPolicy(f.Policies, ref.Qualifier, p)
		return tx.PutFunction(f)
	})
	return internal("remove permission", err)
}

// GetPolicy returns a function's, version's or alias's resource-based
// policy document and its revision.
func (s *Service) GetPolicy(ctx context.Context, name, qualifier string) (doc, revision string, err error) {
	ref, err := s.names(ctx).ParseWithQualifier(name, qualifier)
	if err != nil {
		return "", "", err
	}
	arn := s.ARN(ctx, ref.Name, ref.Qualifier)
	var p *function.Policy
	err = s.view(ctx, func(tx Tx) error {
		f, err := policyTarget(tx, ref, arn)
		if err != nil {
			return err
		}
		p = f.Policies[ref.Qualifier]
		return nil
	})
	if err != nil {
		return "", "", internal("get policy", err)
	}
	if p == nil {
		return "", "", awserr.New(awserr.ResourceNotFound, "The resource you requested does not exist.")
	}
	return policyDocument(p), p.RevisionID, nil
}

func policyDocument(p *function.Policy) string {
	b, _ := json.Marshal(struct {
		Version   string            `json:"Version"`
		ID        string            `json:"Id"`
		Statement []json.RawMessage `json:"Statement"`
	}{"2012-10-17", "default", p.Statements})
	return string(b)
}

// checkPolicyRevision is AWS's 412 when a RevisionId was given and is
// not p's; getter names the operation that reads the policy.
func checkPolicyRevision(p *function.Policy, revision, getter string) error {
	if revision == "" {
		return nil
	}
	if p == nil || p.RevisionID != revision {
		return awserr.New(awserr.PreconditionFailed, "The Revision Id provided does not match the latest Revision Id. Call the %s API to retrieve the latest Revision Id", getter)
	}
	return nil
}

// noPolicy is AWS's 404 for a resource without a policy.
func noPolicy() error {
	return awserr.New(awserr.ResourceNotFound, "No policy is associated with the given resource.")
}

// withStatement is old with st added, under a new revision; a statement
// id already in old is AWS's 409.
func withStatement(old *function.Policy, sid string, st json.RawMessage) (*function.Policy, error) {
	p := &function.Policy{RevisionID: uuid.New()}
	if old != nil {
		for _, s := range old.Statements {
			if sidOf(s) == sid {
				return nil, awserr.New(awserr.ResourceConflict, "The statement id (%s) provided already exists. Please provide a new statement id, or remove the existing statement.", sid)
			}
		}
		p.Statements = append(p.Statements, old.Statements...)
	}
	p.Statements = append(p.Statements, st)
	return p, nil
}

// withoutStatement is old without the statement sid, under a new
// revision, nil when none is left; a statement id not in old is AWS's
// 404.
func withoutStatement(old *function.Policy, sid string) (*function.Policy, error) {
	p := &function.Policy{RevisionID: uuid.New()}
	for _, st := range old.Statements {
		if sidOf(st) != sid {
			p.Statements = append(p.Statements, st)
		}
	}
	if len(p.Statements) == len(old.Statements) {
		return nil, awserr.New(awserr.ResourceNotFound, "Statement %s is not found in resource policy.", sid)
	}
	if len(p.Statements) == 0 {
		return nil, nil
	}
	return p, nil
}

func sidOf(st json.RawMessage) string {
	var v struct{ Sid string }
	json.Unmarshal(st, &v)
	return v.Sid
}

func withPolicy[K comparable](m map[K]*function.Policy, k K, p *function.Policy) map[K]*function.Policy {
	if p == nil {
		delete(m, k)
		if len(m) == 0 {
			return nil
		}
		return m
	}
	if m == nil {
		m = map[K]*function.Policy{}
	}
	m[k] = p
	return m
}

// policyCache keeps each resource policy parsed, by account, function and
// qualifier, for as long as its revision is current.
type policyCache struct{ m sync.Map }

type parsedPolicy struct {
	revision string
	doc      *policy.Document
}

// ResourcePolicy is the resource-based policy of a function (qualifier
// "") or of one of its versions or aliases in account, parsed; nil when
// there is none or the function does not exist. Authorization asks it for
// requests the caller's own policy does not allow, and for every request
// on another account's function.
func (s *Service) ResourcePolicy(ctx context.Context, acct, name, qualifier string) (*policy.Document, error) {
	var p *function.Policy
	err := s.db.View(ctx, acct, func(tx Tx) error {
		f, err := tx.Function(name)
		if err != nil {
			return nil // no function, no policy
		}
		p = f.Policies[qualifier]
		return nil
	})
	if err != nil || p == nil {
		return nil, internal("resource policy", err)
	}
	key := acct + "\x00" + name + "\x00" + qualifier
	if c, ok := s.policies.m.Load(key); ok && c.(*parsedPolicy).revision == p.RevisionID {
		return c.(*parsedPolicy).doc, nil
	}
	doc, err := policy.Parse([]byte(policyDocument(p)))
	if err != nil {
		// Statements are written by AddPermission alone; one that does not
		// parse grants nothing.
		s.log.WarnContext(ctx, "a resource policy does not parse", "function", name, "qualifier", qualifier, "err", err)
		return nil, nil
	}
	s.policies.m.Store(key, &parsedPolicy{revision: p.RevisionID, doc: doc})
	return doc, nil
}

// dropPolicy removes the resource policy of a version or alias that goes
// away, so that one of the same name made later starts without it.
func dropPolicy(tx Tx, f *function.Function, qualifier string) error {
	if _, ok := f.Policies[qualifier]; !ok {
		return nil
	}
	// f may be stale after other writes in tx: read it again.
	cur, err := tx.Function(f.Name)
	if err != nil {
		return err
	}
	cur.Policies = withPolicy(cur.Policies, qualifier, nil)
	return tx.PutFunction(cur)
}

// policyTarget is the function whose policy a permission call reads or
// writes, once its version or alias (when ref names one) is found to
// exist; arn is what the 404 names.
func policyTarget(tx Tx, ref function.Ref, arn string) (*function.Function, error) {
	f, err := mustFunction(tx, ref.Name, arn)
	if err != nil {
		return nil, err
	}
	if ref.Qualifier != "" {
		if _, _, err := resolve(tx, ref.Name, ref.Qualifier, arn); err != nil {
			return nil, err
		}
	}
	return f, nil
}
