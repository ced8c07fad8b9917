// Package filter is Lambda's event filtering for SQS event source mappings:
// the patterns of a mapping's FilterCriteria, checked when the mapping is
// created or updated and matched against each message's record before the
// record goes into a batch.
//
// The syntax is the subset of EventBridge's event patterns that Lambda's
// "Control which events Lambda sends to your function" documents: a pattern
// is a JSON object whose keys name the record's fields (messageId,
// attributes, messageAttributes, body, ...) and whose leaves are arrays of
// rules, any of which may match (OR), while the keys of one object must all
// match (AND). The rules:
//
//	"k": [null]                          k is null
//	"k": [""]                            k is the empty string
//	"k": ["a", 5, true]                  k equals one of them (numbers by their text)
//	"k": [{"equals-ignore-case": "a"}]
//	"k": [{"prefix": "us-"}]             begins with
//	"k": [{"suffix": ".png"}]            ends with
//	"k": [{"anything-but": ["a", "b"]}]  also {"anything-but": "a"} or a number
//	"k": [{"numeric": [">", 0, "<=", 5]}], or ["=", 100]
//	"k": [{"exists": true}], [{"exists": false}]
//	"$or": [{...}, {...}]                any of two or more patterns
//
// Filters of one mapping are ORed: a record passes when any matches. A
// value that is an array matches when any of its elements does. Strings
// compare exactly, without case folding; numbers compare as their text
// except under "numeric" (so 300, 300.0 and 3e2 are three values, as AWS
// says). EventBridge's wildcard and the prefix, suffix and ignore-case forms
// of anything-but are not in Lambda's list and are refused.
//
// The body: a pattern whose "body" is an object matches only messages whose
// body is a JSON object, field by field; a pattern whose "body" is a list of
// rules matches only bodies that are not a JSON object, as a string. A
// message of the other kind does not match that pattern (AWS's table in
// "Properly filtering Amazon SQS messages").
package filter

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Limits of AWS: five filters a mapping (the default quota) and 4,096
// characters a pattern (the API model's bound on Filter.Pattern).
const (
	MaxFilters       = 5
	MaxPatternLength = 4096
)

// Criteria are a mapping's compiled filters.
type Criteria struct {
	patterns []*pattern
}

type bodyKind int

const (
	bodyAny    bodyKind = iota // the pattern says nothing of the body
	bodyObject                 // the body must be a JSON object, matched by fields
	bodyString                 // the body must not be a JSON object, matched as a string
)

type pattern struct {
	root *node
	body bodyKind
	// usesBody: the pattern names the body, at its top or in a top-level
	// $or, so the record it is matched against carries the body.
	usesBody bool
}

// node is one object of a pattern: every key must match, and for each $or
// one of its alternatives.
type node struct {
	keys []key
	ors  [][]*node
}

type key struct {
	name  string
	sub   *node  // an object below the key
	rules []rule // or a list of rules, any of which may match
}

type ruleKind int

const (
	ruleString ruleKind = iota
	ruleNumber          // a literal number, compared by its text
	ruleBool
	ruleNull
	rulePrefix
	ruleSuffix
	ruleIgnoreCase
	ruleAnythingBut
	ruleNumeric
	ruleExists
)

type rule struct {
	kind ruleKind
	s    string
	b    bool
	// anything-but's values, each a string or a number's text.
	but []butValue
	// numeric's bounds.
	lo, hi       float64
	loInc, hiInc bool
	eq           *float64
}

type butValue struct {
	s      string
	number bool
}

// Error is a pattern AWS would refuse, with why.
type Error struct {
	Index  int // which filter, from 0
	Reason string
}

func (e *Error) Error() string {
	return fmt.Sprintf("filter %d: %s", e.Index, e.Reason)
}

