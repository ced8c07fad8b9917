package execenv

// The attacks a function may try on the server and on other functions,
// each run in a sandboxed environment (package sandbox at level Full). On
// an unsandboxed Manager each of them succeeds.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lambdad/lambdad/internal/sandbox"
)

// boxManager is a Manager whose environments are sandboxed at level Full;
// it skips (or fails under LAMBDAD_REQUIRE_E2E=1) where this machine
// cannot give every guarantee.
func boxManager(t *testing.T, cfg Config) *Manager {
	t.Helper()
	return boxManagerNet(t, cfg, sandbox.NetworkNone)
}

// boxManagerNet is boxManager with the environments' network n; it skips
// (or fails under LAMBDAD_REQUIRE_E2E=1) where n cannot be given either.
func boxManagerNet(t *testing.T, cfg Config, n sandbox.Network) *Manager {
	t.Helper()
	// One spare, as the server's default: the attacks run in
	// environments started ahead of their function.
	return boxManagerSpares(t, cfg, n, 1)
}

// boxManagerSpares is boxManagerNet with the Host keeping spares spare
// environments.
func boxManagerSpares(t *testing.T, cfg Config, n sandbox.Network, spares int) *Manager {
	t.Helper()
	missing := append(sandbox.Check(sandbox.Full), sandbox.CheckNetwork(sandbox.Full, n)...)
	if len(missing) > 0 {
		requireE2E(t, sandbox.Report(sandbox.Full, missing))
	}
	// /tmp on disk, as the server's.
	h, err := sandbox.NewHost(sandbox.HostConfig{Level: sandbox.Full, Network: n, Spares: spares, ScratchDir: t.TempDir(), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Sandbox = h
	m := newManager(t, cfg)
	t.Cleanup(func() {
		m.Close()
		h.Close()
	})
	return m
}

// spyCall runs one attack and decodes its answer.
func spyCall(t *testing.T, m *Manager, spec *Spec, ev map[string]any) (map[string]any, *Result) {
	t.Helper()
	ev["op"] = ev["op"].(string)
	b, _ := json.Marshal(ev)
	_, res := invoke(t, m, spec, string(b))
	var out map[string]any
	if res.FunctionError == "" {
		if err := json.Unmarshal(res.Payload, &out); err != nil {
			t.Fatalf("%s: %s", b, res.Payload)
		}
	}
	return out, res
}

func TestSandboxRunsAsUnprivilegedUser(t *testing.T) {
	m := boxManager(t, Config{})
	spec := goSpec("spy-id")
	out, res := spyCall(t, m, spec, map[string]any{"op": "id"})
	wantOK(t, res)
	if out["uid"] != float64(sandbox.FunctionUID) || out["gid"] != float64(sandbox.FunctionGID) || out["groups"] != nil {
		t.Fatalf("inside: uid %v gid %v groups %v, want %d %d none", out["uid"], out["gid"], out["groups"], sandbox.FunctionUID, sandbox.FunctionGID)
	}
	status := out["status"].(string)
	for _, want := range []string{"CapEff:\t0000000000000000", "CapPrm:\t0000000000000000", "NoNewPrivs:\t1", "Seccomp:\t2"} {
		if !strings.Contains(status, want) {
			t.Errorf("status lacks %q:\n%s", want, status)
		}
	}
	out, res = spyCall(t, m, spec, map[string]any{"op": "syscalls"})
	wantOK(t, res)
	for _, call := range []string{"unshare", "ptrace", "mount", "keyctl"} {
		if out[call] != "operation not permitted" {
			t.Errorf("%s: %v, want refused", call, out[call])
		}
	}
	// Outside: the runtime's host uid is neither root nor the server's.
	for _, pid := range boxPids(t, m) {
		st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(st), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "Uid:" {
				if f[1] == "0" || f[1] == strconv.Itoa(os.Getuid()) {
					t.Errorf("pid %d runs as host uid %s", pid, f[1])
				}
			}
		}
	}
}

// boxPids lists the host pids of every process of m's environments but
// their inits.
func boxPids(t *testing.T, m *Manager) []int {
	t.Helper()
	var inits []int
	m.mu.Lock()
	for e := range m.all {
		if e.box != nil {
			inits = append(inits, e.box.Pid())
		}
	}
	m.mu.Unlock()
	var out []int
	for _, p := range inits {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", p, p))
		for _, f := range strings.Fields(string(b)) {
			n, _ := strconv.Atoi(f)
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		t.Fatal("no sandboxed process found")
	}
	return out
}

func TestSandboxHidesTheServer(t *testing.T) {
	secret := "lambdad-test-secret-" + strconv.Itoa(os.Getpid())
	t.Setenv("LAMBDAD_TEST_SECRET", secret)
	root := t.TempDir()
	// What the data dir holds: the database, another function's code.
	data := filepath.Join(root, "data")
	os.MkdirAll(filepath.Join(data, "code", "other"), 0o700)
	os.WriteFile(filepath.Join(data, "lambdad.db"), []byte("DB_PASSWORD="+secret), 0o600)
	os.WriteFile(filepath.Join(data, "code", "other", "handler.py"), []byte(secret), 0o644)
	m := boxManager(t, Config{TempRoot: filepath.Join(data, "tmp")})
	spec := goSpec("spy-read")
	for _, p := range []string{
		fmt.Sprintf("/proc/%d/environ", os.Getpid()),
		"/proc/1/environ",
		filepath.Join(data, "lambdad.db"),
		filepath.Join(data, "code", "other", "handler.py"),
		goCodeDir + "/bootstrap",
		m.root + "/runtimes",
	} {
		out, res := spyCall(t, m, spec, map[string]any{"op": "read", "path": p})
		wantOK(t, res)
		if out["err"] == "" || strings.Contains(out["data"].(string), secret) {
			t.Errorf("read %s: %q, err %q; want it unreadable", p, out["data"], out["err"])
		}
	}
	out, res := spyCall(t, m, spec, map[string]any{"op": "grep-environ", "text": secret})
	wantOK(t, res)
	if out["found"] != nil {
		t.Errorf("the server's environment is readable at %v", out["found"])
	}
	// Its own view: the code read-only at /var/task, a writable /tmp.
	out, res = spyCall(t, m, spec, map[string]any{"op": "list", "path": "/"})
	wantOK(t, res)
	t.Logf("/ holds %v", out["names"])
	for _, p := range []string{"/var/task/x", "/x", "/usr/x"} {
		out, res = spyCall(t, m, spec, map[string]any{"op": "fill", "path": p, "mb": 1})
		wantOK(t, res)
		if !strings.Contains(out["err"].(string), "read-only") {
			t.Errorf("writing %s: %v, want read-only", p, out["err"])
		}
	}
	out, res = spyCall(t, m, spec, map[string]any{"op": "list", "path": "/var/task"})
	wantOK(t, res)
	if fmt.Sprint(out["names"]) != "[bootstrap]" {
		t.Errorf("its own code: %v", out)
	}
}

func TestSandboxRuntimeAPIUnreachable(t *testing.T) {
	m := boxManager(t, Config{})
	victim, thief := goSpec("victim"), goSpec("thief")
	_, res := spyCall(t, m, victim, map[string]any{"op": "id"})
	wantOK(t, res)
	// No other environment's Runtime API can be named ...
	out, res := spyCall(t, m, thief, map[string]any{"op": "steal"})
	wantOK(t, res)
	if out["apis"] != nil {
		t.Fatalf("the thief found other Runtime APIs: %v", out["apis"])
	}
	// ... nor anything on the host's loopback reached: an unsandboxed
	// environment's Runtime API listens there.
	plain := newManager(t, Config{})
	e := startIdle(t, plain, goSpec("plain"))
	out, res = spyCall(t, m, thief, map[string]any{"op": "connect", "addr": e.srv.Addr()})
	wantOK(t, res)
	if out["err"] == "" {
		t.Fatalf("the thief reached %s on the host", e.srv.Addr())
	}
}

// startIdle runs one invocation of spec on m and returns its idle
// environment.
func startIdle(t *testing.T, m *Manager, spec *Spec) *env {
	t.Helper()
	_, res := invoke(t, m, spec, `{"op":"echo"}`)
	wantOK(t, res)
	m.mu.Lock()
	defer m.mu.Unlock()
	for e := range m.all {
		if e.key == keyOf(spec) {
			return e
		}
	}
	t.Fatal("no environment")
	return nil
}

func TestSandboxCannotSignal(t *testing.T) {
	m := boxManager(t, Config{})
	other := startIdle(t, m, goSpec("other"))
	spec := goSpec("signaller")
	for _, pid := range []int{os.Getpid(), other.box.Pid(), 1, -1} {
		out, res := spyCall(t, m, spec, map[string]any{"op": "kill", "pid": pid, "code": 9})
		if pid == -1 {
			// kill(-1) reaches only its own environment: its own
			// runtime dies, nothing else.
			continue
		}
		wantOK(t, res)
		if out["err"] == "" {
			t.Errorf("kill(%d, SIGKILL) succeeded", pid)
		}
	}
	if !alive(other.box.Pid()) {
		t.Fatal("the other environment was killed")
	}
	_, res := invoke(t, m, goSpec("other"), `{"op":"echo"}`)
	wantOK(t, res)
	if res.ColdStart {
		t.Fatal("the other environment was lost")
	}
}

func TestSandboxMemoryLimitCoversTheTree(t *testing.T) {
	m := boxManager(t, Config{})
	for _, ev := range []map[string]any{
		{"op": "mmap", "mb": 300},
		{"op": "fill", "path": "/dev/shm/x", "mb": 300},
	} {
		spec := goSpec("hog-" + ev["op"].(string))
		spec.MemoryMB = 128
		spec.EphemeralMB = 512
		out, res := spyCall(t, m, spec, ev)
		if res.FunctionError == "" {
			t.Errorf("%v: succeeded (%v), want the environment killed", ev, out)
		}
		if res.MaxMemoryUsedMB > 128+1 {
			t.Errorf("%v: Max Memory Used %d MB, over the limit", ev, res.MaxMemoryUsedMB)
		}
		t.Logf("%v: %s %s, Max Memory Used %d MB", ev["op"], res.FunctionError, res.Payload, res.MaxMemoryUsedMB)
	}
	// Children, each under the limit, together over it: the kernel kills
	// what does not fit; at most two of them live.
	marker := "spy-hog-" + strconv.Itoa(os.Getpid())
	spec := goSpec("hog-children")
	spec.MemoryMB = 128
	out, res := spyCall(t, m, spec, map[string]any{"op": "children", "n": 5, "mb": 50, "ms": 1500, "marker": marker})
	if n := markerProcs(marker); n > 2 || res.MaxMemoryUsedMB > 128+1 {
		t.Errorf("%d children of 50 MB live in 128 MB, Max Memory Used %d MB (%v %s)", n, res.MaxMemoryUsedMB, out, res.Payload)
	}
}

func TestSandboxTmpIsPrivateAndSized(t *testing.T) {
	m := boxManager(t, Config{})
	spec := goSpec("filler")
	spec.MemoryMB = 512
	spec.EphemeralMB = 64
	out, res := spyCall(t, m, spec, map[string]any{"op": "fill", "path": "/tmp/big", "mb": 200})
	wantOK(t, res)
	if out["mb"].(float64) > 64 || !strings.Contains(out["err"].(string), "no space") {
		t.Fatalf("filling /tmp: %v, want it full at 64 MB", out)
	}
	// Another environment, even of the same function, starts with an
	// empty /tmp, and nothing of it is on the host.
	m.Retire(keyOf(spec).fn())
	out, res = spyCall(t, m, spec, map[string]any{"op": "list", "path": "/tmp"})
	wantOK(t, res)
	if out["names"] != nil {
		t.Fatalf("a new environment's /tmp holds %v", out["names"])
	}
	// /tmp is disk, not memory, as on AWS: a 128 MB function writes
	// 300 MB of its default 512 MB there.
	small := goSpec("disk-tmp")
	small.MemoryMB = 128
	out, res = spyCall(t, m, small, map[string]any{"op": "fill", "path": "/tmp/big", "mb": 300})
	wantOK(t, res)
	if out["mb"] != float64(300) || out["err"] != "" {
		t.Fatalf("a 128 MB function writing 300 MB to /tmp: %v (Max Memory Used %d MB)", out, res.MaxMemoryUsedMB)
	}
}

// markerProcs counts the live processes on the host whose command line
// holds marker.
func markerProcs(marker string) int {
	paths, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	n := 0
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), marker) {
			if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p))); err == nil && alive(pid) {
				n++
			}
		}
	}
	return n
}

