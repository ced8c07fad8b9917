package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/lambdad/lambdad/internal/lambdatest"
	"github.com/lambdad/lambdad/internal/server"
)

// streamEvents reads an InvokeWithResponseStream answer with the SDK's own
// event-stream reader: the payload chunks joined, and the completion.
func streamEvents(t *testing.T, out *lambda.InvokeWithResponseStreamOutput) (string, *types.InvokeWithResponseStreamCompleteEvent) {
	t.Helper()
	stream := out.GetStream()
	defer stream.Close()
	var payload strings.Builder
	var done *types.InvokeWithResponseStreamCompleteEvent
	for ev := range stream.Events() {
		switch e := ev.(type) {
		case *types.InvokeWithResponseStreamResponseEventMemberPayloadChunk:
			if done != nil {
				t.Error("a payload chunk after InvokeComplete")
			}
			payload.Write(e.Value.Payload)
		case *types.InvokeWithResponseStreamResponseEventMemberInvokeComplete:
			done = &e.Value
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("the event stream: %v", err)
	}
	if done == nil {
		t.Fatal("no InvokeComplete")
	}
	return payload.String(), done
}

// TestInvokeWithResponseStream: the SDK's streaming invoke gets a function's
// whole response as AWS sends it for a function that does not stream (one
// PayloadChunk, then InvokeComplete), a function error in InvokeComplete,
// the log tail, and throttles as Invoke's.
func TestInvokeWithResponseStream(t *testing.T) {
	n := start(t, server.Options{})
	n.createGo(t, "s")
	out, err := n.client.InvokeWithResponseStream(ctx, &lambda.InvokeWithResponseStreamInput{FunctionName: aws.String("s"),
		Payload: []byte(`{"echo":"streamed"}`), LogType: types.LogTypeTail})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.ExecutedVersion) != "$LATEST" || out.StatusCode != 200 {
		t.Errorf("ExecutedVersion %q, StatusCode %d", aws.ToString(out.ExecutedVersion), out.StatusCode)
	}
	payload, done := streamEvents(t, out)
	if !strings.Contains(payload, `"echo":"streamed"`) || done.ErrorCode != nil || !strings.Contains(lambdatest.DecodeLog(aws.ToString(done.LogResult)), "START RequestId") {
		t.Errorf("payload %s, complete %+v", payload, done)
	}

	out, err = n.client.InvokeWithResponseStream(ctx, &lambda.InvokeWithResponseStreamInput{FunctionName: aws.String("s"), Payload: []byte(`{"fail":"boom"}`)})
	if err != nil {
		t.Fatal(err)
	}
	payload, done = streamEvents(t, out)
	if payload != "" || aws.ToString(done.ErrorCode) != "Unhandled" || !strings.Contains(aws.ToString(done.ErrorDetails), "boom") {
		t.Errorf("a function error: payload %q, complete %+v", payload, done)
	}

	n.reserve(t, "s", 0)
	_, err = n.client.InvokeWithResponseStream(ctx, &lambda.InvokeWithResponseStreamInput{FunctionName: aws.String("s"), Payload: []byte(`{}`)})
	if code, _ := lambdatest.APIError(t, err); code != "TooManyRequestsException" || lambdatest.Status(t, err) != 429 {
		t.Errorf("throttled: %v", err)
	}
}

