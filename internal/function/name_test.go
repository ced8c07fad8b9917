package function_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/lambdad/lambdad/internal/awserr"
	"github.com/lambdad/lambdad/internal/function"
)

var nameParser = function.Parser{Region: "us-east-1", Account: "123456789012"}

const (
	nameTestARN = "arn:aws:lambda:us-east-1:123456789012:function:"
	nameOf64    = "a234567890123456789012345678901234567890123456789012345678901234"
	nameOf65    = nameOf64 + "5"
)

// wantNameErr describes an expected *awserr.Error; an empty msg leaves the
// message unchecked (for messages that are lambdad's own wording).
type wantNameErr struct {
	code awserr.Code
	msg  string
}

func checkNameErr(t *testing.T, call string, err error, want *wantNameErr) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Errorf("%s: error %v, want none", call, err)
		}
		return
	}
	e, ok := awserr.As(err)
	if !ok {
		t.Errorf("%s: error %v (%T), want *awserr.Error %s", call, err, err, want.code)
		return
	}
	if e.Code != want.code {
		t.Errorf("%s: code %s (%q), want %s", call, e.Code, e.Message, want.code)
	}
	if want.msg != "" && e.Message != want.msg {
		t.Errorf("%s: message\n got %q\nwant %q", call, e.Message, want.msg)
	}
	if e.Message == "" {
		t.Errorf("%s: empty message", call)
	}
}

func invalidName() *wantNameErr { return &wantNameErr{code: awserr.InvalidParameterValue} }

func nameNotFound(arn string) *wantNameErr {
	return &wantNameErr{awserr.ResourceNotFound, "Function not found: " + arn}
}

