// This file is one execution environment: its process and private
// TMPDIR, the goroutines that reap the process and read its output, the
// in-memory log of the invocation it runs, and stopping it all.

package execenv

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lambdad/lambdad/internal/clock"
	"github.com/lambdad/lambdad/internal/runtimeapi"
	"github.com/lambdad/lambdad/internal/sandbox"
)

// errProcessExited is the cause an environment's Runtime API server is
// aborted with when its process exits.
var errProcessExited = errors.New("execenv: runtime process exited")

const (
	readChunk = 32 << 10
	// maxLogBuffer bounds the output held in memory between two flushes
	// to the function's log file; a chattier invocation has its older
	// output written to the file early, and its Result.Log keeps the rest.
	maxLogBuffer = 1 << 20
	// keepLogBuffer is the capacity an environment keeps between
	// invocations.
	keepLogBuffer = 64 << 10
)

// env is one execution environment: a runtime process, its Runtime API
// server, its output pipe and its private TMPDIR.
type env struct {
	m    *Manager
	key  key
	spec Spec // a copy: the caller's Spec may change after Invoke returns
	gen  uint64
	id   string // 32 hex digits, names the log stream and TMPDIR
	held func() // the release of Spec.Code, called at the end of stop

	// procMu guards the process lifecycle against a concurrent stop: the
	// fields below are set in start under procMu and read-only afterwards,
	// except status, which stop closes and clears under logMu.
	procMu   sync.Mutex
	stopping bool // set by kill; start refuses to begin afterwards
	started  bool // the process was started (goroutines running)
	killed   bool // SIGKILL was sent to the process group

	tmpDir     string
	box        *sandbox.Env // nil unless sandboxed; then cmd is nil
	srv        *runtimeapi.Server
	api        *http.Server // the server's API inside a sandbox (Config.API)
	cmd        *exec.Cmd
	pid        int
	pipe       *os.File        // read end of the process's stdout+stderr
	raw        syscall.RawConn // of pipe
	status     *os.File        // /proc/<pid>/status
	exited     chan struct{}   // closed when the process has been waited for
	waitErr    error           // cmd.Wait's result; read after exited
	waiterDone chan struct{}
	readerDone chan struct{}

	stopOnce sync.Once

	// logMu guards out, readBuf, peakKB, statusBuf and the use of status,
	// shared by the output reader, the waiter, the invoking goroutine and
	// stop.
	logMu     sync.Mutex
	out       []byte    // output and log lines not yet written to the log file
	marks     []logMark // when each stretch of out arrived: the log file's timestamps
	readBuf   []byte
	peakKB    int64     // highest peak resident set seen, KiB
	peakAt    time.Time // when peakKB was last read from /proc
	statusBuf []byte

	// Owned by the goroutine running the current invocation (an env runs
	// one at a time).
	inv runtimeapi.Invocation

	// Guarded by Manager.mu.
	busy     bool
	lastUsed time.Time   // on Manager.clock
	pinned   bool        // provisioned: never reaped for idleness, counted by Live
	doomed   bool        // decided to stop: never handed out or counted again
	cutOff   bool        // ended by KillBusy: its invocation ends with ErrCutOff
	freezer  clock.Timer // set while idle and sandboxed: freezes e (freezeIdle)
}

func newEnv(m *Manager, spec *Spec, gen uint64) *env {
	var b [16]byte
	rand.Read(b[:])
	return &env{
		m:          m,
		key:        keyOf(spec),
		spec:       *spec,
		gen:        gen,
		id:         hex.EncodeToString(b[:]),
		exited:     make(chan struct{}),
		waiterDone: make(chan struct{}),
		readerDone: make(chan struct{}),
	}
}

// start launches the process. A returned *errInvalidEntrypoint means the
// bootstrap cannot run; other errors are faults of this machine.
func (e *env) start(l launch) error {
	e.procMu.Lock()
	defer e.procMu.Unlock()
	if e.stopping {
		return ErrClosed
	}
	if l.provided {
		if err := checkBootstrap(l.argv[0]); err != nil {
			return err
		}
	}
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("execenv: %w", err)
	}
	defer w.Close() // the child holds its own copies
	e.pipe = r
	if e.raw, err = r.SyscallConn(); err != nil {
		return fmt.Errorf("execenv: %w", err)
	}
	if e.m.box != nil {
		if err := e.startBoxed(l, w); err != nil {
			return err
		}
	} else if err := e.startPlain(l, w); err != nil {
		return err
	}
	e.started = true
	e.readBuf = make([]byte, readChunk)
	e.statusBuf = make([]byte, 4096)
	go e.wait()
	go e.readOutput()
	return nil
}

