package sandbox

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// peekSpare waits until the Host has a spare ready and returns it, leaving
// it in place.
func peekSpare(t *testing.T, h *Host) *Env {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		select {
		case e := <-h.spares:
			h.spares <- e
			return e
		default:
		}
	}
	t.Fatal("no spare environment was started")
	return nil
}

// niceOf is a process's nice value, from /proc/<pid>/stat.
func niceOf(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	// The command may hold spaces; the fields after its ")" do not.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return f[16] // field 19 of stat, the 17th after the command
}

func processExists(pid int) bool {
	_, err := os.Stat("/proc/" + strconv.Itoa(pid))
	return err == nil
}

// A cold start takes the spare the Host started ahead, runs its function
// in the spare's namespaces and cgroups (every hierarchy, the function's
// log as its output), and another spare takes its place; a spare that
// died while it waited is replaced by one started on demand; Close leaves
// no spare, no pasta and no cgroup behind.
func TestSpares(t *testing.T) {
	requireFull(t)
	network := NetworkNone
	if len(CheckNetwork(Full, NetworkPasta)) == 0 {
		network = NetworkPasta
	}
	h, err := NewHost(HostConfig{Level: Full, Network: network, Spares: 1})
	if err != nil {
		t.Fatal(err)
	}
	hostDirs := h.cg.dirs
	closed := false
	defer func() {
		if !closed {
			h.Close()
		}
	}()
	// The function's memory limit, read before the cgroup goes.
	var limit string
	inspect := func(e *Env) {
		f := "memory.limit_in_bytes"
		if h.cg.v2 {
			f = "memory.max"
		}
		b, _ := os.ReadFile(filepath.Join(e.cg.dirs[0], f))
		limit = strings.TrimSpace(string(b))
	}
	start := func() (*Env, string) {
		t.Helper()
		e, out, err := boot(t, h, &Spec{Argv: []string{"/bin/sh", "-c", "id -u; cut -d' ' -f19 /proc/self/stat; cat /proc/self/cgroup"},
			MemoryMB: 256, TmpMB: 32}, inspect)
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		return e, out
	}

	spare := peekSpare(t, h)
	if network == NetworkPasta && !processExists(spare.NetPid()) {
		t.Fatalf("the spare's pasta %d is not running", spare.NetPid())
	}
	// Started as background work.
	for _, p := range []int{spare.Pid(), spare.NetPid()} {
		if p != 0 {
			if n := niceOf(t, p); n != "19" {
				t.Errorf("the spare's process %d runs at nice %s, want 19", p, n)
			}
		}
	}
	e, out := start()
	if e.Pid() != spare.Pid() {
		t.Errorf("the cold start ran in init %d, not in the spare %d", e.Pid(), spare.Pid())
	}
	// The function's own uid, and the normal priority (the spare was
	// started at nice 19).
	if !strings.HasPrefix(out, "993\n0\n") {
		t.Errorf("output:\n%s", out)
	}
	// In the environment's own cgroup in every hierarchy, with the limit
	// of its function.
	own := "/" + filepath.Base(e.cg.dirs[0])
	for _, c := range []string{"memory", "pids", "cpu", "freezer"} {
		if h.cg.v2 {
			break
		}
		found := false
		for _, line := range strings.Split(out, "\n") {
			parts := strings.SplitN(line, ":", 3)
			if len(parts) == 3 && strings.Contains(","+parts[1]+",", ","+c+",") {
				found = true
				if !strings.HasSuffix(parts[2], own) {
					t.Errorf("the function is in the %s cgroup %s, not its environment's (%s)", c, parts[2], own)
				}
			}
		}
		if !found {
			t.Errorf("no %s line in:\n%s", c, out)
		}
	}
	if limit != strconv.Itoa(256<<20) {
		t.Errorf("the memory limit is %q, want 256 MiB", limit)
	}

	// The next spare, killed from outside while it waits: the cold start
	// still succeeds, in an environment started for it.
	next := peekSpare(t, h)
	if next.Pid() == spare.Pid() {
		t.Fatal("the spare taken was not replaced")
	}
	syscall.Kill(next.Pid(), syscall.SIGKILL)
	e, out = start()
	if e.Pid() == next.Pid() || !strings.HasPrefix(out, "993\n0\n") {
		t.Errorf("after the spare died: init %d, output:\n%s", e.Pid(), out)
	}
	for _, d := range next.cg.dirs {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("the dead spare's cgroup %s is still there", d)
		}
	}

	last := peekSpare(t, h)
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	closed = true
	for _, p := range []int{last.Pid(), last.NetPid()} {
		if p != 0 && processExists(p) {
			t.Errorf("the spare's process %d outlived Close", p)
		}
	}
	for _, d := range hostDirs {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("the Host's cgroup %s is still there after Close", d)
		}
	}
}

// loopsOf lists the loop devices whose backing file is in dir.
func loopsOf(dir string) []string {
	var out []string
	devs, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	for _, d := range devs {
		if b, err := os.ReadFile(d); err == nil && strings.HasPrefix(string(b), dir+"/") {
			out = append(out, d)
		}
	}
	return out
}

// With a scratch directory /tmp is a filesystem on disk of the
// environment's own, of its EphemeralStorage size, apart from its memory
// as on AWS: a 128 MB function writes 300 MB there, and is refused (no
// space) past its size, not killed; a function with more than the
// default 512 MB has it (in an environment started for it, not the
// spare); nothing is left mounted, attached or on disk once the
// environments are gone.
func TestDiskTmp(t *testing.T) {
	requireFull(t)
	dir := t.TempDir()
	h, err := NewHost(HostConfig{Level: Full, ScratchDir: dir, Spares: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !h.DiskTmp() {
		h.Close()
		if os.Getenv("LAMBDAD_REQUIRE_E2E") == "1" {
			t.Fatal("this machine cannot make /tmp filesystems on disk (see the log)")
		}
		t.Skip("this machine cannot make /tmp filesystems on disk (loop devices and mkfs.ext4)")
	}
	defer h.Close()
	script := func(mb int) (string, error) {
		_, out, err := boot(t, h, &Spec{Argv: []string{"/bin/sh", "-c", `df -k /tmp | tail -1
dd if=/dev/zero of=/tmp/a bs=1M count=300 2>/dev/null && echo wrote 300
dd if=/dev/zero of=/tmp/b bs=1M count=` + strconv.Itoa(mb) + ` 2>&1 | grep -o 'No space left on device' | head -1
echo done`}, MemoryMB: 128, TmpMB: mb}, nil)
		return out, err
	}
	for _, mb := range []int{DefaultTmpMB, 1024} {
		peekSpare(t, h)
		out, err := script(mb)
		if err != nil {
			t.Fatalf("%d MB: %v\n%s", mb, err, out)
		}
		f := strings.Fields(out)
		size, _ := strconv.Atoi(f[1])
		if size < mb*1024*98/100 || size > mb*1024*102/100 {
			t.Errorf("/tmp of %d MB has %d KiB:\n%s", mb, size, out)
		}
		for _, want := range []string{"wrote 300\n", "No space left on device\ndone\n"} {
			if !strings.Contains(out, want) {
				t.Errorf("%d MB: output lacks %q:\n%s", mb, want, out)
			}
		}
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(loopsOf(dir)) > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if l := loopsOf(dir); len(l) > 0 {
		t.Errorf("loop devices left attached: %v", l)
	}
	if ents, _ := os.ReadDir(dir); len(ents) > 0 {
		t.Errorf("left in the scratch directory: %v", ents)
	}
	if b, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(b), dir) {
		t.Errorf("still mounted under %s", dir)
	}
}
