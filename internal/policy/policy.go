// Package policy parses IAM policy documents and evaluates them as IAM
// does: a statement applies when its Action (or NotAction), Resource (or
// NotResource), Principal (in resource-based policies) and every condition
// match; any applying Deny wins, otherwise any applying Allow allows, and
// with neither the answer is the implicit deny. It is pure: no I/O, no
// clock (the request carries its time).
package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Effect is a statement's Allow or Deny.
type Effect bool

const (
	Deny  Effect = false
	Allow Effect = true
)

// Document is a parsed policy.
type Document struct {
	Version    string
	Statements []Statement
}

// Statement is one statement of a policy.
type Statement struct {
	Sid    string
	Effect Effect
	// Principals are the principals a resource-based statement names;
	// nil in identity policies. NotPrincipal inverts the match.
	Principals   *Principals
	NotPrincipal bool
	// Actions are patterns ("lambda:Get*"); NotAction inverts the match.
	Actions   []string
	NotAction bool
	// Resources are ARN patterns; NotResource inverts the match. Empty
	// with HasResource false means the statement names none (a resource
	// policy's statements apply to the resource they are attached to).
	Resources   []string
	NotResource bool
	HasResource bool
	Conditions  []Condition
}

// Principals are what a statement's Principal element names.
type Principals struct {
	// All is "Principal": "*" (or {"AWS": "*"}).
	All bool
	// AWS are account ids, account root ARNs, or user and role ARNs.
	AWS []string
	// Service are service principals ("s3.amazonaws.com").
	Service []string
}

// Error is a malformed policy, with IAM's kind of message.
type Error struct{ Msg string }

func (e *Error) Error() string { return e.Msg }

func errorf(format string, args ...any) error { return &Error{fmt.Sprintf(format, args...)} }

