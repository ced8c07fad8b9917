// This file is the environment's init: the server's binary re-executed as
// pid 1 of the environment's namespaces. It builds the filesystem view,
// hands the server the Runtime API listener, drops privileges, starts the
// runtime and reaps processes until the runtime exits.

package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Names the binary is re-executed under; the package's init function
// recognises them before main runs, in every binary that links this
// package (the server and the test binaries alike).
const (
	initArg0   = "lambdad-sandbox-init"
	reaperArg0 = "lambdad-sandbox-reaper"
	probeArg0  = "lambdad-sandbox-probe"
)

// ctlFd is the init's end of its control socket; the bind sources follow.
const ctlFd = 3

// netReady is the server's word to the init that the environment's network
// is up.
const netReady = "net"

// Inside the sandbox.
const (
	// FunctionUID and FunctionGID are the function's ids inside its user
	// namespace: AWS's sbx_user1051.
	FunctionUID = 993
	FunctionGID = 990
	// RuntimeAPIAddr is where the Runtime API listens inside every
	// environment's network namespace.
	RuntimeAPIAddr = "127.0.0.1:9001"
	// LambdaAPIAddr is where, inside every environment with a network
	// namespace, the server's own API answers (AWS_ENDPOINT_URL_LAMBDA):
	// the host's loopback is not reachable from there, and the socket is
	// the environment's alone.
	LambdaAPIAddr = "127.0.0.1:9002"
	TaskRoot      = "/var/task"
	RuntimeRoot   = "/var/runtime"
)

func init() {
	switch os.Args[0] {
	case initArg0:
		// Privilege drops and mounts below are made on this thread;
		// the final state is copied to every thread (seccomp TSYNC).
		runtime.LockOSThread()
		os.Exit(initMain())
	case reaperArg0:
		os.Exit(reaperMain())
	case probeArg0:
		if len(os.Args) > 1 && os.Args[1] == "wait" {
			probeWait()
		}
		os.Exit(0)
	}
}

// The server configures the init in two messages, each JSON with the
// descriptors it names: prepConfig, what every environment has, as soon as
// the init runs (a spare environment is prepared ahead of need), then
// initConfig, its function's. The init answers "prepared" to the first,
// "ready" with the listening sockets to the second, or "error: ..." to
// either.

// prepConfig is what every environment has: the system's part of the
// filesystem view and the network.
type prepConfig struct {
	Binds    []bindSpec
	Links    [][2]string       // symlinks: target path in the sandbox, link text
	Files    map[string]string // small read-only files: path → content
	Hostname string
	Net      bool // a network namespace of its own: bring up lo, listen there
	// Outbound: the server attaches pasta to the namespace; link-local
	// addresses are made unreachable, and the runtime waits for the
	// server's word that the interface is up.
	Outbound bool
	// TmpMount is the descriptor (index, as bindSpec.Fd) of a mount of
	// no namespace (fsmount), a filesystem on disk of the environment's
	// own, that the init moves to /tmp; -1: /tmp is a tmpfs.
	TmpMount int
}

// initConfig is one function's part: what runs, its code and its limits.
type initConfig struct {
	Argv  []string
	Env   []string
	Dir   string
	Binds []bindSpec
	// Cgroups are the descriptors (indices, as bindSpec.Fd) of the
	// environment's cgroup v1 tasks files, which the init writes "0" to
	// first: it moves itself, and so everything it starts.
	Cgroups []int
	// Output is the descriptor (index, as bindSpec.Fd) of the function's
	// log, the runtime's stdout and stderr; -1 for none. The init is
	// started before its function is known, with /dev/null.
	Output   int
	Files    map[string]string // as prepConfig's, the function's own
	TmpBytes int64
	ShmBytes int64
	// NetUp: pasta has configured the interface already (a spare's is
	// ready before it is taken), so no word of the server's follows.
	NetUp bool
}

// maxFds bounds the descriptors one configuration carries (the kernel's
// limit for one message is 253).
const maxFds = 200