// streamFn is a node function that streams with awslambda.streamifyResponse.
// The event (or, through a function URL, the query) picks what it does:
//
//	signal: write a piece, wait (at most 5 s) until that file exists, then
//	        two more pieces; the second says whether it saw the file
//	fail:   throw after the pieces ("early": before any)
//	http:   begin with HttpResponseStream.from's metadata
//	mb:     write that many MiB, 1 MiB a write
//	drip:   write a piece every 50 ms for 20 s
const streamFn = `const fs = require("fs");
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
exports.handler = awslambda.streamifyResponse(async (event, responseStream) => {
  const q = Object.assign({}, event, event.queryStringParameters || {});
  if (q.fail === "early") throw new Error("failed before writing");
  if (q.mb) {
    const mib = Buffer.alloc(1 << 20, 120);
    for (let i = 0; i < Number(q.mb); i++) responseStream.write(mib);
    responseStream.end();
    return;
  }
  if (q.drip) {
    for (let i = 0; i < 400; i++) { responseStream.write("drip " + i + "\n"); await sleep(50); }
    responseStream.end();
    return;
  }
  if (q.http) {
    responseStream = awslambda.HttpResponseStream.from(responseStream, {
      statusCode: 201, headers: { "content-type": "text/event-stream", "x-custom": "yes" }, cookies: ["a=1; Path=/", "b=2"] });
  } else {
    responseStream.setContentType("text/plain");
  }
  responseStream.write("chunk-1;");
  let saw = !q.signal;
  for (let i = 0; i < 500 && !saw; i++) {
    saw = fs.existsSync(q.signal);
    if (!saw) await sleep(10);
  }
  responseStream.write(saw ? "chunk-2:after-signal;" : "chunk-2:no-signal;");
  await sleep(50);
  responseStream.write("chunk-3;");
  if (q.fail) throw new Error(q.fail);
  responseStream.end();
});
`

func (n *node) createStreamFn(t *testing.T, name string) {
	t.Helper()
	requireTool(t, "node")
	if _, err := n.client.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String(name),
		Runtime: types.RuntimeNodejs20x, Handler: aws.String("index.handler"), Role: aws.String(role), Timeout: aws.Int32(30),
		Code: &types.FunctionCode{ZipFile: lambdatest.Zip(t, map[string]string{"index.js": streamFn})}}); err != nil {
		t.Fatal(err)
	}
}

