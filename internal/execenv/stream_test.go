package execenv

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// pieceStream is a Stream that keeps each piece with the time it arrived.
type pieceStream struct {
	mu          sync.Mutex
	contentType string
	pieces      []string
	at          []time.Time
}

func (p *pieceStream) Begin(contentType string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.contentType = contentType
	return nil
}

func (p *pieceStream) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pieces = append(p.pieces, string(b))
	p.at = append(p.at, time.Now())
	return len(b), nil
}

func (p *pieceStream) Cancel() {}

func streamInvoke(t *testing.T, m *Manager, spec *Spec, payload string) (*pieceStream, *Result, time.Time) {
	t.Helper()
	st := &pieceStream{}
	req := newRequest(payload)
	req.Stream = st
	res, err := m.Invoke(t.Context(), spec, req)
	if err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	return st, res, time.Now()
}

// TestGoFunctionStreams: aws-lambda-go posts a handler's io.Reader chunked
// as it reads it; a streaming invocation passes each piece on while the
// function is still running.
func TestGoFunctionStreams(t *testing.T) {
	m := newManager(t, Config{})
	spec := goSpec("streamer")
	st, res, end := streamInvoke(t, m, spec, `{"op":"stream","text":"piece","n":3,"ms":150}`)
	wantOK(t, res)
	if !res.Streamed || res.ContentType != "application/octet-stream" || len(res.Payload) != 0 {
		t.Fatalf("Result: streamed %v %q payload %q", res.Streamed, res.ContentType, res.Payload)
	}
	if strings.Join(st.pieces, "") != "piece1;piece2;piece3;" || len(st.pieces) != 3 {
		t.Fatalf("pieces %q", st.pieces)
	}
	if ahead := end.Sub(st.at[0]); ahead < 200*time.Millisecond {
		t.Errorf("the first piece arrived only %v before the function ended", ahead)
	}
	// The same function invoked without a stream answers whole.
	_, res = invoke(t, m, spec, `{"op":"stream","text":"p","n":2,"ms":1}`)
	if res.Streamed || string(res.Payload) != "p1;p2;" {
		t.Fatalf("buffered: streamed %v %q", res.Streamed, res.Payload)
	}
}

// TestNodeStreamifyResponse: the node shim's awslambda.streamifyResponse
// and HttpResponseStream.from, through the Runtime API's streaming mode: the
// pieces as written, the prelude first, an error midway in the trailers,
// and a handler that is not async refused as AWS's runtime refuses it.
func TestNodeStreamifyResponse(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		requireE2E(t, "node is not installed")
	}
	dir := writeFiles(t, map[string]string{
		"index.js": `const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
exports.handler = awslambda.streamifyResponse(async (event, responseStream, context) => {
  responseStream.setContentType("text/plain");
  for (let i = 1; i <= 3; i++) {
    responseStream.write("part" + i + ";");
    await sleep(150);
  }
  responseStream.end();
});
exports.http = awslambda.streamifyResponse(async (event, responseStream) => {
  responseStream = awslambda.HttpResponseStream.from(responseStream, { statusCode: 201, headers: { "x-a": "1" } });
  responseStream.write("body");
  responseStream.end();
});
exports.fail = awslambda.streamifyResponse(async (event, responseStream) => {
  responseStream.write("before;");
  await sleep(20);
  throw new RangeError("midway");
});
exports.sync = awslambda.streamifyResponse((event, responseStream) => { responseStream.write("x"); });
exports.plain = async () => ({ plain: true });
`,
	})
	m := newManager(t, Config{})
	spec := &Spec{Function: "js", Runtime: "nodejs20.x", Handler: "index.handler", CodeDir: dir, Timeout: 10 * time.Second}
	st, res, end := streamInvoke(t, m, spec, `{}`)
	wantOK(t, res)
	if !res.Streamed || st.contentType != "text/plain" || strings.Join(st.pieces, "") != "part1;part2;part3;" || len(st.pieces) != 3 {
		t.Fatalf("streamed %v %q %q", res.Streamed, st.contentType, st.pieces)
	}
	if ahead := end.Sub(st.at[0]); ahead < 250*time.Millisecond {
		t.Errorf("the first piece arrived only %v before the function ended", ahead)
	}
	// Warm, and without a stream: collected whole.
	_, res = invoke(t, m, spec, `{}`)
	if res.ColdStart || res.Streamed || string(res.Payload) != "part1;part2;part3;" {
		t.Fatalf("buffered: cold %v streamed %v %q", res.ColdStart, res.Streamed, res.Payload)
	}

	httpSpec := *spec
	httpSpec.Handler, httpSpec.Revision = "index.http", "http"
	st, res, _ = streamInvoke(t, m, &httpSpec, `{}`)
	wantOK(t, res)
	if got := strings.Join(st.pieces, ""); st.contentType != "application/vnd.awslambda.http-integration-response" ||
		got != `{"statusCode":201,"headers":{"x-a":"1"}}`+"\x00\x00\x00\x00\x00\x00\x00\x00body" {
		t.Fatalf("prelude: %q %q", st.contentType, got)
	}

	failSpec := *spec
	failSpec.Handler, failSpec.Revision = "index.fail", "fail"
	st, res, _ = streamInvoke(t, m, &failSpec, `{}`)
	var doc struct{ ErrorType, ErrorMessage string }
	if err := json.Unmarshal(res.Payload, &doc); err != nil || res.FunctionError != "Unhandled" || doc.ErrorType != "RangeError" ||
		doc.ErrorMessage != "midway" || strings.Join(st.pieces, "") != "before;" {
		t.Fatalf("midway error: %q %s, pieces %q", res.FunctionError, res.Payload, st.pieces)
	}
	if !bytes.Contains(res.Log, []byte("Invoke Error")) {
		t.Errorf("log:\n%s", res.Log)
	}

	syncSpec := *spec
	syncSpec.Handler, syncSpec.Revision = "index.sync", "sync"
	_, res, _ = streamInvoke(t, m, &syncSpec, `{}`)
	if res.FunctionError != "Unhandled" || !bytes.Contains(res.Payload, []byte("Streaming does not support non-async handlers.")) {
		t.Fatalf("a handler that is not async: %q %s", res.FunctionError, res.Payload)
	}

	// A function that does not stream, in a streaming invocation: its
	// whole answer in one piece.
	plainSpec := *spec
	plainSpec.Handler, plainSpec.Revision = "index.plain", "plain"
	st, res, _ = streamInvoke(t, m, &plainSpec, `{}`)
	wantOK(t, res)
	if !res.Streamed || len(st.pieces) != 1 || st.pieces[0] != `{"plain":true}` || st.contentType != "application/json" {
		t.Fatalf("a function that does not stream: %v %q %q", res.Streamed, st.contentType, st.pieces)
	}
}
