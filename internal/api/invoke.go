package api

import (
	"context"
	"net/http"

	"github.com/lambdad/lambdad/internal/awserr"
	"github.com/lambdad/lambdad/internal/events"
	"github.com/lambdad/lambdad/internal/invoke"
	"github.com/lambdad/lambdad/internal/store"
)

// Body limits of the invoke operations (AWS): 6 MB synchronous (an Event's
// 1 MB is the queue's to enforce), 256 KB for the legacy InvokeAsync.
const (
	maxSyncPayload        = invoke.MaxSyncPayload
	maxAsyncLegacyPayload = 262144
)

// Invoker runs synchronous invocations.
type Invoker interface {
	Invoke(ctx context.Context, req *invoke.Request) (*invoke.Response, error)
}

// Queue accepts asynchronous invocations: once Enqueue returns nil the
// event is durable and will run. It also keeps the events that failed with
// nowhere to go, for a person to read and replay.
type Queue interface {
	Enqueue(ctx context.Context, req *invoke.Request) error
	DeadLetters(ctx context.Context, after uint64, limit int) ([]*store.DeadLetter, error)
	Replay(ctx context.Context, seq uint64) (*store.Event, error)
	Stats() events.Stats
}

var errNoQueue = awserr.New(awserr.ResourceNotReady, "Asynchronous invocations are not enabled on this server.")

func (s *Server) invoke(c *call) (any, error) {
	if s.invoker == nil {
		return nil, awserr.New(awserr.ResourceNotReady, "Invocations are not enabled on this server.")
	}
	req := &invoke.Request{
		FunctionName:  c.str("FunctionName"),
		Qualifier:     c.str("Qualifier"),
		Type:          c.str("InvocationType"),
		LogTail:       c.str("LogType") == "Tail",
		ClientContext: c.str("ClientContext"),
		TenantID:      c.str("TenantId"),
		Payload:       c.body,
		RequestID:     c.requestID,
	}
	if req.Type == "" {
		req.Type = invoke.RequestResponse
	}
	if req.Type == invoke.Event {
		if s.queue == nil {
			return nil, errNoQueue
		}
		if err := s.queue.Enqueue(c.ctx(), req); err != nil {
			return nil, err
		}
		return &rawResult{status: http.StatusAccepted, header: http.Header{}}, nil
	}
	res, err := s.invoker.Invoke(c.ctx(), req)
	if err != nil {
		if c.r.Context().Err() != nil {
			return nil, errClientGone
		}
		return nil, err
	}
	h := http.Header{}
	if res.ExecutedVersion != "" {
		h.Set("X-Amz-Executed-Version", res.ExecutedVersion)
	}
	if res.FunctionError != "" {
		h.Set("X-Amz-Function-Error", res.FunctionError)
	}
	if res.LogResult != "" {
		h.Set("X-Amz-Log-Result", res.LogResult)
	}
	if res.Status == http.StatusOK {
		h.Set("Content-Type", "application/json")
	}
	return &rawResult{status: res.Status, header: h, body: res.Payload}, nil
}

// invokeAsync is the deprecated InvokeAsync: an Event invocation answered
// with 202 (the response's Status member is the status code itself).
func (s *Server) invokeAsync(c *call) (any, error) {
	if s.queue == nil {
		return nil, errNoQueue
	}
	req := &invoke.Request{FunctionName: c.str("FunctionName"), Type: invoke.Event, Payload: c.body, RequestID: c.requestID}
	if err := s.queue.Enqueue(c.ctx(), req); err != nil {
		return nil, err
	}
	return &rawResult{status: http.StatusAccepted, header: http.Header{}}, nil
}
