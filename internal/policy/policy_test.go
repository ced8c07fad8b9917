package policy

import (
	"net/netip"
	"testing"
	"time"
)

const fn = "arn:aws:lambda:us-east-1:111111111111:function:orders"

// TestDecisions is a table of policies and requests, each with the
// decision IAM gives.
func TestDecisions(t *testing.T) {
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	ip := netip.MustParseAddr("10.1.2.3")
	req := func(action, resource string) *Request {
		return &Request{Action: action, Resource: resource, PrincipalAccount: "111111111111",
			PrincipalARN: "arn:aws:iam::111111111111:user/alice", SourceIP: ip, Time: at,
			FunctionARN: resource}
	}
	for _, c := range []struct {
		name   string
		policy string
		req    *Request
		want   Decision
	}{
		{"admin", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"lambda:*","Resource":"*"}]}`,
			req("lambda:PutFunctionConcurrency", fn), Allowed},
		{"single statement object", `{"Statement":{"Effect":"Allow","Action":"lambda:GetFunction","Resource":"*"}}`,
			req("lambda:GetFunction", fn), Allowed},
		{"default deny: another action", `{"Statement":[{"Effect":"Allow","Action":"lambda:GetFunction","Resource":"*"}]}`,
			req("lambda:PutFunctionConcurrency", fn), ImplicitDeny},
		{"reader: Get* and List*", `{"Statement":[{"Effect":"Allow","Action":["lambda:Get*","lambda:List*"],"Resource":"*"}]}`,
			req("lambda:GetFunctionConcurrency", fn), Allowed},
		{"reader refused Put", `{"Statement":[{"Effect":"Allow","Action":["lambda:Get*","lambda:List*"],"Resource":"*"}]}`,
			req("lambda:PutFunctionConcurrency", fn), ImplicitDeny},
		{"action names are case-insensitive", `{"Statement":[{"Effect":"Allow","Action":"LAMBDA:getfunction","Resource":"*"}]}`,
			req("lambda:GetFunction", fn), Allowed},
		{"? matches one character", `{"Statement":[{"Effect":"Allow","Action":"lambda:?etFunction","Resource":"*"}]}`,
			req("lambda:GetFunction", fn), Allowed},
		{"explicit deny wins over allow", `{"Statement":[{"Effect":"Allow","Action":"lambda:*","Resource":"*"},
			{"Effect":"Deny","Action":["lambda:PutFunctionConcurrency","lambda:DeleteFunctionConcurrency"],"Resource":"*"}]}`,
			req("lambda:DeleteFunctionConcurrency", fn), ExplicitDeny},
		{"deny elsewhere does not apply", `{"Statement":[{"Effect":"Allow","Action":"lambda:*","Resource":"*"},
			{"Effect":"Deny","Action":"lambda:*","Resource":"arn:aws:lambda:*:*:function:prod-*"}]}`,
			req("lambda:InvokeFunction", fn), Allowed},
		{"NotAction allows all but", `{"Statement":[{"Effect":"Allow","NotAction":"lambda:*Concurrency","Resource":"*"}]}`,
			req("lambda:PutFunctionConcurrency", fn), ImplicitDeny},
		{"NotAction allows others", `{"Statement":[{"Effect":"Allow","NotAction":"lambda:*Concurrency","Resource":"*"}]}`,
			req("lambda:InvokeFunction", fn), Allowed},
		{"resource wildcard", `{"Statement":[{"Effect":"Allow","Action":"lambda:InvokeFunction","Resource":"arn:aws:lambda:us-east-1:111111111111:function:ord*"}]}`,
			req("lambda:InvokeFunction", fn), Allowed},
		{"unqualified ARN does not cover a version", `{"Statement":[{"Effect":"Allow","Action":"lambda:InvokeFunction","Resource":"` + fn + `"}]}`,
			req("lambda:InvokeFunction", fn+":1"), ImplicitDeny},
		{"name:* covers versions", `{"Statement":[{"Effect":"Allow","Action":"lambda:InvokeFunction","Resource":"` + fn + `:*"}]}`,
			req("lambda:InvokeFunction", fn+":live"), Allowed},
		{"resource ARNs are case-sensitive", `{"Statement":[{"Effect":"Allow","Action":"lambda:*","Resource":"arn:aws:lambda:us-east-1:111111111111:function:Orders"}]}`,
			req("lambda:GetFunction", fn), ImplicitDeny},
		{"other account's functions", `{"Statement":[{"Effect":"Allow","Action":"lambda:*","Resource":"arn:aws:lambda:*:111111111111:function:*"}]}`,
			req("lambda:GetFunction", "arn:aws:lambda:us-east-1:222222222222:function:orders"), ImplicitDeny},
		{"NotResource", `{"Statement":[{"Effect":"Deny","Action":"lambda:*","NotResource":"arn:aws:lambda:*:*:function:dev-*"},{"Effect":"Allow","Action":"*","Resource":"*"}]}`,
			req("lambda:GetFunction", fn), ExplicitDeny},
		{"StringEquals on the function ARN", `{"Statement":[{"Effect":"Allow","Action":"lambda:*","Resource":"*","Condition":{"StringEquals":{"lambda:FunctionArn":"` + fn + `"}}}]}`,
			req("lambda:GetFunction", fn), Allowed},
		{"StringEquals fails", `{"Statement":[{"Effect":"Allow","Action":"lambda:*","Resource":"*","Condition":{"StringEquals":{"lambda:FunctionArn":"` + fn + `x"}}}]}`,
			req("lambda:GetFunction", fn), ImplicitDeny},
		{"StringLike, values ORed", `{"Statement":[{"Effect":"Allow","Action":"lambda:*","Resource":"*","Condition":{"StringLike":{"lambda:FunctionArn":["*:nope","*:ord?rs"]}}}]}`,
			req("lambda:GetFunction", fn), Allowed},
		{"ArnLike part by part", `{"Statement":[{"Effect":"Allow","Action":"lambda:*","Resource":"*","Condition":{"ArnLike":{"lambda:FunctionArn":"arn:aws:lambda:*:111111111111:function:*"}}}]}`,
			req("lambda:GetFunction", fn), Allowed},
		{"ArnLike other account", `{"Statement":[{"Effect":"Allow","Action":"lambda:*","Resource":"*","Condition":{"ArnLike":{"lambda:FunctionArn":"arn:aws:lambda:*:222222222222:function:*"}}}]}`,
			req("lambda:GetFunction", fn), ImplicitDeny},
		{"source IP in range", `{"Statement":[{"Effect":"Allow","Action":"lambda:*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}]}`,
			req("lambda:GetFunction", fn), Allowed},
		{"deny outside range", `{"Statement":[{"Effect":"Allow","Action":"lambda:*","Resource":"*"},{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"NotIpAddress":{"aws:SourceIp":["192.168.0.0/16"]}}}]}`,
			req("lambda:GetFunction", fn), ExplicitDeny},
		{"StringEquals on the source IP", `{"Statement":[{"Effect":"Allow","Action":"lambda:*","Resource":"*","Condition":{"StringEquals":{"aws:SourceIp":"10.1.2.3"}}}]}`,
			req("lambda:GetFunction", fn), Allowed},
		{"before a time", `{"Statement":[{"Effect":"Allow","Action":"lambda:*","Resource":"*","Condition":{"DateLessThan":{"aws:CurrentTime":"2027-01-01T00:00:00Z"}}}]}`,
			req("lambda:GetFunction", fn), Allowed},
		{"after a time", `{"Statement":[{"Effect":"Allow","Action":"lambda:*","Resource":"*","Condition":{"DateGreaterThan":{"aws:CurrentTime":"2027-01-01T00:00:00Z"}}}]}`,
			req("lambda:GetFunction", fn), ImplicitDeny},
		{"StringLike on the current time", `{"Statement":[{"Effect":"Allow","Action":"lambda:*","Resource":"*","Condition":{"StringLike":{"aws:CurrentTime":"2026-12-01T*"}}}]}`,
			req("lambda:GetFunction", fn), Allowed},
		{"NumericLessThan on the epoch time", `{"Statement":[{"Effect":"Allow","Action":"lambda:*","Resource":"*","Condition":{"NumericLessThan":{"aws:EpochTime":1800000000}}}]}`,
			req("lambda:GetFunction", fn), Allowed},
		{"NumericLessThan fails", `{"Statement":[{"Effect":"Allow","Action":"lambda:*","Resource":"*","Condition":{"NumericLessThan":{"aws:EpochTime":1700000000}}}]}`,
			req("lambda:GetFunction", fn), ImplicitDeny},
		{"conditions ANDed", `{"Statement":[{"Effect":"Allow","Action":"lambda:*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"},"StringEquals":{"aws:PrincipalAccount":"999999999999"}}}]}`,
			req("lambda:GetFunction", fn), ImplicitDeny},
		{"absent key fails a positive operator", `{"Statement":[{"Effect":"Allow","Action":"lambda:*","Resource":"*","Condition":{"StringEquals":{"lambda:FunctionArn":"` + fn + `"}}}]}`,
			&Request{Action: "lambda:ListFunctions", Resource: "*"}, ImplicitDeny},
		{"absent key passes IfExists", `{"Statement":[{"Effect":"Allow","Action":"lambda:*","Resource":"*","Condition":{"StringEqualsIfExists":{"lambda:FunctionArn":"` + fn + `"}}}]}`,
			&Request{Action: "lambda:ListFunctions", Resource: "*"}, Allowed},
		{"absent key passes a negated operator", `{"Statement":[{"Effect":"Allow","Action":"lambda:*","Resource":"*","Condition":{"StringNotEquals":{"lambda:FunctionArn":"` + fn + `"}}}]}`,
			&Request{Action: "lambda:ListFunctions", Resource: "*"}, Allowed},
		{"Null", `{"Statement":[{"Effect":"Allow","Action":"lambda:*","Resource":"*","Condition":{"Null":{"lambda:FunctionArn":"true"}}}]}`,
			&Request{Action: "lambda:ListFunctions", Resource: "*"}, Allowed},
		{"no statements apply: empty policy", ``, req("lambda:GetFunction", fn), ImplicitDeny},
	} {
		var d *Document
		if c.policy != "" {
			var err error
			if d, err = Parse([]byte(c.policy)); err != nil {
				t.Errorf("%s: %v", c.name, err)
				continue
			}
		}
		if got := d.Evaluate(c.req); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}

// TestResourcePolicy checks the Principal element of resource-based
// statements.
func TestResourcePolicy(t *testing.T) {
	d, err := Parse([]byte(`{"Version":"2012-10-17","Statement":[
		{"Sid":"b","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::222222222222:root"},"Action":"lambda:InvokeFunction","Resource":"` + fn + `"},
		{"Sid":"carol","Effect":"Allow","Principal":{"AWS":["arn:aws:iam::333333333333:user/carol"]},"Action":"lambda:GetFunction"},
		{"Sid":"s3","Effect":"Allow","Principal":{"Service":"s3.amazonaws.com"},"Action":"lambda:InvokeFunction","Resource":"` + fn + `"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		acct, arn, action, resource string
		want                        Decision
	}{
		{"222222222222", "arn:aws:iam::222222222222:user/bob", "lambda:InvokeFunction", fn, Allowed},
		{"222222222222", "arn:aws:iam::222222222222:user/bob", "lambda:GetFunction", fn, ImplicitDeny},
		{"333333333333", "arn:aws:iam::333333333333:user/carol", "lambda:GetFunction", fn, Allowed},
		{"333333333333", "arn:aws:iam::333333333333:user/dave", "lambda:GetFunction", fn, ImplicitDeny},
		{"333333333333", "arn:aws:iam::333333333333:user/carol", "lambda:GetFunction", fn + ":1", ImplicitDeny},
		{"444444444444", "arn:aws:iam::444444444444:user/eve", "lambda:InvokeFunction", fn, ImplicitDeny},
	} {
		r := &Request{Action: c.action, Resource: c.resource, PrincipalAccount: c.acct, PrincipalARN: c.arn}
		if got := d.EvaluateResource(r, fn); got != c.want {
			t.Errorf("%s %s on %s: %s, want %s", c.arn, c.action, c.resource, got, c.want)
		}
	}
}

func TestMalformed(t *testing.T) {
	for _, p := range []string{
		`[]`, `{}`, `{"Statement":[]}x`, `{"Version":"2020-01-01","Statement":[]}`,
		`{"Statement":[{"Effect":"allow","Action":"lambda:*","Resource":"*"}]}`,
		`{"Statement":[{"Effect":"Allow","Resource":"*"}]}`,
		`{"Statement":[{"Effect":"Allow","Action":"lambda:*","NotAction":"x:y","Resource":"*"}]}`,
		`{"Statement":[{"Effect":"Allow","Action":"GetFunction","Resource":"*"}]}`,
		`{"Statement":[{"Effect":"Allow","Action":"lambda:*","Resource":"*","Condition":{"StringSortOf":{"a":"b"}}}]}`,
		`{"Statement":[{"Effect":"Allow","Action":"lambda:*","Resource":"*","Condition":{"NumericLessThan":{"a":"ten"}}}]}`,
		`{"Statement":[{"Effect":"Allow","Action":"lambda:*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/99"}}}]}`,
		`{"Statement":[{"Effect":"Allow","Action":"lambda:*","Resource":"*","Extra":1}]}`,
		`{"Statement":[{"Effect":"Allow","Action":[1],"Resource":"*"}]}`,
	} {
		if _, err := Parse([]byte(p)); err == nil {
			t.Errorf("%s: accepted", p)
		}
	}
}

func TestGlob(t *testing.T) {
	for _, c := range []struct {
		p, s string
		want bool
	}{
		{"*", "", true}, {"a*", "abc", true}, {"a*c", "abbbc", true}, {"a*c", "abcd", false},
		{"*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false}, {"a?c", "abc", true}, {"a?c", "ac", false},
	} {
		if got := Glob(c.p, c.s, false); got != c.want {
			t.Errorf("Glob(%q, %q) = %v", c.p, c.s, got)
		}
	}
}
