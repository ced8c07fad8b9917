package filter

import (
	"errors"
	"strings"
	"testing"
)

// fields is a record as the poller hands it over, without its body.
func fields() map[string]any {
	return map[string]any{
		"messageId":         "059f36b4-87a3-44ab-83d2-661975830a7d",
		"receiptHandle":     "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a",
		"md5OfBody":         "e4e68fb7bd0e697a0ae8f1bb342846b3",
		"eventSource":       "aws:sqs",
		"eventSourceARN":    "arn:aws:sqs:us-east-1:123456789012:work",
		"awsRegion":         "us-east-1",
		"attributes":        map[string]any{"ApproximateReceiveCount": "1", "MessageGroupId": "g1"},
		"messageAttributes": map[string]any{"kind": map[string]any{"dataType": "String", "stringValue": "order"}},
	}
}

const order = `{"RecordNumber": 1234, "Price": 10.5, "Tier": "Gold", "Region": "us-west-2", "File": "a/b.PNG",
	"Tags": ["x", "y"], "Nothing": null, "Empty": "", "Flag": true, "Nested": {"Deep": {"N": "101"}}, "Items": [{"Sku": "A1"}, {"Sku": "B2"}]}`

func TestMatch(t *testing.T) {
	cases := []struct {
		pattern, body string
		want          bool
	}{
		// Equals, by text for numbers.
		{`{"body": {"Tier": ["Gold"]}}`, order, true},
		{`{"body": {"Tier": ["gold"]}}`, order, false},
		{`{"body": {"RecordNumber": [1234]}}`, order, true},
		{`{"body": {"RecordNumber": [1234.0]}}`, order, false},
		{`{"body": {"RecordNumber": ["1234"]}}`, order, false},
		{`{"body": {"Flag": [true]}}`, order, true},
		{`{"body": {"Flag": [false]}}`, order, false},
		// Or within a list, and between keys.
		{`{"body": {"Tier": ["Silver", "Gold"]}}`, order, true},
		{`{"body": {"Tier": ["Gold"], "Region": ["eu-west-1"]}}`, order, false},
		{`{"body": {"$or": [{"Tier": ["Silver"]}, {"Region": ["us-west-2"]}]}}`, order, true},
		{`{"body": {"$or": [{"Tier": ["Silver"]}, {"Region": ["eu-west-1"]}]}}`, order, false},
		{`{"$or": [{"body": {"Tier": ["Silver"]}}, {"eventSource": ["aws:sqs"]}]}`, order, true},
		// Null and empty.
		{`{"body": {"Nothing": [null]}}`, order, true},
		{`{"body": {"Tier": [null]}}`, order, false},
		{`{"body": {"Absent": [null]}}`, order, false},
		{`{"body": {"Empty": [""]}}`, order, true},
		// Ignore case, prefix, suffix.
		{`{"body": {"Tier": [{"equals-ignore-case": "gOLD"}]}}`, order, true},
		{`{"body": {"Region": [{"prefix": "us-"}]}}`, order, true},
		{`{"body": {"Region": [{"prefix": "eu-"}]}}`, order, false},
		{`{"body": {"File": [{"suffix": ".PNG"}]}}`, order, true},
		{`{"body": {"File": [{"suffix": ".png"}]}}`, order, false},
		// Anything but.
		{`{"body": {"Tier": [{"anything-but": ["Silver", "Bronze"]}]}}`, order, true},
		{`{"body": {"Tier": [{"anything-but": "Gold"}]}}`, order, false},
		{`{"body": {"RecordNumber": [{"anything-but": 1234}]}}`, order, false},
		{`{"body": {"RecordNumber": [{"anything-but": "1234"}]}}`, order, true},
		{`{"body": {"Absent": [{"anything-but": "x"}]}}`, order, false},
		// Numeric.
		{`{"body": {"Price": [{"numeric": [">", 10, "<=", 20]}]}}`, order, true},
		{`{"body": {"Price": [{"numeric": [">", 10.5]}]}}`, order, false},
		{`{"body": {"Price": [{"numeric": [">=", 10.5]}]}}`, order, true},
		{`{"body": {"RecordNumber": [{"numeric": ["=", 1234.0]}]}}`, order, true},
		{`{"body": {"RecordNumber": [{"numeric": ["<", 1000]}]}}`, order, false},
		{`{"body": {"Tier": [{"numeric": [">", 0]}]}}`, order, false},
		// Exists.
		{`{"body": {"Tier": [{"exists": true}]}}`, order, true},
		{`{"body": {"Absent": [{"exists": true}]}}`, order, false},
		{`{"body": {"Absent": [{"exists": false}]}}`, order, true},
		{`{"body": {"Tier": [{"exists": false}]}}`, order, false},
		{`{"body": {"Nested": [{"exists": true}]}}`, order, false}, // an object is no leaf
		// Nesting and lists in the message.
		{`{"body": {"Nested": {"Deep": {"N": ["101"]}}}}`, order, true},
		{`{"body": {"Nested": {"Deep": {"N": ["102"]}}}}`, order, false},
		{`{"body": {"Tags": ["y"]}}`, order, true},
		{`{"body": {"Items": {"Sku": ["B2"]}}}`, order, true},
		{`{"body": {"Items": {"Sku": ["C3"]}}}`, order, false},
		// The record's own fields.
		{`{"attributes": {"MessageGroupId": ["g1"]}}`, order, true},
		{`{"messageAttributes": {"kind": {"stringValue": ["order"]}}}`, order, true},
		{`{"eventSourceARN": [{"suffix": ":work"}], "body": {"Tier": ["Gold"]}}`, order, true},
		{`{"awsRegion": ["eu-west-1"]}`, order, false},
		// A body of the other kind than the pattern's does not match.
		{`{"body": ["plain text"]}`, "plain text", true},
		{`{"body": [{"prefix": "plain"}]}`, "plain text", true},
		{`{"body": {"Tier": ["Gold"]}}`, "plain text", false},
		{`{"body": [{"prefix": "{"}]}`, order, false},
		{`{"body": {"Absent": [{"exists": false}]}}`, "plain text", false},
	}
	for _, c := range cases {
		f, err := Compile([]string{c.pattern})
		if err != nil {
			t.Errorf("%s: %v", c.pattern, err)
			continue
		}
		if got := f.Match(fields(), c.body); got != c.want {
			t.Errorf("%s against %.40q: %v, want %v", c.pattern, c.body, got, c.want)
		}
	}
}

