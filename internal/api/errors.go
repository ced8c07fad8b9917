package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/lambdad/lambdad/internal/awserr"
)

// renderError is the one place an error becomes a response. An *awserr.Error
// is shown as it is; anything else is our fault: the client sees a
// ServiceException and the cause goes to the log only.
func renderError(w http.ResponseWriter, r *http.Request, log *slog.Logger, requestID string, err error) {
	e, ok := awserr.As(err)
	if !ok {
		if errors.Is(err, errClientGone) {
			return
		}
		log.ErrorContext(r.Context(), "internal error", "request_id", requestID, "method", r.Method, "path", r.URL.Path, "err", err)
		e = awserr.New(awserr.Service, "An internal error occurred. Request id: %s", requestID)
	} else if e.Status() >= 500 {
		log.WarnContext(r.Context(), "request failed", "request_id", requestID, "code", string(e.Code), "err", e.Message)
	}
	body := errorBody(e)
	h := w.Header()
	h.Set("X-Amzn-ErrorType", string(e.Code))
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(e.Status())
	w.Write(body)
}

// errorBody renders the body keys in the order AWS sends them: Type, the
// message (spelt as the model's shape spells it), then Reason.
func errorBody(e *awserr.Error) []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	field := func(k, v string) {
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		vb, _ := json.Marshal(v)
		b.Write(kb)
		b.WriteByte(':')
		b.Write(vb)
	}
	if e.Type != "" {
		field("Type", e.Type)
	}
	field(e.Code.MessageKey(), e.Message)
	if e.Reason != "" {
		field("Reason", e.Reason)
	}
	b.WriteByte('}')
	return b.Bytes()
}

// errClientGone marks a request abandoned by its client: nothing is
// written and nothing is logged as an error.
var errClientGone = errors.New("client went away")