// Compile checks and compiles a mapping's patterns. An empty list is no
// filtering (nil Criteria, which matches everything).
func Compile(patterns []string) (*Criteria, error) {
	if len(patterns) == 0 {
		return nil, nil
	}
	if len(patterns) > MaxFilters {
		return nil, &Error{Index: MaxFilters, Reason: fmt.Sprintf("%d filters; an event source mapping takes at most %d", len(patterns), MaxFilters)}
	}
	c := &Criteria{}
	for i, p := range patterns {
		cp, err := compile(p)
		if err != nil {
			return nil, &Error{Index: i, Reason: err.Error()}
		}
		c.patterns = append(c.patterns, cp)
	}
	return c, nil
}

func compile(src string) (*pattern, error) {
	if len(src) > MaxPatternLength {
		return nil, fmt.Errorf("the pattern has %d characters; at most %d are allowed", len(src), MaxPatternLength)
	}
	v, err := decode([]byte(src))
	if err != nil {
		return nil, fmt.Errorf("the pattern is not JSON: %v", err)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("a pattern must be a JSON object")
	}
	root, err := compileNode(obj, 0)
	if err != nil {
		return nil, err
	}
	p := &pattern{root: root, usesBody: root.usesBody()}
	switch obj["body"].(type) {
	case map[string]any:
		p.body = bodyObject
	case []any:
		p.body = bodyString
	}
	return p, nil
}

func (n *node) usesBody() bool {
	for _, k := range n.keys {
		if k.name == "body" {
			return true
		}
	}
	for _, group := range n.ors {
		for _, alt := range group {
			if alt.usesBody() {
				return true
			}
		}
	}
	return false
}

// maxDepth bounds the nesting of a pattern, far beyond what 4,096
// characters of sensible pattern hold, so that compiling and matching
// cannot recurse without end.
const maxDepth = 64

func compileNode(obj map[string]any, depth int) (*node, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("the pattern nests deeper than %d objects", maxDepth)
	}
	if len(obj) == 0 {
		return nil, errors.New("an object of a pattern must have at least one key")
	}
	n := &node{}
	names := make([]string, 0, len(obj))
	for k := range obj {
		names = append(names, k)
	}
	sort.Strings(names) // a stable order, so that errors are the same each time
	for _, name := range names {
		v := obj[name]
		if name == "$or" {
			alts, ok := v.([]any)
			if !ok || len(alts) < 2 {
				return nil, errors.New(`"$or" takes a list of at least two patterns`)
			}
			var group []*node
			for _, a := range alts {
				ao, ok := a.(map[string]any)
				if !ok {
					return nil, errors.New(`each alternative of "$or" must be an object`)
				}
				an, err := compileNode(ao, depth+1)
				if err != nil {
					return nil, err
				}
				group = append(group, an)
			}
			n.ors = append(n.ors, group)
			continue
		}
		switch v := v.(type) {
		case map[string]any:
			sub, err := compileNode(v, depth+1)
			if err != nil {
				return nil, err
			}
			n.keys = append(n.keys, key{name: name, sub: sub})
		case []any:
			if len(v) == 0 {
				return nil, fmt.Errorf("the rules of %q are an empty list", name)
			}
			var rules []rule
			for _, r := range v {
				cr, err := compileRule(name, r)
				if err != nil {
					return nil, err
				}
				rules = append(rules, cr)
			}
			n.keys = append(n.keys, key{name: name, rules: rules})
		default:
			return nil, fmt.Errorf("the value of %q must be an object or a list of rules, not %s", name, jsonType(v))
		}
	}
	return n, nil
}

func compileRule(name string, r any) (rule, error) {
	switch r := r.(type) {
	case nil:
		return rule{kind: ruleNull}, nil
	case string:
		return rule{kind: ruleString, s: r}, nil
	case json.Number:
		return rule{kind: ruleNumber, s: r.String()}, nil
	case bool:
		return rule{kind: ruleBool, b: r}, nil
	case map[string]any:
		if len(r) != 1 {
			return rule{}, fmt.Errorf("a rule of %q must have exactly one operator, has %d", name, len(r))
		}
		for op, arg := range r {
			return compileOperator(name, op, arg)
		}
	}
	return rule{}, fmt.Errorf("a rule of %q cannot be %s", name, jsonType(r))
}

