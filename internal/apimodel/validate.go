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

// show renders a decoded value as AWS's Java front end prints it in a
// message: strings as they are, numbers of a floating-point shape as Java
// doubles ("2.0"), lists as "[a, b]" and maps as "{k=v}" (keys sorted, where
// Java's order is a hash map's). s may be nil when the shape is unknown.
func (s *Shape) show(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return x
	case float64:
		if s != nil && (s.Type == "double" || s.Type == "float") {
			return javaDouble(x)
		}
		if x == math.Trunc(x) && math.Abs(x) < 1e18 {
			return strconv.FormatInt(int64(x), 10)
		}
		return strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case []any:
		var elem *Shape
		if s != nil {
			elem = s.Member
		}
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = elem.show(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case map[string]any:
		var key, val *Shape
		if s != nil {
			key, val = s.Key, s.Value
		}
		keys := sortedKeys(x)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = key.show(k) + "=" + val.show(x[k])
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return fmt.Sprint(v)
}

// javaDouble formats f as Java's Double.toString does: at least one
// decimal ("1.0"), and scientific notation outside [1e-3, 1e7).
func javaDouble(f float64) string {
	a := math.Abs(f)
	if a == 0 || (a >= 1e-3 && a < 1e7) {
		out := strconv.FormatFloat(f, 'f', -1, 64)
		if !strings.Contains(out, ".") {
			out += ".0"
		}
		return out
	}
	mant, exp, _ := strings.Cut(strconv.FormatFloat(f, 'E', -1, 64), "E")
	if !strings.Contains(mant, ".") {
		mant += ".0"
	}
	e, _ := strconv.Atoi(exp)
	return mant + "E" + strconv.Itoa(e)
}

// value is the "Value ..." part of a violation: the value quoted, "null",
// or nothing at all for a sensitive shape, whose values AWS never echoes
// ("Value at 'environment.variables' ...").
func (s *Shape) value(v any) string {
	switch {
	case v == nil:
		return "Value null"
	case s != nil && s.Sensitive:
		return "Value"
	}
	return "Value '" + s.show(v) + "'"
}

func (s *Shape) violation(path string, v any, constraint string) string {
	return fmt.Sprintf("%s at '%s' failed to satisfy constraint: %s", s.value(v), path, constraint)
}

func violation(path string, v any, must string) string {
	var unknown *Shape
	return unknown.violation(path, v, "Member must "+must)
}

// bound renders a min or max of the shape: "1" for integers, "1.0" for
// floating-point shapes.
func (s *Shape) bound(f float64) string {
	if s.Type == "double" || s.Type == "float" {
		return javaDouble(f)
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

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

// broken returns the constraints of a scalar shape that v breaks, worded
// as AWS words them after "Member must ".
func (s *Shape) broken(v any) []string {
	var out []string
	switch s.Type {
	case "string":
		str, ok := v.(string)
		if !ok {
			return nil // type errors are the decoder's to report
		}
		n := float64(utf8.RuneCountInString(str))
		if s.Min != nil && n < *s.Min {
			out = append(out, "have length greater than or equal to "+s.bound(*s.Min))
		}
		if s.Max != nil && n > *s.Max {
			out = append(out, "have length less than or equal to "+s.bound(*s.Max))
		}
		if s.match != nil && !s.match(str) {
			out = append(out, "satisfy regular expression pattern: "+s.Pattern)
		}
		if len(s.Enum) > 0 && !s.serviceEnum && !contains(s.Enum, str) {
			out = append(out, "satisfy enum value set: ["+strings.Join(s.Enum, ", ")+"]")
		}
	case "integer", "long", "double", "float":
		f, ok := v.(float64)
		if !ok {
			return nil
		}
		if s.Min != nil && f < *s.Min {
			out = append(out, "have value greater than or equal to "+s.bound(*s.Min))
		}
		if s.Max != nil && f > *s.Max {
			out = append(out, "have value less than or equal to "+s.bound(*s.Max))
		}
	}
	return out
}

// constraints lists every constraint of a scalar shape, in the order AWS
// lists them inside "Member must satisfy constraint: [...]": maximum,
// minimum, pattern, enum.
func (s *Shape) constraints() []string {
	var out []string
	word := "length"
	if s.Type != "string" {
		word = "value"
	}
	if s.Max != nil {
		out = append(out, "Member must have "+word+" less than or equal to "+s.bound(*s.Max))
	}
	if s.Min != nil {
		out = append(out, "Member must have "+word+" greater than or equal to "+s.bound(*s.Min))
	}
	if s.Pattern != "" {
		out = append(out, "Member must satisfy regular expression pattern: "+s.Pattern)
	}
	if len(s.Enum) > 0 && !s.serviceEnum {
		out = append(out, "Member must satisfy enum value set: ["+strings.Join(s.Enum, ", ")+"]")
	}
	return out
}

func scalar(s *Shape) bool {
	switch s.Type {
	case "structure", "list", "map":
		return false
	}
	return true
}

// Check checks one decoded JSON value against the shape.
func (s *Shape) Check(v any, path string, out *Violations) {
	switch s.Type {
	case "list":
		l, ok := v.([]any)
		if !ok {
			return
		}
		s.checkLen(float64(len(l)), v, path, out)
		if s.Member == nil {
			return
		}
		if !scalar(s.Member) {
			// Members of a structure are named by the element's 1-based
			// position: "fileSystemConfigs.1.member.arn".
			for i, e := range l {
				if e != nil {
					s.Member.Check(e, path+"."+strconv.Itoa(i+1)+".member", out)
				}
			}
			return
		}
		// AWS checks a list's elements as one constraint on the list: one
		// violation naming the whole list and every constraint of an
		// element, "Member must not be null" last.
		for _, e := range l {
			if e == nil || len(s.Member.broken(e)) > 0 {
				*out = append(*out, s.violation(path, v, "Member must satisfy constraint: ["+
					strings.Join(append(s.Member.constraints(), "Member must not be null"), ", ")+"]"))
				break
			}
		}
	case "map":
		mp, ok := v.(map[string]any)
		if !ok {
			return
		}
		s.checkLen(float64(len(mp)), v, path, out)
		keys := sortedKeys(mp)
		// Keys and values are one constraint each on the whole map, as for
		// list elements; keys cannot be null, so their list has no "not
		// null".
		if s.Key != nil {
			for _, k := range keys {
				if len(s.Key.broken(k)) > 0 {
					*out = append(*out, s.violation(path, v, "Map keys must satisfy constraint: ["+
						strings.Join(s.Key.constraints(), ", ")+"]"))
					break
				}
			}
		}
		if s.Value == nil {
			return
		}
		for _, k := range keys {
			e := mp[k]
			if !scalar(s.Value) {
				if e != nil {
					s.Value.Check(e, path+"."+k, out)
				}
				continue
			}
			if e == nil || len(s.Value.broken(e)) > 0 {
				*out = append(*out, s.violation(path, v, "Map value must satisfy constraint: ["+
					strings.Join(append(s.Value.constraints(), "Member must not be null"), ", ")+"]"))
				break
			}
		}
	case "structure":
		if obj, ok := v.(map[string]any); ok {
			s.CheckStructure(obj, path, out)
		}
	default:
		for _, must := range s.broken(v) {
			*out = append(*out, s.violation(path, v, "Member must "+must))
		}
	}
}

func (s *Shape) checkLen(n float64, v any, path string, out *Violations) {
	if s.Min != nil && n < *s.Min {
		*out = append(*out, s.violation(path, v, "Member must have length greater than or equal to "+num(*s.Min)))
	}
	if s.Max != nil && n > *s.Max {
		*out = append(*out, s.violation(path, v, "Member must have length less than or equal to "+num(*s.Max)))
	}
}

func num(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

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