// startPlain starts the runtime as the server's own child, in a process
// group of its own, with a private TMPDIR.
func (e *env) startPlain(l launch, w *os.File) error {
	var err error
	if e.tmpDir, err = os.MkdirTemp(e.m.root, "env-"+e.id[:8]+"-"); err != nil {
		return fmt.Errorf("execenv: %w", err)
	}
	if e.srv, err = runtimeapi.New(e.m.log.With("function", e.spec.Function, "env", e.id[:8]),
		e.m.apiOptions()...); err != nil {
		return err
	}
	e.cmd = &exec.Cmd{
		Path: l.argv[0],
		Args: l.argv,
		Env: buildEnviron(envParams{
			spec:       &e.spec,
			launch:     l,
			runtimeAPI: e.srv.Addr(),
			tmpDir:     e.tmpDir,
			logStream:  logStreamName(time.Now(), e.spec.Version, e.id),
		}),
		Dir:    e.spec.CodeDir,
		Stdout: w, // one pipe for both, so lines interleave as written
		Stderr: w,
		SysProcAttr: &syscall.SysProcAttr{
			// Its own process group, so a timeout kills whatever the
			// function started too.
			Setpgid: true,
			// Should lambdad die without cleaning up, the runtime goes too.
			// (Linux sends it when the thread that started the child exits;
			// the Go runtime does not retire its threads.)
			Pdeathsig: syscall.SIGKILL,
		},
	}
	err = e.cmd.Start()
	// ETXTBSY: a file of the code was still open for writing in a process
	// being forked at that moment (another tree unpacking while another
	// environment starts: the child holds the descriptor until its exec).
	// It passes as soon as that exec happens.
	for try := 0; try < 50 && errors.Is(err, syscall.ETXTBSY); try++ {
		time.Sleep(time.Millisecond)
		old := e.cmd
		e.cmd = &exec.Cmd{Path: old.Path, Args: old.Args, Env: old.Env, Dir: old.Dir, Stdout: old.Stdout, Stderr: old.Stderr, SysProcAttr: old.SysProcAttr}
		err = e.cmd.Start()
	}
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.ENOEXEC) {
			return &errInvalidEntrypoint{err.Error()}
		}
		return fmt.Errorf("execenv: starting %s: %w", l.argv[0], err)
	}
	e.pid = e.cmd.Process.Pid
	if err := limitMemory(e.pid, e.spec.MemoryMB); err != nil {
		e.m.log.Warn("setting the memory limit failed", "function", e.spec.Function, "pid", e.pid, "err", err)
	}
	if e.status, err = openStatus(e.pid); err != nil {
		e.status = nil
	}
	return nil
}

