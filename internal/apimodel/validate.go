package apimodel

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Violations collects constraint failures in AWS's wording.
type Violations []string

// Message is the ValidationException message AWS sends for these
// violations: "1 validation error detected: ..." or "N validation errors
// detected: a; b".
func (v Violations) Message() string {
	if len(v) == 1 {
		return "1 validation error detected: " + v[0]
	}
	return fmt.Sprintf("%d validation errors detected: %s", len(v), strings.Join(v, "; "))
}

// memberPath is the name AWS gives a member in messages: lower camel case,
// dotted for nested members.
func memberPath(parent, name string) string {
	if name == "" {
		return parent
	}
	n := strings.ToLower(name[:1]) + name[1:]
	if parent == "" {
		return n
	}
	return parent + "." + n
}

func render(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return "'" + x + "'"
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1e18 {
			return "'" + strconv.FormatInt(int64(x), 10) + "'"
		}
		return "'" + strconv.FormatFloat(x, 'g', -1, 64) + "'"
	case bool:
		return "'" + strconv.FormatBool(x) + "'"
	default:
		return "'" + fmt.Sprint(x) + "'"
	}
}

func violation(path string, v any, must string) string {
	return fmt.Sprintf("Value %s at '%s' failed to satisfy constraint: Member must %s", render(v), path, must)
}

func num(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// CheckStructure checks a decoded structure (JSON object, members by their
// model names) against shape s, appending violations in member order.
func (s *Shape) CheckStructure(obj map[string]any, path string, out *Violations) {
	for _, n := range s.Names {
		v, present := obj[n]
		p := memberPath(path, n)
		if !present || v == nil {
			if contains(s.Required, n) {
				*out = append(*out, violation(p, nil, "not be null"))
			}
			continue
		}
		s.Members[n].Shape.Check(v, p, out)
	}
}

// Check checks one decoded JSON value against the shape.
func (s *Shape) Check(v any, path string, out *Violations) {
	switch s.Type {
	case "string":
		str, ok := v.(string)
		if !ok {
			return // type errors are the decoder's to report
		}
		n := float64(utf8.RuneCountInString(str))
		if s.Min != nil && n < *s.Min {
			*out = append(*out, violation(path, v, "have length greater than or equal to "+num(*s.Min)))
		}
		if s.Max != nil && n > *s.Max {
			*out = append(*out, violation(path, v, "have length less than or equal to "+num(*s.Max)))
		}
		if s.match != nil && !s.match(str) {
			*out = append(*out, violation(path, v, "satisfy regular expression pattern: "+s.Pattern))
		}
		if len(s.Enum) > 0 && !contains(s.Enum, str) {
			*out = append(*out, violation(path, v, "satisfy enum value set: ["+strings.Join(s.Enum, ", ")+"]"))
		}
	case "integer", "long", "double", "float":
		f, ok := v.(float64)
		if !ok {
			return
		}
		if s.Min != nil && f < *s.Min {
			*out = append(*out, violation(path, v, "have value greater than or equal to "+num(*s.Min)))
		}
		if s.Max != nil && f > *s.Max {
			*out = append(*out, violation(path, v, "have value less than or equal to "+num(*s.Max)))
		}
	case "list":
		l, ok := v.([]any)
		if !ok {
			return
		}
		s.checkLen(float64(len(l)), v, path, out)
		for _, e := range l {
			if s.Member != nil {
				s.Member.Check(e, path+".member", out)
			}
		}
	case "map":
		mp, ok := v.(map[string]any)
		if !ok {
			return
		}
		s.checkLen(float64(len(mp)), v, path, out)
		keys := make([]string, 0, len(mp))
		for k := range mp {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if s.Key != nil {
				s.Key.Check(k, path+".key", out)
			}
			if s.Value != nil {
				s.Value.Check(mp[k], path+".value", out)
			}
		}
	case "structure":
		if obj, ok := v.(map[string]any); ok {
			s.CheckStructure(obj, path, out)
		}
	}
}

func (s *Shape) checkLen(n float64, v any, path string, out *Violations) {
	if s.Min != nil && n < *s.Min {
		*out = append(*out, violation(path, summary(v), "have length greater than or equal to "+num(*s.Min)))
	}
	if s.Max != nil && n > *s.Max {
		*out = append(*out, violation(path, summary(v), "have length less than or equal to "+num(*s.Max)))
	}
}

// summary renders a list or map in a violation as AWS's Java front end
// does, loosely: its elements in brackets or braces.
func summary(v any) string {
	switch x := v.(type) {
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = fmt.Sprint(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + "=" + fmt.Sprint(x[k])
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return fmt.Sprint(v)
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// TypeMismatch returns the path of the first value in v whose JSON type is
// not the shape's ("" when every value fits), so that a body such as
// {"ReservedConcurrentExecutions": "x"} is refused before it is used.
func (s *Shape) TypeMismatch(v any, path string) string {
	if v == nil {
		return ""
	}
	switch s.Type {
	case "string", "timestamp", "blob":
		// Blobs are base64 strings in a JSON body; timestamps may be
		// strings or numbers.
		if _, ok := v.(string); ok {
			return ""
		}
		if _, ok := v.(float64); ok && s.Type == "timestamp" {
			return ""
		}
		return path
	case "integer", "long":
		if f, ok := v.(float64); ok && f == math.Trunc(f) && math.Abs(f) <= 1<<53 {
			return ""
		}
		return path
	case "double", "float":
		if _, ok := v.(float64); ok {
			return ""
		}
		return path
	case "boolean":
		if _, ok := v.(bool); ok {
			return ""
		}
		return path
	case "list":
		l, ok := v.([]any)
		if !ok {
			return path
		}
		for _, e := range l {
			if s.Member != nil {
				if p := s.Member.TypeMismatch(e, path+".member"); p != "" {
					return p
				}
			}
		}
	case "map":
		m, ok := v.(map[string]any)
		if !ok {
			return path
		}
		for _, k := range sortedKeys(m) {
			if s.Value != nil {
				if p := s.Value.TypeMismatch(m[k], path+"."+k); p != "" {
					return p
				}
			}
		}
	case "structure":
		m, ok := v.(map[string]any)
		if !ok {
			return path
		}
		for _, k := range sortedKeys(m) {
			if mem, ok := s.Members[k]; ok {
				if p := mem.Shape.TypeMismatch(m[k], memberPath(path, k)); p != "" {
					return p
				}
			}
		}
	}
	return ""
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
