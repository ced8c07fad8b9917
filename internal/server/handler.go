package server

import (
	"net/http"
	"net/http/pprof"

	"github.com/lambdad/lambdad/internal/events"
)

// handler routes what a node serves: lambdad's metrics and live picture
// and, with Options.DebugEndpoints, Go's profiles, all under /lambdad/
// where AWS has no routes; everything else goes to the API.
func (n *Node) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /lambdad/metrics", n.metrics.Handler())
	mux.HandleFunc("GET /lambdad/concurrency", n.metrics.ServePicture)
	mux.HandleFunc("GET /lambdad/concurrency/stream", n.metrics.ServeStream)
	if n.opts.DebugEndpoints {
		// net/http/pprof names profiles by what follows /debug/pprof/.
		prof := http.NewServeMux()
		prof.HandleFunc("/debug/pprof/", pprof.Index)
		prof.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		prof.HandleFunc("/debug/pprof/profile", pprof.Profile)
		prof.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		prof.HandleFunc("/debug/pprof/trace", pprof.Trace)
		mux.Handle("/lambdad/debug/pprof/", http.StripPrefix("/lambdad", prof))
	}
	mux.Handle("/", n.api)
	return mux
}

// queueStats gives metrics the queue's figures once the queue exists: the
// metrics are built before it, since the invoker the queue runs through
// reports to them.
type queueStats struct{ n *Node }

func (q queueStats) Stats() events.Stats { return q.n.queue.Stats() }
