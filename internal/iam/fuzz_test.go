package iam

import (
	"bytes"
	"errors"
	"os"
	"testing"
)

// FuzzCredentials parses arbitrary credentials files: each is accepted or
// refused with a FileError whose line is within the file, never a panic.
func FuzzCredentials(f *testing.F) {
	good, err := os.ReadFile("testdata/credentials.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"accounts":[{"id":"123456789012","concurrencyLimit":0}]}`))
	f.Add([]byte("{\n\"accounts\": [\n{\"id\": \"123456789012\"}],\n\"roles\": [{\"arn\": \"arn:aws:iam::123456789012:role/a/b/c\"}]}"))
	f.Add([]byte(`{"accounts":[],"principals":[{"accessKeyId":"AKIA0000000000000000"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("f.json", data)
		if err != nil {
			var fe *FileError
			if !errors.As(err, &fe) {
				t.Fatalf("not a FileError: %T %v", err, err)
			}
			if fe.Line < 1 || fe.Line > bytes.Count(data, []byte("\n"))+1 {
				t.Fatalf("line %d of a %d-line file", fe.Line, bytes.Count(data, []byte("\n"))+1)
			}
			return
		}
		if len(c.Accounts()) == 0 {
			t.Fatal("accepted with no account")
		}
		for _, p := range c.keys {
			if _, ok := c.accounts[p.Account]; !ok {
				t.Fatalf("principal %s of an unknown account", p.AccessKeyID)
			}
		}
	})
}
