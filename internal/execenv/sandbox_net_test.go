package execenv

// The environments' outbound network (sandbox.NetworkPasta): a function
// reaches out to the host's network, and nothing else: not the host's
// loopback, not the cloud's instance metadata, not another environment;
// nothing reaches in; and each environment's pasta ends with it.

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lambdad/lambdad/internal/lambdatest"
	"github.com/lambdad/lambdad/internal/sandbox"
)

// dial has a function of m connect to addr and read what it answers.
func dial(t *testing.T, m *Manager, spec *Spec, addr string) (got, err string) {
	t.Helper()
	out, res := spyCall(t, m, spec, map[string]any{"op": "dial", "addr": addr})
	wantOK(t, res)
	g, _ := out["got"].(string)
	e, _ := out["err"].(string)
	return g, e
}

func TestSandboxNetworkReachesOut(t *testing.T) {
	m := boxManagerNet(t, Config{}, sandbox.NetworkPasta)
	addr := lambdatest.Greeter(t, lambdatest.HostAddr(t), "hello from the host")
	if got, err := dial(t, m, goSpec("out"), addr); got != "hello from the host\n" {
		t.Fatalf("dialing %s from the environment: %q, %s", addr, got, err)
	}
	// With --function-network none the same connect fails.
	none := boxManager(t, Config{})
	if got, err := dial(t, none, goSpec("out"), addr); err == "" || got != "" {
		t.Fatalf("without network the environment reached %s: %q", addr, got)
	}
}

func TestSandboxNetworkNoHostLoopback(t *testing.T) {
	m := boxManagerNet(t, Config{}, sandbox.NetworkPasta)
	host := lambdatest.HostAddr(t)
	// What listens on the host's loopback only: a server's port, and an
	// unsandboxed environment's Runtime API.
	local := lambdatest.Greeter(t, "127.0.0.1", "the host's loopback")
	_, port, _ := net.SplitHostPort(local)
	plain := newManager(t, Config{})
	api := startIdle(t, plain, goSpec("plain")).srv.Addr()
	_, apiPort, _ := net.SplitHostPort(api)
	spec := goSpec("loopback-spy")
	for _, addr := range []string{
		local, api,
		// The gateway is not mapped to the host's loopback, nor is the
		// host's own address.
		net.JoinHostPort(sandbox.NetGateway, port), net.JoinHostPort(sandbox.NetGateway, apiPort),
		net.JoinHostPort(host, port), net.JoinHostPort(host, apiPort),
		"localhost:" + port,
		// The cloud's instance metadata (and its credentials).
		"169.254.169.254:80",
	} {
		if got, err := dial(t, m, spec, addr); err == "" || got != "" {
			t.Errorf("the environment reached %s: %q", addr, got)
		} else {
			t.Logf("%s: %s", addr, err)
		}
	}
}

func TestSandboxNetworkKeepsRuntimeAPIsApart(t *testing.T) {
	m := boxManagerNet(t, Config{}, sandbox.NetworkPasta)
	victim := startIdle(t, m, goSpec("victim"))
	if victim.box.NetPid() == 0 {
		t.Fatal("the victim has no pasta")
	}
	thief := goSpec("thief")
	out, res := spyCall(t, m, thief, map[string]any{"op": "steal"})
	wantOK(t, res)
	if out["apis"] != nil {
		t.Fatalf("the thief found other Runtime APIs: %v", out["apis"])
	}
	// Every environment's Runtime API is 127.0.0.1:9001 of its own
	// namespace: through the network it is nowhere.
	_, apiPort, _ := net.SplitHostPort(sandbox.RuntimeAPIAddr)
	for _, addr := range []string{net.JoinHostPort(sandbox.NetGateway, apiPort), net.JoinHostPort(lambdatest.HostAddr(t), apiPort),
		net.JoinHostPort(sandbox.NetAddress, apiPort)} {
		out, res := spyCall(t, m, thief, map[string]any{"op": "connect", "addr": addr})
		wantOK(t, res)
		// Its own address is its own Runtime API: connecting there is no
		// theft; the others must fail.
		if addr != net.JoinHostPort(sandbox.NetAddress, apiPort) && out["err"] == "" {
			t.Errorf("the thief reached %s", addr)
		}
	}
	if _, res := invoke(t, m, goSpec("victim"), `{"op":"echo"}`); res.ColdStart || res.FunctionError != "" {
		t.Fatalf("the victim's environment was disturbed: %+v", res)
	}
}

