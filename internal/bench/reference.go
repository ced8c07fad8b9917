package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Reference is the minimal version of the path lambdad serves, for
// comparison in the same run: a plain net/http front end that hands each
// event to one of a fixed set of runtime processes over the Runtime API and
// writes back the answer. It has no admission, no store, no logs, no
// timeouts: whatever lambdad costs beyond it is lambdad's overhead.
type Reference struct {
	srv   *http.Server
	ln    net.Listener
	procs []*refProc
	free  chan *refProc
	// FirstNext holds, per process, the time from exec to its first
	// GET /next: a process's own start-up cost, the floor of a cold start.
	FirstNext []time.Duration
}

type refProc struct {
	ln    net.Listener
	srv   *http.Server
	cmd   *exec.Cmd
	work  chan []byte
	done  chan []byte
	ready chan time.Time
}

// StartReference starts n runtime processes of bootstrap (run with dir as
// its working directory) and a front end that serves
// POST .../invocations by handing events to them.
func StartReference(ctx context.Context, bootstrap, dir string, n int) (*Reference, error) {
	r := &Reference{free: make(chan *refProc, n)}
	for range n {
		p, took, err := startRefProc(ctx, bootstrap, dir)
		if err != nil {
			r.Close()
			return nil, err
		}
		r.procs = append(r.procs, p)
		r.FirstNext = append(r.FirstNext, took)
		r.free <- p
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		r.Close()
		return nil, err
	}
	r.ln = ln
	r.srv = &http.Server{Handler: http.HandlerFunc(r.serve)}
	go r.srv.Serve(ln)
	return r, nil
}

// URL is the front end's address.
func (r *Reference) URL() string { return "http://" + r.ln.Addr().String() }

func (r *Reference) serve(w http.ResponseWriter, req *http.Request) {
	event, err := io.ReadAll(req.Body)
	if err != nil {
		return
	}
	p := <-r.free
	p.work <- event
	out := <-p.done
	r.free <- p
	w.Header().Set("Content-Type", "application/json")
	w.Write(out)
}

// Close stops the front end and the processes.
func (r *Reference) Close() {
	if r.srv != nil {
		r.srv.Close()
	}
	for _, p := range r.procs {
		p.stop()
	}
}

// startRefProc execs one runtime process with its own tiny Runtime API and
// waits for its first GET /next.
func startRefProc(ctx context.Context, bootstrap, dir string) (*refProc, time.Duration, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, 0, err
	}
	p := &refProc{ln: ln, work: make(chan []byte), done: make(chan []byte), ready: make(chan time.Time, 1)}
	mux := http.NewServeMux()
	first := true
	var mu sync.Mutex
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", func(w http.ResponseWriter, req *http.Request) {
		mu.Lock()
		if first {
			first = false
			p.ready <- time.Now()
		}
		mu.Unlock()
		select {
		case ev := <-p.work:
			h := w.Header()
			h.Set("Lambda-Runtime-Aws-Request-Id", "ref")
			h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(time.Now().Add(time.Minute).UnixMilli(), 10))
			h.Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:reference")
			w.Write(ev)
		case <-req.Context().Done():
		}
	})
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/response", func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		w.WriteHeader(http.StatusAccepted)
		p.done <- b
	})
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/error", func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		w.WriteHeader(http.StatusAccepted)
		p.done <- b
	})
	p.srv = &http.Server{Handler: mux}
	go p.srv.Serve(ln)
	p.cmd = exec.CommandContext(ctx, bootstrap)
	p.cmd.Dir = dir
	p.cmd.Env = []string{"AWS_LAMBDA_RUNTIME_API=" + ln.Addr().String(), "PATH=/usr/bin:/bin", "_HANDLER=bootstrap",
		"AWS_LAMBDA_FUNCTION_NAME=reference", "AWS_LAMBDA_FUNCTION_VERSION=$LATEST", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128"}
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	start := time.Now()
	if err := p.cmd.Start(); err != nil {
		p.srv.Close()
		return nil, 0, err
	}
	select {
	case at := <-p.ready:
		return p, at.Sub(start), nil
	case <-time.After(10 * time.Second):
		p.stop()
		return nil, 0, errors.New("reference runtime did not ask for work within 10 s")
	case <-ctx.Done():
		p.stop()
		return nil, 0, ctx.Err()
	}
}

func (p *refProc) stop() {
	if p.cmd != nil && p.cmd.Process != nil {
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		p.cmd.Wait()
	}
	p.srv.Close()
}

// ColdStartFloor execs bootstrap n times, one after another, and returns
// each time from exec to the first GET /next.
func ColdStartFloor(ctx context.Context, bootstrap, dir string, n int) ([]time.Duration, error) {
	var out []time.Duration
	for range n {
		p, took, err := startRefProc(ctx, bootstrap, dir)
		if err != nil {
			return nil, fmt.Errorf("reference cold start: %w", err)
		}
		p.stop()
		out = append(out, took)
	}
	return out, nil
}