// Parse parses a policy document: Version, and Statement as one statement
// or a list of them.
func Parse(data []byte) (*Document, error) {
	var raw struct {
		Version   string          `json:"Version"`
		ID        string          `json:"Id"`
		Statement json.RawMessage `json:"Statement"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return nil, errorf("the policy is not a JSON policy document: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errorf("the policy has content after its document")
	}
	switch raw.Version {
	case "", "2012-10-17", "2008-10-17":
	default:
		return nil, errorf("the policy's Version must be 2012-10-17 or 2008-10-17, not %q", raw.Version)
	}
	d := &Document{Version: raw.Version}
	var stmts []json.RawMessage
	trimmed := bytes.TrimSpace(raw.Statement)
	switch {
	case len(trimmed) == 0 || string(trimmed) == "null":
		return nil, errorf("the policy has no Statement")
	case trimmed[0] == '[':
		if err := json.Unmarshal(trimmed, &stmts); err != nil {
			return nil, errorf("Statement: %v", err)
		}
	default:
		stmts = []json.RawMessage{trimmed}
	}
	if len(stmts) == 0 {
		return nil, errorf("the policy has no Statement")
	}
	for i, rs := range stmts {
		st, err := parseStatement(rs)
		if err != nil {
			return nil, errorf("Statement[%d]: %v", i, err)
		}
		d.Statements = append(d.Statements, st)
	}
	return d, nil
}

type rawStatement struct {
	Sid          string                                `json:"Sid"`
	Effect       string                                `json:"Effect"`
	Principal    json.RawMessage                       `json:"Principal"`
	NotPrincipal json.RawMessage                       `json:"NotPrincipal"`
	Action       json.RawMessage                       `json:"Action"`
	NotAction    json.RawMessage                       `json:"NotAction"`
	Resource     json.RawMessage                       `json:"Resource"`
	NotResource  json.RawMessage                       `json:"NotResource"`
	Condition    map[string]map[string]json.RawMessage `json:"Condition"`
}

func parseStatement(data []byte) (Statement, error) {
	var r rawStatement
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Statement{}, err
	}
	st := Statement{Sid: r.Sid}
	switch r.Effect {
	case "Allow":
		st.Effect = Allow
	case "Deny":
		st.Effect = Deny
	default:
		return st, errorf("Effect must be Allow or Deny, not %q", r.Effect)
	}
	var err error
	if st.Actions, st.NotAction, err = either(r.Action, r.NotAction, "Action"); err != nil {
		return st, err
	}
	if len(st.Actions) == 0 {
		return st, errorf("the statement must contain actions")
	}
	for _, a := range st.Actions {
		if a != "*" && !strings.Contains(a, ":") {
			return st, errorf("action %q must be of the form service:Action", a)
		}
	}
	if len(r.Resource) > 0 || len(r.NotResource) > 0 {
		if st.Resources, st.NotResource, err = either(r.Resource, r.NotResource, "Resource"); err != nil {
			return st, err
		}
		st.HasResource = true
	}
	if len(r.Principal) > 0 && len(r.NotPrincipal) > 0 {
		return st, errorf("a statement may have Principal or NotPrincipal, not both")
	}
	if p := r.Principal; len(p) > 0 || len(r.NotPrincipal) > 0 {
		if len(p) == 0 {
			p, st.NotPrincipal = r.NotPrincipal, true
		}
		if st.Principals, err = parsePrincipals(p); err != nil {
			return st, err
		}
	}
	if st.Conditions, err = parseConditions(r.Condition); err != nil {
		return st, err
	}
	return st, nil
}

// either reads an element and its Not form, exactly one of which may be
// present.
func either(pos, neg json.RawMessage, name string) ([]string, bool, error) {
	if len(pos) > 0 && len(neg) > 0 {
		return nil, false, errorf("a statement may have %s or Not%s, not both", name, name)
	}
	not := len(pos) == 0
	raw, field := pos, name
	if not {
		raw, field = neg, "Not"+name
	}
	if len(raw) == 0 {
		return nil, false, nil
	}
	vals, err := stringList(raw)
	if err != nil {
		return nil, false, errorf("%s: %v", field, err)
	}
	if len(vals) == 0 {
		return nil, false, errorf("%s must not be empty", field)
	}
	return vals, not, nil
}

// stringList reads a string or a list of strings.
func stringList(raw json.RawMessage) ([]string, error) {
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, errorf("must be a string or a list of strings")
	}
	return many, nil
}

// scalarList reads condition values: strings, numbers or booleans, one or
// a list, each as its text.
func scalarList(raw json.RawMessage) ([]string, error) {
	var vals []any
	var one any
	if err := json.Unmarshal(raw, &one); err != nil {
		return nil, err
	}
	if l, ok := one.([]any); ok {
		vals = l
	} else {
		vals = []any{one}
	}
	out := make([]string, 0, len(vals))
	for _, v := range vals {
		switch v := v.(type) {
		case string:
			out = append(out, v)
		case float64:
			out = append(out, strconv.FormatFloat(v, 'f', -1, 64))
		case bool:
			out = append(out, strconv.FormatBool(v))
		default:
			return nil, errorf("condition values must be strings, numbers or booleans")
		}
	}
	return out, nil
}

func parsePrincipals(raw json.RawMessage) (*Principals, error) {
	var star string
	if err := json.Unmarshal(raw, &star); err == nil {
		if star != "*" {
			return nil, errorf(`Principal must be "*" or an object`)
		}
		return &Principals{All: true}, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, errorf(`Principal must be "*" or an object`)
	}
	p := &Principals{}
	for k, v := range m {
		vals, err := stringList(v)
		if err != nil {
			return nil, errorf("Principal %s: %v", k, err)
		}
		switch k {
		case "AWS":
			for _, a := range vals {
				if a == "*" {
					p.All = true
				}
			}
			p.AWS = vals
		case "Service":
			p.Service = vals
		default:
			return nil, errorf("Principal type %q is not one lambdad knows (AWS, Service)", k)
		}
	}
	return p, nil
}
