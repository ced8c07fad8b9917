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
			"PackageType": "Jar", "MemorySize": 40000.0},
			"2 validation errors detected: Value '40000' at 'memorySize' failed to satisfy constraint: Member must have value less than or equal to 32768; " +
				"Value 'Jar' at 'packageType' failed to satisfy constraint: Member must satisfy enum value set: [Zip, Image]"},
		// AWS's front end lets any Runtime through; the service answers
		// with its own error (internal/function.CheckRuntime).
		{"runtime is the service's", create.Input, map[string]any{"FunctionName": "f", "Role": "arn:aws:iam::123456789012:role/r", "Code": map[string]any{},
			"Runtime": "cobol"}, ""},
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

// TestMemberConstraintWording checks the wording of list-element, map-key
// and map-value violations against messages recorded from AWS: one
// violation for the whole list or map, naming every constraint of the
// element, and no value at all for a sensitive shape.
func TestMemberConstraintWording(t *testing.T) {
	m := MustLoad()
	create := m.Operations["CreateFunction"].Input
	alias := m.Operations["CreateAlias"].Input
	base := func(extra map[string]any) map[string]any {
		in := map[string]any{"FunctionName": "f", "Role": "arn:aws:iam::123456789012:role/r", "Code": map[string]any{}}
		for k, v := range extra {
			in[k] = v
		}
		return in
	}
	weights := func(w map[string]any) map[string]any {
		return map[string]any{"FunctionName": "f", "Name": "live", "FunctionVersion": "1",
			"RoutingConfig": map[string]any{"AdditionalVersionWeights": w}}
	}
	cases := []struct {
		name  string
		shape *Shape
		in    map[string]any
		want  string
	}{
		// Recorded: LocalStack tests/aws/services/lambda_/test_lambda_api.snapshot.json,
		// test_create_lambda_exceptions (uppercase_architecture, multiple_architectures).
		{"list element enum", create, base(map[string]any{"Architectures": []any{"X86_64"}}),
			"1 validation error detected: Value '[X86_64]' at 'architectures' failed to satisfy constraint: Member must satisfy constraint: [Member must satisfy enum value set: [x86_64, arm64], Member must not be null]"},
		{"list length", create, base(map[string]any{"Architectures": []any{"x86_64", "arm64"}}),
			"1 validation error detected: Value '[x86_64, arm64]' at 'architectures' failed to satisfy constraint: Member must have length less than or equal to 1"},
		{"list null element", create, base(map[string]any{"Architectures": []any{nil}}),
			"1 validation error detected: Value '[null]' at 'architectures' failed to satisfy constraint: Member must satisfy constraint: [Member must satisfy enum value set: [x86_64, arm64], Member must not be null]"},
		{"list fine", create, base(map[string]any{"Architectures": []any{"arm64"}}), ""},
		// Recorded: the same file, test_notfound_and_invalid_routingconfigs.
		{"map value bounds", alias, weights(map[string]any{"2": 2.0}),
			"1 validation error detected: Value '{2=2.0}' at 'routingConfig.additionalVersionWeights' failed to satisfy constraint: Map value must satisfy constraint: [Member must have value less than or equal to 1.0, Member must have value greater than or equal to 0.0, Member must not be null]"},
		{"map value below", alias, weights(map[string]any{"2": -1.0}),
			"1 validation error detected: Value '{2=-1.0}' at 'routingConfig.additionalVersionWeights' failed to satisfy constraint: Map value must satisfy constraint: [Member must have value less than or equal to 1.0, Member must have value greater than or equal to 0.0, Member must not be null]"},
		{"map key pattern", alias, weights(map[string]any{"$LATEST": 0.5}),
			"1 validation error detected: Value '{$LATEST=0.5}' at 'routingConfig.additionalVersionWeights' failed to satisfy constraint: Map keys must satisfy constraint: [Member must have length less than or equal to 1024, Member must have length greater than or equal to 1, Member must satisfy regular expression pattern: [0-9]+]"},
		{"map key and value", alias, weights(map[string]any{"x": 0.5, "2": 3.0}),
			"2 validation errors detected: Value '{2=3.0, x=0.5}' at 'routingConfig.additionalVersionWeights' failed to satisfy constraint: Map keys must satisfy constraint: [Member must have length less than or equal to 1024, Member must have length greater than or equal to 1, Member must satisfy regular expression pattern: [0-9]+]; " +
				"Value '{2=3.0, x=0.5}' at 'routingConfig.additionalVersionWeights' failed to satisfy constraint: Map value must satisfy constraint: [Member must have value less than or equal to 1.0, Member must have value greater than or equal to 0.0, Member must not be null]"},
		{"map fine", alias, weights(map[string]any{"2": 0.5}), ""},
		// Recorded from AWS in github.com/trek10inc/serverless-secrets issue 39:
		// the variables are sensitive, so no value is shown.
		{"sensitive map key", create, base(map[string]any{"Environment": map[string]any{"Variables": map[string]any{"K": "v", "OK": "v"}}}),
			"1 validation error detected: Value at 'environment.variables' failed to satisfy constraint: Map keys must satisfy constraint: [Member must satisfy regular expression pattern: [a-zA-Z]([a-zA-Z0-9_])+]"},
		{"sensitive map null value", create, base(map[string]any{"Environment": map[string]any{"Variables": map[string]any{"OK": nil}}}),
			"1 validation error detected: Value at 'environment.variables' failed to satisfy constraint: Map value must satisfy constraint: [Member must not be null]"},
	}
	for _, c := range cases {
		var v Violations
		c.shape.CheckStructure(c.in, "", &v)
		got := ""
		if len(v) > 0 {
			got = v.Message()
		}
		if got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, got, c.want)
		}
	}
}

func TestJavaDouble(t *testing.T) {
	for f, want := range map[float64]string{0: "0.0", 1: "1.0", -1: "-1.0", 0.25: "0.25", 1e7: "1.0E7", 1.5e-5: "1.5E-5", 123456.5: "123456.5"} {
		if got := javaDouble(f); got != want {
			t.Errorf("javaDouble(%v) = %q, want %q", f, got, want)
		}
	}
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
