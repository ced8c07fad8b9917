// This file is the cgroups of the environments: one directory per
// environment (per controller on cgroup v1, one on v2) under a directory of
// the Host's own, beneath the server's cgroup. It sets the limits, freezes
// and thaws, reads the peak memory, kills what is left and removes the
// directories.

package sandbox

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// v1Controllers are the cgroup v1 hierarchies an environment joins.
var v1Controllers = []string{"memory", "pids", "cpu", "freezer"}

// cgroupRoot is the Host's directory in each hierarchy.
type cgroupRoot struct {
	v2   bool
	dirs []string // v1: one per v1Controllers entry; v2: one
}

// cgroup is one environment's cgroup.
type cgroup struct {
	v2   bool
	dirs []string // as cgroupRoot.dirs
}

// PidsMax is the limit on processes and threads of one environment (AWS's
// limit is 1,024).
const PidsMax = 1024

// ownCgroups reads where this process sits in each hierarchy, from
// /proc/self/cgroup, and where each hierarchy is mounted, from
// /proc/self/mountinfo: the v1 directories of v1Controllers if all are
// there, else the v2 directory.
func ownCgroups() (v2 bool, dirs []string, err error) {
	paths := map[string]string{} // controller ("" for v2) → path in its hierarchy
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return false, nil, err
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "" {
			paths[""] = parts[2]
		}
		for _, c := range strings.Split(parts[1], ",") {
			paths[c] = parts[2]
		}
	}
	f.Close()
	mounts := map[string]string{} // controller ("" for v2) → mount point
	f, err = os.Open("/proc/self/mountinfo")
	if err != nil {
		return false, nil, err
	}
	sc = bufio.NewScanner(f)
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		fields, after := strings.Fields(pre), strings.Fields(post)
		if len(fields) < 5 || len(after) < 3 {
			continue
		}
		switch after[0] {
		case "cgroup2":
			if _, seen := mounts[""]; !seen {
				mounts[""] = fields[4]
			}
		case "cgroup":
			for _, o := range strings.Split(after[2], ",") {
				mounts[o] = fields[4]
			}
		}
	}
	f.Close()
	for _, c := range v1Controllers {
		m, ok := mounts[c]
		p, ok2 := paths[c]
		if !ok || !ok2 {
			dirs = nil
			break
		}
		dirs = append(dirs, filepath.Join(m, p))
	}
	if dirs != nil {
		return false, dirs, nil
	}
	m, ok := mounts[""]
	if !ok {
		return false, nil, errors.New("no cgroup v1 hierarchies for memory, pids, cpu and freezer, and no cgroup v2")
	}
	ctrl, err := os.ReadFile(filepath.Join(m, paths[""], "cgroup.controllers"))
	if err != nil {
		return true, nil, err
	}
	for _, c := range []string{"memory", "pids", "cpu"} {
		if !strings.Contains(" "+strings.TrimSpace(string(ctrl))+" ", " "+c+" ") {
			return true, nil, fmt.Errorf("cgroup v2 at %s does not delegate the %s controller", filepath.Join(m, paths[""]), c)
		}
	}
	return true, []string{filepath.Join(m, paths[""])}, nil
}

// newCgroupRoot makes the Host's directories, named name, beneath the
// server's cgroups.
func newCgroupRoot(name string) (*cgroupRoot, error) {
	v2, own, err := ownCgroups()
	if err != nil {
		return nil, err
	}
	removeStale(v2, own)
	r := &cgroupRoot{v2: v2}
	for _, d := range own {
		dir := filepath.Join(d, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			r.remove()
			return nil, fmt.Errorf("creating a cgroup: %w", err)
		}
		r.dirs = append(r.dirs, dir)
	}
	if v2 {
		// The controllers must be enabled for the Host's children. The
		// server's own cgroup must let them through: on v2 that needs a
		// cgroup the server does not sit in itself (delegation).
		if err := writeFile(filepath.Join(own[0], "cgroup.subtree_control"), "+memory +pids +cpu"); err != nil {
			r.remove()
			return nil, fmt.Errorf("enabling memory, pids and cpu below %s (is the server's cgroup delegated, with the server in a leaf?): %w", own[0], err)
		}
		if err := writeFile(filepath.Join(r.dirs[0], "cgroup.subtree_control"), "+memory +pids +cpu"); err != nil {
			r.remove()
			return nil, fmt.Errorf("enabling memory, pids and cpu in %s: %w", r.dirs[0], err)
		}
	}
	return r, nil
}

