// This file is the reaper: a process of its own, started with the Host,
// that outlives the server. When the server's end of its pipe closes (the
// Host closed, or the server died, even by kill -9), it kills whatever is
// left in the Host's cgroups, thaws them (on cgroup v1 a frozen process
// dies only once thawed, so the init's parent-death signal alone would
// leave frozen environments behind), and removes the directories.

package sandbox

import (
	"io"
	"os"
	"os/exec"
	"syscall"
)

// startReaper starts the reaper on the Host's cgroup directories.
func (h *Host) startReaper() error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	args := []string{reaperArg0}
	if h.cg.v2 {
		args = append(args, "v2")
	} else {
		args = append(args, "v1")
	}
	args = append(args, h.cg.dirs...)
	cmd := &exec.Cmd{
		Path:       "/proc/self/exe",
		Args:       args,
		Env:        []string{},
		ExtraFiles: []*os.File{r},
		// Its own session: a signal to the server's process group does
		// not reach it.
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	if err := cmd.Start(); err != nil {
		w.Close()
		return err
	}
	h.reaper, h.reaperW = cmd, w
	return nil
}

// reaperMain waits for the server to go, then cleans up.
func reaperMain() int {
	if len(os.Args) < 3 {
		return 2
	}
	v2 := os.Args[1] == "v2"
	dirs := os.Args[2:]
	// Nothing ever arrives: the read returns when the server's end closes.
	io.Copy(io.Discard, os.NewFile(3, "server"))
	// Each environment's cgroup is a directory of the same name in every
	// hierarchy.
	(&cgroupRoot{v2: v2, dirs: dirs}).removeAll()
	return 0
}
