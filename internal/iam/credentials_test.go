package iam

import (
	"os"
	"strings"
	"testing"
)

func TestLoadExample(t *testing.T) {
	c, err := Load("testdata/credentials.json")
	if err != nil {
		t.Fatal(err)
	}
	if l, ok := c.Limits("222222222222"); !ok || l.Concurrency != 20 || l.MinUnreserved != 5 {
		t.Errorf("B's limits: %+v %v", l, ok)
	}
	p, ok := c.Principal("AKIAREADER000000001")
	if !ok || p.ARN != "arn:aws:iam::111111111111:user/reader" || p.Policy == nil || p.secret != "reader-secret" {
		t.Errorf("reader: %+v", p)
	}
	if r, ok := c.Role("arn:aws:iam::111111111111:role/none"); !ok || r.Policy != nil || r.Name != "none" {
		t.Errorf("role none: %+v", r)
	}
}

// TestFileErrors checks that a malformed file is refused with its name,
// the line of the entry at fault and the reason, and that a secret is
// never part of the message.
func TestFileErrors(t *testing.T) {
	good, err := os.ReadFile("testdata/credentials.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, data string
		line       int
		reason     string
	}{
		{"syntax", "{\n  \"accounts\": [\n    {\"id\": \"111111111111\",}\n  ]\n}", 3, "invalid character"},
		{"not an object", "[]", 1, "must be a JSON object"},
		{"unknown key", "{\n\"accounts\": [{\"id\": \"111111111111\"}],\n\"users\": []}", 3, `unknown key "users"`},
		{"bad account id", "{\"accounts\": [\n{\"id\": \"1234\"}]}", 2, "twelve digits"},
		{"unknown field", "{\"accounts\": [\n{\"id\": \"111111111111\",\n \"limit\": 5}]}", 2, `unknown field "limit"`},
		{"wrong type", "{\"accounts\": [\n{\"id\": \"111111111111\",\n \"concurrencyLimit\": \"many\"}]}", 3, "concurrencyLimit"},
		{"no account", `{"principals": []}`, 1, "names no account"},
		{"principal of unknown account", strings.Replace(string(good), `"account": "222222222222"`, `"account": "333333333333"`, 1), 11, `account "333333333333" is not in accounts`},
		{"duplicate key", strings.Replace(string(good), "AKIAREADER000000001", "AKIAADMIN0000000001", 1), 9, "appears twice"},
		{"bad policy", strings.Replace(string(good), `"Effect": "Allow", "Action": ["lambda:Get*"`, `"Effect": "Permit", "Action": ["lambda:Get*"`, 1), 9, "Effect must be Allow or Deny"},
		{"bad role", strings.Replace(string(good), "role/none", "user/none", 1), 17, "arn must be"},
		{"missing secret", strings.Replace(string(good), `"secretAccessKey": "reader-secret", `, ``, 1), 9, "secretAccessKey is missing"},
		{"truncated", string(good[:200]), 0, "unexpected end"},
	} {
		_, err := Parse("creds.json", []byte(c.data))
		fe, ok := err.(*FileError)
		if !ok {
			t.Errorf("%s: %v, want a FileError", c.name, err)
			continue
		}
		if fe.File != "creds.json" || (c.line != 0 && fe.Line != c.line) || !strings.Contains(fe.Reason, c.reason) {
			t.Errorf("%s: %v, want line %d and %q", c.name, err, c.line, c.reason)
		}
		if strings.Contains(err.Error(), "secret\"") || strings.Contains(err.Error(), "-secret") {
			t.Errorf("%s: the message shows a secret: %v", c.name, err)
		}
	}
}
