// This file holds what keeps slow or greedy clients from holding the
// server: a cap on open connections, and a deadline on reading a request's
// body that lifts once the body is in (an invocation may then run for its
// function's whole timeout).

package server

import (
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// Defaults of the connection limits.
const (
	DefaultMaxConnections = 512
	// defaultBodyTimeout bounds reading one request's body: a 50 MB zip
	// at 1 MB/s fits; a client sending a byte every few seconds does not
	// hold a connection longer.
	defaultBodyTimeout = 2 * time.Minute
	// idleTimeout closes a kept-alive connection with no request.
	idleTimeout = 2 * time.Minute
	// headerTimeout bounds reading a request's headers.
	headerTimeout = 30 * time.Second
)

// limitListener accepts at most n connections at a time: past that, Accept
// waits for one to close, and new connections wait in the kernel's backlog
// instead of taking the server's file descriptors.
type limitListener struct {
	net.Listener
	sem       chan struct{}
	done      chan struct{} // closed by Close: a waiting Accept returns
	closeOnce sync.Once
}

func newLimitListener(ln net.Listener, n int) *limitListener {
	return &limitListener{Listener: ln, sem: make(chan struct{}, n), done: make(chan struct{})}
}

func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.sem }}, nil
}

// limitConn gives its slot back once, when closed.
type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// withBodyDeadline sets a read deadline of bodyTimeout on each request and
// lifts it once the body has been read to its end: a long invocation must
// not be cut off by it (an expired read deadline would cancel the request).
func withBodyDeadline(h http.Handler, timeout time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
			rc.SetReadDeadline(time.Time{})
		} else {
			rc.SetReadDeadline(time.Now().Add(timeout))
			b := &deadlineBody{ReadCloser: r.Body, rc: rc, left: r.ContentLength}
			r.Body = b
			// A body that did not come in time leaves the connection
			// in the middle of it: the answer closes it.
			w = &closingWriter{ResponseWriter: w, body: b}
			defer func() {
				if b.failed {
					// Nothing more can be read from it: drop it now
					// rather than wait for a request that cannot come.
					if c, _, err := rc.Hijack(); err == nil {
						c.Close()
					}
				}
			}()
		}
		h.ServeHTTP(w, r)
	})
}

// closingWriter asks for the connection to be closed after the response
// when the request's body failed to arrive.
type closingWriter struct {
	http.ResponseWriter
	body *deadlineBody
}

func (w *closingWriter) WriteHeader(status int) {
	if w.body.failed {
		w.Header().Set("Connection", "close")
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *closingWriter) Write(b []byte) (int, error) {
	if w.body.failed {
		w.Header().Set("Connection", "close")
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *closingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// deadlineBody lifts the connection's read deadline at the body's end.
type deadlineBody struct {
	io.ReadCloser
	rc     *http.ResponseController
	left   int64 // bytes still to come; -1 when unknown (chunked)
	lifted bool
	failed bool // a read failed before the body's end
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if b.left > 0 {
		b.left -= int64(n)
	}
	if err != nil && err != io.EOF {
		b.failed = true
	}
	if !b.lifted && (err != nil || b.left == 0) {
		b.lifted = true
		b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}