func TestSandboxNoChildOutlivesItsEnvironment(t *testing.T) {
	m := boxManager(t, Config{})
	marker := "spy-marker-" + strconv.Itoa(os.Getpid())
	// A timeout ends the environment and every process in it.
	spec := goSpec("leaver")
	spec.Timeout = 300 * time.Millisecond
	_, res := spyCall(t, m, spec, map[string]any{"op": "detach", "marker": marker + "-timeout", "ms": 5000})
	if res.FunctionError == "" {
		t.Fatalf("want a timeout: %s", res.Payload)
	}
	eventually(t, "the timed-out environment's child to die", func() bool { return markerProcs(marker+"-timeout") == 0 })

	// Children left by invocations are frozen with their idle
	// environment, and die with it at shutdown.
	spec = goSpec("leaver2")
	for i := range 3 {
		_, res := spyCall(t, m, spec, map[string]any{"op": "detach", "marker": fmt.Sprintf("%s-idle-%d", marker, i)})
		wantOK(t, res)
	}
	if n := markerProcs(marker + "-idle"); n != 3 {
		t.Fatalf("%d children, want the 3 the one environment started", n)
	}
	time.Sleep(2 * freezeAfter) // idle long enough to be frozen
	spinning := func() bool {
		for _, p := range markerPids(marker + "-idle") {
			a := cpuTicks(p)
			time.Sleep(200 * time.Millisecond)
			if cpuTicks(p) != a {
				return true
			}
		}
		return false
	}
	if spinning() {
		t.Error("an idle environment's child ran: it is not frozen")
	}
	m.Close()
	if n := markerProcs(marker); n != 0 {
		t.Fatalf("%d children outlived the shutdown", n)
	}
}