// TestFiltersAreORed checks that a record passes when any filter matches.
func TestFiltersAreORed(t *testing.T) {
	f, err := Compile([]string{`{"body": {"Tier": ["Silver"]}}`, `{"body": {"Tier": ["Gold"]}}`})
	if err != nil {
		t.Fatal(err)
	}
	if !f.Match(fields(), `{"Tier": "Gold"}`) || !f.Match(fields(), `{"Tier": "Silver"}`) || f.Match(fields(), `{"Tier": "Bronze"}`) {
		t.Error("two filters are not ORed")
	}
	var none *Criteria
	if !none.Match(fields(), "anything") {
		t.Error("no filters do not match everything")
	}
}

func TestCompileRefuses(t *testing.T) {
	cases := []struct{ pattern, reason string }{
		{`not json`, "not JSON"},
		{`[1]`, "must be a JSON object"},
		{`{}`, "at least one key"},
		{`{"a": "b"}`, "must be an object or a list of rules"},
		{`{"a": []}`, "empty list"},
		{`{"a": [[1]]}`, "cannot be a list"},
		{`{"a": [{"prefix": 1}]}`, "takes a string"},
		{`{"a": [{"prefix": "x", "suffix": "y"}]}`, "exactly one operator"},
		{`{"a": [{"numeric": [">", "1"]}]}`, "operators and numbers"},
		{`{"a": [{"numeric": ["=", 1, "<", 2]}]}`, "stands alone"},
		{`{"a": [{"numeric": [">", 1, ">", 2]}]}`, "two lower bounds"},
		{`{"a": [{"numeric": [">", 5, "<", 2]}]}`, "empty"},
		{`{"a": [{"numeric": ["!=", 5]}]}`, "unknown operator"},
		{`{"a": [{"exists": "yes"}]}`, "true or false"},
		{`{"a": [{"anything-but": []}]}`, "non-empty list"},
		{`{"a": [{"anything-but": {"prefix": "x"}}]}`, "not supported"},
		{`{"a": [{"anything-but": [true]}]}`, "strings or numbers"},
		{`{"a": [{"wildcard": "x*"}]}`, "not supported"},
		{`{"a": [{"regex": "x"}]}`, "unknown operator"},
		{`{"$or": [{"a": [1]}]}`, "at least two"},
		{`{"$or": [{"a": [1]}, 2]}`, "must be an object"},
		{`{"a": [1]} {"b": [2]}`, "data after"},
		{`{"a": ["` + strings.Repeat("x", MaxPatternLength) + `"]}`, "at most 4096"},
		{strings.Repeat(`{"a":`, 70) + `[1]` + strings.Repeat(`}`, 70), "deeper"},
	}
	for _, c := range cases {
		_, err := Compile([]string{`{"ok": [1]}`, c.pattern})
		var fe *Error
		if !errors.As(err, &fe) || fe.Index != 1 || !strings.Contains(fe.Reason, c.reason) {
			t.Errorf("%.60s: %v, want filter 1 refused for %q", c.pattern, err, c.reason)
		}
	}
	six := make([]string, MaxFilters+1)
	for i := range six {
		six[i] = `{"a": [1]}`
	}
	if _, err := Compile(six); err == nil || !strings.Contains(err.Error(), "at most 5") {
		t.Errorf("six filters: %v", err)
	}
}

// FuzzFilter compiles arbitrary patterns and matches them against
// arbitrary bodies: nothing panics, a match is the same each time, and a
// second filter that matches nothing does not change the answer (filters
// are ORed).
func FuzzFilter(f *testing.F) {
	f.Add(`{"body": {"Tier": ["Gold"]}}`, order)
	f.Add(`{"body": {"$or": [{"a": [{"numeric": [">", 1]}]}, {"b": [{"exists": false}]}]}}`, `{"a": 2}`)
	f.Add(`{"body": [{"prefix": "x"}]}`, "xyz")
	f.Fuzz(func(t *testing.T, pattern, body string) {
		c, err := Compile([]string{pattern})
		if err != nil {
			return
		}
		got := c.Match(fields(), body)
		if again := c.Match(fields(), body); again != got {
			t.Fatalf("%s on %q: %v then %v", pattern, body, got, again)
		}
		or, err := Compile([]string{pattern, `{"messageId": ["no such id"]}`})
		if err != nil {
			t.Fatalf("a pattern compiled alone but not beside another: %v", err)
		}
		if or.Match(fields(), body) != got {
			t.Fatalf("%s on %q: %v alone, not so with a filter that matches nothing", pattern, body, got)
		}
	})
}