// removeStale removes what servers that are gone left under own: Host
// directories (lambdad-<pid>-<hex>) whose server no longer runs, which a
// reaper killed along with its server would leave. What still runs in them
// is killed first.
func removeStale(v2 bool, own []string) {
	ents, err := os.ReadDir(own[0])
	if err != nil {
		return
	}
	for _, ent := range ents {
		rest, ok := strings.CutPrefix(ent.Name(), "lambdad-")
		pidText, _, ok2 := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if !ent.IsDir() || !ok || !ok2 || err != nil || pid == os.Getpid() {
			continue
		}
		if unix.Kill(pid, 0) == nil {
			continue // its server still runs (it may be another's)
		}
		r := &cgroupRoot{v2: v2}
		for _, d := range own {
			r.dirs = append(r.dirs, filepath.Join(d, ent.Name()))
		}
		r.removeAll()
	}
}

// removeAll kills what is left in every environment's cgroup, removes
// them, then the Host's directories.
func (r *cgroupRoot) removeAll() {
	ents, _ := os.ReadDir(r.dirs[0])
	for _, ent := range ents {
		if !ent.IsDir() {
			continue
		}
		c := &cgroup{v2: r.v2}
		for _, d := range r.dirs {
			c.dirs = append(c.dirs, filepath.Join(d, ent.Name()))
		}
		c.killAll(5 * time.Second)
		c.remove()
	}
	r.remove()
}

// remove removes the Host's directories (they must be empty).
func (r *cgroupRoot) remove() {
	for _, d := range r.dirs {
		rmdirRetry(d)
	}
}

// newCgroup makes an environment's cgroup, with the PidsMax limit; limit
// sets the rest once the function is known.
func (r *cgroupRoot) newCgroup(id string) (*cgroup, error) {
	c := &cgroup{v2: r.v2}
	for _, d := range r.dirs {
		dir := filepath.Join(d, id)
		if err := os.Mkdir(dir, 0o755); err != nil {
			c.remove()
			return nil, fmt.Errorf("creating a cgroup: %w", err)
		}
		c.dirs = append(c.dirs, dir)
	}
	pids := filepath.Join(c.dirs[0], "pids.max")
	if !r.v2 {
		pids = filepath.Join(c.dirs[1], "pids.max")
	}
	if err := writeFile(pids, strconv.Itoa(PidsMax)); err != nil {
		c.remove()
		return nil, err
	}
	return c, nil
}

// limit sets the memory of the whole tree (no swap) and the CPU weight, in
// proportion to memory, one vCPU's worth at 1,769 MB as on AWS. A new
// cgroup has no memory limit, so each is only ever lowered from none: on
// v1 the memory limit goes first, then memory plus swap, which may never
// be below it.
func (c *cgroup) limit(memoryMB int) error {
	mem := strconv.FormatInt(int64(memoryMB)<<20, 10)
	var set [][2]string
	if c.v2 {
		// cpu.weight: 100 is the default share; 1,769 MB is one vCPU.
		w := min(max(memoryMB*100/1769, 1), 10000)
		set = [][2]string{
			{"memory.max", mem}, {"memory.swap.max", "0"}, {"cpu.weight", strconv.Itoa(w)},
		}
		for i := range set {
			set[i][0] = filepath.Join(c.dirs[0], set[i][0])
		}
	} else {
		shares := max(memoryMB*1024/1769, 2)
		set = [][2]string{
			{filepath.Join(c.dirs[0], "memory.limit_in_bytes"), mem},
			{filepath.Join(c.dirs[2], "cpu.shares"), strconv.Itoa(shares)},
		}
		// Without swap accounting the file is absent; with it, the limit
		// of memory plus swap must equal the memory limit.
		if sw := filepath.Join(c.dirs[0], "memory.memsw.limit_in_bytes"); exists(sw) {
			set = append(set, [2]string{sw, mem})
		}
	}
	for _, kv := range set {
		if strings.HasSuffix(kv[0], "memory.swap.max") && !exists(kv[0]) {
			continue // no swap on this kernel
		}
		if err := writeFile(kv[0], kv[1]); err != nil {
			return err
		}
	}
	return nil
}