// startBoxed starts the runtime in a sandbox of its own (package
// sandbox): the code at /var/task, the runtime shims at /var/runtime, the
// Runtime API inside the environment's network namespace.
func (e *env) startBoxed(l launch, w *os.File) error {
	// Layers: one is mounted at /opt, as AWS extracts it; several each at
	// /opt/.layers/N, found through the search paths (see layerPaths).
	inside := e.spec
	inside.CodeDir = sandbox.TaskRoot
	inside.LayerDirs = make([]string, len(e.spec.LayerDirs))
	var layerBinds []sandbox.Bind
	for i, d := range e.spec.LayerDirs {
		t := "/opt"
		if len(e.spec.LayerDirs) > 1 {
			t = "/opt/.layers/" + strconv.Itoa(i)
		}
		inside.LayerDirs[i] = t
		layerBinds = append(layerBinds, sandbox.Bind{Source: d, Target: t})
	}
	in := func(p string) string {
		for i, d := range e.spec.LayerDirs {
			if p == d {
				return inside.LayerDirs[i]
			}
			if rest, ok := strings.CutPrefix(p, d+"/"); ok {
				return inside.LayerDirs[i] + "/" + rest
			}
		}
		return boxPath(p, e.m.shimDir, e.spec.CodeDir)
	}
	argv := make([]string, len(l.argv))
	for i, a := range l.argv {
		argv[i] = in(a)
	}
	bl := l
	bl.runtimeDir = in(l.runtimeDir)
	binds := []sandbox.Bind{{Source: e.spec.CodeDir, Target: sandbox.TaskRoot}, {Source: e.m.shimDir, Target: sandbox.RuntimeRoot}}
	binds = append(binds, layerBinds...)
	if l.interpRoot != "" {
		binds = append(binds, sandbox.Bind{Source: l.interpRoot, Target: l.interpRoot})
	}
	tmp := e.spec.EphemeralMB
	if tmp <= 0 {
		tmp = defaultEphemeralMB
	}
	lambdaAPI := ""
	if e.m.cfg.API != nil {
		lambdaAPI = "http://" + sandbox.LambdaAPIAddr
	}
	box, err := e.m.box.Start(&sandbox.Spec{
		Argv: argv,
		Env: buildEnviron(envParams{
			spec:       &inside,
			launch:     bl,
			runtimeAPI: sandbox.RuntimeAPIAddr,
			lambdaAPI:  lambdaAPI,
			tmpDir:     "/tmp",
			logStream:  logStreamName(time.Now(), e.spec.Version, e.id),
		}),
		Dir:      sandbox.TaskRoot,
		Binds:    binds,
		MemoryMB: e.spec.MemoryMB,
		TmpMB:    tmp,
		Output:   w,
	})
	if err != nil {
		return fmt.Errorf("execenv: %w", err)
	}
	e.box, e.pid = box, box.Pid()
	if e.m.box.Level() != sandbox.Full {
		// No cgroup: the per-process limit is what there is.
		if err := limitMemory(e.pid, e.spec.MemoryMB); err != nil {
			e.m.log.Warn("setting the memory limit failed", "function", e.spec.Function, "pid", e.pid, "err", err)
		}
	}
	e.srv = runtimeapi.Serve(box.Listener(), e.m.log.With("function", e.spec.Function, "env", e.id[:8]),
		e.m.apiOptions()...)
	if e.m.cfg.API != nil {
		e.api = &http.Server{Handler: e.m.cfg.API, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute,
			ErrorLog: slog.NewLogLogger(e.m.log.Handler(), slog.LevelDebug)}
		go e.api.Serve(box.APIListener()) // until stop closes it
	} else {
		box.APIListener().Close()
	}
	return nil
}

// boxPath is where host path p appears inside a sandbox.
func boxPath(p, shimDir, codeDir string) string {
	for _, m := range [][2]string{{shimDir, sandbox.RuntimeRoot}, {codeDir, sandbox.TaskRoot}} {
		if p == m[0] {
			return m[1]
		}
		if rest, ok := strings.CutPrefix(p, m[0]+"/"); ok {
			return m[1] + "/" + rest
		}
	}
	return p
}

// wait reaps the process and tells the Runtime API server and the manager.
func (e *env) wait() {
	defer close(e.waiterDone)
	if e.box != nil {
		_, err := e.box.Wait()
		e.waitErr = err
		close(e.exited)
		e.srv.Abort(errProcessExited)
		e.m.envExited(e)
		return
	}
	err := e.cmd.Wait()
	// The last peak, now that /proc has forgotten the process: rusage.
	if ru, ok := e.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok && ru != nil {
		e.logMu.Lock()
		if ru.Maxrss > e.peakKB {
			e.peakKB = ru.Maxrss
		}
		e.logMu.Unlock()
	}
	e.waitErr = err
	close(e.exited)
	e.srv.Abort(errProcessExited)
	e.m.envExited(e)
}

// readOutput copies the process's output into out until the pipe closes.
// Reads happen inside the poller callback with logMu held, so drain can
// take everything written so far without racing this goroutine.
func (e *env) readOutput() {
	defer close(e.readerDone)
	for {
		var n int
		var rerr error
		err := e.raw.Read(func(fd uintptr) bool {
			e.logMu.Lock()
			n, rerr = syscall.Read(int(fd), e.readBuf)
			if n > 0 {
				e.appendOutputLocked(e.readBuf[:n])
			}
			e.logMu.Unlock()
			return rerr != syscall.EAGAIN
		})
		if err != nil || (n <= 0 && rerr != syscall.EINTR) {
			return // EOF, read error, or the pipe was closed by stop
		}
	}
}

