package server_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/lambdad/lambdad/internal/lambdatest"
	"github.com/lambdad/lambdad/internal/server"
)

// urlEcho answers with the event it got, shaped by the event's query:
// ?shape=string returns a plain string, ?shape=raw an object without a
// statusCode, ?shape=binary a base64 body; otherwise a structured answer
// echoing the event, with a header and two cookies.
const urlEcho = `import json, base64
def handler(event, context):
    shape = (event.get("queryStringParameters") or {}).get("shape")
    if shape == "string":
        return "plain text"
    if shape == "raw":
        return {"raw": True}
    if shape == "binary":
        return {"statusCode": 201, "body": base64.b64encode(b"\x00\x01binary").decode(), "isBase64Encoded": True,
                "headers": {"content-type": "application/octet-stream"}}
    return {"statusCode": 202, "headers": {"x-echo": "yes", "content-type": "application/json"},
            "cookies": ["a=1; Path=/", "b=2"], "body": json.dumps(event)}
`

// localhostClient reaches every *.localhost name at the server, as
// browsers and RFC 6761 resolve them to the loopback address; this
// machine's resolver does not.
func localhostClient(addr string) *http.Client {
	d := &net.Dialer{}
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
		if h, _, _ := net.SplitHostPort(a); strings.HasSuffix(h, ".localhost") {
			a = addr
		}
		return d.DialContext(ctx, network, a)
	}}}
}

func do(t *testing.T, c *http.Client, method, u string, body string, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, b
}