// bindSpec is a bind mount whose source the server opened (O_PATH) and
// passed with the configuration, the Fd'th descriptor: the init needs no
// permission on the source's path on the host, and sees nothing else of it.
type bindSpec struct {
	Fd       int
	Target   string
	File     bool // a single file, not a directory
	Writable bool
	Dev      bool // a device node: the mount must not be nodev
}

// initMain is the init's whole life; its result is its exit code.
func initMain() int {
	fail := func(step string, err error) int {
		msg := fmt.Sprintf("%s: %v", step, err)
		unix.Sendmsg(ctlFd, []byte("error: "+msg), nil, nil, 0)
		fmt.Fprintln(os.Stderr, "sandbox: "+msg)
		return 125
	}
	syscall.CloseOnExec(ctlFd)
	buf := make([]byte, 1<<20)
	oob := make([]byte, unix.CmsgSpace(4*maxFds))

	var prep prepConfig
	fds, err := receiveConfig(buf, oob, &prep)
	if err != nil {
		return fail("reading the configuration", err)
	}
	if err := takeBinds(prep.Binds, fds); err != nil {
		return fail("reading the configuration", err)
	}
	if prep.TmpMount >= len(fds) {
		return fail("reading the configuration", errors.New("a /tmp without its mount"))
	}
	if prep.TmpMount >= 0 {
		prep.TmpMount = fds[prep.TmpMount]
	}
	var lnFile, apiFile *os.File
	if prep.Net {
		if err := loopbackUp(); err != nil {
			return fail("bringing up lo", err)
		}
		if prep.Outbound {
			if err := blockRoutes(linkLocal); err != nil {
				return fail("making link-local addresses unreachable", err)
			}
		}
		ln, err := net.Listen("tcp", RuntimeAPIAddr)
		if err != nil {
			return fail("listening for the Runtime API", err)
		}
		if lnFile, err = ln.(*net.TCPListener).File(); err != nil {
			return fail("listening for the Runtime API", err)
		}
		ln.Close() // lnFile holds the socket
		api, err := net.Listen("tcp", LambdaAPIAddr)
		if err != nil {
			return fail("listening for the Lambda API", err)
		}
		if apiFile, err = api.(*net.TCPListener).File(); err != nil {
			return fail("listening for the Lambda API", err)
		}
		api.Close()
	}
	if err := prepareRoot(&prep); err != nil {
		return fail("building the filesystem view", err)
	}
	if err := unix.Sethostname([]byte(prep.Hostname)); err != nil {
		return fail("setting the hostname", err)
	}
	if err := unix.Sendmsg(ctlFd, []byte("prepared"), nil, nil, 0); err != nil {
		return fail("answering the server", err)
	}

	var cfg initConfig
	if fds, err = receiveConfig(buf, oob, &cfg); err != nil {
		return fail("reading the configuration", err)
	}
	if cfg.Output >= 0 {
		if cfg.Output >= len(fds) {
			return fail("reading the configuration", errors.New("an output without its file"))
		}
		for _, to := range []int{1, 2} {
			if err := unix.Dup3(fds[cfg.Output], to, 0); err != nil {
				return fail("taking the function's log", err)
			}
		}
		unix.Close(fds[cfg.Output])
	}
	// Into the environment's cgroups before anything else of the
	// function. Only this thread moves (the kernel's "0": the writer
	// itself); it is the one that starts the runtime (init locks it), so
	// the whole of the function is in them. The init's other threads
	// are the Go runtime's own, idle, and stay where they were.
	for _, i := range cfg.Cgroups {
		if i < 0 || i >= len(fds) {
			return fail("reading the configuration", errors.New("a cgroup without its file"))
		}
		if _, err := unix.Write(fds[i], []byte("0")); err != nil {
			return fail("joining the environment's cgroup", err)
		}
		unix.Close(fds[i])
	}
	if err := takeBinds(cfg.Binds, fds); err != nil {
		return fail("reading the configuration", err)
	}
	if prep.Outbound && cfg.NetUp {
		if err := blockRoutes([]route{dnsRoute(), gatewayRoute()}); err != nil {
			return fail("routing the name server and making the gateway unreachable", err)
		}
	}
	if err := finishRoot(&cfg, prep.TmpMount >= 0); err != nil {
		return fail("building the filesystem view", err)
	}
	var rights []byte
	if lnFile != nil {
		rights = unix.UnixRights(int(lnFile.Fd()), int(apiFile.Fd()))
	}
	if err := unix.Sendmsg(ctlFd, []byte("ready"), rights, nil, 0); err != nil {
		return fail("answering the server", err)
	}
	if lnFile != nil {
		lnFile.Close()
		apiFile.Close()
	}
	if prep.Outbound && !cfg.NetUp {
		// pasta configures the interface meanwhile; the server answers
		// once it has (or kills the environment).
		n, _, _, _, err := unix.Recvmsg(ctlFd, buf, nil, 0)
		for err == unix.EINTR {
			n, _, _, _, err = unix.Recvmsg(ctlFd, buf, nil, 0)
		}
		if err != nil || string(buf[:n]) != netReady {
			return fail("waiting for the network", fmt.Errorf("%q, %v", buf[:max(n, 0)], err))
		}
		if err := blockRoutes([]route{dnsRoute(), gatewayRoute()}); err != nil {
			return fail("routing the name server and making the gateway unreachable", err)
		}
	}
	if err := restrict(); err != nil {
		return fail("restricting the environment", err)
	}

	cmd := &exec.Cmd{
		Path:   cfg.Argv[0],
		Args:   cfg.Argv,
		Env:    cfg.Env,
		Dir:    cfg.Dir,
		Stdin:  nil,
		Stdout: os.Stdout,
		Stderr: os.Stderr,
		SysProcAttr: &syscall.SysProcAttr{
			// From uid 0 to 993: the kernel clears every capability.
			Credential: &syscall.Credential{Uid: FunctionUID, Gid: FunctionGID, Groups: []uint32{}},
			Setpgid:    true,
			Pdeathsig:  syscall.SIGKILL,
		},
	}
	if err := cmd.Start(); err != nil {
		// The runtime could not start: the server reports it as the
		// runtime's exit.
		fmt.Fprintf(os.Stderr, "%v\n", err)
		sendExit(fmt.Sprintf("exit:%d:%s", 127, err))
		return 127
	}
	main := cmd.Process.Pid
	// pid 1 reaps every orphan of the environment; the environment ends
	// with the runtime (the kernel then kills what is left of it).
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			sendExit("exit:125:wait: " + err.Error())
			return 125
		}
		if pid != main {
			continue
		}
		switch {
		case ws.Exited():
			sendExit("exit:" + strconv.Itoa(ws.ExitStatus()))
			return ws.ExitStatus()
		case ws.Signaled():
			sendExit("signal:" + strconv.Itoa(int(ws.Signal())))
			return 128 + int(ws.Signal())
		}
	}
}