// markerPids lists the host pids whose command line holds marker.
func markerPids(marker string) []int {
	paths, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	var out []int
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), marker) {
			if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p))); err == nil {
				out = append(out, pid)
			}
		}
	}
	return out
}

// cpuTicks is a process's user+system time from /proc/<pid>/stat.
func cpuTicks(pid int) string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		f := strings.Fields(s[i+1:])
		if len(f) > 13 {
			return f[11] + "+" + f[12]
		}
	}
	return ""
}

// boxedServer is the test binary run as a server by
// TestSandboxDiesWithTheServer: it leaves a child in a sandboxed
// environment, says so, and waits to be killed.
func boxedServer(marker string) int {
	h, err := sandbox.NewHost(sandbox.HostConfig{Level: sandbox.Full, Network: sandbox.Network(os.Getenv("LAMBDAD_TEST_BOXED_NETWORK")), Spares: 1})
	if err != nil {
		fmt.Println(err)
		return 1
	}
	m, err := NewManager(Config{Sandbox: h, TempRoot: os.Getenv("LAMBDAD_TEST_ROOT")})
	if err != nil {
		fmt.Println(err)
		return 1
	}
	spec := goSpec("boxed")
	spec.CodeDir = os.Getenv("LAMBDAD_TEST_CODE")
	for _, ev := range []string{`{"op":"detach","marker":"` + marker + `"}`, `{"op":"sleep","ms":60000}`} {
		go m.Invoke(context.Background(), spec, newRequest(ev))
	}
	// Ready once the child runs and its environment is idle (frozen).
	for markerProcs(marker) == 0 || m.Stats().Idle == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(2 * freezeAfter)
	fmt.Println("ready")
	select {}
}

