// This file is the server's side: the Host (the cgroup directories, the
// uid range and the reaper of one server) and Env, one environment's init
// process as the server sees it.

package sandbox

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// HostConfig configures a Host.
type HostConfig struct {
	Level Level // Full or NoCgroup
	// Network is the environments' outbound network; "" is NetworkNone.
	Network Network
	// Spares is how many environments the Host keeps started ahead of
	// need: namespaces, uids, cgroup and network made, the init waiting
	// for its function. A cold start takes one and the Host starts the
	// next in the background; with none ready (a burst of cold starts,
	// or 0 here) an environment is started on demand.
	Spares int
	// ScratchDir is where environments' /tmp filesystems are made, on
	// disk (the server's data directory): each environment's /tmp is an
	// ext4 of its own there, taking disk and not the function's memory,
	// as on AWS. "", or a machine without loop devices or mkfs.ext4 (the
	// Host logs why), makes /tmp a tmpfs, which counts against MemorySize.
	ScratchDir string
	Logger     *slog.Logger
}

// Host starts sandboxed environments for one server. Its methods are safe
// for concurrent use.
type Host struct {
	level Level
	log   *slog.Logger
	cg    *cgroupRoot // nil at NoCgroup
	pasta string      // pasta's path; "" without outbound network

	scratchDir string // where /tmp filesystems are made; "" for tmpfs
	mkfs       string // mkfs.ext4's path

	// uidBase is the first of the Host's host uids; environment n gets
	// uidBase+2n (its init) and uidBase+2n+1 (its function). Chosen at
	// random in a range no distribution gives users, so that two servers
	// on one machine do not share uids.
	uidBase uint32
	next    atomic.Uint32

	spares chan *Env     // launched, waiting for their configuration
	refill chan struct{} // a spare was asked for
	stop   chan struct{} // closed by Close: the refiller returns
	done   chan struct{} // closed when the refiller has returned

	reaper   *exec.Cmd // cleans the cgroups up if the server dies
	reaperW  *os.File  // the server's end of the reaper's pipe
	closeMu  sync.Mutex
	closed   bool
	closeErr error
}

// uid range: 2^30 up to 2^31 (user namespaces' subordinate ids on most
// machines start at 100,000 and stay far below).
const (
	uidLow   = 1 << 30
	uidRange = 1 << 30
	uidsEach = 2
	// maxEnvs bounds the environments one Host numbers before its uids
	// wrap; by then the oldest are long gone.
	maxEnvs = 1 << 20
)

// NewHost prepares a Host at cfg.Level; it does not check the machine
// (Check does).
func NewHost(cfg HostConfig) (*Host, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Level != Full && cfg.Level != NoCgroup {
		return nil, fmt.Errorf("sandbox: NewHost at level %q", cfg.Level)
	}
	var pastaPath string
	switch cfg.Network {
	case "", NetworkNone:
	case NetworkPasta:
		var err error
		if pastaPath, err = lookPasta(); err != nil {
			return nil, fmt.Errorf("sandbox: %w", err)
		}
	default:
		return nil, fmt.Errorf("sandbox: NewHost with network %q", cfg.Network)
	}
	var b [4]byte
	rand.Read(b[:])
	h := &Host{
		level:   cfg.Level,
		log:     cfg.Logger,
		pasta:   pastaPath,
		uidBase: uidLow + (binary.LittleEndian.Uint32(b[:])%(uidRange/(uidsEach*maxEnvs)))*uidsEach*maxEnvs,
	}
	if cfg.Level == Full {
		var rb [4]byte
		rand.Read(rb[:])
		name := fmt.Sprintf("lambdad-%d-%s", os.Getpid(), hex.EncodeToString(rb[:]))
		var err error
		if h.cg, err = newCgroupRoot(name); err != nil {
			return nil, fmt.Errorf("sandbox: %w", err)
		}
		if err := h.startReaper(); err != nil {
			h.cg.remove()
			return nil, fmt.Errorf("sandbox: %w", err)
		}
	}
	if cfg.ScratchDir != "" {
		if err := h.useScratch(cfg.ScratchDir); err != nil {
			h.log.Warn("sandbox: environments' /tmp is a tmpfs, which counts against the function's memory", "why", err)
		}
	}
	if cfg.Spares > 0 {
		h.spares = make(chan *Env, cfg.Spares)
		h.refill = make(chan struct{}, 1)
		h.stop = make(chan struct{})
		h.done = make(chan struct{})
		go h.keepSpares(cfg.Spares)
	}
	return h, nil
}

