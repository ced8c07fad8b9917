package api

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"hash/crc32"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lambdad/lambdad/internal/awserr"
	"github.com/lambdad/lambdad/internal/invoke"
)

// invokeStream is InvokeWithResponseStream, in the event-stream framing
// the SDKs parse. The response goes out as the function writes it: the
// headers (200, the function's Content-Type, X-Amz-Executed-Version) when
// the function starts its response, then each piece as a PayloadChunk
// event, flushed at once, then InvokeComplete (ErrorCode and ErrorDetails
// for a function error, midway or not; LogResult with LogType Tail). A
// function that does not stream answers whole: one PayloadChunk. What
// fails before the response starts (a throttle, a missing function) is an
// API error like Invoke's.
func (s *Server) invokeStream(c *call) (any, error) {
	if s.invoker == nil {
		return nil, awserr.New(awserr.ResourceNotReady, "Invocations are not enabled on this server.")
	}
	es := newEventStream(c.w)
	req := &invoke.Request{
		FunctionName: c.str("FunctionName"), Qualifier: c.str("Qualifier"), Type: c.str("InvocationType"),
		LogTail: c.str("LogType") == "Tail", ClientContext: c.str("ClientContext"), Payload: c.body, RequestID: c.requestID,
		TenantID: c.str("TenantId"), Stream: es,
	}
	if req.Type == "" {
		req.Type = invoke.RequestResponse
	}
	res, err := s.invoker.Invoke(c.ctx(), req)
	es.finished()
	if err != nil {
		if c.r.Context().Err() != nil {
			return nil, errClientGone
		}
		if !es.begun() {
			return nil, err
		}
		// Too late for an API error: the stream ends with it.
		s.log.ErrorContext(c.r.Context(), "streamed invocation failed", "request_id", c.requestID, "err", err)
		es.complete(map[string]string{"ErrorCode": string(awserr.Service),
			"ErrorDetails": "An internal error occurred. Request id: " + c.requestID})
		return streamed{}, nil
	}
	if res.Status != http.StatusOK { // DryRun: no stream
		h := http.Header{}
		if res.ExecutedVersion != "" {
			h.Set("X-Amz-Executed-Version", res.ExecutedVersion)
		}
		return &rawResult{status: res.Status, header: h}, nil
	}
	if !es.begun() {
		// The function failed before it answered: no content type of its.
		es.mu.Lock()
		es.start(res.ExecutedVersion, "application/vnd.amazon.eventstream")
		es.mu.Unlock()
	}
	complete := map[string]string{}
	if res.FunctionError != "" {
		complete["ErrorCode"], complete["ErrorDetails"] = res.FunctionError, string(res.Payload)
	} else if !res.Streamed && len(res.Payload) > 0 {
		es.Write(res.Payload)
	}
	if res.LogResult != "" {
		complete["LogResult"] = res.LogResult
	}
	es.complete(complete)
	return streamed{}, nil
}

// streamed is a result already written by its handler.
type streamed struct{}

// eventStream writes an InvokeWithResponseStream answer as the function
// streams it (an invoke.Stream). Its calls come from the Runtime API's
// handler while Invoke runs, then from the request's own goroutine once
// it has returned; mu keeps them apart.
type eventStream struct {
	w  http.ResponseWriter
	rc *http.ResponseController

	mu      sync.Mutex
	started bool // the headers went out
	frame   bytes.Buffer
	// cancelled is set by Cancel, which cuts a write short with a write
	// deadline in the past; finished lifts it.
	cancelled atomic.Bool
}

func newEventStream(w http.ResponseWriter) *eventStream {
	return &eventStream{w: w, rc: http.NewResponseController(w)}
}

func (e *eventStream) Begin(version, contentType string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	e.start(version, contentType)
	return e.rc.Flush()
}

// begun reports whether the headers went out.
func (e *eventStream) begun() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.started
}

// start sends the headers; e.mu held.
func (e *eventStream) start(version, contentType string) {
	if e.started {
		return
	}
	e.started = true
	h := e.w.Header()
	if version != "" {
		h.Set("X-Amz-Executed-Version", version)
	}
	h.Set("Content-Type", contentType)
	e.w.WriteHeader(http.StatusOK)
}

// Write sends p as one PayloadChunk event and flushes it.
func (e *eventStream) Write(p []byte) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.started {
		return 0, errNotStarted
	}
	if err := e.send("PayloadChunk", "application/octet-stream", p); err != nil {
		return 0, err
	}
	return len(p), nil
}

var errNotStarted = errors.New("the response stream has not begun")

// send writes one event and flushes it; e.mu held.
func (e *eventStream) send(eventType, contentType string, payload []byte) error {
	e.frame.Reset()
	writeEvent(&e.frame, eventType, contentType, payload)
	if _, err := e.w.Write(e.frame.Bytes()); err != nil {
		return err
	}
	return e.rc.Flush()
}

// Cancel cuts short a write blocked on a client that does not read.
func (e *eventStream) Cancel() {
	e.cancelled.Store(true)
	e.rc.SetWriteDeadline(time.Now())
}

// finished is called once Invoke has returned: nothing else writes now.
// A Cancel that cut no write short leaves the connection usable; its
// deadline is lifted for the last event.
func (e *eventStream) finished() {
	if e.cancelled.Load() {
		e.rc.SetWriteDeadline(time.Time{})
	}
}

// complete ends the stream with InvokeComplete.
func (e *eventStream) complete(fields map[string]string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	done, _ := json.Marshal(fields)
	e.send("InvokeComplete", "application/json", done)
}

// writeEvent appends one event-stream message: a prelude (total and
// header lengths, their CRC32), the string headers :event-type,
// :content-type and :message-type, the payload and the message's CRC32.
func writeEvent(w *bytes.Buffer, eventType, contentType string, payload []byte) {
	start := w.Len()
	headersLen := 0
	for _, kv := range [][2]string{{":event-type", eventType}, {":content-type", contentType}, {":message-type", "event"}} {
		headersLen += 1 + len(kv[0]) + 1 + 2 + len(kv[1])
	}
	total := 12 + headersLen + len(payload) + 4
	w.Grow(total)
	var prelude [8]byte
	binary.BigEndian.PutUint32(prelude[:4], uint32(total))
	binary.BigEndian.PutUint32(prelude[4:], uint32(headersLen))
	w.Write(prelude[:])
	w.Write(binary.BigEndian.AppendUint32(nil, crc32.ChecksumIEEE(prelude[:])))
	for _, kv := range [][2]string{{":event-type", eventType}, {":content-type", contentType}, {":message-type", "event"}} {
		w.WriteByte(byte(len(kv[0])))
		w.WriteString(kv[0])
		w.WriteByte(7) // string
		w.Write(binary.BigEndian.AppendUint16(nil, uint16(len(kv[1]))))
		w.WriteString(kv[1])
	}
	w.Write(payload)
	w.Write(binary.BigEndian.AppendUint32(nil, crc32.ChecksumIEEE(w.Bytes()[start:])))
}