func sendExit(msg string) { unix.Sendmsg(ctlFd, []byte(msg), nil, nil, 0) }

// receiveConfig reads one message of the server into v and returns the
// descriptors it carried.
func receiveConfig(buf, oob []byte, v any) ([]int, error) {
	n, oobn, _, _, err := unix.Recvmsg(ctlFd, buf, oob, unix.MSG_CMSG_CLOEXEC)
	for err == unix.EINTR {
		n, oobn, _, _, err = unix.Recvmsg(ctlFd, buf, oob, unix.MSG_CMSG_CLOEXEC)
	}
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, errors.New("the server closed the control socket")
	}
	var fds []int
	if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil && len(msgs) == 1 {
		fds, _ = unix.ParseUnixRights(&msgs[0])
	}
	if err := json.Unmarshal(buf[:n], v); err != nil {
		return fds, fmt.Errorf("decoding: %w", err)
	}
	return fds, nil
}

// takeBinds turns the binds' indices into the descriptors received.
func takeBinds(binds []bindSpec, fds []int) error {
	for i := range binds {
		if binds[i].Fd < 0 || binds[i].Fd >= len(fds) {
			return errors.New("a bind mount without its source")
		}
		binds[i].Fd = fds[binds[i].Fd]
	}
	return nil
}