// useScratch makes /tmp filesystems in dir from now on, once it has made
// one there.
func (h *Host) useScratch(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	cleanScratch(dir)
	mkfs, err := findMkfs()
	if err != nil {
		return err
	}
	if err := probeScratch(mkfs, dir); err != nil {
		return err
	}
	h.scratchDir, h.mkfs = dir, mkfs
	return nil
}

// DiskTmp says whether environments' /tmp is on disk (see
// HostConfig.ScratchDir).
func (h *Host) DiskTmp() bool { return h.scratchDir != "" }

// takeSpare returns a spare environment, or nil when none is ready or
// fits is false; either way the caller asks the refiller for more
// (askRefill) once its cold start is done with the machine.
func (h *Host) takeSpare(fits bool) *Env {
	if h.spares == nil || !fits {
		return nil
	}
	select {
	case e := <-h.spares:
		return e
	default:
		return nil
	}
}

// SparesReady is how many spare environments are ready now.
func (h *Host) SparesReady() int {
	if h.spares == nil {
		return 0
	}
	return len(h.spares)
}

// askRefill tells the refiller a spare was asked for.
func (h *Host) askRefill() {
	if h.spares == nil {
		return
	}
	select {
	case h.refill <- struct{}{}:
	default:
	}
}

// refillDelay is how long after a cold start the refiller waits before it
// makes the next spare: the runtime that took the last one is starting
// then, and making a spare (mkfs, a loop device, pasta's start-up) would
// compete with it for the machine. A burst of cold starts does not wait
// for spares either way: those that find none start their own.
const refillDelay = 30 * time.Millisecond

// keepSpares is the refiller: it keeps n spares ready until Close. A
// spare that fails to start is logged, and the next is tried when one is
// asked for, so that a machine that cannot start environments is not
// made to try without end.
//
// Spares are background work: they are started at the lowest priority
// (nice 19, which the init and pasta inherit from this thread), so that
// making the next one never slows the cold start that took the last;
// foreground gives a taken one the normal priority. The thread stays
// this goroutine's alone and ends with it, at Close, which kills what
// it started (PR_SET_PDEATHSIG is the starting thread's): by then every
// environment has ended, and the spares go anyway.
func (h *Host) keepSpares(n int) {
	defer close(h.done)
	runtime.LockOSThread()
	if err := unix.Setpriority(unix.PRIO_PROCESS, 0, spareNice); err != nil {
		h.log.Warn("sandbox: spare environments start at normal priority", "err", err)
	}
	for {
		for len(h.spares) < n {
			e, err := h.launch(DefaultTmpMB)
			if err == nil && e.net != nil {
				// Ready before it is offered, so that a cold start
				// never waits for pasta.
				if err = e.net.ready(10 * time.Second); err != nil {
					e.discard()
				}
			}
			if err != nil {
				h.log.Warn("sandbox: starting a spare environment", "err", err)
				break
			}
			select {
			case h.spares <- e: // only this goroutine adds: never blocks
			case <-h.stop:
				e.discard()
				return
			}
		}
		select {
		case <-h.refill:
		case <-h.stop:
			return
		}
		select {
		case <-time.After(refillDelay):
		case <-h.stop:
			return
		}
	}
}

// Level is the Host's level.
func (h *Host) Level() Level { return h.level }

// Network is the Host's environments' network.
func (h *Host) Network() Network {
	if h.pasta != "" {
		return NetworkPasta
	}
	return NetworkNone
}