// streamChunks reads an InvokeWithResponseStream answer event by event,
// calling onChunk as each PayloadChunk arrives.
func streamChunks(t *testing.T, out *lambda.InvokeWithResponseStreamOutput, onChunk func(i int, p []byte)) ([]string, *types.InvokeWithResponseStreamCompleteEvent) {
	t.Helper()
	stream := out.GetStream()
	defer stream.Close()
	var chunks []string
	var done *types.InvokeWithResponseStreamCompleteEvent
	for ev := range stream.Events() {
		switch e := ev.(type) {
		case *types.InvokeWithResponseStreamResponseEventMemberPayloadChunk:
			if done != nil {
				t.Error("a payload chunk after InvokeComplete")
			}
			if onChunk != nil {
				onChunk(len(chunks), e.Value.Payload)
			}
			chunks = append(chunks, string(e.Value.Payload))
		case *types.InvokeWithResponseStreamResponseEventMemberInvokeComplete:
			done = &e.Value
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("the event stream: %v", err)
	}
	if done == nil {
		t.Fatal("no InvokeComplete")
	}
	return chunks, done
}

// signalOnFirst creates the file once the first chunk has arrived: the
// function writes its second chunk only once it sees the file, so a second
// chunk that says "after-signal" proves the first reached the client while
// the function was still running.
func signalOnFirst(t *testing.T, path string) func(int, []byte) {
	return func(i int, _ []byte) {
		if i == 0 {
			if err := os.WriteFile(path, nil, 0o644); err != nil {
				t.Error(err)
			}
		}
	}
}

// TestInvokeWithResponseStreamStreams: the SDK's reader gets a node
// function's pieces as separate PayloadChunk events, in order, the first
// while the function still runs, then InvokeComplete; an error midway is
// InvokeComplete's ErrorCode after what was sent.
func TestInvokeWithResponseStreamStreams(t *testing.T) {
	n := start(t, server.Options{})
	n.createStreamFn(t, "streamer")
	dir := t.TempDir()

	signal := filepath.Join(dir, "first-arrived")
	out, err := n.client.InvokeWithResponseStream(ctx, &lambda.InvokeWithResponseStreamInput{FunctionName: aws.String("streamer"),
		Payload: []byte(`{"signal":"` + signal + `"}`), LogType: types.LogTypeTail})
	if err != nil {
		t.Fatal(err)
	}
	if out.StatusCode != 200 || aws.ToString(out.ExecutedVersion) != "$LATEST" || aws.ToString(out.ResponseStreamContentType) != "text/plain" {
		t.Errorf("StatusCode %d, ExecutedVersion %q, ResponseStreamContentType %q", out.StatusCode, aws.ToString(out.ExecutedVersion), aws.ToString(out.ResponseStreamContentType))
	}
	chunks, done := streamChunks(t, out, signalOnFirst(t, signal))
	if strings.Join(chunks, "|") != "chunk-1;|chunk-2:after-signal;|chunk-3;" {
		t.Errorf("chunks %q", chunks)
	}
	if done.ErrorCode != nil || !strings.Contains(lambdatest.DecodeLog(aws.ToString(done.LogResult)), "REPORT RequestId") {
		t.Errorf("complete %+v", done)
	}

	signal = filepath.Join(dir, "second")
	out, err = n.client.InvokeWithResponseStream(ctx, &lambda.InvokeWithResponseStreamInput{FunctionName: aws.String("streamer"),
		Payload: []byte(`{"signal":"` + signal + `","fail":"broke midway"}`)})
	if err != nil {
		t.Fatal(err)
	}
	chunks, done = streamChunks(t, out, signalOnFirst(t, signal))
	if strings.Join(chunks, "|") != "chunk-1;|chunk-2:after-signal;|chunk-3;" || aws.ToString(done.ErrorCode) != "Unhandled" ||
		!strings.Contains(aws.ToString(done.ErrorDetails), `"errorType":"Error"`) || !strings.Contains(aws.ToString(done.ErrorDetails), "broke midway") {
		t.Errorf("an error midway: chunks %q, complete %s %s", chunks, aws.ToString(done.ErrorCode), aws.ToString(done.ErrorDetails))
	}

	// The same function through Invoke: its streamed bytes, whole.
	res, err := n.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("streamer"), Payload: []byte(`{}`)})
	if err != nil || string(res.Payload) != "chunk-1;chunk-2:after-signal;chunk-3;" || res.FunctionError != nil {
		t.Errorf("Invoke of a streaming function: %v %q", err, res.Payload)
	}
}

