package server_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lambdad/lambdad/internal/iam"
	"github.com/lambdad/lambdad/internal/server"
)

// A client that announces a body and never sends it loses its connection
// once the body timeout passes; a long invocation whose body came in at
// once is not cut off by it.
func TestBodyTimeout(t *testing.T) {
	n := start(t, server.Options{BodyTimeout: 300 * time.Millisecond})
	c, err := net.Dial("tcp", n.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "POST /2015-03-31/functions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	io.Copy(io.Discard, c) // until the server gives up on the body
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("the connection was held %v", d)
	}

	n.createGo(t, "slow")
	out, err := n.invoke(t, "slow", `{"sleep_ms":800}`)
	if err != nil || out.FunctionError != nil {
		t.Fatalf("an invocation longer than the body timeout: %v %v", err, out)
	}
}

// Connections past the cap wait in the kernel's backlog, not in the
// server's descriptors; one closing lets the next in.
func TestConnectionCap(t *testing.T) {
	n := start(t, server.Options{MaxConnections: 3})
	var held []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", n.Addr())
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	// Give the server time to accept the three.
	time.Sleep(100 * time.Millisecond)
	client := &http.Client{Timeout: 500 * time.Millisecond}
	if resp, err := client.Get(n.URL() + "/lambdad/health"); err == nil {
		resp.Body.Close()
		t.Fatal("a fourth connection was served past the cap of 3")
	}
	held[0].Close()
	client.Timeout = 5 * time.Second
	resp, err := client.Get(n.URL() + "/lambdad/health")
	if err != nil {
		t.Fatalf("after a connection closed: %v", err)
	}
	resp.Body.Close()
	for _, c := range held[1:] {
		c.Close()
	}
}

// Large bodies in memory at once are capped: past the cap a request is
// refused with 429 at once instead of adding its body to the server's
// memory; once the first is done, the next is served.
func TestBodyMemoryCap(t *testing.T) {
	n := start(t, server.Options{MaxBodyMemory: 3 << 20})
	const size = 2 << 20
	c, err := net.Dial("tcp", n.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Half a 2 MB body: it holds its share until it ends.
	fmt.Fprintf(c, "POST /2015-03-31/functions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{\"FunctionName\":\"", size)
	c.Write(bytes.Repeat([]byte("a"), size/2))
	time.Sleep(200 * time.Millisecond)
	body := `{"FunctionName":"` + strings.Repeat("a", size-20) + `"}`
	secondWaitsItsTurn(t, c, func() (*http.Response, error) {
		return http.Post(n.URL()+"/2015-03-31/functions", "application/json", strings.NewReader(body))
	})
}

// secondWaitsItsTurn checks, while c holds a large body in progress, that
// the request send makes is refused with 429 at once, and served once c
// is gone.
func secondWaitsItsTurn(t *testing.T, c net.Conn, send func() (*http.Response, error)) {
	t.Helper()
	post := func() (int, string) {
		resp, err := send()
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("X-Amzn-Errortype")
	}
	if status, typ := post(); status != 429 || typ != "TooManyRequestsException" {
		t.Fatalf("a second large body: %d %s, want 429 TooManyRequestsException", status, typ)
	}
	c.Close()
	time.Sleep(200 * time.Millisecond)
	if status, typ := post(); status == 429 {
		t.Fatalf("after the first ended: %d %s", status, typ)
	}
}

// With access control on, a body counts against the cap while the
// authenticator reads it to check the hash its signature covers, not
// only once the operation reads it: a signed large body in progress makes
// a second one wait its turn.
func TestBodyMemoryCapWhileAuthenticating(t *testing.T) {
	creds, err := iam.Parse("credentials.json", []byte(credentialsJSON))
	if err != nil {
		t.Fatal(err)
	}
	n := start(t, server.Options{AccountID: "111111111111", Credentials: creds, MaxBodyMemory: 3 << 20})
	const size = 2 << 20
	body := []byte(`{"FunctionName":"` + strings.Repeat("a", size-20) + `"}`)
	signed := func() *http.Request {
		req, _ := http.NewRequest("POST", n.URL()+"/2015-03-31/functions", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		sign(t, req, adminKey, adminSecret, time.Now())
		return req
	}
	c, err := net.Dial("tcp", n.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Half of a signed 2 MB body: the authenticator is reading it.
	first := signed()
	fmt.Fprintf(c, "POST /2015-03-31/functions HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", first.Host, len(body))
	first.Header.Write(c)
	fmt.Fprint(c, "\r\n")
	c.Write(body[:len(body)/2])
	time.Sleep(200 * time.Millisecond)
	secondWaitsItsTurn(t, c, func() (*http.Response, error) { return http.DefaultClient.Do(signed()) })
}