// Close stops the spares and the reaper (which then removes the Host's
// cgroup directories) and waits for them. Every Env that Start returned
// must have been waited for.
func (h *Host) Close() error {
	h.closeMu.Lock()
	defer h.closeMu.Unlock()
	if h.closed {
		return h.closeErr
	}
	h.closed = true
	if h.spares != nil {
		close(h.stop)
		<-h.done
		for len(h.spares) > 0 {
			(<-h.spares).discard()
		}
	}
	if h.reaper != nil {
		h.reaperW.Close()
		h.closeErr = h.reaper.Wait()
	}
	return h.closeErr
}

// Bind is a directory or file of the host shown read-only (unless
// Writable) in an environment.
type Bind struct {
	Source string // on the host
	Target string // in the environment
}

// Spec is what one environment runs.
type Spec struct {
	Argv     []string // paths as the environment sees them
	Env      []string
	Dir      string
	Binds    []Bind
	Files    map[string]string // small files created read-only in the environment
	MemoryMB int
	TmpMB    int
	// Output receives the runtime's stdout and stderr.
	Output *os.File
}

// Env is one running environment, as the server sees it.
type Env struct {
	cmd  *exec.Cmd
	ctl  *net.UnixConn
	ln   net.Listener
	api  net.Listener
	cg   *cgroup
	pid  int
	host *Host
	net  *pasta   // nil without outbound network
	tmp  *scratch // its /tmp on disk until configured; nil for a tmpfs

	mu     sync.Mutex // guards the following
	frozen bool
	exited bool
}

// systemBinds are the host's system directories every environment sees
// read-only, where they exist. /etc is not among them: only the files in
// systemEtc are.
var systemBinds = []string{"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}

// systemEtc are the files of /etc a runtime needs (name resolution, TLS
// roots, time zones, the dynamic linker's cache); /etc/passwd and
// /etc/group are written for the sandbox's own users.
var systemEtc = []string{
	"/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/localtime", "/etc/nsswitch.conf", "/etc/hosts",
	"/etc/resolv.conf", "/etc/ssl", "/etc/ca-certificates", "/etc/pki", "/etc/mime.types", "/etc/alternatives",
}

// resolvConf is the resolver's configuration.
const resolvConf = "/etc/resolv.conf"

// outboundResolvConf is the resolver configuration of an environment with
// outbound network: the host's file at path without its name servers,
// which may be on the host's loopback, and with NetDNS.
func outboundResolvConf(path string) string {
	out := "nameserver " + NetDNS + "\n"
	b, _ := os.ReadFile(path)
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 0 && (f[0] == "search" || f[0] == "domain" || f[0] == "options") {
			out += strings.Join(f, " ") + "\n"
		}
	}
	return out
}

// devices are bound from the host's /dev.
var devices = []string{"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"}

