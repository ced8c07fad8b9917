package runtimeapi

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// recordingStream is a Stream that keeps what it is given and reports each
// piece on a channel as it arrives; block makes Write wait until Cancel.
type recordingStream struct {
	mu          sync.Mutex
	contentType string
	begun       int
	pieces      [][]byte
	cancelled   int
	got         chan []byte
	block       bool
	cancel      chan struct{}
	cancelOnce  sync.Once
}

func newRecordingStream() *recordingStream {
	return &recordingStream{got: make(chan []byte, 4096), cancel: make(chan struct{})}
}

func (r *recordingStream) Begin(contentType string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.begun++
	r.contentType = contentType
	return nil
}

func (r *recordingStream) Write(p []byte) (int, error) {
	if r.block {
		<-r.cancel
		return 0, errors.New("cancelled")
	}
	c := bytes.Clone(p)
	r.mu.Lock()
	r.pieces = append(r.pieces, c)
	r.mu.Unlock()
	r.got <- c
	return len(p), nil
}

func (r *recordingStream) Cancel() {
	r.mu.Lock()
	r.cancelled++
	r.mu.Unlock()
	r.cancelOnce.Do(func() { close(r.cancel) })
}

func (r *recordingStream) joined() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return string(bytes.Join(r.pieces, nil))
}

