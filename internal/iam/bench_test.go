package iam

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/lambdad/lambdad/internal/sigv4"
)

// BenchmarkAuthenticateAuthorize is the work access control adds to one
// request: the SigV4 check of a signed Invoke (parse, key, clock, body
// hash, canonical request, signature) and the policy decision of the
// reader (two statements) and of the admin, on the server's side only.
func BenchmarkAuthenticateAuthorize(b *testing.B) {
	c, err := Load("testdata/credentials.json")
	if err != nil {
		b.Fatal(err)
	}
	g := New(c, Options{})
	body := []byte(`{"echo":"lambdad"}`)
	out, _ := http.NewRequest("POST", "http://127.0.0.1:9001/2015-03-31/functions/orders/invocations", bytes.NewReader(body))
	out.Header.Set("Content-Type", "application/json")
	sigv4.Sign(out, body, "AKIAREADER000000001", "reader-secret", "us-east-1", "lambda", time.Now())
	r := httptest.NewRequest("POST", out.URL.RequestURI(), nil)
	r.Host = out.Host
	r.Header = out.Header
	r.RemoteAddr = "127.0.0.1:40000"
	arn := "arn:aws:lambda:us-east-1:111111111111:function:orders"
	b.Run("authenticate", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
			if _, err := g.Authenticate(r); err != nil {
				b.Fatal(err)
			}
		}
	})
	caller, err := g.Authenticate(r)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("authorize", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := g.Authorize(r, caller, "lambda:GetFunction", arn); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("both", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
			caller, err := g.Authenticate(r)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := g.Authorize(r, caller, "lambda:GetFunction", arn); err != nil {
				b.Fatal(err)
			}
		}
	})
}
