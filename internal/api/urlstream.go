package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lambdad/lambdad/internal/function"
	"github.com/lambdad/lambdad/internal/invoke"
)

// httpIntegrationType is the Content-Type of a streamed response that
// begins with HTTP metadata (awslambda.HttpResponseStream): a JSON prelude
// with statusCode, headers and cookies, then preludeDelimiter, then the
// body.
const httpIntegrationType = "application/vnd.awslambda.http-integration-response"

var preludeDelimiter = []byte{0, 0, 0, 0, 0, 0, 0, 0}

// maxPrelude bounds the metadata held before the body starts.
const maxPrelude = 64 << 10

// serveURLStream answers a request to a URL in RESPONSE_STREAM mode, as
// AWS's URLs do: through the same invoke path and admission, the
// function's response goes to the client as it writes it, each piece
// flushed at once. A response of the http-integration type sets the
// status, headers and cookies from its prelude; any other is the body,
// status 200, with the function's Content-Type. A throttle or a function
// error before the first byte is answered as a buffered URL answers it; a
// failure after it cuts the connection, so the client cannot take the
// response for complete. The slot is held until the response has ended.
func (s *Server) serveURLStream(ctx context.Context, w http.ResponseWriter, r *http.Request, requestID string, u *function.URLConfig, event []byte) int {
	us := &urlStream{w: w, rc: http.NewResponseController(w), r: r, cors: u.Cors}
	res, err := s.invoker.Invoke(ctx, &invoke.Request{
		FunctionName: u.Function, Qualifier: u.Qualifier, Type: invoke.RequestResponse, Payload: event, RequestID: requestID,
		Stream: us,
	})
	if us.cancelled.Load() {
		us.rc.SetWriteDeadline(time.Time{})
	}
	us.mu.Lock()
	defer us.mu.Unlock()
	switch {
	case err != nil && !us.started:
		if u.Cors != nil {
			corsHeaders(w.Header(), r, u.Cors)
		}
		return s.urlInvokeError(ctx, w, r, requestID, err)
	case err != nil || res.FunctionError != "" && us.started:
		if err == nil {
			s.log.InfoContext(ctx, "url stream ended by a function error", "request_id", requestID, "error", string(res.Payload))
		}
		// The status went out with the first byte: the connection is cut
		// instead, so the client sees the response unfinished.
		panic(http.ErrAbortHandler)
	case res.FunctionError != "" || us.failed:
		if u.Cors != nil {
			corsHeaders(w.Header(), r, u.Cors)
		}
		return urlError(w, http.StatusBadGateway, "", "Internal Server Error")
	case !us.started:
		// Nothing was written, or only a prelude never finished: AWS
		// answers an empty stream of the integration type with 200 and
		// no body.
		if len(us.prelude) > 0 {
			return urlError(w, http.StatusBadGateway, "", "Internal Server Error")
		}
		us.start(http.StatusOK, "application/octet-stream")
	}
	return us.status
}

// urlStream writes a RESPONSE_STREAM URL's response as the function
// streams it (an invoke.Stream). Its calls come from the Runtime API's
// handler while Invoke runs; mu keeps serveURLStream's own use after
// Invoke apart from them.
type urlStream struct {
	w    http.ResponseWriter
	rc   *http.ResponseController
	r    *http.Request
	cors *function.Cors

	mu          sync.Mutex
	started     bool   // the status and headers went out
	status      int    // the status sent
	integration bool   // reading the prelude of an http-integration response
	prelude     []byte // the prelude so far
	failed      bool   // the prelude was not one: the answer is a 502
	cancelled   atomic.Bool
}

func (u *urlStream) Begin(_, contentType string) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if contentType == httpIntegrationType {
		u.integration = true
		return nil
	}
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	u.start(http.StatusOK, contentType)
	return u.rc.Flush()
}

// start sends the status and headers; u.mu held.
func (u *urlStream) start(status int, contentType string) {
	u.started, u.status = true, status
	h := u.w.Header()
	if u.cors != nil {
		corsHeaders(h, u.r, u.cors)
	}
	h.Set("Content-Type", contentType)
	u.w.WriteHeader(status)
}

func (u *urlStream) Write(p []byte) (int, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.failed {
		return 0, errBadPrelude
	}
	n := len(p)
	if u.integration && !u.started {
		u.prelude = append(u.prelude, p...)
		i := bytes.Index(u.prelude, preludeDelimiter)
		if i < 0 {
			if len(u.prelude) > maxPrelude {
				u.failed = true
				return 0, errBadPrelude
			}
			return n, nil
		}
		if err := u.applyPrelude(u.prelude[:i]); err != nil {
			u.failed = true
			return 0, err
		}
		p = u.prelude[i+len(preludeDelimiter):]
		u.prelude = nil
		if len(p) == 0 {
			return n, u.rc.Flush()
		}
	}
	if !u.started {
		return 0, errNotStarted
	}
	if _, err := u.w.Write(p); err != nil {
		return 0, err
	}
	return n, u.rc.Flush()
}

var errBadPrelude = fmt.Errorf("the response's HTTP metadata is not valid")

// preludeMeta is the metadata an http-integration response begins with.
type preludeMeta struct {
	StatusCode *int           `json:"statusCode"`
	Headers    map[string]any `json:"headers"`
	Cookies    []string       `json:"cookies"`
}

// applyPrelude sends the status, headers and cookies of the metadata;
// u.mu held.
func (u *urlStream) applyPrelude(raw []byte) error {
	var m preludeMeta
	if err := json.Unmarshal(raw, &m); err != nil {
		return errBadPrelude
	}
	status := http.StatusOK
	if m.StatusCode != nil {
		status = *m.StatusCode
	}
	if status < 100 || status > 599 {
		return errBadPrelude
	}
	h := u.w.Header()
	contentType := "application/octet-stream"
	for k, v := range m.Headers {
		value, ok := v.(string)
		if !ok {
			b, _ := json.Marshal(v)
			value = string(b)
		}
		switch lk := strings.ToLower(k); {
		case lk == "content-type":
			contentType = value
		case lk == "content-length" || lk == "transfer-encoding" || lk == "connection":
			// The stream's framing is the server's.
		case u.cors != nil && strings.HasPrefix(lk, "access-control-"):
			// The URL's CORS configuration decides these.
		default:
			h.Set(k, value)
		}
	}
	for _, c := range m.Cookies {
		h.Add("Set-Cookie", c)
	}
	u.start(status, contentType)
	return nil
}

// Cancel cuts short a write blocked on a client that does not read.
func (u *urlStream) Cancel() {
	u.cancelled.Store(true)
	u.rc.SetWriteDeadline(time.Now())
}
