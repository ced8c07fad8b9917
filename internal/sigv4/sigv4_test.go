package sigv4_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/lambdad/lambdad/internal/awserr"
	"github.com/lambdad/lambdad/internal/sigv4"
)

const (
	akid   = "AKIDEXAMPLE12345"
	secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
)

var creds = aws.Credentials{AccessKeyID: akid, SecretAccessKey: secret}

func hash(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// signed builds a request as a client would send it and signs it with the
// real SDK signer, then turns it into what a server receives.
func signed(t *testing.T, method, target string, body []byte, at time.Time, edit func(*http.Request)) *http.Request {
	t.Helper()
	out, err := http.NewRequest(method, "http://lambda.local:9001"+target, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	out.Header.Set("Content-Type", "application/json")
	out.Header.Set("X-Amz-Invocation-Type", "RequestResponse")
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, out, hash(body), "lambda", "us-east-1", at); err != nil {
		t.Fatal(err)
	}
	return received(t, out, body, edit)
}

// received is out as net/http hands it to a handler.
func received(t *testing.T, out *http.Request, body []byte, edit func(*http.Request)) *http.Request {
	t.Helper()
	in := httptest.NewRequest(out.Method, out.URL.RequestURI(), bytes.NewReader(body))
	in.Host = out.URL.Host
	for k, v := range out.Header {
		in.Header[k] = v
	}
	if edit != nil {
		edit(in)
	}
	return in
}

func verify(r *http.Request, now time.Time) error {
	s, err := sigv4.Parse(r)
	if err != nil {
		return err
	}
	if err := s.CheckTime(now); err != nil {
		return err
	}
	if s.AccessKeyID != akid {
		return fmt.Errorf("access key %q", s.AccessKeyID)
	}
	body, _ := io.ReadAll(r.Body)
	ph := hash(body)
	if v := r.Header.Get("X-Amz-Content-Sha256"); v == sigv4.UnsignedPayload {
		ph = v
	}
	if s.Presigned && r.Header.Get("X-Amz-Content-Sha256") == "" {
		if err := s.Verify(r, secret, ph); err == nil {
			return nil
		}
		ph = sigv4.UnsignedPayload
	}
	return s.Verify(r, secret, ph)
}

func code(err error) string {
	if err == nil {
		return ""
	}
	if e, ok := awserr.As(err); ok {
		return string(e.Code)
	}
	return err.Error()
}

// TestSignedBySDK checks requests signed by aws-sdk-go-v2's own signer:
// each valid form verifies, and any change to what was signed, a wrong
// secret or a stale clock is refused with AWS's code.
func TestSignedBySDK(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	body := []byte(`{"ReservedConcurrentExecutions":5}`)
	paths := []string{
		"/2017-10-31/functions/my-function/concurrency",
		"/2015-03-31/functions/my-function%3A%24LATEST/invocations?Qualifier=%24LATEST",
		"/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Af/configuration?Qualifier=1",
		"/2015-03-31/functions/?Marker=a%20b&MaxItems=5&FunctionVersion=ALL",
		"/2017-03-31/tags/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Af?tagKeys=a&tagKeys=b",
	}
	for _, p := range paths {
		if err := verify(signed(t, "PUT", p, body, now, nil), now); err != nil {
			t.Errorf("%s: valid request refused: %v", p, err)
		}
	}
	p := paths[0]
	for _, c := range []struct {
		name string
		at   time.Time
		edit func(*http.Request)
		want awserr.Code
	}{
		{"body tampered", now, func(r *http.Request) {
			r.Body = io.NopCloser(strings.NewReader(`{"ReservedConcurrentExecutions":900}`))
		}, awserr.InvalidSignature},
		{"path tampered", now, func(r *http.Request) { r.URL.Path = "/2017-10-31/functions/other/concurrency"; r.URL.RawPath = "" }, awserr.InvalidSignature},
		{"query added", now, func(r *http.Request) { r.URL.RawQuery = "Qualifier=1" }, awserr.InvalidSignature},
		{"signed header changed", now, func(r *http.Request) { r.Header.Set("X-Amz-Invocation-Type", "Event") }, awserr.InvalidSignature},
		{"method changed", now, func(r *http.Request) { r.Method = "DELETE" }, awserr.InvalidSignature},
		{"host changed", now, func(r *http.Request) { r.Host = "evil:9001" }, awserr.InvalidSignature},
		{"signature garbled", now, func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "Signature=", "Signature=00", 1))
		}, awserr.InvalidSignature},
		{"signed 6 minutes ago", now.Add(-6 * time.Minute), nil, awserr.InvalidSignature},
		{"signed 6 minutes ahead", now.Add(6 * time.Minute), nil, awserr.InvalidSignature},
		{"signed 4 minutes ago", now.Add(-4 * time.Minute), nil, ""},
		{"unsigned", now, func(r *http.Request) { r.Header.Del("Authorization") }, awserr.MissingAuthenticationToken},
		{"no credential", now, func(r *http.Request) {
			r.Header.Set("Authorization", "AWS4-HMAC-SHA256 SignedHeaders=host, Signature=00")
		}, awserr.IncompleteSignature},
		{"other algorithm", now, func(r *http.Request) { r.Header.Set("Authorization", "AWS AKID:abc") }, awserr.IncompleteSignature},
		{"no date", now, func(r *http.Request) { r.Header.Del("X-Amz-Date") }, awserr.IncompleteSignature},
	} {
		err := verify(signed(t, "PUT", p, body, c.at, c.edit), now)
		if code(err) != string(c.want) {
			t.Errorf("%s: got %v, want %s", c.name, err, c.want)
		}
	}
	// The expired message is AWS's.
	err := verify(signed(t, "PUT", p, body, now.Add(-6*time.Minute), nil), now)
	if want := "Signature expired: 20261201T095400Z is now earlier than 20261201T095500Z (20261201T100000Z - 5 min.)"; !strings.Contains(err.Error(), want) {
		t.Errorf("expired: %v, want %q", err, want)
	}
	if e, _ := awserr.As(verify(signed(t, "PUT", p, body, now, func(r *http.Request) { r.Method = "GET" }), now)); e == nil || e.Message != sigv4.MismatchMessage || e.Status() != 403 {
		t.Errorf("mismatch: %+v", e)
	}
}

