package iam

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/lambdad/lambdad/internal/awserr"
)

// TestSessionsExpire signs with the SDK's signer as a function's session:
// accepted with its token until the session's end, refused without the
// token, and refused with AWS's ExpiredTokenException after.
func TestSessionsExpire(t *testing.T) {
	c, err := Load("testdata/credentials.json")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	g := New(c, Options{Now: func() time.Time { return now }})
	s, ok := g.Issue("arn:aws:iam::111111111111:role/caller", "fn")
	if !ok {
		t.Fatal("the role is not issued")
	}
	if !s.Expires.Equal(now.Add(SessionTTL)) {
		t.Errorf("expires %v, want %v", s.Expires, now.Add(SessionTTL))
	}
	req := func(at time.Time, token string) *http.Request {
		out, _ := http.NewRequest("GET", "http://127.0.0.1:9001/2015-03-31/functions/callee", nil)
		sum := sha256.Sum256(nil)
		if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: s.AccessKeyID,
			SecretAccessKey: s.SecretAccessKey, SessionToken: token}, out, hex.EncodeToString(sum[:]), "lambda", "us-east-1", at); err != nil {
			t.Fatal(err)
		}
		in := httptest.NewRequest("GET", out.URL.RequestURI(), nil)
		in.Host, in.Header, in.RemoteAddr = out.URL.Host, out.Header, "127.0.0.1:40000"
		return in
	}
	caller, err := g.Authenticate(req(now, s.SessionToken))
	if err != nil || caller.Principal != "arn:aws:sts::111111111111:assumed-role/caller/fn" {
		t.Fatalf("the session: %+v %v", caller, err)
	}
	if _, err := g.Authenticate(req(now, "")); !awserr.Is(err, awserr.UnrecognizedClient) {
		t.Errorf("the session without its token: %v", err)
	}
	if _, err := g.Authenticate(req(now, s.SessionToken+"x")); !awserr.Is(err, awserr.UnrecognizedClient) {
		t.Errorf("the session with another token: %v", err)
	}
	now = s.Expires.Add(-time.Minute)
	if _, err := g.Authenticate(req(now, s.SessionToken)); err != nil {
		t.Errorf("a minute before the end: %v", err)
	}
	now = s.Expires.Add(time.Second)
	_, err = g.Authenticate(req(now, s.SessionToken))
	if e, ok := awserr.As(err); !ok || e.Code != awserr.ExpiredToken || e.Status() != 403 || e.Message != "The security token included in the request is expired" {
		t.Errorf("after the end: %v", err)
	}
}

// TestCodeURLExpires checks Code.Location's presigned query: good for its
// path until CodeURLTTL, then refused, and never for another path.
func TestCodeURLExpires(t *testing.T) {
	c, err := Load("testdata/credentials.json")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	g := New(c, Options{Now: func() time.Time { return now }})
	q, err := url.ParseQuery(g.PresignPath("/lambdad/code/abc"))
	if err != nil {
		t.Fatal(err)
	}
	if !g.CheckPresigned("/lambdad/code/abc", q) {
		t.Errorf("refused at once")
	}
	if g.CheckPresigned("/lambdad/code/abd", q) {
		t.Errorf("accepted for another path")
	}
	now = now.Add(CodeURLTTL - time.Second)
	if !g.CheckPresigned("/lambdad/code/abc", q) {
		t.Errorf("refused before its expiry")
	}
	now = now.Add(2 * time.Second)
	if g.CheckPresigned("/lambdad/code/abc", q) {
		t.Errorf("accepted after its expiry")
	}
}