// startBoxedServer starts this test binary as a server with sandboxed
// environments (LAMBDAD_TEST_BOXED_SERVER, with extra settings in env)
// and returns once it says it is ready; the caller waits for it.
func startBoxedServer(t *testing.T, marker string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "LAMBDAD_TEST_BOXED_SERVER="+marker, "LAMBDAD_TEST_CODE="+goCodeDir, "LAMBDAD_TEST_ROOT="+t.TempDir())
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	if line != "ready\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("the server said %q", line)
	}
	return cmd
}

func TestSandboxDiesWithTheServer(t *testing.T) {
	if missing := sandbox.Check(sandbox.Full); len(missing) > 0 {
		requireE2E(t, sandbox.Report(sandbox.Full, missing))
	}
	marker := "spy-orphan-" + strconv.Itoa(os.Getpid())
	cmd := startBoxedServer(t, marker)
	defer cmd.Wait()
	// One environment frozen with a child, one running an invocation.
	if n := markerProcs(marker); n != 1 {
		t.Fatalf("%d marked processes, want 1", n)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	eventually(t, "every process of the killed server's environments to die", func() bool { return markerProcs(marker) == 0 })
	eventually(t, "the killed server's cgroups to be removed", func() bool {
		dirs, _ := filepath.Glob("/sys/fs/cgroup/*/lambdad-" + strconv.Itoa(cmd.Process.Pid) + "-*")
		deeper, _ := filepath.Glob("/sys/fs/cgroup/*/*/*/lambdad-" + strconv.Itoa(cmd.Process.Pid) + "-*")
		return len(dirs)+len(deeper) == 0
	})
}
