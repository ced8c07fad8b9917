package api

import (
	"context"
	"net/http"
	"regexp"
	"strconv"

	"github.com/lambdad/lambdad/internal/awserr"
)

// lambdadRoutes registers lambdad's own endpoints, under /lambdad/ so they
// never collide with AWS's paths. The console and the CLI read them like
// any other client.
func (s *Server) lambdadRoutes() {
	s.mux.HandleFunc("GET /lambdad/health", func(w http.ResponseWriter, r *http.Request) {
		writeResult(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	// With access control on, each endpoint needs its lambdad: action
	// (on resource "*"): lambdad:* grants them all, lambda:* none.
	s.mux.HandleFunc("GET /lambdad/audit", s.own("lambdad:GetAudit", s.audit))
	s.mux.HandleFunc("GET /lambdad/functions", s.own("lambdad:SearchFunctions", s.searchFunctions))
	s.mux.HandleFunc("GET /lambdad/code/{file}", s.code)
	s.mux.HandleFunc("GET /lambdad/events/dead-letters", s.own("lambdad:ListDeadLetters", s.deadLetters))
	s.mux.HandleFunc("POST /lambdad/events/dead-letters/{seq}/replay", s.own("lambdad:ReplayDeadLetter", s.replay))
	s.mux.HandleFunc("GET /lambdad/events/stats", s.own("lambdad:GetEventStats", s.eventStats))
	s.mux.HandleFunc("POST /{$}", s.sts)
}

// deadLetters lists failed events that had no destination, oldest first:
// ?after=SEQ&limit=N (1..1000, default 100).
func (s *Server) deadLetters(ctx context.Context, r *http.Request) (any, error) {
	if s.queue == nil {
		return nil, errNoQueue
	}
	limit, err := intParam(r, "limit", 100, 1, 1000)
	if err != nil {
		return nil, err
	}
	after, err := intParam(r, "after", 0, 0, 1<<62)
	if err != nil {
		return nil, err
	}
	dls, err := s.queue.DeadLetters(ctx, uint64(after), limit)
	if err != nil {
		return nil, err
	}
	page := &DeadLetterPage{DeadLetters: make([]DeadLetter, 0, len(dls))}
	for _, d := range dls {
		page.DeadLetters = append(page.DeadLetters, deadLetterOf(d))
	}
	return page, nil
}

// replay sends a dead letter's event through the queue again.
func (s *Server) replay(ctx context.Context, r *http.Request) (any, error) {
	if s.queue == nil {
		return nil, errNoQueue
	}
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil {
		return nil, awserr.New(awserr.InvalidParameterValue, "Not a dead-letter sequence number: %s", r.PathValue("seq"))
	}
	ev, err := s.queue.Replay(ctx, seq)
	if err != nil {
		return nil, err
	}
	return &Replayed{Replayed: seq, Event: ev.Seq, RequestID: ev.RequestID}, nil
}

func (s *Server) eventStats(_ context.Context, r *http.Request) (any, error) {
	if s.queue == nil {
		return nil, errNoQueue
	}
	return s.queue.Stats(), nil
}

// intParam reads an optional whole-number query parameter within bounds.
func intParam(r *http.Request, name string, def, lo, hi int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, awserr.New(awserr.InvalidParameterValue, "%s must be a whole number from %d to %d", name, lo, hi)
	}
	return n, nil
}

// own adapts a handler of lambdad's own endpoints to the one renderer,
// with the request's caller established first, as for the Lambda API.
func (s *Server) own(action string, h func(ctx context.Context, r *http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, err := s.authenticate(r, w.Header().Get(requestIDHeader))
		if err == nil {
			ctx, err = s.authorizeOwn(ctx, r, action)
		}
		var res any
		if err == nil {
			res, err = h(ctx, r)
		}
		if err != nil {
			renderError(w, r, s.log, w.Header().Get(requestIDHeader), err)
			return
		}
		writeResult(w, http.StatusOK, res)
	}
}

// audit serves the recent changes to concurrency settings, newest first:
// ?limit=N (1..1000, default 100) and ?before=SEQ to page back.
func (s *Server) audit(ctx context.Context, r *http.Request) (any, error) {
	limit, err := intParam(r, "limit", 100, 1, 1000)
	if err != nil {
		return nil, err
	}
	before, err := intParam(r, "before", 0, 0, 1<<62)
	if err != nil {
		return nil, err
	}
	recs, err := s.ctl.Audit(ctx, uint64(before), limit)
	if err != nil {
		return nil, err
	}
	page := &AuditPage{Records: make([]AuditRecord, 0, len(recs))}
	for _, r := range recs {
		page.Records = append(page.Records, auditRecordOf(r))
	}
	if len(recs) == limit {
		page.NextBefore = recs[len(recs)-1].Seq
	}
	return page, nil
}

var codeFile = regexp.MustCompile(`^[0-9a-f]{64}\.zip$`)

// code serves a function's code archive, where GetFunction's Code.Location
// points.
func (s *Server) code(w http.ResponseWriter, r *http.Request) {
	file := r.PathValue("file")
	if s.presign != nil && !s.presign.CheckPresigned(r.URL.Path, r.URL.Query()) {
		renderError(w, r, s.log, w.Header().Get(requestIDHeader), awserr.New(awserr.AccessDenied, "Request has expired or is not signed: GetFunction's Code.Location is valid for 10 minutes"))
		return
	}
	if !codeFile.MatchString(file) {
		renderError(w, r, s.log, w.Header().Get(requestIDHeader), awserr.New(awserr.ResourceNotFound, "No such code archive: %s", file))
		return
	}
	path, ok := s.ctl.CodeFile(file[:64])
	if !ok {
		renderError(w, r, s.log, w.Header().Get(requestIDHeader), awserr.New(awserr.ResourceNotFound, "No such code archive: %s", file))
		return
	}
	w.Header().Set("Content-Type", "application/zip")
	http.ServeFile(w, r, path)
}