// Start starts spec's environment: on return its init has built the
// environment and the runtime is starting; the Runtime API must be served
// on Listener. It takes a spare environment when the Host has one ready
// (and starts another in its place), else starts one now.
func (h *Host) Start(spec *Spec) (*Env, error) {
	tmpMB := DefaultTmpMB
	if spec.TmpMB > 0 {
		tmpMB = spec.TmpMB
	}
	defer h.askRefill()
	// A spare's /tmp on disk is of the default size.
	if e := h.takeSpare(h.scratchDir == "" || tmpMB == DefaultTmpMB); e != nil {
		err := e.foreground()
		if err == nil {
			err = h.configure(e, spec)
		}
		if err == nil {
			return e, nil
		}
		e.discard()
		// The spare may have died while it waited (killed from
		// outside, say): one started now decides.
		h.log.Warn("sandbox: a spare environment failed; starting one", "err", err)
	}
	e, err := h.launch(tmpMB)
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	if err := h.configure(e, spec); err != nil {
		e.discard()
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	return e, nil
}

// launch starts an environment's init in its new namespaces, with its uids
// and its cgroup, and the environment's pasta, and prepares it: everything
// that depends on no function. The init then waits for its function
// (configure).
func (h *Host) launch(tmpMB int) (*Env, error) {
	k := h.next.Add(1) % maxEnvs
	initUID := h.uidBase + k*uidsEach
	fnUID := initUID + 1

	// Sockets: the control socket's other end is the init's fd 3.
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	mine := os.NewFile(uintptr(fds[0]), "ctl")
	theirs := os.NewFile(uintptr(fds[1]), "ctl")
	defer theirs.Close()
	conn, err := net.FileConn(mine)
	mine.Close()
	if err != nil {
		return nil, err
	}
	ctl := conn.(*net.UnixConn)

	var cg *cgroup
	if h.cg != nil {
		if cg, err = h.cg.newCgroup("e" + strconv.FormatUint(uint64(k), 10)); err != nil {
			ctl.Close()
			return nil, err
		}
	}
	attr := &syscall.SysProcAttr{
		Cloneflags: unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNS | unix.CLONE_NEWIPC |
			unix.CLONE_NEWUTS | unix.CLONE_NEWNET | unix.CLONE_NEWCGROUP,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: int(initUID), Size: 1}, {ContainerID: FunctionUID, HostID: int(fnUID), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: int(initUID), Size: 1}, {ContainerID: FunctionGID, HostID: int(fnUID), Size: 1}},
		// The init drops the server's supplementary groups (setgroups),
		// which the host would otherwise still honour on files.
		GidMappingsEnableSetgroups: true,
		Credential:                 &syscall.Credential{Uid: 0, Gid: 0, Groups: []uint32{}},
		// The environment goes with the server, however it dies.
		Pdeathsig: syscall.SIGKILL,
		Setpgid:   true,
	}
	if cg != nil && cg.v2 {
		// Born in its cgroup: nothing runs outside it, not even briefly.
		fd, err := cg.fd()
		if err != nil {
			cg.remove()
			ctl.Close()
			return nil, err
		}
		defer unix.Close(fd)
		attr.UseCgroupFD, attr.CgroupFD = true, fd
	}
	cmd := &exec.Cmd{
		// The running binary, whatever its path and whoever may read the
		// directories on the way to it: the magic link needs no search
		// permission.
		Path: "/proc/self/exe",
		Args: []string{initArg0},
		Env:  []string{}, // nothing of the server's environment
		// Its stdout and stderr are /dev/null until its configuration
		// brings the function's log.
		ExtraFiles:  []*os.File{theirs},
		SysProcAttr: attr,
	}
	if err := cmd.Start(); err != nil {
		if cg != nil {
			cg.remove()
		}
		ctl.Close()
		return nil, fmt.Errorf("starting the init: %w", err)
	}
	e := &Env{cmd: cmd, ctl: ctl, cg: cg, pid: cmd.Process.Pid, host: h}
	if h.pasta != "" {
		// pasta sets the network up while the init builds the rest: the
		// init's namespaces exist from its first instruction.
		if e.net, err = startPasta(h.pasta, e.pid); err != nil {
			e.discard()
			return nil, err
		}
	}
	// /tmp's filesystem is made while pasta and the init start up; it
	// goes to the init with the preparation.
	if h.scratchDir != "" {
		if e.tmp, err = newScratch(h.mkfs, h.scratchDir, tmpMB); err != nil {
			h.log.Warn("sandbox: an environment's /tmp is a tmpfs", "why", err)
			e.tmp = nil
		}
	}
	if err := h.prepare(e); err != nil {
		e.discard()
		return nil, err
	}
	return e, nil
}

// bindSrc is a bind mount before its source is opened.
type bindSrc struct {
	src, target   string
	writable, dev bool
}

// fdList collects the descriptors that travel with one message to the
// init, which the message names by their place in it.
type fdList []int

func (l *fdList) add(fd int) int {
	*l = append(*l, fd)
	return len(*l) - 1
}

// close closes them (a pointer receiver, so that a deferred close sees
// what was added after the defer).
func (l *fdList) close() {
	for _, fd := range *l {
		unix.Close(fd)
	}
	*l = nil
}