func TestFunctionURLs(t *testing.T) {
	requireTool(t, "python3")
	n := start(t, server.Options{})
	if _, err := n.client.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("web"),
		Runtime: types.RuntimePython312, Handler: aws.String("app.handler"), Role: aws.String(role),
		Code: &types.FunctionCode{ZipFile: lambdatest.Zip(t, map[string]string{"app.py": urlEcho})}}); err != nil {
		t.Fatal(err)
	}
	created, err := n.client.CreateFunctionUrlConfig(ctx, &lambda.CreateFunctionUrlConfigInput{FunctionName: aws.String("web"),
		AuthType: types.FunctionUrlAuthTypeNone, Cors: &types.Cors{AllowOrigins: []string{"https://app.example"},
			AllowMethods: []string{"GET", "POST"}, AllowHeaders: []string{"x-custom"}, ExposeHeaders: []string{"x-echo"}, MaxAge: aws.Int32(300)}})
	if err != nil {
		t.Fatal(err)
	}
	fu, err := url.Parse(aws.ToString(created.FunctionUrl))
	if err != nil {
		t.Fatal(err)
	}
	id, _, _ := strings.Cut(fu.Hostname(), ".")
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(n.URL(), "http://"))
	if want := "http://" + id + ".lambda-url.us-east-1.localhost:" + port + "/"; fu.String() != want || len(id) != 32 {
		t.Fatalf("FunctionUrl = %s, want %s", fu, want)
	}
	if aws.ToString(created.FunctionArn) != "arn:aws:lambda:us-east-1:123456789012:function:web" {
		t.Errorf("FunctionArn = %s", aws.ToString(created.FunctionArn))
	}
	_, err = n.client.CreateFunctionUrlConfig(ctx, &lambda.CreateFunctionUrlConfigInput{FunctionName: aws.String("web"), AuthType: types.FunctionUrlAuthTypeNone})
	if code, msg := lambdatest.APIError(t, err); code != "ResourceConflictException" || !strings.Contains(msg, "FunctionUrlConfig exists for this Lambda function") {
		t.Errorf("a second URL: %s %s", code, msg)
	}

	client := localhostClient(strings.TrimPrefix(n.URL(), "http://"))
	for _, base := range []string{fu.String(), n.URL() + "/lambda-url/" + id + "/"} {
		// The payload 2.0 round trip: the event the function saw, and its
		// structured answer mapped back.
		res, body := do(t, client, "POST", base+"some/path?x=1&x=2&y=z", `{"in":"put"}`, map[string]string{
			"Content-Type": "application/json", "Cookie": "c1=v1; c2=v2", "X-Multi": "a", "Origin": "https://app.example"})
		if res.StatusCode != 202 || res.Header.Get("X-Echo") != "yes" || len(res.Header.Values("Set-Cookie")) != 2 {
			t.Fatalf("%s: %d %v %s", base, res.StatusCode, res.Header, body)
		}
		if res.Header.Get("Access-Control-Allow-Origin") != "https://app.example" || res.Header.Get("Access-Control-Expose-Headers") != "x-echo" {
			t.Errorf("%s: CORS headers of an allowed origin: %v", base, res.Header)
		}
		var ev struct {
			Version, RawPath, RawQueryString, Body string
			IsBase64Encoded                        bool
			Cookies                                []string
			Headers, QueryStringParameters         map[string]string
			RequestContext                         struct {
				AccountID, APIID, DomainName string
				HTTP                         struct{ Method, Path string }
			}
		}
		if err := json.Unmarshal(body, &ev); err != nil {
			t.Fatalf("%s: %v in %s", base, err, body)
		}
		if ev.Version != "2.0" || ev.RawPath != "/some/path" || ev.RawQueryString != "x=1&x=2&y=z" || ev.QueryStringParameters["x"] != "1,2" ||
			ev.Body != `{"in":"put"}` || ev.IsBase64Encoded || strings.Join(ev.Cookies, "|") != "c1=v1|c2=v2" || ev.Headers["x-multi"] != "a" ||
			ev.Headers["cookie"] != "" || ev.RequestContext.HTTP.Method != "POST" || ev.RequestContext.HTTP.Path != "/some/path" ||
			ev.RequestContext.APIID != id || ev.RequestContext.DomainName != id+".lambda-url.us-east-1.localhost" {
			t.Errorf("%s: event %s", base, body)
		}

		// A plain string answer is the body; other JSON is the body as it is.
		if res, body := do(t, client, "GET", base+"?shape=string", "", nil); res.StatusCode != 200 || string(body) != "plain text" {
			t.Errorf("%s: a string answer: %d %q", base, res.StatusCode, body)
		}
		if res, body := do(t, client, "GET", base+"?shape=raw", "", nil); res.StatusCode != 200 || string(body) != `{"raw": true}` ||
			res.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s: a raw answer: %d %q %v", base, res.StatusCode, body, res.Header)
		}
		if res, body := do(t, client, "GET", base+"?shape=binary", "", nil); res.StatusCode != 201 || string(body) != "\x00\x01binary" ||
			res.Header.Get("Content-Type") != "application/octet-stream" {
			t.Errorf("%s: a base64 answer: %d %q", base, res.StatusCode, body)
		}
		// A binary request body reaches the function as base64.
		_, body = do(t, client, "PUT", base, "\xff\xfe", map[string]string{"Content-Type": "application/octet-stream"})
		if err := json.Unmarshal(body, &ev); err != nil || !ev.IsBase64Encoded || ev.Body != base64.StdEncoding.EncodeToString([]byte("\xff\xfe")) {
			t.Errorf("%s: a binary request body: %s", base, body)
		}

		// CORS preflight, answered from the configuration without
		// invoking the function.
		res, _ = do(t, client, "OPTIONS", base, "", map[string]string{"Origin": "https://app.example",
			"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "X-Custom, X-Other"})
		if res.StatusCode != 200 || res.Header.Get("Access-Control-Allow-Origin") != "https://app.example" ||
			res.Header.Get("Access-Control-Allow-Methods") != "POST" || res.Header.Get("Access-Control-Allow-Headers") != "X-Custom" ||
			res.Header.Get("Access-Control-Max-Age") != "300" {
			t.Errorf("%s: preflight: %d %v", base, res.StatusCode, res.Header)
		}
		res, _ = do(t, client, "OPTIONS", base, "", map[string]string{"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
		if res.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("%s: preflight from an origin not allowed: %v", base, res.Header)
		}
	}

	// Throttled by the same admission as Invoke: reservation 0.
	n.reserve(t, "web", 0)
	res, body := do(t, client, "GET", fu.String(), "", nil)
	if res.StatusCode != 429 || res.Header.Get("X-Amzn-ErrorType") != "TooManyRequestsException" || string(body) != `{"Message":"Rate Exceeded."}` {
		t.Errorf("throttled: %d %v %s", res.StatusCode, res.Header, body)
	}
	if _, err := n.client.DeleteFunctionConcurrency(ctx, &lambda.DeleteFunctionConcurrencyInput{FunctionName: aws.String("web")}); err != nil {
		t.Fatal(err)
	}

	// AWS_IAM: not let through while the server has no access control.
	if _, err := n.client.UpdateFunctionUrlConfig(ctx, &lambda.UpdateFunctionUrlConfigInput{FunctionName: aws.String("web"), AuthType: types.FunctionUrlAuthTypeAwsIam}); err != nil {
		t.Fatal(err)
	}
	if res, body := do(t, client, "GET", fu.String(), "", nil); res.StatusCode != 403 || !strings.Contains(string(body), "not enforced") {
		t.Errorf("AWS_IAM without access control: %d %s", res.StatusCode, body)
	}

	// An alias's URL, listed with the function's, and gone with the alias.
	if _, err := n.client.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("web")}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.client.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String("web"), Name: aws.String("live"), FunctionVersion: aws.String("1")}); err != nil {
		t.Fatal(err)
	}
	live, err := n.client.CreateFunctionUrlConfig(ctx, &lambda.CreateFunctionUrlConfigInput{FunctionName: aws.String("web"), Qualifier: aws.String("live"), AuthType: types.FunctionUrlAuthTypeNone})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(live.FunctionArn) != "arn:aws:lambda:us-east-1:123456789012:function:web:live" {
		t.Errorf("alias URL FunctionArn = %s", aws.ToString(live.FunctionArn))
	}
	if res, body := do(t, client, "GET", aws.ToString(live.FunctionUrl)+"?shape=string", "", nil); res.StatusCode != 200 || string(body) != "plain text" {
		t.Errorf("alias URL: %d %s", res.StatusCode, body)
	}
	list, err := n.client.ListFunctionUrlConfigs(ctx, &lambda.ListFunctionUrlConfigsInput{FunctionName: aws.String("web"), MaxItems: aws.Int32(1)})
	if err != nil || len(list.FunctionUrlConfigs) != 1 || list.NextMarker == nil {
		t.Fatalf("list page 1: %v %+v", err, list)
	}
	list, err = n.client.ListFunctionUrlConfigs(ctx, &lambda.ListFunctionUrlConfigsInput{FunctionName: aws.String("web"), Marker: list.NextMarker})
	if err != nil || len(list.FunctionUrlConfigs) != 1 || aws.ToString(list.FunctionUrlConfigs[0].FunctionArn) != aws.ToString(live.FunctionArn) || list.NextMarker != nil {
		t.Fatalf("list page 2: %v %+v", err, list)
	}
	if _, err := n.client.DeleteAlias(ctx, &lambda.DeleteAliasInput{FunctionName: aws.String("web"), Name: aws.String("live")}); err != nil {
		t.Fatal(err)
	}
	if res, body := do(t, client, "GET", aws.ToString(live.FunctionUrl), "", nil); res.StatusCode != 403 || string(body) != `{"Message":null}` {
		t.Errorf("the URL of a deleted alias: %d %s", res.StatusCode, body)
	}

	// AWS's errors.
	_, err = n.client.GetFunctionUrlConfig(ctx, &lambda.GetFunctionUrlConfigInput{FunctionName: aws.String("web"), Qualifier: aws.String("live")})
	if code, msg := lambdatest.APIError(t, err); code != "ResourceNotFoundException" || msg != "The resource you requested does not exist." {
		t.Errorf("get a missing URL: %s %s", code, msg)
	}
	_, err = n.client.CreateFunctionUrlConfig(ctx, &lambda.CreateFunctionUrlConfigInput{FunctionName: aws.String("nope"), AuthType: types.FunctionUrlAuthTypeNone})
	if code, msg := lambdatest.APIError(t, err); code != "ResourceNotFoundException" || msg != "Function does not exist" {
		t.Errorf("a URL for a missing function: %s %s", code, msg)
	}
	_, err = n.client.CreateFunctionUrlConfig(ctx, &lambda.CreateFunctionUrlConfigInput{FunctionName: aws.String("web"), Qualifier: aws.String("1"), AuthType: types.FunctionUrlAuthTypeNone})
	if code, _ := lambdatest.APIError(t, err); code != "ValidationException" {
		t.Errorf("a URL on a version: %v", err)
	}
	_, err = n.client.CreateFunctionUrlConfig(ctx, &lambda.CreateFunctionUrlConfigInput{FunctionName: aws.String("web:a"), Qualifier: aws.String("b"), AuthType: types.FunctionUrlAuthTypeNone})
	if code, msg := lambdatest.APIError(t, err); code != "InvalidParameterValueException" || msg != "The derived qualifier from the function name does not match the specified qualifier." {
		t.Errorf("qualifiers that disagree: %s %s", code, msg)
	}
	if _, err := n.client.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("web")}); err != nil {
		t.Fatal(err)
	}
	if res, _ := do(t, client, "GET", fu.String(), "", nil); res.StatusCode != 403 {
		t.Errorf("the URL of a deleted function: %d", res.StatusCode)
	}
}
