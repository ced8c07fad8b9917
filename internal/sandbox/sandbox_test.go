package sandbox

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// requireFull skips, or fails under LAMBDAD_REQUIRE_E2E=1, where this
// machine cannot give every guarantee.
func requireFull(t testing.TB) {
	t.Helper()
	if m := Check(Full); len(m) > 0 {
		if os.Getenv("LAMBDAD_REQUIRE_E2E") == "1" {
			t.Fatal(Report(Full, m))
		}
		t.Skip(Report(Full, m))
	}
}

// run starts sh -c script in an environment and returns its output and
// how it ended.
func run(t *testing.T, h *Host, script string, binds ...Bind) (string, error) {
	t.Helper()
	_, out, err := start(t, h, script, binds...)
	return out, err
}

// start is run, also returning the environment, waited for and
// released.
func start(t *testing.T, h *Host, script string, binds ...Bind) (*Env, string, error) {
	t.Helper()
	return boot(t, h, &Spec{Argv: []string{"/bin/sh", "-c", script}, Binds: binds, MemoryMB: 128, TmpMB: 32}, nil)
}

// boot starts spec in an environment, with a code directory of its own at
// TaskRoot (holding a file "handler"), /usr/bin and /bin on PATH and a
// pipe for its output, and returns the environment (waited for and
// released, its listeners closed), its output and how it ended. inspect,
// if not nil, sees the environment once it has ended, before its release.
func boot(t *testing.T, h *Host, spec *Spec, inspect func(*Env)) (*Env, string, error) {
	t.Helper()
	code := t.TempDir()
	os.Chmod(code, 0o755)
	os.WriteFile(code+"/handler", []byte("code"), 0o644)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	spec.Env = append(spec.Env, "PATH=/usr/bin:/bin")
	spec.Dir = TaskRoot
	spec.Binds = append([]Bind{{Source: code, Target: TaskRoot}}, spec.Binds...)
	spec.Output = w
	e, err := h.Start(spec)
	w.Close()
	if err != nil {
		r.Close()
		t.Fatal(err)
	}
	out, _ := io.ReadAll(r)
	r.Close()
	_, werr := e.Wait()
	if inspect != nil {
		inspect(e)
	}
	e.Release()
	e.Listener().Close()
	e.APIListener().Close()
	return e, string(out), werr
}

func TestInitBuildsTheEnvironment(t *testing.T) {
	requireFull(t)
	h, err := NewHost(HostConfig{Level: Full})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	out, err := run(t, h, `id -u; id -g; id -G; cat /var/task/handler; echo; hostname; cat /proc/self/status | grep -e ^NoNewPrivs -e ^Seccomp: -e ^CapEff;
df -k /tmp | tail -1; ls /proc | grep -c '^[0-9]'; touch /var/task/x 2>&1; echo > /x 2>&1; cat /proc/1/environ 2>&1; true`)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{"993\n990\n990\n", "code\nlambda\n", "NoNewPrivs:\t1", "Seccomp:\t2", "CapEff:\t0000000000000000",
		" 32768 ", "Read-only file system", "Permission denied"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// The runtime's exit is reported as exec words it.
	if _, err := run(t, h, "exit 3"); err == nil || err.Error() != "exit status 3" {
		t.Errorf("exit 3: %v", err)
	}
	if _, err := run(t, h, "kill -9 $$"); err == nil || err.Error() != "signal: killed" {
		t.Errorf("kill -9: %v", err)
	}
}

func TestParseLevel(t *testing.T) {
	for in, want := range map[string]Level{"full": Full, "on": Full, "no-cgroup": NoCgroup, "off": Off, "false": Off} {
		if got, err := ParseLevel(in); err != nil || got != want {
			t.Errorf("ParseLevel(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseLevel("partial"); err == nil {
		t.Error("ParseLevel(partial) accepted")
	}
}

func TestReportNamesWhatIsMissing(t *testing.T) {
	r := Report(Full, []Missing{{GuaranteeMemory, "no cgroup"}})
	for _, want := range []string{"--sandbox=full", GuaranteeMemory.String(), "no cgroup", "--sandbox=no-cgroup", "--sandbox=off"} {
		if !strings.Contains(r, want) {
			t.Errorf("report lacks %q:\n%s", want, r)
		}
	}
	// no-cgroup would not help: it is not offered.
	r = Report(Full, []Missing{{GuaranteeUID, "not root"}, {GuaranteeMemory, "no cgroup"}})
	if strings.Contains(r, "--sandbox=no-cgroup") || !strings.Contains(r, "--sandbox=off") {
		t.Errorf("report:\n%s", r)
	}
}

// At NoCgroup everything but the cgroup holds.
func TestNoCgroupLevel(t *testing.T) {
	requireFull(t)
	h, err := NewHost(HostConfig{Level: NoCgroup})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	out, err := run(t, h, `id -u; grep ^Seccomp: /proc/self/status; cat /proc/self/cgroup | head -1`)
	if err != nil || !strings.Contains(out, "993\n") || !strings.Contains(out, "Seccomp:\t2") {
		t.Fatalf("%v\n%s", err, out)
	}
}

// A Host's directories that a dead server left (its reaper killed with
// it) are removed by the next Host.
func TestStaleCgroupsRemoved(t *testing.T) {
	requireFull(t)
	_, own, err := ownCgroups()
	if err != nil {
		t.Fatal(err)
	}
	// A pid that runs no process: a child that has been reaped.
	dead := exec.Command("/bin/true")
	dead.Run()
	name := fmt.Sprintf("lambdad-%d-deadbeef", dead.Process.Pid)
	for _, d := range own {
		if err := os.MkdirAll(filepath.Join(d, name, "env-x"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	h, err := NewHost(HostConfig{Level: Full})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	for _, d := range own {
		if _, err := os.Stat(filepath.Join(d, name)); err == nil {
			t.Errorf("%s is still there", filepath.Join(d, name))
		}
	}
}

// openFds counts this process's open descriptors.
func openFds(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// An environment, once waited for and released, leaves no descriptor of
// the server's open: neither the bind sources and cgroup files sent to the
// init, nor the copy of its output.
func TestStartLeavesNoDescriptors(t *testing.T) {
	requireFull(t)
	h, err := NewHost(HostConfig{Level: Full})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	runClosing := func() {
		t.Helper()
		_, out, err := start(t, h, "echo hi")
		if err != nil || out != "hi\n" {
			t.Fatalf("%v\n%s", err, out)
		}
	}
	runClosing() // the runtime's own descriptors (epoll, its pipes) are made once
	before := openFds(t)
	for range 3 {
		runClosing()
	}
	if after := openFds(t); after > before {
		t.Errorf("%d descriptors open before three environments, %d after", before, after)
	}
}