// TestUnsignedPayload checks the UNSIGNED-PAYLOAD form: the body is not
// part of the signature, everything else is.
func TestUnsignedPayload(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	out, _ := http.NewRequest("POST", "http://h:1/2015-03-31/functions/f/invocations", strings.NewReader("{}"))
	out.Header.Set("X-Amz-Content-Sha256", sigv4.UnsignedPayload)
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, out, sigv4.UnsignedPayload, "lambda", "us-east-1", now); err != nil {
		t.Fatal(err)
	}
	if err := verify(received(t, out, []byte("[]"), nil), now); err != nil {
		t.Errorf("unsigned payload: %v", err)
	}
	if err := verify(received(t, out, nil, func(r *http.Request) { r.URL.RawQuery = "Qualifier=2" }), now); code(err) != string(awserr.InvalidSignature) {
		t.Errorf("unsigned payload, query changed: %v", err)
	}
}

// TestPresigned checks the query form made by the SDK's PresignHTTP,
// within and after its expiry.
func TestPresigned(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	out, _ := http.NewRequest("GET", "http://h:1/2015-03-31/functions/f?X-Amz-Expires=300", nil)
	u, _, err := v4.NewSigner().PresignHTTP(context.Background(), creds, out, hash(nil), "lambda", "us-east-1", now)
	if err != nil {
		t.Fatal(err)
	}
	req := func() *http.Request {
		r := httptest.NewRequest("GET", strings.TrimPrefix(u, "http://h:1"), nil)
		r.Host = "h:1"
		return r
	}
	if err := verify(req(), now.Add(time.Minute)); err != nil {
		t.Errorf("presigned, in time: %v", err)
	}
	if err := verify(req(), now.Add(6*time.Minute)); code(err) != string(awserr.InvalidSignature) || !strings.Contains(err.Error(), "Signature expired") {
		t.Errorf("presigned, expired: %v", err)
	}
	r := req()
	r.URL.RawQuery = strings.Replace(r.URL.RawQuery, "X-Amz-Expires=300", "X-Amz-Expires=3000", 1)
	if err := verify(r, now.Add(6*time.Minute)); code(err) != string(awserr.InvalidSignature) || strings.Contains(err.Error(), "expired") {
		t.Errorf("presigned, expiry stretched: %v", err)
	}
}