// TestStreamedResponseLimit: a function may stream up to the limit (20 MiB
// here, Lambda's limit before 2025, so the test moves 41 MiB rather than
// 400); past it the caller has had exactly the limit, then InvokeComplete
// with Function.ResponseSizeTooLarge, and the function runs again.
func TestStreamedResponseLimit(t *testing.T) {
	n := start(t, server.Options{MaxStreamResponse: 20 << 20})
	n.createStreamFn(t, "big")
	for _, c := range []struct {
		mb   int
		fail bool
	}{{20, false}, {21, true}} {
		out, err := n.client.InvokeWithResponseStream(ctx, &lambda.InvokeWithResponseStreamInput{FunctionName: aws.String("big"),
			Payload: []byte(`{"mb":` + strconv.Itoa(c.mb) + `}`)})
		if err != nil {
			t.Fatal(err)
		}
		total := 0
		_, done := streamChunks(t, out, func(_ int, p []byte) { total += len(p) })
		if total != 20<<20 {
			t.Errorf("%d MiB: the caller got %d bytes", c.mb, total)
		}
		if got := aws.ToString(done.ErrorCode) != ""; got != c.fail ||
			c.fail && !strings.Contains(aws.ToString(done.ErrorDetails), `"errorType":"Function.ResponseSizeTooLarge"`) ||
			c.fail && !strings.Contains(aws.ToString(done.ErrorDetails), "(20971520 bytes)") {
			t.Errorf("%d MiB: complete %s %s", c.mb, aws.ToString(done.ErrorCode), aws.ToString(done.ErrorDetails))
		}
	}
	out, err := n.client.InvokeWithResponseStream(ctx, &lambda.InvokeWithResponseStreamInput{FunctionName: aws.String("big"), Payload: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	if chunks, done := streamChunks(t, out, nil); strings.Join(chunks, "") != "chunk-1;chunk-2:after-signal;chunk-3;" || done.ErrorCode != nil {
		t.Errorf("after the oversized stream: %q %+v", chunks, done)
	}
}

// functionURL gives fn a URL in mode and returns its address.
func (n *node) functionURL(t *testing.T, fn string, mode types.InvokeMode) string {
	t.Helper()
	out, err := n.client.CreateFunctionUrlConfig(ctx, &lambda.CreateFunctionUrlConfigInput{FunctionName: aws.String(fn),
		AuthType: types.FunctionUrlAuthTypeNone, InvokeMode: mode})
	if err != nil {
		t.Fatal(err)
	}
	if out.InvokeMode != mode {
		t.Errorf("CreateFunctionUrlConfig answered InvokeMode %q", out.InvokeMode)
	}
	u, err := url.Parse(aws.ToString(out.FunctionUrl))
	if err != nil {
		t.Fatal(err)
	}
	id, _, _ := strings.Cut(u.Hostname(), ".")
	return n.URL() + "/lambda-url/" + id + "/"
}

// readUntil reads body until it has ended with want.
func readUntil(t *testing.T, body io.Reader, want string) string {
	t.Helper()
	var got []byte
	buf := make([]byte, 4096)
	for !strings.HasSuffix(string(got), want) {
		k, err := body.Read(buf)
		got = append(got, buf[:k]...)
		if err != nil {
			t.Fatalf("reading %q: got %q, %v", want, got, err)
		}
	}
	return string(got)
}

// TestStreamingFunctionURL: a URL in RESPONSE_STREAM mode, read with
// net/http: the status, headers and cookies from HttpResponseStream.from's
// prelude, the body chunk by chunk while the function runs; without a
// prelude the function's content type; an error before the first byte is
// a 502, one after it cuts the response; a BUFFERED URL of the same
// function answers its raw bytes with 200, and a function that does not
// stream answers its JSON as the body.
func TestStreamingFunctionURL(t *testing.T) {
	n := start(t, server.Options{})
	n.createStreamFn(t, "web")
	base := n.URL()
	u := n.functionURL(t, "web", types.InvokeModeResponseStream)
	if got, err := n.client.GetFunctionUrlConfig(ctx, &lambda.GetFunctionUrlConfigInput{FunctionName: aws.String("web")}); err != nil || got.InvokeMode != types.InvokeModeResponseStream {
		t.Fatalf("GetFunctionUrlConfig: %v %+v", err, got)
	}
	dir := t.TempDir()

	signal := filepath.Join(dir, "url-first")
	res, err := http.Get(u + "?http=1&signal=" + url.QueryEscape(signal))
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 201 || res.Header.Get("Content-Type") != "text/event-stream" || res.Header.Get("X-Custom") != "yes" ||
		strings.Join(res.Header.Values("Set-Cookie"), "|") != "a=1; Path=/|b=2" || res.ContentLength != -1 ||
		strings.Join(res.TransferEncoding, ",") != "chunked" || res.Header.Get("X-Amzn-Requestid") == "" {
		t.Errorf("status and headers from the prelude: %d %v %v", res.StatusCode, res.Header, res.TransferEncoding)
	}
	if got := readUntil(t, res.Body, "chunk-1;"); got != "chunk-1;" {
		t.Errorf("first chunk %q", got)
	}
	os.WriteFile(signal, nil, 0o644)
	rest, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || string(rest) != "chunk-2:after-signal;chunk-3;" {
		t.Errorf("the rest: %q %v", rest, err)
	}

	// No prelude: status 200, the function's content type.
	res, body := do(t, http.DefaultClient, "GET", u, "", nil)
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/plain" || string(body) != "chunk-1;chunk-2:after-signal;chunk-3;" {
		t.Errorf("without a prelude: %d %v %q", res.StatusCode, res.Header, body)
	}
	// A function error before the first byte: 502, as a buffered URL.
	res, body = do(t, http.DefaultClient, "GET", u+"?fail=early", "", nil)
	if res.StatusCode != 502 || string(body) != `{"Message":"Internal Server Error"}` {
		t.Errorf("an error before the first byte: %d %q", res.StatusCode, body)
	}
	// After it: the response is cut, not ended.
	res, err = http.Get(u + "?fail=midway")
	if err != nil {
		t.Fatal(err)
	}
	body, err = io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || err == nil || !strings.HasPrefix(string(body), "chunk-1;") {
		t.Errorf("an error midway: %d %q %v", res.StatusCode, body, err)
	}
	// The same admission: reservation 0 throttles.
	n.reserve(t, "web", 0)
	res, body = do(t, http.DefaultClient, "GET", u, "", nil)
	if res.StatusCode != 429 || string(body) != `{"Message":"Rate Exceeded."}` {
		t.Errorf("throttled: %d %q", res.StatusCode, body)
	}
	if _, err := n.client.DeleteFunctionConcurrency(ctx, &lambda.DeleteFunctionConcurrencyInput{FunctionName: aws.String("web")}); err != nil {
		t.Fatal(err)
	}

	// BUFFERED: the streamed bytes are the payload, prelude and all, which
	// is no JSON object: 200 with the bytes as the body.
	if _, err := n.client.UpdateFunctionUrlConfig(ctx, &lambda.UpdateFunctionUrlConfigInput{FunctionName: aws.String("web"),
		InvokeMode: types.InvokeModeBuffered}); err != nil {
		t.Fatal(err)
	}
	want := `{"statusCode":201,"headers":{"content-type":"text/event-stream","x-custom":"yes"},"cookies":["a=1; Path=/","b=2"]}` +
		"\x00\x00\x00\x00\x00\x00\x00\x00chunk-1;chunk-2:after-signal;chunk-3;"
	res, body = do(t, http.DefaultClient, "GET", u+"?http=1", "", nil)
	if res.StatusCode != 200 || string(body) != want || res.Header.Get("X-Custom") != "" {
		t.Errorf("a BUFFERED URL of a streaming function: %d %v %q", res.StatusCode, res.Header, body)
	}

	// A function that does not stream, on a RESPONSE_STREAM URL: its JSON
	// answer is the body as it is.
	requireTool(t, "python3")
	if _, err := n.client.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("whole"),
		Runtime: types.RuntimePython312, Handler: aws.String("app.handler"), Role: aws.String(role),
		Code: &types.FunctionCode{ZipFile: lambdatest.Zip(t, map[string]string{"app.py": urlEcho})}}); err != nil {
		t.Fatal(err)
	}
	wu := n.functionURL(t, "whole", types.InvokeModeResponseStream)
	res, body = do(t, http.DefaultClient, "GET", wu+"?shape=raw", "", nil)
	if res.StatusCode != 200 || string(body) != `{"raw": true}` || res.Header.Get("Content-Type") != "application/json" {
		t.Errorf("a function that does not stream: %d %v %q", res.StatusCode, res.Header, body)
	}
	_ = base
}