// streamPost starts a streamed POST /response whose body the test writes
// through the returned pipe; the reply arrives on the channel.
func (rt *runtime) streamPost(id, contentType string, trailer http.Header) (*io.PipeWriter, <-chan reply) {
	pr, pw := io.Pipe()
	req, err := http.NewRequest("POST", rt.base+"invocation/"+id+"/response", pr)
	if err != nil {
		rt.t.Fatal(err)
	}
	req.Header.Set(HeaderFunctionResponseMode, ResponseModeStreaming)
	req.Header.Set("Content-Type", contentType)
	req.Trailer = trailer
	ch := make(chan reply, 1)
	go func() {
		resp, err := rt.hc.Do(req)
		if err != nil {
			ch <- reply{status: -1, body: []byte(err.Error())}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		ch <- reply{resp.StatusCode, resp.Header, b}
	}()
	return pw, ch
}

// TestStreamedResponse: in a streaming invocation each piece the runtime
// sends reaches the Stream before the runtime has finished, in order; the
// answer says it was streamed, with the runtime's content type.
// startStreamed starts an invocation "id" into a recording stream on a new
// server (with opts) and waits until the runtime has it.
func startStreamed(t *testing.T, opts ...Option) (*runtime, *recordingStream, <-chan result) {
	t.Helper()
	s, rt := newServer(t, opts...)
	nextc := rt.next()
	st := newRecordingStream()
	resc := invokeAsync(t.Context(), s, &Invocation{RequestID: "id", Payload: []byte(`{}`), Stream: st})
	wait(t, nextc)
	return rt, st, resc
}

// postStreamedError posts body as invocation "id"'s streamed response,
// with trailers that fail it with an error of type Error, doc, and wants
// 202.
func (rt *runtime) postStreamedError(t *testing.T, body, doc string) {
	t.Helper()
	tb := &trailerBody{r: strings.NewReader(body), trailer: http.Header{HeaderFunctionErrorType: nil, HeaderFunctionErrorBody: nil},
		typ: "Error", body: doc}
	req, _ := http.NewRequest("POST", rt.base+"invocation/id/response", tb)
	req.Header.Set(HeaderFunctionResponseMode, ResponseModeStreaming)
	req.Trailer = tb.trailer
	if r := rt.do(req); r.status != 202 {
		t.Fatalf("POST = %d %s", r.status, r.body)
	}
}

func TestStreamedResponse(t *testing.T) {
	rt, st, resc := startStreamed(t)
	pw, replyc := rt.streamPost("id", "text/plain", nil)
	for _, piece := range []string{"first ", "second ", "third"} {
		if _, err := pw.Write([]byte(piece)); err != nil {
			t.Fatal(err)
		}
		// The piece is through before the runtime sends the next one.
		if got := wait(t, st.got); string(got) != piece {
			t.Fatalf("piece %q, want %q", got, piece)
		}
	}
	pw.Close()
	if r := wait(t, replyc); r.status != 202 {
		t.Fatalf("POST = %d %s", r.status, r.body)
	}
	res := wait(t, resc)
	if res.err != nil || !res.resp.Streamed || res.resp.ErrorType != "" || res.resp.ContentType != "text/plain" || len(res.resp.Payload) != 0 {
		t.Fatalf("Invoke = %+v, %v", res.resp, res.err)
	}
	if st.begun != 1 || st.contentType != "text/plain" || st.joined() != "first second third" || st.cancelled != 0 {
		t.Fatalf("stream: begun %d %q %q cancelled %d", st.begun, st.contentType, st.joined(), st.cancelled)
	}
}

// TestStreamedResponseError: an error midway, in the trailers, fails the
// invocation after what was sent before it.
func TestStreamedResponseError(t *testing.T) {
	rt, st, resc := startStreamed(t)
	doc := `{"errorType":"Error","errorMessage":"broke midway","trace":[]}`
	rt.postStreamedError(t, "partial", doc)
	res := wait(t, resc)
	if res.err != nil || !res.resp.Streamed || res.resp.ErrorType != "Error" || string(res.resp.Payload) != doc || st.joined() != "partial" {
		t.Fatalf("Invoke = {%q %s streamed %v}, %v; stream %q", res.resp.ErrorType, res.resp.Payload, res.resp.Streamed, res.err, st.joined())
	}
}

// TestStreamedResponseLimit: past the streaming limit the caller has had
// exactly the limit, the invocation fails with
// Function.ResponseSizeTooLarge and the runtime is answered 413.
func TestStreamedResponseLimit(t *testing.T) {
	rt, st, resc := startStreamed(t, WithMaxStreamResponse(100_000))
	pw, replyc := rt.streamPost("id", "", nil)
	go func() {
		for range 15 {
			if _, err := pw.Write(bytes.Repeat([]byte("x"), 10_000)); err != nil {
				return
			}
		}
		pw.Close()
	}()
	wantErrorBody(t, wait(t, replyc), 413, "RequestEntityTooLarge")
	pw.CloseWithError(errors.New("done"))
	res := wait(t, resc)
	want := `{"errorType":"Function.ResponseSizeTooLarge","errorMessage":"Response payload size exceeded maximum allowed payload size (100000 bytes)."}`
	if res.err != nil || res.resp.ErrorType != "Function.ResponseSizeTooLarge" || string(res.resp.Payload) != want || len(st.joined()) != 100_000 {
		t.Fatalf("Invoke = {%q %s}, %v; streamed %d bytes", res.resp.ErrorType, res.resp.Payload, res.err, len(st.joined()))
	}
	if DefaultMaxStreamResponse != 200*1024*1024 {
		t.Errorf("DefaultMaxStreamResponse = %d", DefaultMaxStreamResponse)
	}
}

// TestWholeResponseToStream: a runtime that answers whole in a streaming
// invocation reaches the Stream as one piece; without a Stream a streamed
// answer is collected, as before.
func TestWholeResponseToStream(t *testing.T) {
	s, rt := newServer(t)
	nextc := rt.next()
	st := newRecordingStream()
	resc := invokeAsync(t.Context(), s, &Invocation{RequestID: "id", Payload: []byte(`{}`), Stream: st})
	wait(t, nextc)
	if r := rt.post("invocation/id/response", `{"whole":true}`, http.Header{"Content-Type": {"application/json"}}); r.status != 202 {
		t.Fatalf("POST = %d %s", r.status, r.body)
	}
	res := wait(t, resc)
	if res.err != nil || !res.resp.Streamed || len(st.pieces) != 1 || st.joined() != `{"whole":true}` || st.contentType != "application/json" {
		t.Fatalf("Invoke = %+v, %v; pieces %q", res.resp, res.err, st.pieces)
	}

	nextc = rt.next()
	resc = invokeAsync(t.Context(), s, &Invocation{RequestID: "two", Payload: []byte(`{}`)})
	wait(t, nextc)
	pw, replyc := rt.streamPost("two", "text/plain", nil)
	pw.Write([]byte("collected "))
	pw.Write([]byte("whole"))
	pw.Close()
	wait(t, replyc)
	if res := wait(t, resc); res.err != nil || res.resp.Streamed || string(res.resp.Payload) != "collected whole" || res.resp.ContentType != "text/plain" {
		t.Fatalf("buffered Invoke of a streaming runtime = %+v, %v", res.resp, res.err)
	}
}

// TestInvalidResponseMode: a response mode other than streaming is refused
// and fails the invocation, as Lambda's Runtime API does.
func TestInvalidResponseMode(t *testing.T) {
	s, rt := newServer(t)
	nextc := rt.next()
	resc := invokeAsync(t.Context(), s, &Invocation{RequestID: "id", Payload: []byte(`{}`)})
	wait(t, nextc)
	wantErrorBody(t, rt.post("invocation/id/response", "x", http.Header{HeaderFunctionResponseMode: {"buffered-ish"}}), 400, "InvalidFunctionResponseMode")
	if res := wait(t, resc); res.err != nil || res.resp.ErrorType != "Runtime.InvalidResponseModeHeader" {
		t.Fatalf("Invoke = {%q %s}, %v", res.resp.ErrorType, res.resp.Payload, res.err)
	}
}

// TestStreamCancelledWhenAbandoned: when Invoke gives up while a Write is
// blocked on a caller that does not read, it cancels the Stream and
// returns at once; nothing reaches the Stream afterwards.
func TestStreamCancelledWhenAbandoned(t *testing.T) {
	s, rt := newServer(t)
	nextc := rt.next()
	st := newRecordingStream()
	st.block = true
	ctx, cancel := context.WithCancel(t.Context())
	resc := invokeAsync(ctx, s, &Invocation{RequestID: "id", Payload: []byte(`{}`), Stream: st})
	wait(t, nextc)
	pw, replyc := rt.streamPost("id", "", nil)
	pw.Write([]byte("stuck"))
	time.Sleep(50 * time.Millisecond) // the handler is in the blocked Write
	cancel()
	res := wait(t, resc)
	if !errors.Is(res.err, context.Canceled) || errors.Is(res.err, ErrNotDelivered) {
		t.Fatalf("Invoke = %v", res.err)
	}
	st.mu.Lock()
	cancelled := st.cancelled
	st.mu.Unlock()
	if cancelled != 1 {
		t.Fatalf("Cancel called %d times", cancelled)
	}
	st.block = false
	pw.Write([]byte("late"))
	pw.Close()
	wait(t, replyc)
	if len(st.pieces) != 0 {
		t.Fatalf("the Stream got %q after Invoke returned", st.pieces)
	}
}

// TestStreamedResponseFailsBeforeFirstByte: a response that fails before
// its first byte has begun nothing: the caller can still answer with an
// error of its own.
func TestStreamedResponseFailsBeforeFirstByte(t *testing.T) {
	rt, st, resc := startStreamed(t)
	rt.postStreamedError(t, "", `{"errorType":"Error","errorMessage":"early"}`)
	res := wait(t, resc)
	if res.err != nil || res.resp.Streamed || res.resp.ErrorType != "Error" || st.begun != 0 {
		t.Fatalf("Invoke = %+v, %v; begun %d", res.resp, res.err, st.begun)
	}
}