func TestParse(t *testing.T) {
	otherRegion := &wantNameErr{awserr.ResourceNotFound,
		"Functions from 'us-west-2' are not reachable in this region ('us-east-1')"}
	tests := []struct {
		in   string
		want function.Ref
		err  *wantNameErr
	}{
		// Plain names.
		{in: "my-function", want: function.Ref{Name: "my-function"}},
		{in: "My_Function-2", want: function.Ref{Name: "My_Function-2"}},
		{in: "my.function", want: function.Ref{Name: "my.function"}},
		{in: "f", want: function.Ref{Name: "f"}},
		{in: "function", want: function.Ref{Name: "function"}},
		{in: "arn", want: function.Ref{Name: "arn"}},
		{in: "123456789012", want: function.Ref{Name: "123456789012"}},
		{in: nameOf64, want: function.Ref{Name: nameOf64}},
		{in: nameOf65, err: nameNotFound(nameTestARN + nameOf65)},
		{in: nameOf65 + ":prod", err: nameNotFound(nameTestARN + nameOf65 + ":prod")},

		// Names with a qualifier.
		{in: "my-function:1", want: function.Ref{Name: "my-function", Qualifier: "1"}},
		{in: "my-function:$LATEST", want: function.Ref{Name: "my-function", Qualifier: "$LATEST"}},
		{in: "my-function:$LATEST.PUBLISHED", want: function.Ref{Name: "my-function", Qualifier: "$LATEST.PUBLISHED"}},
		{in: "my-function:prod", want: function.Ref{Name: "my-function", Qualifier: "prod"}},
		{in: "my-function:function", want: function.Ref{Name: "my-function", Qualifier: "function"}},
		{in: "my-function:0", want: function.Ref{Name: "my-function", Qualifier: "0"}},
		{in: "my-function:$latest", err: invalidName()},
		{in: "my-function:$LATEST.published", err: invalidName()},
		{in: "my-function:$LATEST1", err: invalidName()},
		{in: "my-function:a.b", err: invalidName()},
		{in: "f:" + strings.Repeat("7", 128), want: function.Ref{Name: "f", Qualifier: strings.Repeat("7", 128)}},
		{in: "f:" + strings.Repeat("7", 129), err: nameNotFound(nameTestARN + "f:" + strings.Repeat("7", 129))},

		// Full ARNs.
		{in: nameTestARN + "my-function", want: function.Ref{Name: "my-function"}},
		{in: nameTestARN + "my-function:7", want: function.Ref{Name: "my-function", Qualifier: "7"}},
		{in: nameTestARN + "my-function:$LATEST", want: function.Ref{Name: "my-function", Qualifier: "$LATEST"}},
		{in: nameTestARN + "my-function:live", want: function.Ref{Name: "my-function", Qualifier: "live"}},
		{in: nameTestARN + "function", want: function.Ref{Name: "function"}},
		{in: nameTestARN + "123456789012", want: function.Ref{Name: "123456789012"}},
		{in: "arn:aws-cn:lambda:us-east-1:123456789012:function:f", want: function.Ref{Name: "f"}},
		{in: "arn:aws-us-gov:lambda:us-east-1:123456789012:function:f", want: function.Ref{Name: "f"}},
		{in: "arn::lambda:us-east-1:123456789012:function:f", want: function.Ref{Name: "f"}},
		{in: nameTestARN + nameOf64, want: function.Ref{Name: nameOf64}},
		{in: nameTestARN + nameOf65, err: nameNotFound(nameTestARN + nameOf65)},
		{in: "arn:aws:lambda:us-west-2:123456789012:function:f", err: otherRegion},
		{in: "arn:aws:lambda:us-west-2:999999999999:function:f", err: otherRegion},
		{in: "arn:aws:lambda:us-east-1:999999999999:function:f",
			err: nameNotFound("arn:aws:lambda:us-east-1:999999999999:function:f")},
		{in: "arn:aws-cn:lambda:us-east-1:999999999999:function:f:prod",
			err: nameNotFound("arn:aws-cn:lambda:us-east-1:999999999999:function:f:prod")},

		// Partial ARNs.
		{in: "123456789012:function:my-function", want: function.Ref{Name: "my-function"}},
		{in: "123456789012:function:my-function:3", want: function.Ref{Name: "my-function", Qualifier: "3"}},
		{in: "123456789012:function:" + nameOf65, err: nameNotFound(nameTestARN + nameOf65)},
		{in: "999999999999:function:f:3",
			err: nameNotFound("arn:aws:lambda:us-east-1:999999999999:function:f:3")},

		// Shorter forms AWS's pattern also admits: each optional part is
		// taken when the rest still matches.
		{in: "function:my-function", want: function.Ref{Name: "my-function"}},
		{in: "function:1", want: function.Ref{Name: "1"}},
		{in: "us-east-1:my-function", want: function.Ref{Name: "my-function"}},
		{in: "us-east-1:123456789012:function:f:1", want: function.Ref{Name: "f", Qualifier: "1"}},
		{in: "123456789012:my-function", want: function.Ref{Name: "my-function"}},
		{in: "123456789012:my-function:1", want: function.Ref{Name: "my-function", Qualifier: "1"}},
		{in: "arn:aws:lambda:my-function", want: function.Ref{Name: "my-function"}},
		{in: "arn:aws:lambda:my-function:2", want: function.Ref{Name: "my-function", Qualifier: "2"}},
		{in: "arn:aws:lambda:us-east-1:f", want: function.Ref{Name: "f"}},
		{in: "us-west-2:my-function", err: otherRegion},
		{in: "us-gov-west-1:f", err: &wantNameErr{awserr.ResourceNotFound,
			"Functions from 'us-gov-west-1' are not reachable in this region ('us-east-1')"}},
		{in: "us-isob-east-1:f", err: &wantNameErr{awserr.ResourceNotFound,
			"Functions from 'us-isob-east-1' are not reachable in this region ('us-east-1')"}},
		// Not regions, so they cannot be taken as one and the rest is
		// a name and a qualifier.
		{in: "us-foo-bar-1:f", want: function.Ref{Name: "us-foo-bar-1", Qualifier: "f"}},
		{in: "US-east-1:f", want: function.Ref{Name: "US-east-1", Qualifier: "f"}},
		{in: "us-east-12:f", want: function.Ref{Name: "us-east-12", Qualifier: "f"}},
		{in: "12345678901:f", want: function.Ref{Name: "12345678901", Qualifier: "f"}},
		// The pattern has no resource type other than "function": here
		// "layer" is the name and "f" the qualifier.
		{in: "arn:aws:lambda:us-east-1:123456789012:layer:f", want: function.Ref{Name: "layer", Qualifier: "f"}},
		{in: "123456789012:layer:f", want: function.Ref{Name: "layer", Qualifier: "f"}},

		// Structurally broken.
		{in: "", err: invalidName()},
		{in: ":", err: invalidName()},
		{in: ":1", err: invalidName()},
		{in: "my-function:", err: invalidName()},
		{in: "my-function::1", err: invalidName()},
		{in: "a:b:c", err: invalidName()},
		{in: "my-function!", err: invalidName()},
		{in: "my function", err: invalidName()},
		{in: "my/function", err: invalidName()},
		{in: "función", err: invalidName()},
		{in: "my-function:版本", err: invalidName()},
		{in: "\xff", err: invalidName()},
		{in: "my-function\x00", err: invalidName()},
		{in: nameTestARN, err: invalidName()},
		{in: nameTestARN + ":1", err: invalidName()},
		{in: nameTestARN + "f:", err: invalidName()},
		{in: nameTestARN + "f:1:2", err: invalidName()},
		{in: nameTestARN + "f::", err: invalidName()},
		{in: "arn:aws:lambda:us-east-1:123456789012:function:f:1:2:3:4", err: invalidName()},
		{in: "arn:aws:s3:us-east-1:123456789012:function:f", err: invalidName()},
		{in: "arn:gcp:lambda:us-east-1:123456789012:function:f", err: invalidName()},
		{in: "123456789012:function:", err: invalidName()},
		{in: strings.Repeat(":", 100), err: invalidName()},
	}
	for _, tt := range tests {
		got, err := nameParser.Parse(tt.in)
		checkNameErr(t, "Parse("+strconv.Quote(tt.in)+")", err, tt.err)
		if err == nil {
			tt.want.Account = nameParser.Account
		}
		if got != tt.want {
			t.Errorf("Parse(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestParseWithQualifier(t *testing.T) {
	mismatch := &wantNameErr{awserr.InvalidParameterValue,
		"The derived qualifier from the function name does not match the specified qualifier."}
	tests := []struct {
		in, q string
		want  function.Ref
		err   *wantNameErr
	}{
		{in: "f", want: function.Ref{Name: "f"}},
		{in: "f", q: "1", want: function.Ref{Name: "f", Qualifier: "1"}},
		{in: "f", q: "$LATEST", want: function.Ref{Name: "f", Qualifier: "$LATEST"}},
		{in: "f", q: "$LATEST.PUBLISHED", want: function.Ref{Name: "f", Qualifier: "$LATEST.PUBLISHED"}},
		{in: "f", q: "prod", want: function.Ref{Name: "f", Qualifier: "prod"}},
		// The query parameter's pattern admits '$' anywhere; such a
		// qualifier passes and later names nothing.
		{in: "f", q: "$1", want: function.Ref{Name: "f", Qualifier: "$1"}},
		{in: "f:1", want: function.Ref{Name: "f", Qualifier: "1"}},
		{in: "f:1", q: "1", want: function.Ref{Name: "f", Qualifier: "1"}},
		{in: "f:prod", q: "prod", want: function.Ref{Name: "f", Qualifier: "prod"}},
		{in: nameTestARN + "f:prod", q: "prod", want: function.Ref{Name: "f", Qualifier: "prod"}},
		{in: "f:1", q: "2", err: mismatch},
		{in: "f:prod", q: "$LATEST", err: mismatch},
		{in: "f:$LATEST", q: "1", err: mismatch},
		{in: nameTestARN + "f:1", q: "01", err: mismatch},
		{in: "f", q: "a.b", err: invalidName()},
		{in: "f", q: "a:b", err: invalidName()},
		{in: "f", q: strings.Repeat("a", 128), want: function.Ref{Name: "f", Qualifier: strings.Repeat("a", 128)}},
		{in: "f", q: strings.Repeat("a", 129), err: nameNotFound(nameTestARN + "f:" + strings.Repeat("a", 129))},
		{in: "f:" + strings.Repeat("a", 129), q: strings.Repeat("a", 129),
			err: nameNotFound(nameTestARN + "f:" + strings.Repeat("a", 129))},
		{in: nameOf65, q: "1", err: nameNotFound(nameTestARN + nameOf65 + ":1")},
		{in: "arn:aws:lambda:us-west-2:123456789012:function:f", q: "1", err: &wantNameErr{awserr.ResourceNotFound,
			"Functions from 'us-west-2' are not reachable in this region ('us-east-1')"}},
		{in: "999999999999:function:f", q: "1",
			err: nameNotFound("arn:aws:lambda:us-east-1:999999999999:function:f")},
		{in: "f:", q: "1", err: invalidName()},
	}
	for _, tt := range tests {
		got, err := nameParser.ParseWithQualifier(tt.in, tt.q)
		checkNameErr(t, "ParseWithQualifier("+strconv.Quote(tt.in)+", "+strconv.Quote(tt.q)+")", err, tt.err)
		if err == nil {
			tt.want.Account = nameParser.Account
		}
		if got != tt.want {
			t.Errorf("ParseWithQualifier(%q, %q) = %+v, want %+v", tt.in, tt.q, got, tt.want)
		}
	}
}

func TestARN(t *testing.T) {
	p := function.Parser{Region: "eu-west-1", Account: "000000000001"}
	tests := []struct {
		name, qualifier, want string
	}{
		{"f", "", "arn:aws:lambda:eu-west-1:000000000001:function:f"},
		{"f", "$LATEST", "arn:aws:lambda:eu-west-1:000000000001:function:f:$LATEST"},
		{"f", "3", "arn:aws:lambda:eu-west-1:000000000001:function:f:3"},
		{"my-function", "live", "arn:aws:lambda:eu-west-1:000000000001:function:my-function:live"},
	}
	for _, tt := range tests {
		if got := p.QualifiedARN(tt.name, tt.qualifier); got != tt.want {
			t.Errorf("QualifiedARN(%q, %q) = %q, want %q", tt.name, tt.qualifier, got, tt.want)
		}
		if tt.qualifier == "" {
			if got := p.ARN(tt.name); got != tt.want {
				t.Errorf("ARN(%q) = %q, want %q", tt.name, got, tt.want)
			}
		}
		ref, err := p.Parse(tt.want)
		if want := (function.Ref{Account: p.Account, Name: tt.name, Qualifier: tt.qualifier}); err != nil || ref != want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", tt.want, ref, err, want)
		}
	}
}

func TestIsVersionIsAliasName(t *testing.T) {
	tests := []struct {
		q              string
		version, alias bool
	}{
		{"1", true, false},
		{"42", true, false},
		{"1000000", true, false},
		{"0", false, false},
		{"01", false, false},
		{"", false, false},
		{"$LATEST", false, false},
		{"$LATEST.PUBLISHED", false, false},
		{"prod", false, true},
		{"1a", false, true},
		{"a1", false, true},
		{"-1", false, true},
		{"_", false, true},
		{"PROD-v2_blue", false, true},
		{strings.Repeat("a", 128), false, true},
		{strings.Repeat("a", 129), false, false},
		{"a.b", false, false},
		{"a b", false, false},
		{"ä", false, false},
		{"１", false, false}, // fullwidth digit
	}
	for _, tt := range tests {
		if got := function.IsVersion(tt.q); got != tt.version {
			t.Errorf("IsVersion(%q) = %v, want %v", tt.q, got, tt.version)
		}
		if got := function.IsAliasName(tt.q); got != tt.alias {
			t.Errorf("IsAliasName(%q) = %v, want %v", tt.q, got, tt.alias)
		}
	}
}

// FuzzParse checks that Parse never panics, fails only with the errors a
// client may see, and that what it accepts survives a trip through
// QualifiedARN.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"my-function",
		"my-function:1",
		nameTestARN + "my-function:prod",
		"123456789012:function:my-function:$LATEST",
		"us-east-1:f",
		"function:f",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ref, err := nameParser.Parse(s)
		if err != nil {
			e, ok := awserr.As(err)
			if !ok || (e.Code != awserr.InvalidParameterValue && e.Code != awserr.ResourceNotFound) {
				t.Fatalf("Parse(%q): error %v, want InvalidParameterValue or ResourceNotFound", s, err)
			}
			if ref != (function.Ref{}) {
				t.Fatalf("Parse(%q) = %+v with an error", s, ref)
			}
			return
		}
		if ref.Name == "" || len(ref.Name) > function.MaxNameLen || !strings.Contains(s, ref.Name) {
			t.Fatalf("Parse(%q) = %+v: bad name", s, ref)
		}
		if ref.Qualifier != "" && !strings.HasSuffix(s, ":"+ref.Qualifier) {
			t.Fatalf("Parse(%q) = %+v: qualifier not a suffix of the input", s, ref)
		}
		arn := nameParser.QualifiedARN(ref.Name, ref.Qualifier)
		back, err := nameParser.Parse(arn)
		if err != nil || back != ref {
			t.Fatalf("Parse(%q) = %+v; Parse(%q) = %+v, %v", s, ref, arn, back, err)
		}
		same, err := nameParser.ParseWithQualifier(s, ref.Qualifier)
		if err != nil || same != ref {
			t.Fatalf("ParseWithQualifier(%q, %q) = %+v, %v; want %+v", s, ref.Qualifier, same, err, ref)
		}
	})
}

