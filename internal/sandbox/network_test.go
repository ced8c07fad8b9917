package sandbox

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

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
	// A name the host resolves through DNS (not /etc/hosts), to resolve
	// in the environment too; a machine without DNS skips that part.
	const dnsName = "deb.debian.org"
	var dnsAddrs []string
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	if addrs, err := (&net.Resolver{PreferGo: true}).LookupIPAddr(ctx, dnsName); err == nil {
		for _, a := range addrs {
			if a.IP.To4() != nil {
				dnsAddrs = append(dnsAddrs, a.IP.String())
			}
		}
	}
	cancel()
	if len(dnsAddrs) == 0 {
		t.Logf("the host does not resolve %s: name resolution in the environment is not checked", dnsName)
	}
	for _, c := range []struct {
		level  Level
		spares int
	}{{Full, 0}, {NoCgroup, 0}, {Full, 1}} {
		level := c.level
		name := string(level)
		if c.spares > 0 {
			// A spare's pasta is ready before the function comes: the
			// init routes at once.
			name += "-spare"
		}
		t.Run(name, func(t *testing.T) {
			h, err := NewHost(HostConfig{Level: level, Network: NetworkPasta, Spares: c.spares})
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			if c.spares > 0 {
				peekSpare(t, h)
			}
			if h.Network() != NetworkPasta {
				t.Fatalf("Network() = %s", h.Network())
			}
			host, port, _ := net.SplitHostPort(lambdatest.Greeter(t, lambdatest.HostAddr(t), "hello from the host"))
			code := t.TempDir()
			os.Chmod(code, 0o755)
			r, w, _ := os.Pipe()
			e, err := h.Start(&Spec{Argv: []string{"/bin/bash", "-c", `cat /proc/net/route
exec 3<>/dev/tcp/` + host + `/` + port + ` && cat <&3
for a in 169.254.169.254/80 ` + NetGateway + `/80; do (exec 3<>/dev/tcp/$a) 2>&1; done
echo resolv; cat /etc/resolv.conf; echo lookup; getent hosts ` + dnsName + `; true`},
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
			// Names resolve through pasta's forwarder to the host's
			// resolver, where the host resolves them itself.
			if len(dnsAddrs) > 0 {
				_, lookup, _ := strings.Cut(out, "lookup\n")
				if !slices.ContainsFunc(dnsAddrs, func(a string) bool { return strings.Contains(lookup, a+" ") }) {
					t.Errorf("%s resolved to %q in the environment, %v on the host", dnsName, lookup, dnsAddrs)
				}
			}
			for _, want := range []string{
				"eth0\t00000000\t0101FEA9\t0003\t", // default via 169.254.1.1
				"*\t0000FEA9\t00000000\t0201\t",    // 169.254.0.0/16 unreachable
				"*\t0101FEA9\t00000000\t0205\t",    // 169.254.1.1/32 unreachable
				"eth0\t0001FEA9\t00000000\t0001\t", // 169.254.1.0/30, its link
				"hello from the host\n",
				"/dev/tcp/169.254.169.254/80: No route to host",
				"/dev/tcp/" + NetGateway + "/80: No route to host",
				"eth0\t014EFEA9\t0101FEA9\t0007\t", // 169.254.78.1 via the gateway
				"resolv\nnameserver " + NetDNS + "\n",
			} {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

// serveDNS answers every A query on conn with addr, until conn closes, and
// counts the queries.
func serveDNS(conn net.PacketConn, addr [4]byte, queries *atomic.Int32) {
	buf := make([]byte, 512)
	for {
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			return
		}
		if n < 12 {
			continue
		}
		// The question ends after its name (labels up to a zero byte),
		// its type and its class.
		end := 12
		for end < n && buf[end] != 0 {
			end += int(buf[end]) + 1
		}
		end += 5
		if end > n {
			continue
		}
		queries.Add(1)
		resp := append([]byte{}, buf[:end]...)
		binary.BigEndian.PutUint16(resp[2:], 0x8180) // a response, recursion available, no error
		binary.BigEndian.PutUint16(resp[6:], 1)      // one answer
		binary.BigEndian.PutUint16(resp[8:], 0)
		binary.BigEndian.PutUint16(resp[10:], 0)
		if qtype := binary.BigEndian.Uint16(buf[end-4:]); qtype != 1 { // not A: no answer
			binary.BigEndian.PutUint16(resp[6:], 0)
			conn.WriteTo(resp, from)
			continue
		}
		resp = append(resp, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4)
		resp = append(resp, addr[:]...)
		conn.WriteTo(resp, from)
	}
}

// On a host whose resolver is on its loopback (systemd-resolved's
// 127.0.0.53, the default of Ubuntu), a function still resolves names:
// pasta forwards its queries to that resolver. The resolver here is a
// small DNS server on 127.0.0.153, and pasta reads a resolv.conf naming
// it (a wrapper binds one over /etc/resolv.conf in a mount namespace of
// pasta's own).
func TestNetworkDNSThroughLoopbackResolver(t *testing.T) {
	requirePasta(t)
	for _, p := range []string{"unshare", "mount"} {
		if _, err := exec.LookPath(p); err != nil {
			if os.Getenv("LAMBDAD_REQUIRE_E2E") == "1" {
				t.Fatalf("%s (util-linux) is not installed", p)
			}
			t.Skipf("%s (util-linux) is not installed", p)
		}
	}
	conn, err := net.ListenPacket("udp", "127.0.0.153:53")
	if err != nil {
		t.Skipf("no DNS server on 127.0.0.153:53 for this test: %v", err)
	}
	defer conn.Close()
	var queries atomic.Int32
	go serveDNS(conn, [4]byte{192, 0, 2, 77}, &queries)

	real, err := exec.LookPath(pastaBinary)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rc := filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(rc, []byte("nameserver 127.0.0.153\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	wrapper := "#!/bin/sh\nexec unshare -m sh -c 'mount --bind \"$0\" /etc/resolv.conf && exec \"$@\"' " + rc + " " + real + " \"$@\"\n"
	if err := os.WriteFile(filepath.Join(dir, pastaBinary), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
	h, err := NewHost(HostConfig{Level: Full, Network: NetworkPasta})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	out, err := run(t, h, "cat /etc/resolv.conf; getent hosts lambda-dns-check.example.test")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{"nameserver " + NetDNS + "\n", "192.0.2.77 "} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "127.0.0.153") {
		t.Errorf("the environment names the host's loopback resolver:\n%s", out)
	}
	if queries.Load() == 0 {
		t.Error("the loopback resolver received no query")
	}
}

// An environment's resolv.conf keeps the host's search domains and
// options, and names only pasta's forwarder.
func TestOutboundResolvConf(t *testing.T) {
	p := filepath.Join(t.TempDir(), "resolv.conf")
	os.WriteFile(p, []byte("# comment\nnameserver 127.0.0.53\nnameserver 10.0.0.2\noptions edns0 trust-ad\nsearch corp.example  example.test\n"), 0o644)
	want := "nameserver " + NetDNS + "\noptions edns0 trust-ad\nsearch corp.example example.test\n"
	if got := outboundResolvConf(p); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := outboundResolvConf(filepath.Join(t.TempDir(), "absent")); got != "nameserver "+NetDNS+"\n" {
		t.Errorf("without a host file: %q", got)
	}
}