// loopbackUp brings up lo, the only interface of a new network namespace.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	ifr.SetUint16(unix.IFF_UP | unix.IFF_LOOPBACK | unix.IFF_RUNNING)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

// newRoot is where the init mounts the environment's root before pivoting
// into it. The mount is private to the init's mount namespace, but it
// hides what is beneath it from the server too, which opens the
// function's bind sources through the init's root after the root is
// mounted (a spare is prepared before its function is known): so it is a
// directory that holds no code, layer or runtime, and exists everywhere.
const newRoot = "/sys"

// at is where path p of the environment is before the pivot.
func at(p string) string { return filepath.Join(newRoot, p) }

// prepareRoot mounts the part of the environment's filesystem that is
// every environment's: a fresh root with the system's directories and
// files, and its own /proc.
func prepareRoot(prep *prepConfig) error {
	// Nothing mounted here propagates back to the host.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making / private: %w", err)
	}
	if err := unix.Mount("tmpfs", newRoot, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755,size=1m"); err != nil {
		return fmt.Errorf("mounting the root: %w", err)
	}
	if err := bindAll(prep.Binds); err != nil {
		return err
	}
	if prep.TmpMount >= 0 {
		if err := os.MkdirAll(at("/tmp"), 0o755); err != nil {
			return err
		}
		if err := unix.MoveMount(prep.TmpMount, "", unix.AT_FDCWD, at("/tmp"), unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
			return fmt.Errorf("moving /tmp's filesystem in: %w", err)
		}
		unix.Close(prep.TmpMount)
	}
	for _, l := range prep.Links {
		t := at(l[0])
		if err := os.MkdirAll(filepath.Dir(t), 0o755); err != nil {
			return err
		}
		if err := os.Symlink(l[1], t); err != nil {
			return err
		}
	}
	if err := writeFiles(prep.Files); err != nil {
		return err
	}
	// Its own /proc: the init is pid 1 of the namespace this proc shows.
	if err := os.MkdirAll(at("/proc"), 0o555); err != nil {
		return err
	}
	if err := unix.Mount("proc", at("/proc"), "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mounting /proc: %w", err)
	}
	for _, l := range [][2]string{{"/dev/fd", "/proc/self/fd"}, {"/dev/stdin", "/proc/self/fd/0"},
		{"/dev/stdout", "/proc/self/fd/1"}, {"/dev/stderr", "/proc/self/fd/2"}} {
		os.Symlink(l[1], at(l[0]))
	}
	return nil
}

// finishRoot mounts the function's part (its code, layers and runtime, a
// /tmp and a /dev/shm of its sizes), pivots into the new root and makes it
// read-only.
func finishRoot(cfg *initConfig, diskTmp bool) error {
	if err := bindAll(cfg.Binds); err != nil {
		return err
	}
	if err := writeFiles(cfg.Files); err != nil {
		return err
	}
	tmpfs := []struct {
		dir   string
		bytes int64
		mode  string
	}{
		{"/tmp", cfg.TmpBytes, "1777"},
		{"/dev/shm", cfg.ShmBytes, "1777"},
	}
	for _, m := range tmpfs {
		if m.dir == "/tmp" && diskTmp {
			continue
		}
		t := at(m.dir)
		if err := os.MkdirAll(t, 0o755); err != nil {
			return err
		}
		if err := unix.Mount("tmpfs", t, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV,
			fmt.Sprintf("mode=%s,size=%d", m.mode, max(m.bytes, 1<<20))); err != nil {
			return fmt.Errorf("mounting %s: %w", m.dir, err)
		}
	}
	// Into the new root; the old one is detached and unreachable.
	if err := unix.Chdir(newRoot); err != nil {
		return err
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detaching the old root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return err
	}
	if err := remount("/", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV); err != nil {
		return fmt.Errorf("remounting / read-only: %w", err)
	}
	return nil
}

