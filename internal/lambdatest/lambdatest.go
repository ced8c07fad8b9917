// Package lambdatest provides fixtures for tests that talk to lambdad the
// way users do: the real aws-sdk-go-v2 Lambda client pointed at a server,
// raw HTTP for requests the SDK refuses to send, and code archives built in
// memory.
package lambdatest

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
)

// Logger routes a test's logs to its output.
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// AccessKeyID is the key the test client signs with.
const AccessKeyID = "AKIDLAMBDATEST"

// Client returns an SDK client for the server at endpoint, with retries
// off so that every answer is seen as it is.
func Client(endpoint string) *lambda.Client { return ClientAs(endpoint, AccessKeyID) }

// ClientAs is Client signing with another access key.
func ClientAs(endpoint, accessKeyID string) *lambda.Client {
	return ClientWith(endpoint, accessKeyID, "secret", "")
}

// ClientWith is Client signing with the given credentials (sessionToken
// "" for long-term keys).
func ClientWith(endpoint, accessKeyID, secret, sessionToken string) *lambda.Client {
	return lambda.NewFromConfig(config(accessKeyID, secret, sessionToken), func(o *lambda.Options) {
		o.BaseEndpoint = aws.String(endpoint)
	})
}

// STSClient is an STS client for the server at endpoint, signing with the
// given credentials.
func STSClient(endpoint, accessKeyID, secret string) *sts.Client {
	return sts.NewFromConfig(config(accessKeyID, secret, ""), func(o *sts.Options) {
		o.BaseEndpoint = aws.String(endpoint)
	})
}

func config(accessKeyID, secret, sessionToken string) aws.Config {
	return aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider(accessKeyID, secret, sessionToken),
		Retryer:     func() aws.Retryer { return aws.NopRetryer{} },
		HTTPClient:  sdkHTTPClient,
	}
}

// sdkHTTPClient is the SDK's own HTTP client but for one race of the
// client side that a server answering at once (a streamed response's
// headers) makes likely: smithy-go closes a request's body as soon as the
// response's headers are in, and net/http's writer may still be making
// its last read of that body, to check that nothing follows its
// Content-Length. The closed body's WriteTo answers io.EOF, io.Copy hands
// that on as an error, and the transport closes the connection under the
// response being read ("use of closed network connection"). Hiding WriteTo
// makes the last read a Read, whose io.EOF io.Copy takes as the end.
var sdkHTTPClient = &http.Client{Transport: bodyReadsOnly{awshttp.NewBuildableClient().GetTransport()}}

type bodyReadsOnly struct{ rt http.RoundTripper }

func (b bodyReadsOnly) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = readCloserOnly{r.Body}
	}
	return b.rt.RoundTrip(r)
}

// readCloserOnly is an io.ReadCloser and nothing else.
type readCloserOnly struct{ io.ReadCloser }

// Zip builds a code archive from name → content. Files named "bootstrap"
// or ending in ".sh" are executable.
func Zip(t testing.TB, files map[string]string) []byte {
	t.Helper()
	b := make(map[string][]byte, len(files))
	for n, c := range files {
		b[n] = []byte(c)
	}
	return zipFiles(b)
}

func zipFiles(files map[string][]byte) []byte {
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		h := &zip.FileHeader{Name: n, Method: zip.Deflate}
		mode := 0o644
		if n == "bootstrap" || strings.HasSuffix(n, ".sh") {
			mode = 0o755
		}
		h.SetMode(fs.FileMode(mode))
		// Writing to an in-memory archive cannot fail.
		f, _ := w.CreateHeader(h)
		f.Write(files[n])
	}
	w.Close()
	return buf.Bytes()
}

// APIError returns the AWS error code and message of err; it fails the
// test if err is not an AWS API error.
func APIError(t testing.TB, err error) (code, message string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("want an AWS API error, got %v", err)
	}
	return ae.ErrorCode(), ae.ErrorMessage()
}

// Status returns the HTTP status of a failed SDK call.
func Status(t testing.TB, err error) int {
	t.Helper()
	var re *awshttp.ResponseError
	if !errors.As(err, &re) {
		t.Fatalf("want an HTTP response error, got %v", err)
	}
	return re.HTTPStatusCode()
}

// Response is a raw HTTP answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body as an object.
func (r *Response) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", r.Body, err)
	}
	return m
}

// Do sends a raw request, for what the SDK would refuse to send.
func Do(t testing.TB, method, url string, body []byte, header map[string]string) *Response {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return &Response{Status: res.StatusCode, Header: res.Header, Body: b}
}

// DecodeLog decodes an X-Amz-Log-Result header.
func DecodeLog(b64 string) string {
	b, _ := base64.StdEncoding.DecodeString(b64)
	return string(b)
}