// inFlight is what the account picture shows running for fn.
func (n *node) inFlight(t *testing.T, fn string) int {
	t.Helper()
	res, err := http.Get(n.URL() + "/lambdad/concurrency?function=" + fn)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var p struct {
		Functions []struct {
			InFlight int `json:"inFlight"`
		} `json:"functions"`
	}
	if err := json.NewDecoder(res.Body).Decode(&p); err != nil || len(p.Functions) != 1 {
		t.Fatalf("the account picture: %v %+v", err, p)
	}
	return p.Functions[0].InFlight
}

// TestStreamClientGoneReleasesSlot: a client that goes away mid-stream,
// from InvokeWithResponseStream or a RESPONSE_STREAM URL, gives the slot
// back at once: under reserved concurrency 1 the next invocation runs,
// long before the function would have finished.
func TestStreamClientGoneReleasesSlot(t *testing.T) {
	n := start(t, server.Options{})
	n.createStreamFn(t, "drip")
	n.reserve(t, "drip", 1)
	u := n.functionURL(t, "drip", types.InvokeModeResponseStream)
	next := func(what string) {
		t.Helper()
		deadline := time.Now().Add(3 * time.Second)
		for {
			out, err := n.client.InvokeWithResponseStream(ctx, &lambda.InvokeWithResponseStreamInput{FunctionName: aws.String("drip"), Payload: []byte(`{}`)},
				func(o *lambda.Options) { o.RetryMaxAttempts = 1 })
			if err == nil {
				if chunks, done := streamChunks(t, out, nil); strings.Join(chunks, "") != "chunk-1;chunk-2:after-signal;chunk-3;" || done.ErrorCode != nil {
					t.Errorf("after %s: %q %+v", what, chunks, done)
				}
				return
			}
			if code, _ := lambdatest.APIError(t, err); code != "TooManyRequestsException" || time.Now().After(deadline) {
				t.Fatalf("after %s: %v", what, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	cctx, cancel := context.WithCancel(ctx)
	out, err := n.client.InvokeWithResponseStream(cctx, &lambda.InvokeWithResponseStreamInput{FunctionName: aws.String("drip"), Payload: []byte(`{"drip":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	stream := out.GetStream()
	if ev := <-stream.Events(); ev == nil {
		t.Fatal("no first chunk")
	}
	if got := n.inFlight(t, "drip"); got != 1 {
		t.Errorf("while streaming: %d in flight", got)
	}
	gone := time.Now()
	stream.Close()
	cancel()
	next("an InvokeWithResponseStream client went away")
	t.Logf("slot back %v after the client went", time.Since(gone))

	res, err := http.Get(u + "?drip=1")
	if err != nil {
		t.Fatal(err)
	}
	readUntil(t, res.Body, "drip 0\n")
	if got := n.inFlight(t, "drip"); got != 1 {
		t.Errorf("while a URL streams: %d in flight", got)
	}
	gone = time.Now()
	res.Body.Close()
	next("a URL client went away")
	t.Logf("slot back %v after the URL client went", time.Since(gone))
	if got := n.inFlight(t, "drip"); got != 0 {
		t.Errorf("at the end: %d in flight", got)
	}
}

// TestStreamTimeout: a function that times out mid-stream ends the stream
// with Sandbox.Timedout in InvokeComplete, after what it had sent.
func TestStreamTimeout(t *testing.T) {
	n := start(t, server.Options{})
	n.createStreamFn(t, "slow")
	if _, err := n.client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("slow"), Timeout: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	out, err := n.client.InvokeWithResponseStream(ctx, &lambda.InvokeWithResponseStreamInput{FunctionName: aws.String("slow"), Payload: []byte(`{"drip":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	chunks, done := streamChunks(t, out, nil)
	if !strings.HasPrefix(strings.Join(chunks, ""), "drip 0\ndrip 1\n") || aws.ToString(done.ErrorCode) != "Unhandled" ||
		!strings.Contains(aws.ToString(done.ErrorDetails), "Sandbox.Timedout") {
		t.Errorf("a timeout mid-stream: %d chunks, complete %s %s", len(chunks), aws.ToString(done.ErrorCode), aws.ToString(done.ErrorDetails))
	}
}
