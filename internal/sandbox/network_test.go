package sandbox

import (
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/lambdad/lambdad/internal/lambdatest"
)

// requirePasta skips, or fails under LAMBDAD_REQUIRE_E2E=1, where this
// machine cannot give every guarantee and outbound network through pasta.
func requirePasta(t testing.TB) {
	t.Helper()
	requireFull(t)
	if m := CheckNetwork(Full, NetworkPasta); len(m) > 0 {
		if os.Getenv("LAMBDAD_REQUIRE_E2E") == "1" {
			t.Fatal(Report(Full, m))
		}
		t.Skip(Report(Full, m))
	}
}

func TestParseNetwork(t *testing.T) {
	for _, in := range []string{"pasta", "none"} {
		if got, err := ParseNetwork(in); err != nil || string(got) != in {
			t.Errorf("ParseNetwork(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseNetwork("slirp"); err == nil {
		t.Error("ParseNetwork(slirp) accepted")
	}
}

func TestReportOffersNoNetwork(t *testing.T) {
	outbound := Missing{GuaranteeOutbound, "pasta is not installed"}
	r := Report(Full, []Missing{outbound})
	for _, want := range []string{GuaranteeOutbound.String(), "pasta is not installed", "--function-network=none", "--sandbox=off"} {
		if !strings.Contains(r, want) {
			t.Errorf("report lacks %q:\n%s", want, r)
		}
	}
	if strings.Contains(r, "--sandbox=no-cgroup") {
		t.Errorf("no-cgroup offered for a missing network:\n%s", r)
	}
	r = Report(Full, []Missing{outbound, {GuaranteeMemory, "no cgroup"}})
	if !strings.Contains(r, "start with --sandbox=no-cgroup --function-network=none to run functions without the cgroup guarantees and network, or with --sandbox=off") {
		t.Errorf("report:\n%s", r)
	}
	// Neither helps without user namespaces.
	r = Report(Full, []Missing{outbound, {GuaranteeUserNS, "no user namespaces"}})
	if strings.Contains(r, "--function-network=none") || !strings.Contains(r, "--sandbox=off") {
		t.Errorf("report:\n%s", r)
	}
}

// Where pasta is not installed, the network is missing, by name; a Host
// without network needs none.
func TestCheckNetworkWithoutPasta(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	m := CheckNetwork(Full, NetworkPasta)
	if len(m) != 1 || m[0].Guarantee != GuaranteeOutbound || !strings.Contains(m[0].Reason, "Debian's package passt") {
		t.Fatalf("CheckNetwork without pasta: %v", m)
	}
	if m := CheckNetwork(Full, NetworkNone); m != nil {
		t.Errorf("CheckNetwork(none): %v", m)
	}
	if m := CheckNetwork(Off, NetworkPasta); m != nil {
		t.Errorf("CheckNetwork at off: %v", m)
	}
	if _, err := NewHost(HostConfig{Level: NoCgroup, Network: NetworkPasta}); err == nil || !strings.Contains(err.Error(), "pasta") {
		t.Errorf("NewHost without pasta: %v", err)
	}
	requireFull(t)
	h, err := NewHost(HostConfig{Level: NoCgroup, Network: NetworkNone})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if out, err := run(t, h, `cat /proc/net/route | wc -l`); err != nil || strings.TrimSpace(out) != "1" {
		t.Errorf("an environment without network has routes: %v\n%s", err, out)
	}
}

// An environment's interface and routes: its address on a link of its own
// to pasta, a default route through pasta, link-local addresses and the
// gateway itself unreachable; a server on the host's network answers it;
// its pasta is reaped once it is released.
func TestNetworkPasta(t *testing.T) {
	requirePasta(t)
	for _, level := range []Level{Full, NoCgroup} {
		t.Run(string(level), func(t *testing.T) {
			h, err := NewHost(HostConfig{Level: level, Network: NetworkPasta})
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			if h.Network() != NetworkPasta {
				t.Fatalf("Network() = %s", h.Network())
			}
			ln, err := net.Listen("tcp", lambdatest.HostAddr(t)+":0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					c.Write([]byte("hello from the host\n"))
					c.Close()
				}
			}()
			host, port, _ := net.SplitHostPort(ln.Addr().String())
			code := t.TempDir()
			os.Chmod(code, 0o755)
			r, w, _ := os.Pipe()
			e, err := h.Start(&Spec{Argv: []string{"/bin/bash", "-c", `cat /proc/net/route
exec 3<>/dev/tcp/` + host + `/` + port + ` && cat <&3
for a in 169.254.169.254/80 ` + NetGateway + `/80; do (exec 3<>/dev/tcp/$a) 2>&1; done; true`},
				Env: []string{"PATH=/usr/bin:/bin"}, Dir: TaskRoot, Binds: []Bind{{Source: code, Target: TaskRoot}},
				MemoryMB: 128, TmpMB: 32, Output: w})
			w.Close()
			if err != nil {
				r.Close()
				t.Fatal(err)
			}
			b, _ := io.ReadAll(r)
			r.Close()
			out := string(b)
			if _, err := e.Wait(); err != nil {
				t.Errorf("%v\n%s", err, out)
			}
			p := e.NetPid()
			if _, err := os.Stat("/proc/" + strconv.Itoa(p)); p == 0 || err != nil {
				t.Errorf("pasta %d is not running while its environment waits to be released", p)
			}
			e.Release()
			e.Listener().Close()
			if _, err := os.Stat("/proc/" + strconv.Itoa(p)); err == nil {
				t.Errorf("pasta %d is still there after Release", p)
			}
			for _, want := range []string{
				"eth0\t00000000\t0101FEA9\t0003\t", // default via 169.254.1.1
				"*\t0000FEA9\t00000000\t0201\t",    // 169.254.0.0/16 unreachable
				"*\t0101FEA9\t00000000\t0205\t",    // 169.254.1.1/32 unreachable
				"eth0\t0001FEA9\t00000000\t0001\t", // 169.254.1.0/30, its link
				"hello from the host\n",
				"/dev/tcp/169.254.169.254/80: No route to host",
				"/dev/tcp/" + NetGateway + "/80: No route to host",
			} {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
		})
	}
}