func TestSandboxNetworkNoInbound(t *testing.T) {
	m := boxManagerNet(t, Config{}, sandbox.NetworkPasta)
	spec := goSpec("listener")
	out, res := spyCall(t, m, spec, map[string]any{"op": "listen", "addr": "0.0.0.0:0"})
	wantOK(t, res)
	_, port, err := net.SplitHostPort(fmt.Sprint(out["addr"]))
	if err != nil {
		t.Fatalf("listen: %v", out)
	}
	// From the host, by every address that could lead in: pasta binds
	// nothing on the host's behalf, and the environment's own address is
	// not routed outside it.
	for _, host := range []string{"127.0.0.1", lambdatest.HostAddr(t), sandbox.NetAddress, sandbox.NetGateway} {
		addr := net.JoinHostPort(host, port)
		c, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
		if err == nil {
			c.Close()
			t.Errorf("connected to the environment at %s", addr)
		}
	}
	out, res = spyCall(t, m, spec, map[string]any{"op": "accepted"})
	wantOK(t, res)
	if out["n"] != float64(0) {
		t.Errorf("the environment's listener accepted %v connections", out["n"])
	}
}

func TestSandboxNetworkEndsWithTheEnvironment(t *testing.T) {
	// No spare: every pasta the server runs is an environment's (the
	// sandbox package's tests follow the spares').
	m := boxManagerSpares(t, Config{}, sandbox.NetworkPasta, 0)
	// An environment stopped by the manager.
	e := startIdle(t, m, goSpec("retired"))
	p := e.box.NetPid()
	if !alive(p) || !isPasta(p) {
		t.Fatalf("pid %d is not a live pasta", p)
	}
	m.Retire(keyOf(goSpec("retired")).fn())
	eventually(t, "the retired environment's pasta to be reaped", func() bool { return !exists(p) })
	// An environment whose invocation timed out.
	spec := goSpec("timedout")
	spec.Timeout = 300 * time.Millisecond
	_, res := spyCall(t, m, spec, map[string]any{"op": "sleep", "ms": 5000})
	if res.FunctionError == "" {
		t.Fatalf("want a timeout: %s", res.Payload)
	}
	eventually(t, "the timed-out environment's pasta to be reaped", func() bool { return len(pastaChildren(os.Getpid())) == 0 })
	// Environments still alive at Close.
	var pids []int
	for i := range 2 {
		pids = append(pids, startIdle(t, m, goSpec("open"+strconv.Itoa(i))).box.NetPid())
	}
	m.Close()
	for _, p := range pids {
		if exists(p) {
			t.Errorf("pasta %d outlived Close", p)
		}
	}
	if left := pastaChildren(os.Getpid()); len(left) > 0 {
		t.Errorf("pasta processes left after Close: %v", left)
	}
}

// exists says whether pid is a process, a zombie included.
func exists(pid int) bool {
	_, err := os.Stat("/proc/" + strconv.Itoa(pid))
	return err == nil
}

// isPasta says whether pid runs pasta (its binary is passt, or
// passt.avx2).
func isPasta(pid int) bool {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	return strings.HasPrefix(string(b), "passt")
}

// pastaChildren lists the pasta processes whose parent is pid.
func pastaChildren(pid int) []int {
	var out []int
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, task := range tasks {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, task.Name()))
		for _, f := range strings.Fields(string(b)) {
			if c, _ := strconv.Atoi(f); isPasta(c) {
				out = append(out, c)
			}
		}
	}
	return out
}

func TestSandboxNetworkDiesWithTheServer(t *testing.T) {
	missing := append(sandbox.Check(sandbox.Full), sandbox.CheckNetwork(sandbox.Full, sandbox.NetworkPasta)...)
	if len(missing) > 0 {
		requireE2E(t, sandbox.Report(sandbox.Full, missing))
	}
	marker := "spy-orphan-net-" + strconv.Itoa(os.Getpid())
	cmd := startBoxedServer(t, marker, "LAMBDAD_TEST_BOXED_NETWORK="+string(sandbox.NetworkPasta))
	defer cmd.Wait()
	// One environment frozen (its pasta is not), one running, and the
	// spare (which may still be starting).
	var pastas []int
	for deadline := time.Now().Add(10 * time.Second); len(pastas) != 3 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		pastas = pastaChildren(cmd.Process.Pid)
	}
	if len(pastas) != 3 {
		cmd.Process.Kill()
		t.Fatalf("the server runs pasta processes %v, want 3 (two environments and a spare)", pastas)
	}
	t.Cleanup(func() {
		// Should the test fail, what outlived the server goes now.
		for _, p := range pastas {
			if alive(p) && isPasta(p) {
				syscall.Kill(p, syscall.SIGKILL)
			}
		}
	})
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	eventually(t, "the killed server's pasta processes to die", func() bool {
		for _, p := range pastas {
			if alive(p) {
				return false
			}
		}
		return true
	})
	eventually(t, "every process of the killed server's environments to die", func() bool { return markerProcs(marker) == 0 })
}