func compileOperator(name, op string, arg any) (rule, error) {
	switch op {
	case "prefix", "suffix", "equals-ignore-case":
		s, ok := arg.(string)
		if !ok {
			return rule{}, fmt.Errorf("%q of %q takes a string", op, name)
		}
		kind := map[string]ruleKind{"prefix": rulePrefix, "suffix": ruleSuffix, "equals-ignore-case": ruleIgnoreCase}[op]
		if s == "" && kind != ruleIgnoreCase {
			return rule{}, fmt.Errorf("%q of %q takes a non-empty string", op, name)
		}
		return rule{kind: kind, s: s}, nil
	case "exists":
		b, ok := arg.(bool)
		if !ok {
			return rule{}, fmt.Errorf(`"exists" of %q takes true or false`, name)
		}
		return rule{kind: ruleExists, b: b}, nil
	case "anything-but":
		var vals []any
		switch a := arg.(type) {
		case []any:
			if len(a) == 0 {
				return rule{}, fmt.Errorf(`"anything-but" of %q takes a non-empty list`, name)
			}
			vals = a
		case string, json.Number:
			vals = []any{a}
		case map[string]any:
			return rule{}, fmt.Errorf(`"anything-but" of %q with an operator (prefix, suffix, equals-ignore-case, wildcard) is not supported by Lambda event filtering`, name)
		default:
			return rule{}, fmt.Errorf(`"anything-but" of %q takes a string, a number or a list of them`, name)
		}
		out := rule{kind: ruleAnythingBut}
		for _, v := range vals {
			switch v := v.(type) {
			case string:
				out.but = append(out.but, butValue{s: v})
			case json.Number:
				out.but = append(out.but, butValue{s: v.String(), number: true})
			default:
				return rule{}, fmt.Errorf(`the values of "anything-but" of %q must be strings or numbers`, name)
			}
		}
		return out, nil
	case "numeric":
		return compileNumeric(name, arg)
	case "wildcard", "cidr":
		return rule{}, fmt.Errorf("%q of %q is not supported by Lambda event filtering", op, name)
	}
	return rule{}, fmt.Errorf("unknown operator %q in a rule of %q", op, name)
}

