package sigv4_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lambdad/lambdad/internal/awserr"
	"github.com/lambdad/lambdad/internal/sigv4"
)

// FuzzSigV4 feeds arbitrary Authorization headers, dates, paths and
// queries through parsing, the clock check, the canonical request and
// verification: every outcome is nil or an AWS-shaped error, never a
// panic, and nothing arbitrary verifies.
func FuzzSigV4(f *testing.F) {
	f.Add("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE12345/20261201/us-east-1/lambda/aws4_request, SignedHeaders=host;x-amz-date, Signature=abcdef",
		"20261201T100000Z", "/2015-03-31/functions/f%3A%24LATEST/invocations", "Qualifier=1&b=%20c")
	f.Add("AWS4-HMAC-SHA256 Credential=a/b/c/d/e", "", "/", "")
	f.Add("", "", "/x", "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20261201%2Fus-east-1%2Flambda%2Faws4_request&X-Amz-Date=20261201T100000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=00")
	f.Add("AWS4-HMAC-SHA256 ,,,=,Signature=", "Tue, 01 Dec 2026 10:00:00 GMT", "//%zz", "a=%zz&&=")
	f.Fuzz(func(t *testing.T, auth, date, path, query string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.URL.Path, r.URL.RawPath, r.URL.RawQuery = path, "", query
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		r.Header.Set("X-Amz-Date", date)
		r.Header.Set("X-Amz-Target", strings.Repeat(" a ", 3))
		s, err := sigv4.Parse(r)
		if err != nil {
			if _, ok := awserr.As(err); !ok {
				t.Fatalf("not an AWS error: %v", err)
			}
			return
		}
		if s.AccessKeyID == "" || s.Signature == "" || len(s.SignedHeaders) == 0 {
			t.Fatalf("accepted without its parts: %+v", s)
		}
		if err := s.CheckTime(time.Now()); err != nil {
			if _, ok := awserr.As(err); !ok {
				t.Fatalf("not an AWS error: %v", err)
			}
		}
		_ = sigv4.CanonicalRequest(r, s.SignedHeaders, sigv4.EmptyHash, s.Presigned)
		if err := s.Verify(r, "secret", sigv4.EmptyHash); err == nil {
			t.Fatalf("an arbitrary signature verified: %q", auth)
		}
		// A chunked body of arbitrary bytes never verifies either.
		if _, err := s.DecodeStreaming(strings.NewReader(query), "secret", 1<<16); err == nil && query != "" {
			t.Fatalf("an arbitrary chunked body verified: %q", query)
		}
		_ = http.NoBody
	})
}