// openBinds opens the bind sources through the init's own root, so that
// they belong to its mount namespace (a bind mount's source must) and are
// opened with the server's rights: the init needs none on the paths, and
// sees nothing else of them.
func (e *Env) openBinds(binds []bindSrc, fds *fdList) ([]bindSpec, error) {
	through := "/proc/" + strconv.Itoa(e.pid) + "/root"
	var out []bindSpec
	for _, b := range binds {
		// An absolute symlink on the way would lead back into the
		// server's own namespace: resolve them first.
		src, err := filepath.EvalSymlinks(b.src)
		if err != nil {
			return nil, err
		}
		fd, err := unix.Open(through+src, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("opening %s: %w", b.src, err)
		}
		i := fds.add(fd)
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return nil, err
		}
		out = append(out, bindSpec{Fd: i, Target: b.target,
			File: st.Mode&unix.S_IFMT != unix.S_IFDIR, Writable: b.writable, Dev: b.dev})
	}
	return out, nil
}

// send sends the init one message of its configuration with its
// descriptors, and waits for its answer, want (or its error); the answer's
// descriptors are returned.
func (e *Env) send(v any, fds fdList, want string) ([]byte, error) {
	if len(fds) > maxFds {
		return nil, fmt.Errorf("%d descriptors for the environment, more than %d", len(fds), maxFds)
	}
	msg, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	if _, _, err := e.ctl.WriteMsgUnix(msg, unix.UnixRights(fds...), nil); err != nil {
		return nil, err
	}
	e.ctl.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer e.ctl.SetReadDeadline(time.Time{})
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(2*4))
	n, oobn, _, _, err := e.ctl.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, fmt.Errorf("waiting for the init: %w", err)
	}
	if reply := string(buf[:n]); reply != want {
		if oobn > 0 {
			if rights, err := receiveListeners(oob[:oobn]); err == nil {
				for _, l := range rights {
					l.Close()
				}
			}
		}
		if n == 0 {
			return nil, errors.New("the init exited")
		}
		return nil, errors.New(strings.TrimPrefix(reply, "error: "))
	}
	return oob[:oobn], nil
}

// prepare sends a launched init what every environment has: the system's
// directories and files, the network's setting.
func (h *Host) prepare(e *Env) error {
	prep := prepConfig{
		Hostname: "lambda",
		Net:      true,
		Outbound: h.pasta != "",
		Files: map[string]string{
			"/etc/passwd":   fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nsbx_user1051:x:%d:%d::/tmp:/sbin/nologin\n", FunctionUID, FunctionGID),
			"/etc/group":    fmt.Sprintf("root:x:0:\nsbx_user1051:x:%d:\n", FunctionGID),
			"/etc/hostname": "lambda\n",
		},
	}
	var binds []bindSrc
	for _, d := range systemBinds {
		if t, err := os.Readlink(d); err == nil {
			prep.Links = append(prep.Links, [2]string{d, t}) // merged /usr: /bin -> usr/bin
		} else if exists(d) {
			binds = append(binds, bindSrc{d, d, false, false})
		}
	}
	if prep.Outbound {
		// The name server is pasta's forwarder (NetDNS); the host's
		// search domains and options are kept.
		prep.Files[resolvConf] = outboundResolvConf(resolvConf)
	}
	for _, p := range systemEtc {
		if _, written := prep.Files[p]; written {
			continue
		}
		if t, err := os.Readlink(p); err == nil && !strings.HasPrefix(t, "/") {
			prep.Links = append(prep.Links, [2]string{p, t})
		} else if exists(p) {
			binds = append(binds, bindSrc{p, p, false, false})
		}
	}
	for _, d := range devices {
		if exists(d) {
			binds = append(binds, bindSrc{d, d, true, true})
		}
	}
	var fds fdList
	defer fds.close()
	var err error
	if prep.Binds, err = e.openBinds(binds, &fds); err != nil {
		return err
	}
	prep.TmpMount = -1
	if e.tmp != nil {
		// The mount goes to the init (fds closes the server's copy).
		prep.TmpMount = fds.add(e.tmp.mnt)
		e.tmp.mnt = -1
	}
	_, err = e.send(&prep, fds, "prepared")
	return err
}

