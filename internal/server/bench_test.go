package server_test

import (
	"bytes"
	"io"
	"net/http"
	"testing"

	"github.com/lambdad/lambdad/internal/server"
)

// BenchmarkInvokeWarm measures one synchronous invocation of a warm Go
// function through the whole server: HTTP, routing, admission, the
// environment's Runtime API round trip and the response.
func BenchmarkInvokeWarm(b *testing.B) {
	n, err := server.Start(server.Options{Listen: "127.0.0.1:0", DataDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close(ctx)
	nd := &node{Node: n}
	nd.client = clientFor(n.URL())
	nd.createGoB(b, "echo")
	url := n.URL() + "/2015-03-31/functions/echo/invocations"
	client := &http.Client{}
	body := []byte(`{"echo":"x"}`)
	invoke := func() {
		resp, err := client.Post(url, "application/json", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	invoke()
	b.ResetTimer()
	for b.Loop() {
		invoke()
	}
}

func (n *node) createGoB(b *testing.B, name string) {
	b.Helper()
	in := goFunctionInput(b, name)
	if _, err := n.client.CreateFunction(ctx, in); err != nil {
		b.Fatal(err)
	}
}