// drain takes whatever the process has written but readOutput has not yet
// read: everything written before the runtime answered is in the pipe by
// then, so after drain the invocation's log is complete.
func (e *env) drain() {
	if e.raw == nil {
		return
	}
	e.raw.Control(func(fd uintptr) {
		e.logMu.Lock()
		defer e.logMu.Unlock()
		// Bounded: a pipe holds at most 1 MiB (Linux's pipe-max-size).
		for range 64 {
			n, err := syscall.Read(int(fd), e.readBuf)
			if n > 0 {
				e.appendOutputLocked(e.readBuf[:n])
				continue
			}
			if err != syscall.EINTR {
				return
			}
		}
	})
}

// logMark says that the bytes of out from off on arrived at at (until the
// next mark). A line of the log file is stamped with the time its first
// byte arrived.
type logMark struct {
	off int
	at  time.Time
}

// markLocked records when b, about to be appended to out, arrived. Only
// where a line begins in b is a mark needed (bytes that continue a line
// take the mark of its start), and one per millisecond, the log file's
// precision, is enough: so the marks never outnumber the lines or the
// milliseconds of an invocation.
func (e *env) markLocked(b []byte) {
	if len(b) == 0 || len(e.out) > 0 && e.out[len(e.out)-1] != '\n' && bytes.IndexByte(b[:len(b)-1], '\n') < 0 {
		return
	}
	now := time.Now()
	if n := len(e.marks); n > 0 {
		last := &e.marks[n-1]
		if last.off == len(e.out) {
			last.at = now
			return
		}
		if last.at.UnixMilli() == now.UnixMilli() {
			return
		}
	}
	e.marks = append(e.marks, logMark{off: len(e.out), at: now})
}

// appendOutputLocked adds b to out; past maxLogBuffer the older half goes
// to the log file now.
func (e *env) appendOutputLocked(b []byte) {
	e.markLocked(b)
	e.out = append(e.out, b...)
	if len(e.out) > maxLogBuffer {
		cut := len(e.out) - maxLogBuffer/2
		e.m.logs.write(e.spec.Account, e.spec.Function, e.spec.Version, e.out[:cut], e.marks)
		e.out = e.out[:copy(e.out, e.out[cut:])]
		e.dropMarksLocked(cut)
	}
}

// dropMarksLocked moves the marks along when the first cut bytes of out
// have been written out: the mark in force at cut now starts at 0.
func (e *env) dropMarksLocked(cut int) {
	keep := 0
	for i, mk := range e.marks {
		if mk.off <= cut {
			keep = i
		}
	}
	e.marks = e.marks[:copy(e.marks, e.marks[keep:])]
	for i := range e.marks {
		e.marks[i].off = max(0, e.marks[i].off-cut)
	}
}

// appendLog adds lambdad's own log lines (START, END, REPORT, ...).
func (e *env) appendLog(b []byte) {
	e.logMu.Lock()
	e.markLocked(b)
	e.out = append(e.out, b...)
	e.logMu.Unlock()
}

// unlog removes a START line written for an invocation that never reached
// the function.
func (e *env) unlog(line []byte) {
	e.logMu.Lock()
	defer e.logMu.Unlock()
	if i := bytes.LastIndex(e.out, line); i >= 0 {
		e.out = append(e.out[:i], e.out[i+len(line):]...)
		for k := range e.marks {
			if e.marks[k].off > i {
				e.marks[k].off = max(i, e.marks[k].off-len(line))
			}
		}
	}
}

// takeLog returns a copy of the log accumulated since the last take and
// writes it to the function's log file.
func (e *env) takeLog() []byte {
	e.logMu.Lock()
	defer e.logMu.Unlock()
	if len(e.out) == 0 {
		return nil
	}
	log := make([]byte, len(e.out))
	copy(log, e.out)
	e.m.logs.write(e.spec.Account, e.spec.Function, e.spec.Version, e.out, e.marks)
	if cap(e.out) > keepLogBuffer {
		e.out = nil
	} else {
		e.out = e.out[:0]
	}
	e.marks = e.marks[:0]
	return log
}

