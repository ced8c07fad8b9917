package execenv

// The attacks a function may try on the server and on other functions,
// each run in a sandboxed environment (package sandbox at level Full). On
// an unsandboxed Manager each of them succeeds.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/lambdad/lambdad/internal/sandbox"
)

// boxManager is a Manager whose environments are sandboxed at level Full;
// it skips (or fails under LAMBDAD_REQUIRE_E2E=1) where this machine
// cannot give every guarantee.
func boxManager(t *testing.T, cfg Config) *Manager {
	t.Helper()
	if missing := sandbox.Check(sandbox.Full); len(missing) > 0 {
		requireE2E(t, sandbox.Report(sandbox.Full, missing))
	}
	h, err := sandbox.NewHost(sandbox.HostConfig{Level: sandbox.Full, Logger: testLogger(t)})
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