// fd opens the v2 directory for clone3's CLONE_INTO_CGROUP; -1 on v1.
func (c *cgroup) fd() (int, error) {
	if !c.v2 {
		return -1, nil
	}
	return unix.Open(c.dirs[0], unix.O_DIRECTORY|unix.O_PATH|unix.O_CLOEXEC, 0)
}

func (c *cgroup) freezerFile() (string, string, string) {
	if c.v2 {
		return filepath.Join(c.dirs[0], "cgroup.freeze"), "1", "0"
	}
	return filepath.Join(c.dirs[3], "freezer.state"), "FROZEN", "THAWED"
}

// freeze stops every process of the environment where it stands. It does
// not wait for the freezing to complete: nothing depends on that moment.
func (c *cgroup) freeze() error {
	f, frozen, _ := c.freezerFile()
	return writeFile(f, frozen)
}

// thaw lets the environment run again.
func (c *cgroup) thaw() error {
	f, _, thawed := c.freezerFile()
	return writeFile(f, thawed)
}

// peakBytes is the highest memory use of the environment's processes.
func (c *cgroup) peakBytes() int64 {
	f := filepath.Join(c.dirs[0], "memory.max_usage_in_bytes")
	if c.v2 {
		f = filepath.Join(c.dirs[0], "memory.peak")
	}
	b, err := os.ReadFile(f)
	if err != nil && c.v2 {
		// Before Linux 5.19 v2 has no peak: the usage now is the best
		// lower bound there is.
		b, err = os.ReadFile(filepath.Join(c.dirs[0], "memory.current"))
	}
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return n
}

// killAll kills every process left in the cgroup and thaws it, so that the
// kill takes effect (a frozen process on cgroup v1 dies only once thawed),
// then waits up to wait for the cgroup to empty.
func (c *cgroup) killAll(wait time.Duration) {
	// cgroup.kill (Linux 5.14) kills everything at once, leaving no
	// window for a fork; elsewhere each listed process is killed.
	if !c.v2 || writeFile(filepath.Join(c.dirs[0], "cgroup.kill"), "1") != nil {
		for _, pid := range c.procs() {
			unix.Kill(pid, unix.SIGKILL)
		}
	}
	c.thaw()
	deadline := time.Now().Add(wait)
	for len(c.procs()) > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
}

// procs lists the processes in the cgroup.
func (c *cgroup) procs() []int {
	b, err := os.ReadFile(filepath.Join(c.dirs[0], "cgroup.procs"))
	if err != nil {
		return nil
	}
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(f); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// remove removes the cgroup's directories; the processes must be gone.
func (c *cgroup) remove() {
	for _, d := range c.dirs {
		rmdirRetry(d)
	}
}

// rmdirRetry removes an empty cgroup directory. The kernel may still be
// tearing down the last exited process for a moment (EBUSY).
func rmdirRetry(d string) {
	for i := 0; i < 100; i++ {
		err := unix.Rmdir(d)
		if err == nil || errors.Is(err, unix.ENOENT) || !errors.Is(err, unix.EBUSY) {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func writeFile(name, value string) error {
	f, err := os.OpenFile(name, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %s to %s: %w", value, name, err)
	}
	return nil
}

func exists(name string) bool {
	_, err := os.Stat(name)
	return err == nil
}

// probeCgroups makes and removes a Host directory and an environment's
// cgroup, and reports what failed.
func probeCgroups() []Missing {
	all := []Guarantee{GuaranteeMemory, GuaranteePids, GuaranteeCPU, GuaranteeFreezer}
	fail := func(err error) []Missing {
		var out []Missing
		for _, g := range all {
			out = append(out, Missing{g, err.Error()})
		}
		return out
	}
	r, err := newCgroupRoot(fmt.Sprintf("lambdad-probe-%d", os.Getpid()))
	if err != nil {
		return fail(err)
	}
	defer r.remove()
	c, err := r.newCgroup("probe")
	if err != nil {
		return fail(err)
	}
	defer c.remove()
	if err := c.limit(128); err != nil {
		return fail(err)
	}
	if err := c.freeze(); err != nil {
		return []Missing{{GuaranteeFreezer, err.Error()}}
	}
	if err := c.thaw(); err != nil {
		return []Missing{{GuaranteeFreezer, err.Error()}}
	}
	return nil
}
