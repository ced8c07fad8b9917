package iam

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lambdad/lambdad/internal/awserr"
	"github.com/lambdad/lambdad/internal/sigv4"
)

// TestStreamingBody authenticates AWS's published chunked-upload example
// through the guard: the seed signature, every chunk's, and the body the
// handler then reads is the decoded payload.
func TestStreamingBody(t *testing.T) {
	c, err := Parse("c.json", []byte(`{"accounts": [{"id": "111111111111"}], "principals": [{"accessKeyId": "AKIAIOSFODNN7EXAMPLE",
		"secretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "account": "111111111111", "user": "example"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	g := New(c, Options{Now: func() time.Time { return time.Date(2013, 5, 24, 0, 1, 0, 0, time.UTC) }})
	payload := bytes.Repeat([]byte("a"), 66560)
	sigs := []string{"ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
		"0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
		"b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"}
	var body bytes.Buffer
	for i, n := range []int{65536, 1024, 0} {
		fmt.Fprintf(&body, "%x;chunk-signature=%s\r\n", n, sigs[i])
		body.Write(payload[:n])
		body.WriteString("\r\n")
	}
	mk := func(b []byte) *http.Request {
		r := httptest.NewRequest("PUT", "/examplebucket/chunkObject.txt", bytes.NewReader(b))
		r.Host = "s3.amazonaws.com"
		for k, v := range map[string]string{
			"Content-Encoding": "aws-chunked", "Content-Length": "66824", "X-Amz-Content-Sha256": sigv4.StreamingPayload,
			"X-Amz-Date": "20130524T000000Z", "X-Amz-Decoded-Content-Length": "66560", "X-Amz-Storage-Class": "REDUCED_REDUNDANCY",
			"Authorization": "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request," +
				"SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class," +
				"Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
		} {
			r.Header.Set(k, v)
		}
		return r
	}
	r := mk(body.Bytes())
	caller, err := g.Authenticate(r)
	if err != nil {
		t.Fatal(err)
	}
	if caller.Principal != "arn:aws:iam::111111111111:user/example" || caller.Account != "111111111111" {
		t.Errorf("caller %+v", caller)
	}
	got, _ := io.ReadAll(r.Body)
	if !bytes.Equal(got, payload) || r.ContentLength != int64(len(payload)) {
		t.Errorf("the handler reads %d bytes (ContentLength %d)", len(got), r.ContentLength)
	}
	tampered := bytes.Replace(body.Bytes(), []byte("aaaa"), []byte("aaab"), 1)
	if _, err := g.Authenticate(mk(tampered)); !awserr.Is(err, awserr.InvalidSignature) {
		t.Errorf("a tampered chunk: %v", err)
	}
	// An hour later the same request is refused with AWS's message.
	g.opts.Now = func() time.Time { return time.Date(2013, 5, 24, 1, 0, 0, 0, time.UTC) }
	if _, err := g.Authenticate(mk(body.Bytes())); !awserr.Is(err, awserr.InvalidSignature) || !strings.HasPrefix(err.(*awserr.Error).Message, "Signature expired: 20130524T000000Z is now earlier than 20130524T005500Z") {
		t.Errorf("an hour later: %v", err)
	}
}
