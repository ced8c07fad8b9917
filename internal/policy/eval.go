package policy

import (
	"encoding/json"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Request is what a decision is about.
type Request struct {
	// Action is "lambda:InvokeFunction" and the like.
	Action string
	// Resource is the ARN acted on ("*" for operations on no resource).
	Resource string
	// PrincipalARN and PrincipalAccount are who asks; a resource-based
	// policy's Principal is matched against them.
	PrincipalARN     string
	PrincipalAccount string
	// SourceIP is aws:SourceIp; invalid when unknown.
	SourceIP netip.Addr
	// Time is aws:CurrentTime (and aws:EpochTime).
	Time time.Time
	// FunctionARN is lambda:FunctionArn, "" when the request names no
	// function.
	FunctionARN string
	// Keys are further condition keys, lower case ("lambda:functionarn").
	Keys map[string]string
}

// value returns a condition key's value in r, and whether it is present.
// Keys are case-insensitive, as IAM's are.
func (r *Request) value(key string) (string, bool) {
	switch key {
	case "aws:sourceip":
		if !r.SourceIP.IsValid() {
			return "", false
		}
		return r.SourceIP.String(), true
	case "aws:currenttime":
		if r.Time.IsZero() {
			return "", false
		}
		return r.Time.UTC().Format(time.RFC3339), true
	case "aws:epochtime":
		if r.Time.IsZero() {
			return "", false
		}
		return strconv.FormatInt(r.Time.Unix(), 10), true
	case "aws:principalarn":
		return r.PrincipalARN, r.PrincipalARN != ""
	case "aws:principalaccount":
		return r.PrincipalAccount, r.PrincipalAccount != ""
	case "lambda:functionarn":
		return r.FunctionARN, r.FunctionARN != ""
	}
	v, ok := r.Keys[key]
	return v, ok
}

// Decision is the outcome of an evaluation.
type Decision int

const (
	// ImplicitDeny: no statement allows (IAM's default deny).
	ImplicitDeny Decision = iota
	// Allowed: some statement allows and none denies.
	Allowed
	// ExplicitDeny: some statement denies.
	ExplicitDeny
)

func (d Decision) String() string {
	return [...]string{"ImplicitDeny", "Allow", "ExplicitDeny"}[d]
}

// Evaluate decides r against an identity-based policy: its statements
// name resources and no principal.
func (d *Document) Evaluate(r *Request) Decision {
	return d.evaluate(r, false, "")
}

// EvaluateResource decides r against a resource-based policy attached to
// the resource ARN own: a statement applies only when its Principal
// matches r's principal; a statement that names no Resource applies to
// own.
func (d *Document) EvaluateResource(r *Request, own string) Decision {
	return d.evaluate(r, true, own)
}

func (d *Document) evaluate(r *Request, resourceBased bool, own string) Decision {
	if d == nil {
		return ImplicitDeny
	}
	out := ImplicitDeny
	for i := range d.Statements {
		st := &d.Statements[i]
		if !st.applies(r, resourceBased, own) {
			continue
		}
		if st.Effect == Deny {
			return ExplicitDeny
		}
		out = Allowed
	}
	return out
}

func (st *Statement) applies(r *Request, resourceBased bool, own string) bool {
	if anyMatch(st.Actions, r.Action, true) == st.NotAction {
		return false
	}
	switch {
	case st.HasResource:
		if anyMatch(st.Resources, r.Resource, false) == st.NotResource {
			return false
		}
	case resourceBased:
		if r.Resource != own {
			return false
		}
	default:
		// An identity statement without Resource cannot be stored in IAM;
		// here it applies to nothing.
		return false
	}
	if resourceBased {
		if st.Principals == nil || st.Principals.match(r) == st.NotPrincipal {
			return false
		}
	}
	for i := range st.Conditions {
		if !st.Conditions[i].holds(r) {
			return false
		}
	}
	return true
}

// match reports whether p names r's principal: "*", its account (as an id
// or the account's root ARN), or its own ARN.
func (p *Principals) match(r *Request) bool {
	if p.All {
		return true
	}
	for _, a := range p.AWS {
		switch a {
		case r.PrincipalAccount, "arn:aws:iam::" + r.PrincipalAccount + ":root":
			if r.PrincipalAccount != "" {
				return true
			}
		case r.PrincipalARN:
			if r.PrincipalARN != "" {
				return true
			}
		}
	}
	return false
}

func anyMatch(patterns []string, s string, fold bool) bool {
	for _, p := range patterns {
		if Glob(p, s, fold) {
			return true
		}
	}
	return false
}

// Glob matches s against pattern, where * matches any run of characters
// and ? any one character; fold makes the match case-insensitive (action
// names are, ARNs are not).
func Glob(pattern, s string, fold bool) bool {
	// Iterative matching with one backtrack point: linear in practice,
	// never exponential.
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || eqByte(pattern[p], s[i], fold)):
			p++
			i++
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

func eqByte(a, b byte, fold bool) bool {
	if a == b {
		return true
	}
	if !fold {
		return false
	}
	if 'A' <= a && a <= 'Z' {
		a += 'a' - 'A'
	}
	if 'A' <= b && b <= 'Z' {
		b += 'a' - 'A'
	}
	return a == b
}

// Condition is one key's test under one operator.
type Condition struct {
	Op  string
	Key string // lower case
	// Values are ORed (for the negated operators: none may match).
	Values []string
	// IfExists makes an absent key pass.
	IfExists bool
	// forAll is ForAllValues: (single-valued keys here) an absent key passes.
	forAll bool
	test   func(have, want string) bool
	negate bool
	// null is the Null operator: want "true" means the key must be absent.
	null bool
	// prefixes are the Values of an IP address operator, parsed once.
	prefixes []netip.Prefix
}

// operators maps each supported operator to its test and whether it is
// negated (an absent key makes a negated operator true, as in IAM).
var operators = map[string]struct {
	test   func(have, want string) bool
	negate bool
}{
	"StringEquals":              {func(h, w string) bool { return h == w }, false},
	"StringNotEquals":           {func(h, w string) bool { return h == w }, true},
	"StringEqualsIgnoreCase":    {strings.EqualFold, false},
	"StringNotEqualsIgnoreCase": {strings.EqualFold, true},
	"StringLike":                {func(h, w string) bool { return Glob(w, h, false) }, false},
	"StringNotLike":             {func(h, w string) bool { return Glob(w, h, false) }, true},
	"ArnEquals":                 {arnLike, false},
	"ArnLike":                   {arnLike, false},
	"ArnNotEquals":              {arnLike, true},
	"ArnNotLike":                {arnLike, true},
	"NumericEquals":             {numeric(func(c int) bool { return c == 0 }), false},
	"NumericNotEquals":          {numeric(func(c int) bool { return c == 0 }), true},
	"NumericLessThan":           {numeric(func(c int) bool { return c < 0 }), false},
	"NumericLessThanEquals":     {numeric(func(c int) bool { return c <= 0 }), false},
	"NumericGreaterThan":        {numeric(func(c int) bool { return c > 0 }), false},
	"NumericGreaterThanEquals":  {numeric(func(c int) bool { return c >= 0 }), false},
	"DateEquals":                {date(func(c int) bool { return c == 0 }), false},
	"DateNotEquals":             {date(func(c int) bool { return c == 0 }), true},
	"DateLessThan":              {date(func(c int) bool { return c < 0 }), false},
	"DateLessThanEquals":        {date(func(c int) bool { return c <= 0 }), false},
	"DateGreaterThan":           {date(func(c int) bool { return c > 0 }), false},
	"DateGreaterThanEquals":     {date(func(c int) bool { return c >= 0 }), false},
	"Bool":                      {strings.EqualFold, false},
	"IpAddress":                 {inPrefix, false},
	"NotIpAddress":              {inPrefix, true},
}

func parseConditions(m map[string]map[string]json.RawMessage) ([]Condition, error) {
	var out []Condition
	ops := make([]string, 0, len(m))
	for op := range m {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	for _, full := range ops {
		op := full
		c := Condition{}
		if rest, ok := strings.CutPrefix(op, "ForAnyValue:"); ok {
			op = rest
		} else if rest, ok := strings.CutPrefix(op, "ForAllValues:"); ok {
			op, c.forAll = rest, true
		}
		if rest, ok := strings.CutSuffix(op, "IfExists"); ok && op != "IfExists" {
			op, c.IfExists = rest, true
		}
		c.Op = op
		if op == "Null" {
			c.null = true
		} else {
			o, ok := operators[op]
			if !ok {
				return nil, errorf("condition operator %q is not supported", full)
			}
			c.test, c.negate = o.test, o.negate
		}
		keys := make([]string, 0, len(m[full]))
		for k := range m[full] {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			vals, err := scalarList(m[full][k])
			if err != nil {
				return nil, errorf("condition %s %s: %v", full, k, err)
			}
			cc := c
			cc.Key, cc.Values = strings.ToLower(k), vals
			if err := cc.check(); err != nil {
				return nil, errorf("condition %s %s: %v", full, k, err)
			}
			out = append(out, cc)
		}
	}
	return out, nil
}

// check refuses values an operator cannot compare, as IAM refuses them
// when the policy is stored rather than when it is evaluated.
func (c *Condition) check() error {
	for _, v := range c.Values {
		switch {
		case strings.HasPrefix(c.Op, "Numeric"):
			if _, err := strconv.ParseFloat(v, 64); err != nil {
				return errorf("%q is not a number", v)
			}
		case strings.HasPrefix(c.Op, "Date"):
			if _, ok := parseDate(v); !ok {
				return errorf("%q is not a date", v)
			}
		case strings.HasSuffix(c.Op, "IpAddress"):
			p, ok := parsePrefix(v)
			if !ok {
				return errorf("%q is not an IP address or CIDR block", v)
			}
			c.prefixes = append(c.prefixes, p)
		}
	}
	return nil
}

func (c *Condition) holds(r *Request) bool {
	if c.prefixes != nil && c.Key == "aws:sourceip" && r.SourceIP.IsValid() {
		// The address as the request has it, against the blocks as
		// parsed with the policy.
		a, matched := r.SourceIP.Unmap(), false
		for _, p := range c.prefixes {
			if p.Contains(a) {
				matched = true
				break
			}
		}
		return matched != c.negate
	}
	have, ok := r.value(c.Key)
	if c.null {
		absent := !ok
		for _, w := range c.Values {
			if strings.EqualFold(w, strconv.FormatBool(absent)) {
				return true
			}
		}
		return false
	}
	if !ok {
		return c.IfExists || c.negate || c.forAll
	}
	matched := false
	for _, w := range c.Values {
		if c.test(have, w) {
			matched = true
			break
		}
	}
	return matched != c.negate
}

// arnLike compares ARNs part by part (arn:partition:service:region:
// account:resource), each part a glob, as ArnLike does.
func arnLike(have, want string) bool {
	hp := strings.SplitN(have, ":", 6)
	wp := strings.SplitN(want, ":", 6)
	if len(hp) != 6 || len(wp) != 6 {
		return Glob(want, have, false)
	}
	for i := range hp {
		if !Glob(wp[i], hp[i], false) {
			return false
		}
	}
	return true
}

func numeric(ok func(int) bool) func(string, string) bool {
	return func(have, want string) bool {
		h, err1 := strconv.ParseFloat(have, 64)
		w, err2 := strconv.ParseFloat(want, 64)
		if err1 != nil || err2 != nil {
			return false
		}
		return ok(cmp(h, w))
	}
}

func date(ok func(int) bool) func(string, string) bool {
	return func(have, want string) bool {
		h, ok1 := parseDate(have)
		w, ok2 := parseDate(want)
		if !ok1 || !ok2 {
			return false
		}
		return ok(h.Compare(w))
	}
}

func cmp(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// parseDate reads the date forms IAM accepts: ISO 8601 (with or without
// time) or epoch seconds.
func parseDate(s string) (time.Time, bool) {
	for _, f := range []string{time.RFC3339Nano, "2006-01-02T15:04Z07:00", "2006-01-02"} {
		if t, err := time.Parse(f, s); err == nil {
			return t, true
		}
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0), true
	}
	return time.Time{}, false
}

func parsePrefix(s string) (netip.Prefix, bool) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), true
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(a, a.BitLen()), true
	}
	return netip.Prefix{}, false
}

func inPrefix(have, want string) bool {
	a, err := netip.ParseAddr(have)
	p, ok := parsePrefix(want)
	return err == nil && ok && p.Contains(a.Unmap())
}