func compileNumeric(name string, arg any) (rule, error) {
	a, ok := arg.([]any)
	if !ok || (len(a) != 2 && len(a) != 4) {
		return rule{}, fmt.Errorf(`"numeric" of %q takes [op, number] or [op, number, op, number]`, name)
	}
	r := rule{kind: ruleNumeric, lo: math.Inf(-1), hi: math.Inf(1)}
	seenLo, seenHi := false, false
	for i := 0; i < len(a); i += 2 {
		op, ok := a[i].(string)
		num, ok2 := a[i+1].(json.Number)
		if !ok || !ok2 {
			return rule{}, fmt.Errorf(`"numeric" of %q takes operators and numbers in turn`, name)
		}
		f, err := strconv.ParseFloat(num.String(), 64)
		if err != nil || math.IsInf(f, 0) {
			return rule{}, fmt.Errorf(`"numeric" of %q: %s is not a number in range`, name, num)
		}
		switch op {
		case "=":
			if len(a) != 2 {
				return rule{}, fmt.Errorf(`"numeric" of %q: "=" stands alone`, name)
			}
			r.eq = &f
		case ">", ">=":
			if seenLo {
				return rule{}, fmt.Errorf(`"numeric" of %q has two lower bounds`, name)
			}
			seenLo, r.lo, r.loInc = true, f, op == ">="
		case "<", "<=":
			if seenHi {
				return rule{}, fmt.Errorf(`"numeric" of %q has two upper bounds`, name)
			}
			seenHi, r.hi, r.hiInc = true, f, op == "<="
		default:
			return rule{}, fmt.Errorf(`"numeric" of %q: unknown operator %q (=, <, <=, >, >=)`, name, op)
		}
	}
	if seenLo && seenHi && r.lo > r.hi {
		return rule{}, fmt.Errorf(`"numeric" of %q: the range is empty`, name)
	}
	return r, nil
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// decode reads JSON keeping numbers as their text, and refuses anything
// after the value.
func decode(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if d.More() {
		return nil, errors.New("data after the JSON value")
	}
	return v, nil
}

// Match reports whether a record passes: fields are the record's fields
// other than the body (strings and maps of them, as in the event), body
// the message's body. Nil Criteria match everything.
func (c *Criteria) Match(fields map[string]any, body string) bool {
	if c == nil {
		return true
	}
	var parsed map[string]any
	parsedDone := false
	for _, p := range c.patterns {
		rec := fields
		if p.usesBody {
			if !parsedDone {
				parsedDone = true
				if v, err := decode([]byte(body)); err == nil {
					parsed, _ = v.(map[string]any)
				}
			}
			if p.body != bodyAny && (p.body == bodyObject) != (parsed != nil) {
				continue // AWS drops a body of the other kind than the pattern's
			}
			rec = make(map[string]any, len(fields)+1)
			for k, v := range fields {
				rec[k] = v
			}
			if parsed != nil {
				rec["body"] = parsed
			} else {
				rec["body"] = body
			}
		}
		if p.root.match(rec) {
			return true
		}
	}
	return false
}

func (n *node) match(obj map[string]any) bool {
	for i := range n.keys {
		k := &n.keys[i]
		v, present := obj[k.name]
		if k.sub != nil {
			if !k.sub.matchValue(v) {
				return false
			}
			continue
		}
		if !matchRules(k.rules, v, present) {
			return false
		}
	}
	for _, group := range n.ors {
		ok := false
		for _, alt := range group {
			if alt.match(obj) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// matchValue matches an object pattern against a value: an object, a list
// of which any may match, or nothing (then only rules of absence can
// match, as in EventBridge, where "exists": false holds of a field under a
// missing parent).
func (n *node) matchValue(v any) bool {
	switch v := v.(type) {
	case map[string]any:
		return n.match(v)
	case []any:
		for _, e := range v {
			if n.matchValue(e) {
				return true
			}
		}
		return false
	}
	return n.match(nil)
}

func matchRules(rules []rule, v any, present bool) bool {
	if list, ok := v.([]any); ok && present {
		for _, e := range list {
			if matchRules(rules, e, true) {
				return true
			}
		}
		// An empty list is as good as no value for exists and absence.
		if len(list) > 0 {
			return false
		}
		present = false
	}
	if _, isObj := v.(map[string]any); isObj {
		// Rules apply to leaves only; an object matches none, not even
		// exists (EventBridge's rule).
		return false
	}
	for i := range rules {
		if rules[i].match(v, present) {
			return true
		}
	}
	return false
}

func (r *rule) match(v any, present bool) bool {
	if r.kind == ruleExists {
		return r.b == present
	}
	if !present {
		return false
	}
	switch r.kind {
	case ruleNull:
		return v == nil
	case ruleString:
		s, ok := v.(string)
		return ok && s == r.s
	case ruleNumber:
		n, ok := v.(json.Number)
		return ok && n.String() == r.s
	case ruleBool:
		b, ok := v.(bool)
		return ok && b == r.b
	case rulePrefix:
		s, ok := v.(string)
		return ok && strings.HasPrefix(s, r.s)
	case ruleSuffix:
		s, ok := v.(string)
		return ok && strings.HasSuffix(s, r.s)
	case ruleIgnoreCase:
		s, ok := v.(string)
		return ok && strings.EqualFold(s, r.s)
	case ruleAnythingBut:
		var s string
		var number bool
		switch v := v.(type) {
		case string:
			s = v
		case json.Number:
			s, number = v.String(), true
		default:
			// null and booleans are not among anything-but's strings and
			// numbers.
			return true
		}
		for _, b := range r.but {
			if b.number == number && b.s == s {
				return false
			}
		}
		return true
	case ruleNumeric:
		n, ok := v.(json.Number)
		if !ok {
			return false
		}
		f, err := strconv.ParseFloat(n.String(), 64)
		if err != nil {
			return false
		}
		if r.eq != nil {
			return f == *r.eq
		}
		if f < r.lo || (f == r.lo && !r.loInc) {
			return false
		}
		if f > r.hi || (f == r.hi && !r.hiInc) {
			return false
		}
		return true
	}
	return false
}