// TestStreamingAWSExample checks the chunked form against AWS's own
// worked example (Signature Calculations for the Authorization Header:
// Transferring Payload in Multiple Chunks): 66,560 bytes of 'a' in chunks
// of 64 KiB, whose seed and chunk signatures AWS publishes.
func TestStreamingAWSExample(t *testing.T) {
	const exSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	payload := bytes.Repeat([]byte("a"), 66560)
	chunkSigs := []string{
		"ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
		"0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
		"b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
	}
	var body bytes.Buffer
	for i, n := range []int{65536, 1024, 0} {
		fmt.Fprintf(&body, "%x;chunk-signature=%s\r\n", n, chunkSigs[i])
		body.Write(payload[:n])
		body.WriteString("\r\n")
	}
	r := httptest.NewRequest("PUT", "/examplebucket/chunkObject.txt", bytes.NewReader(body.Bytes()))
	r.Host = "s3.amazonaws.com"
	for k, v := range map[string]string{
		"Content-Encoding":             "aws-chunked",
		"Content-Length":               "66824",
		"X-Amz-Content-Sha256":         sigv4.StreamingPayload,
		"X-Amz-Date":                   "20130524T000000Z",
		"X-Amz-Decoded-Content-Length": "66560",
		"X-Amz-Storage-Class":          "REDUCED_REDUNDANCY",
		"Authorization": "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request," +
			"SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class," +
			"Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
	} {
		r.Header.Set(k, v)
	}
	if body.Len() != 66824 {
		t.Fatalf("example body is %d bytes", body.Len())
	}
	s, err := sigv4.Parse(r)
	if err != nil {
		t.Fatal(err)
	}
	// S3 signs the path as it is; this example has nothing to encode, so
	// the other services' double encoding gives the same string.
	if err := s.Verify(r, exSecret, sigv4.StreamingPayload); err != nil {
		t.Fatalf("seed signature: %v", err)
	}
	got, err := s.DecodeStreaming(bytes.NewReader(body.Bytes()), exSecret, 1<<20)
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("decoded %d bytes, %v", len(got), err)
	}
	tampered := bytes.Replace(body.Bytes(), []byte("aaaa"), []byte("aaab"), 1)
	if _, err := s.DecodeStreaming(bytes.NewReader(tampered), exSecret, 1<<20); code(err) != string(awserr.InvalidSignature) {
		t.Errorf("tampered chunk: %v", err)
	}
	if _, err := s.DecodeStreaming(bytes.NewReader(body.Bytes()), exSecret, 1000); code(err) != string(awserr.IncompleteSignature) {
		t.Errorf("over the limit: %v", err)
	}
}

// TestSignMatchesSDK checks lambdad's own signer against the SDK's: the
// same request signed by both at the same moment gets one signature.
func TestSignMatchesSDK(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	body := []byte(`{"echo":"x"}`)
	mk := func() *http.Request {
		r, _ := http.NewRequest("POST", "http://127.0.0.1:9001/2015-03-31/functions/f%3A1/invocations?Qualifier=1", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		return r
	}
	ours, theirs := mk(), mk()
	sigv4.Sign(ours, body, akid, secret, "us-east-1", "lambda", now)
	theirs.Header.Set("X-Amz-Date", now.Format("20060102T150405Z"))
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, theirs, hash(body), "lambda", "us-east-1", now); err != nil {
		t.Fatal(err)
	}
	sig := func(r *http.Request) string {
		_, s, _ := strings.Cut(r.Header.Get("Authorization"), "Signature=")
		return s
	}
	if sig(ours) != sig(theirs) {
		t.Errorf("signatures differ:\n ours   %s\n theirs %s", ours.Header.Get("Authorization"), theirs.Header.Get("Authorization"))
	}
	if err := verify(received(t, ours, body, nil), now); err != nil {
		t.Errorf("our signature does not verify: %v", err)
	}
}