// configure gives a prepared environment its function: the cgroup's
// limits, its code, layers and runtime, the runtime to start. On return
// the init has built the environment and is starting the runtime.
func (h *Host) configure(e *Env, spec *Spec) error {
	if e.cg != nil {
		if err := e.cg.limit(spec.MemoryMB); err != nil {
			return err
		}
	}
	if e.tmp != nil {
		e.tmp.close() // the environment's mount holds what it needs
	}
	cfg := initConfig{
		Argv:     spec.Argv,
		Env:      spec.Env,
		Dir:      spec.Dir,
		TmpBytes: int64(spec.TmpMB) << 20,
		ShmBytes: int64(spec.MemoryMB) << 20,
		Output:   -1,
		Files:    spec.Files,
		NetUp:    e.net != nil && e.net.isReady(),
	}
	var fds fdList
	defer fds.close()
	if spec.Output != nil {
		fd, err := unix.FcntlInt(spec.Output.Fd(), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return err
		}
		cfg.Output = fds.add(fd)
	}
	if e.cg != nil && !e.cg.v2 {
		// On v1 the init moves itself into its cgroups, through their
		// tasks files opened here (it has no right to open them), before
		// anything of the function runs. A thread moving itself takes no
		// global lock; moving another process from here would wait for
		// an RCU grace period under the kernel's cgroup_threadgroup_rwsem,
		// 8-16 ms of every cold start on a quiet machine.
		for _, d := range e.cg.dirs {
			fd, err := unix.Open(filepath.Join(d, "tasks"), unix.O_WRONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				return fmt.Errorf("opening the cgroup: %w", err)
			}
			cfg.Cgroups = append(cfg.Cgroups, fds.add(fd))
		}
	}
	var binds []bindSrc
	for _, b := range spec.Binds {
		binds = append(binds, bindSrc{b.Source, b.Target, false, false})
	}
	var err error
	if cfg.Binds, err = e.openBinds(binds, &fds); err != nil {
		return err
	}
	oob, err := e.send(&cfg, fds, "ready")
	if err != nil {
		return err
	}
	lns, err := receiveListeners(oob)
	if err != nil {
		return err
	}
	closeAll := func() {
		for _, l := range lns {
			l.Close()
		}
	}
	if e.net != nil && !cfg.NetUp {
		if err := e.net.ready(10 * time.Second); err != nil {
			closeAll()
			return fmt.Errorf("the environment's network: %w", err)
		}
		if _, _, err := e.ctl.WriteMsgUnix([]byte(netReady), nil, nil); err != nil {
			closeAll()
			return err
		}
	}
	e.ln, e.api = lns[0], lns[1]
	return nil
}

// spareNice is the priority spares are started at: the lowest.
const spareNice = 19

// foreground gives a spare's init and pasta the normal priority (nice
// 0); the runtime inherits the init's.
func (e *Env) foreground() error {
	pids := []int{e.pid}
	if e.net != nil {
		pids = append(pids, e.net.Pid())
	}
	for _, p := range pids {
		if err := unix.Setpriority(unix.PRIO_PROCESS, p, 0); err != nil {
			return fmt.Errorf("giving the spare environment normal priority: %w", err)
		}
	}
	return nil
}

// discard kills an environment that never became the caller's, waits for
// it and frees what it held.
func (e *Env) discard() {
	e.Kill()
	e.cmd.Wait()
	e.Release()
}

// receiveListeners takes the listening sockets out of a control message:
// the Runtime API's and the Lambda API's.
func receiveListeners(oob []byte) ([]net.Listener, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil || len(msgs) != 1 {
		return nil, errors.New("the init sent no Runtime API socket")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 2 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, errors.New("the init sent no Runtime API and Lambda API sockets")
	}
	var lns []net.Listener
	for i, name := range []string{"runtime-api", "lambda-api"} {
		f := os.NewFile(uintptr(fds[i]), name)
		l, err := net.FileListener(f)
		f.Close()
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			if i == 0 {
				unix.Close(fds[1])
			}
			return nil, err
		}
		lns = append(lns, l)
	}
	return lns, nil
}

