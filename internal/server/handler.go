package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/http/pprof"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/lambdad/lambdad/internal/account"
	"github.com/lambdad/lambdad/internal/console"
	"github.com/lambdad/lambdad/internal/events"
	"github.com/lambdad/lambdad/internal/execenv"
)

// handler routes what a node serves: lambdad's metrics, live picture, logs,
// the console's assets and, with Options.DebugEndpoints, Go's profiles, all
// under /lambdad/ where AWS has no routes; the console's page at / for
// browsers; everything else goes to the API.
func (n *Node) handler() http.Handler {
	mux := http.NewServeMux()
	// With access control on, each needs its lambdad: action (api.Own).
	own := n.api.Own
	// The metrics and the picture are of the server's own account: callers
	// of other accounts are refused them rather than shown another's.
	home := n.homeOnly
	mux.Handle("GET /lambdad/metrics", own("lambdad:GetMetrics", home(n.metrics.Handler())))
	mux.Handle("GET /lambdad/concurrency", own("lambdad:GetConcurrency", home(http.HandlerFunc(n.metrics.ServePicture))))
	mux.Handle("GET /lambdad/concurrency/stream", own("lambdad:GetConcurrency", home(http.HandlerFunc(n.metrics.ServeStream))))
	mux.Handle("GET /lambdad/concurrency/history", own("lambdad:GetConcurrency", home(http.HandlerFunc(n.metrics.ServeHistory))))
	mux.Handle("GET /lambdad/functions/{name}/logs", own("lambdad:GetLogs", http.HandlerFunc(n.serveLogs)))
	mux.Handle("GET /lambdad/mappings", own("lambdad:GetMetrics", http.HandlerFunc(n.serveMappings)))
	if n.opts.DebugEndpoints {
		// net/http/pprof names profiles by what follows /debug/pprof/.
		prof := http.NewServeMux()
		prof.HandleFunc("/debug/pprof/", pprof.Index)
		prof.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		prof.HandleFunc("/debug/pprof/profile", pprof.Profile)
		prof.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		prof.HandleFunc("/debug/pprof/trace", pprof.Trace)
		mux.Handle("/lambdad/debug/pprof/", own("lambdad:Debug", http.StripPrefix("/lambdad", prof)))
	}
	mux.HandleFunc("GET "+console.AssetPrefix, n.console.ServeAsset)
	if n.guard != nil {
		mux.HandleFunc("POST "+console.SignInPath, n.guard.SignIn)
		mux.HandleFunc("POST "+console.SignOutPath, n.guard.SignOut)
	}
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A browser asking for / gets the console; every other request,
		// of / or anything else, is the API's (which answers an unknown
		// route in AWS's JSON).
		if console.WantsPage(r) {
			n.console.ServePage(w, r)
			return
		}
		n.api.ServeHTTP(w, r)
	}))
	return mux
}

// queueStats gives metrics the queue's figures once the queue exists: the
// metrics are built before it, since the invoker the queue runs through
// reports to them.
type queueStats struct{ n *Node }

func (q queueStats) Stats() events.Stats { return q.n.queue.Stats() }

// maxLogTail bounds what one logs request reads.
const maxLogTail = 1 << 20

// serveLogs answers GET /lambdad/functions/{name}/logs?bytes=N: the last N
// bytes (default 16 KiB, at most 1 MiB) of the function's log file, whole
// lines only, as text; empty when the function has logged nothing.
func (n *Node) serveLogs(w http.ResponseWriter, r *http.Request) {
	limit := int64(16 << 10)
	if v := r.URL.Query().Get("bytes"); v != "" {
		l, err := strconv.ParseInt(v, 10, 64)
		if err != nil || l < 1 || l > maxLogTail {
			http.Error(w, "bytes must be a whole number from 1 to 1048576", http.StatusBadRequest)
			return
		}
		limit = l
	}
	// Lines are buffered on their way to the file; a reader wants them all.
	n.envs.FlushLogs()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	// The caller's account's log (with access control on, api.Own put
	// the caller in the context; without, it is the server's account).
	f, err := os.Open(execenv.LogFile(LogDir(n.opts.DataDir), account.Of(r.Context(), n.opts.AccountID), r.PathValue("name")))
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		http.Error(w, "cannot read the log", http.StatusInternalServerError)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		http.Error(w, "cannot read the log", http.StatusInternalServerError)
		return
	}
	from := max(0, st.Size()-limit)
	b, err := io.ReadAll(io.NewSectionReader(f, from, st.Size()-from))
	if err != nil {
		http.Error(w, "cannot read the log", http.StatusInternalServerError)
		return
	}
	if from > 0 {
		// The first line was cut: keep whole lines only.
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	w.Write(b)
}

// homeOnly serves h to callers of the server's own account (all callers
// when access control is off) and refuses the others with AWS's 403.
func (n *Node) homeOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, ok := account.CallerOf(r.Context()); ok && c.Account != "" && c.Account != n.opts.AccountID {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("X-Amzn-ErrorType", "AccessDeniedException")
			w.WriteHeader(http.StatusForbidden)
			w.Write([]byte(`{"Message":"The metrics and the account picture are of the server's own account only."}`))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// mappingCounters is one running event source mapping's counters, as
// /lambdad/mappings reports them.
type mappingCounters struct {
	UUID             string `json:"uuid"`
	Function         string `json:"function"`
	Queue            string `json:"queue"`
	Batches          int64  `json:"batches"`
	Messages         int64  `json:"messages"`
	Deleted          int64  `json:"deleted"`
	Filtered         int64  `json:"filtered"`
	ThrottledBatches int64  `json:"throttledBatches"`
	FailedBatches    int64  `json:"failedBatches"`
	Concurrency      int64  `json:"concurrency"`
	InFlight         int64  `json:"inFlight"`
}

// serveMappings answers the counters of the caller's account's running
// event source mappings (on a cluster, of those this node polls), in
// UUID order, for the console.
func (n *Node) serveMappings(w http.ResponseWriter, r *http.Request) {
	stats := n.esm.StatsOf(account.Of(r.Context(), n.opts.AccountID))
	out := struct {
		Mappings []mappingCounters `json:"mappings"`
	}{Mappings: []mappingCounters{}}
	for uuid, s := range stats {
		out.Mappings = append(out.Mappings, mappingCounters{UUID: uuid, Function: s.Function, Queue: s.Queue, Batches: s.Batches,
			Messages: s.Messages, Deleted: s.Deleted, Filtered: s.Filtered, ThrottledBatches: s.ThrottledBatches,
			FailedBatches: s.FailedBatches, Concurrency: s.Concurrency, InFlight: s.InFlight})
	}
	slices.SortFunc(out.Mappings, func(a, b mappingCounters) int { return strings.Compare(a.UUID, b.UUID) })
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}
