package lambdatest

import (
	"net"
	"testing"
)

// HostAddr is a non-loopback IPv4 address of one of this machine's
// interfaces that are up: where a sandboxed function with outbound
// network finds a server of the host's network. It skips t on a machine
// with loopback only (where pasta, which needs an interface with a default
// route, cannot start anyway).
func HostAddr(t testing.TB) string {
	t.Helper()
	ifs, _ := net.Interfaces()
	for _, i := range ifs {
		if i.Flags&net.FlagUp == 0 || i.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, _ := i.Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && n.IP.IsGlobalUnicast() {
				return n.IP.String()
			}
		}
	}
	t.Skip("no interface of this machine has a non-loopback IPv4 address")
	return ""
}

// Greeter listens on host at a free port until t ends, writes greeting and
// a newline to each connection and closes it: a server of the host's
// network for functions to reach. It returns its address.
func Greeter(t testing.TB, host, greeting string) string {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte(greeting + "\n"))
			c.Close()
		}
	}()
	return ln.Addr().String()
}