// Pid is the init's pid on the host.
func (e *Env) Pid() int { return e.pid }

// NetPid is the pid of the environment's pasta, 0 without outbound
// network.
func (e *Env) NetPid() int {
	if e.net == nil {
		return 0
	}
	return e.net.Pid()
}

// Listener is the Runtime API socket, listening inside the environment;
// the caller owns it.
func (e *Env) Listener() net.Listener { return e.ln }

// APIListener is the socket listening at LambdaAPIAddr inside the
// environment, for the server's own API; the caller owns it (and closes
// it if it serves nothing there).
func (e *Env) APIListener() net.Listener { return e.api }

// Wait waits for the init to exit and returns how the runtime ended, in
// exec's words: nil, or an error reading "exit status 2", "signal: killed".
func (e *Env) Wait() (*os.ProcessState, error) {
	err := e.cmd.Wait()
	e.mu.Lock()
	e.exited = true
	e.mu.Unlock()
	// The init's last word says how the runtime ended; without one the
	// init itself was killed (the server stopped the environment, or
	// the memory limit took it), and its own end is the answer. The
	// init has exited, so whatever it sent is queued: read without
	// waiting.
	buf := make([]byte, 4096)
	if raw, rerr := e.ctl.SyscallConn(); rerr == nil {
		var last string
		raw.Read(func(fd uintptr) bool {
			for {
				n, _, _, _, err := unix.Recvmsg(int(fd), buf, nil, unix.MSG_DONTWAIT)
				if err != nil || n <= 0 {
					return true
				}
				last = string(buf[:n])
			}
		})
		if text, ok := exitText(last); ok {
			if text == "" {
				return e.cmd.ProcessState, nil
			}
			return e.cmd.ProcessState, errors.New(text)
		}
	}
	return e.cmd.ProcessState, err
}

// Kill kills the environment: the init, and with it, by the kernel, every
// process of its pid namespace. A frozen environment is thawed so that the
// kill takes effect.
func (e *Env) Kill() {
	syscall.Kill(e.pid, syscall.SIGKILL)
	if e.cg != nil {
		e.cg.thaw()
	}
	if e.net != nil {
		e.net.kill()
	}
}

// Freeze stops every process of the environment until Thaw; a no-op
// without the cgroup.
func (e *Env) Freeze() error {
	if e.cg == nil {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.exited {
		return nil
	}
	e.frozen = true
	return e.cg.freeze()
}

// Thaw lets a frozen environment run again.
func (e *Env) Thaw() error {
	if e.cg == nil {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.frozen {
		return nil
	}
	e.frozen = false
	return e.cg.thaw()
}

// PeakBytes is the highest memory use of all the environment's processes
// together, from its cgroup; 0 without one.
func (e *Env) PeakBytes() int64 {
	if e.cg == nil {
		return 0
	}
	return e.cg.peakBytes()
}

// Release frees what the environment held once Wait has returned: the
// control socket, its pasta (killed and reaped) and the cgroup (anything
// the kernel has not yet taken down is killed first). The listener belongs
// to whoever serves on it.
func (e *Env) Release() {
	e.ctl.Close()
	if e.tmp != nil {
		e.tmp.close()
	}
	if e.net != nil {
		e.net.stop()
	}
	if e.cg != nil {
		e.cg.killAll(time.Second)
		e.cg.remove()
	}
}

// probeNamespaces starts this binary in the namespaces an environment gets,
// with the uid mapping it gets, and waits for it.
func probeNamespaces() error {
	cmd := &exec.Cmd{
		Path: "/proc/self/exe",
		Args: []string{probeArg0},
		Env:  []string{},
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags: unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNS | unix.CLONE_NEWIPC |
				unix.CLONE_NEWUTS | unix.CLONE_NEWNET,
			UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}},
			GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}},
		},
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("cannot start a process in new user, pid, mount, ipc, uts and network namespaces: %v %s", err, out)
	}
	return nil
}
