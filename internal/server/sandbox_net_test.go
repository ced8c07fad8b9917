package server_test

import (
	"encoding/json"
	"net"
	"strings"
	"testing"

	"github.com/lambdad/lambdad/internal/lambdatest"
	"github.com/lambdad/lambdad/internal/sandbox"
	"github.com/lambdad/lambdad/internal/server"
)

// TestSandboxNetworkServerPort: a sandboxed function with outbound network
// reaches a server on the host's network, but not the lambdad server that
// runs it, on its listening port (127.0.0.1), by any address: the host's
// loopback, the host's own address, the gateway.
func TestSandboxNetworkServerPort(t *testing.T) {
	missing := append(sandbox.Check(sandbox.Full), sandbox.CheckNetwork(sandbox.Full, sandbox.NetworkPasta)...)
	if len(missing) > 0 {
		lambdatest.RequireE2E(t, sandbox.Report(sandbox.Full, missing))
	}
	n := start(t, server.Options{Sandbox: sandbox.Full, FunctionNetwork: sandbox.NetworkPasta})
	n.createGo(t, "dialer")
	host := lambdatest.HostAddr(t)
	addr := lambdatest.Greeter(t, host, "hello")
	dial := func(addr string) string {
		t.Helper()
		b, _ := json.Marshal(map[string]string{"dial": addr})
		out, err := n.invoke(t, "dialer", string(b))
		if err != nil || out.FunctionError != nil {
			t.Fatalf("dial %s: %v %s", addr, err, out.Payload)
		}
		var a struct{ Blob string }
		json.Unmarshal(out.Payload, &a)
		return a.Blob
	}
	if got := dial(addr); got != "connected" {
		t.Fatalf("the function did not reach %s on the host's network: %s", addr, got)
	}
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(n.URL(), "http://"))
	for _, h := range []string{"127.0.0.1", "localhost", host, sandbox.NetGateway} {
		addr := net.JoinHostPort(h, port)
		if got := dial(addr); got == "connected" {
			t.Errorf("the function reached the server at %s", addr)
		} else {
			t.Logf("%s: %s", addr, got)
		}
	}
}