func BenchmarkParse(b *testing.B) {
	for _, in := range []string{
		"my-function",
		"my-function:prod",
		"123456789012:function:my-function:7",
		nameTestARN + "my-function:$LATEST",
	} {
		b.Run(in, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := nameParser.Parse(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestQualified(t *testing.T) {
	for s, want := range map[string]bool{
		"f": false, "f:1": true, "f:$LATEST": true, "f:live": true,
		"123456789012:function:f": false, "123456789012:function:f:live": true,
		"arn:aws:lambda:eu-west-1:123456789012:function:f:1": true,
		"arn:aws:lambda:eu-west-1:123456789012:function:f":   false,
		"":                  false,
		"f:1:2:3:4:5:6:7:8": false,
	} {
		if got := function.Qualified(s); got != want {
			t.Errorf("Qualified(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestParseNew(t *testing.T) {
	tooLong := func(v string) *wantNameErr {
		return &wantNameErr{awserr.InvalidParameterValue, "1 validation error detected: Value '" + v +
			"' at 'functionName' failed to satisfy constraint: Member must have length less than or equal to 64"}
	}
	tests := []struct {
		in   string
		want function.Ref
		err  *wantNameErr
	}{
		{in: nameOf64, want: function.Ref{Name: nameOf64}},
		{in: nameTestARN + nameOf64, want: function.Ref{Name: nameOf64}},
		// Recorded from AWS for CreateFunction: a 400, where Get answers 404.
		{in: nameOf65, err: tooLong(nameOf65)},
		{in: "123456789012:function:" + nameOf65, err: tooLong("123456789012:function:" + nameOf65)},
		{in: "arn:aws:lambda:us-west-2:123456789012:function:" + nameOf65, err: &wantNameErr{awserr.ResourceNotFound,
			"Functions from 'us-west-2' are not reachable in this region ('us-east-1')"}},
	}
	for _, tt := range tests {
		got, err := nameParser.ParseNew(tt.in)
		checkNameErr(t, "ParseNew("+tt.in+")", err, tt.err)
		tt.want.Account = nameParser.Account
		if tt.err == nil && got != tt.want {
			t.Errorf("ParseNew(%s) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}
