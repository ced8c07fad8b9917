package apimodel

import (
	"testing"
)

func TestViolationWording(t *testing.T) {
	m := MustLoad()
	put := m.Operations["PutFunctionConcurrency"]
	create := m.Operations["CreateFunction"]
	alias := m.Operations["CreateAlias"]
	cases := []struct {
		name  string
		shape *Shape
		in    map[string]any
		want  string
	}{
		{"below min", put.Input, map[string]any{"FunctionName": "f", "ReservedConcurrentExecutions": -1.0},
			"1 validation error detected: Value '-1' at 'reservedConcurrentExecutions' failed to satisfy constraint: Member must have value greater than or equal to 0"},
		{"missing", put.Input, map[string]any{"FunctionName": "f"},
			"1 validation error detected: Value null at 'reservedConcurrentExecutions' failed to satisfy constraint: Member must not be null"},
		{"too long", put.Input, map[string]any{"FunctionName": string(make([]byte, 141)), "ReservedConcurrentExecutions": 1.0}, ""},
		{"enum and max", create.Input, map[string]any{"FunctionName": "f", "Role": "arn:aws:iam::123456789012:role/r", "Code": map[string]any{},
			"Runtime": "cobol", "MemorySize": 40000.0},
			"2 validation errors detected: Value '40000' at 'memorySize' failed to satisfy constraint: Member must have value less than or equal to 32768; " +
				"Value 'cobol' at 'runtime' failed to satisfy constraint: Member must satisfy enum value set: [" + join(m.Shapes["Runtime"].Enum) + "]"},
		{"alias all digits", alias.Input, map[string]any{"FunctionName": "f", "Name": "123", "FunctionVersion": "1"},
			"1 validation error detected: Value '123' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: (?!^[0-9]+$)([a-zA-Z0-9-_]+)"},
		{"alias fine", alias.Input, map[string]any{"FunctionName": "f", "Name": "live1", "FunctionVersion": "1"}, ""},
	}
	for _, c := range cases {
		var v Violations
		c.shape.CheckStructure(c.in, "", &v)
		got := ""
		if len(v) > 0 {
			got = v.Message()
		}
		if c.name == "too long" {
			if len(v) != 2 { // length, and the pattern (NUL bytes)
				t.Errorf("%s: %q", c.name, got)
			}
			continue
		}
		if got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, got, c.want)
		}
	}
}

func join(s []string) string {
	out := ""
	for i, e := range s {
		if i > 0 {
			out += ", "
		}
		out += e
	}
	return out
}

func TestTypeMismatch(t *testing.T) {
	m := MustLoad()
	in := m.Operations["PutFunctionConcurrency"].Input
	for _, c := range []struct {
		v    map[string]any
		want string
	}{
		{map[string]any{"ReservedConcurrentExecutions": 5.0}, ""},
		{map[string]any{"ReservedConcurrentExecutions": "5"}, "reservedConcurrentExecutions"},
		{map[string]any{"ReservedConcurrentExecutions": 1.5}, "reservedConcurrentExecutions"},
		{map[string]any{"ReservedConcurrentExecutions": true}, "reservedConcurrentExecutions"},
	} {
		if got := in.TypeMismatch(c.v, ""); got != c.want {
			t.Errorf("%v: %q, want %q", c.v, got, c.want)
		}
	}
}