// peakMB is Max Memory Used: the process's peak resident set in MB.
// peakEvery is how often an environment's peak memory is read from /proc.
// VmHWM is a high-water mark, so a later reading still holds an earlier
// peak: reading less often only delays when a rise shows in REPORT lines.
const peakEvery = 250 * time.Millisecond

func (e *env) peakMB() int {
	e.logMu.Lock()
	defer e.logMu.Unlock()
	// status is read under logMu because stop closes it under logMu; a
	// pread on a closed (and perhaps reused) descriptor would read another
	// file.
	// Reading /proc costs more than a small invocation; the peak only
	// grows, so a reading at most peakEvery old is a close lower bound.
	// peakEvery paces a cost of this machine: wall clock.
	// A sandbox's cgroup outlives its processes until stop: its peak
	// is still there to read after an exit.
	if now := time.Now(); (e.box != nil || !e.exitedNow()) && now.Sub(e.peakAt) >= peakEvery {
		e.peakAt = now
		if e.box != nil {
			// The whole tree, from the cgroup (0 without one).
			e.peakKB = max(e.peakKB, e.box.PeakBytes()>>10)
		} else if kb, ok := peakRSS(e.status, e.statusBuf); ok && kb > e.peakKB {
			e.peakKB = kb
		}
	}
	return int((e.peakKB + 1023) / 1024)
}

// exitedNow reports whether the process has exited.
func (e *env) exitedNow() bool {
	select {
	case <-e.exited:
		return true
	default:
		return false
	}
}

// exitReason is how AWS words a runtime's exit: "exit status 2",
// "signal: killed".
func (e *env) exitReason() string {
	<-e.exited
	if e.waitErr == nil {
		return ""
	}
	var ee *exec.ExitError
	if errors.As(e.waitErr, &ee) {
		return ee.Error()
	}
	return e.waitErr.Error()
}

// kill sends SIGKILL to the whole process group, and keeps a start that
// has not begun from beginning.
func (e *env) kill() {
	e.procMu.Lock()
	defer e.procMu.Unlock()
	e.stopping = true
	// The group is killed even when its leader has exited already: what
	// the function left running must not outlive the environment. The
	// group id cannot name another group while any member lives.
	if e.started && !e.killed {
		e.killed = true
		if e.box != nil {
			e.box.Kill() // its pid namespace: every process in it
		} else {
			syscall.Kill(-e.pid, syscall.SIGKILL)
		}
	}
}

// halt kills the process group and waits until the process has been reaped
// and its output drained, so the invocation's log can be completed.
func (e *env) halt() {
	e.kill()
	e.procMu.Lock()
	started := e.started
	e.procMu.Unlock()
	if started {
		<-e.waiterDone
		e.drain()
	}
}

// stop kills the environment and releases everything it holds: it returns
// once the process has been reaped, every goroutine of the environment has
// returned, the remaining output is in the log file and the TMPDIR is gone.
// Safe to call more than once and from several goroutines.
func (e *env) stop() {
	e.kill()
	e.stopOnce.Do(func() {
		e.procMu.Lock()
		started := e.started
		e.procMu.Unlock()
		if started {
			<-e.waiterDone
			// Group members that outlived the leader would keep the pipe
			// open; they were killed above, but one that left the group
			// must not hold this up: take what is there and close.
			e.drain()
			e.pipe.Close()
			<-e.readerDone
			if e.box != nil {
				e.box.Release()
			}
			e.logMu.Lock()
			if e.status != nil {
				e.status.Close()
				e.status = nil
			}
			e.logMu.Unlock()
		} else if e.pipe != nil {
			e.pipe.Close()
		}
		if e.srv != nil {
			e.srv.Close()
		}
		if e.api != nil {
			e.api.Close()
		}
		e.takeLog()
		if e.tmpDir != "" {
			removeAll(e.tmpDir)
		}
		if e.held != nil {
			e.held()
		}
		e.m.forget(e)
	})
}

// removeAll removes dir even when the function left directories without
// write permission in it.
func removeAll(dir string) {
	if os.RemoveAll(dir) == nil {
		return
	}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o700)
		}
		return nil
	})
	os.RemoveAll(dir)
}