// bindAll makes the bind mounts, read-only unless Writable, and closes
// their sources.
func bindAll(binds []bindSpec) error {
	for _, b := range binds {
		t := at(b.Target)
		if err := makeTarget(t, b.File); err != nil {
			return err
		}
		src := "/proc/self/fd/" + strconv.Itoa(b.Fd)
		if err := unix.Mount(src, t, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("binding %s: %w", b.Target, err)
		}
		flags := uintptr(unix.MS_NOSUID)
		if !b.Dev {
			flags |= unix.MS_NODEV
		}
		if !b.Writable {
			flags |= unix.MS_RDONLY
		}
		if err := remount(t, flags); err != nil {
			return fmt.Errorf("remounting %s: %w", b.Target, err)
		}
		unix.Close(b.Fd)
	}
	return nil
}

// writeFiles creates small files in the new root.
func writeFiles(files map[string]string) error {
	for p, content := range files {
		t := at(p)
		if err := os.MkdirAll(filepath.Dir(t), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(t, []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// makeTarget creates the mount point of a bind mount.
func makeTarget(t string, file bool) error {
	if !file {
		return os.MkdirAll(t, 0o755)
	}
	if err := os.MkdirAll(filepath.Dir(t), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(t, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	return f.Close()
}

// remount changes a bind mount's flags. In a user namespace the flags the
// mount already has that the kernel locks (nosuid, nodev, noexec, the atime
// ones) must be kept, or the remount fails with EPERM: they are read back
// with statfs and added.
func remount(t string, flags uintptr) error {
	var st unix.Statfs_t
	if err := unix.Statfs(t, &st); err != nil {
		return err
	}
	for _, f := range []struct{ st, ms uintptr }{
		{unix.ST_NOSUID, unix.MS_NOSUID}, {unix.ST_NODEV, unix.MS_NODEV}, {unix.ST_NOEXEC, unix.MS_NOEXEC},
		{unix.ST_NOATIME, unix.MS_NOATIME}, {unix.ST_NODIRATIME, unix.MS_NODIRATIME}, {unix.ST_RELATIME, unix.MS_RELATIME},
	} {
		if uintptr(st.Flags)&f.st != 0 {
			flags |= f.ms
		}
	}
	return unix.Mount("", t, "", unix.MS_REMOUNT|unix.MS_BIND|flags, "")
}

// restrict sets no_new_privs and installs the seccomp filter on every
// thread of the init: the runtime, started from any of them, inherits
// both and can never gain privileges or make the refused calls.
func restrict() error {
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("no_new_privs: %w", err)
	}
	prog := seccompProgram()
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	// TSYNC copies the filter and no_new_privs to the init's other
	// threads: capabilities and seccomp are per thread, and Go starts
	// the runtime from whichever thread it picks.
	_, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC,
		uintptr(unsafe.Pointer(&fprog)))
	if errno != 0 {
		return fmt.Errorf("seccomp: %w", errno)
	}
	runtime.KeepAlive(prog)
	return nil
}

// exitText turns the init's last message into the words Go (and AWS) use
// for a process's end: "exit status 2", "signal: killed".
func exitText(msg string) (string, bool) {
	kind, rest, ok := strings.Cut(msg, ":")
	if !ok {
		return "", false
	}
	switch kind {
	case "exit":
		code, detail, _ := strings.Cut(rest, ":")
		if detail != "" {
			return detail, true
		}
		if code == "0" {
			return "", true
		}
		return "exit status " + code, true
	case "signal":
		n, err := strconv.Atoi(rest)
		if err != nil {
			return "", false
		}
		return "signal: " + unix.Signal(n).String(), true
	}
	return "", false
}
