package main

// The attacks a function may try on lambdad, each answering what it got.

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// accepted counts the connections the "listen" attack's listeners took.
var accepted atomic.Int64

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func spy(ev *event) (any, bool) {
	switch ev.Op {
	case "read":
		b, err := os.ReadFile(ev.Path)
		return map[string]any{"data": string(b), "err": errText(err)}, true
	case "list":
		ents, err := os.ReadDir(ev.Path)
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		return map[string]any{"names": names, "err": errText(err)}, true
	case "grep-environ":
		// Every process's environment this one can read, for Text.
		var found []string
		paths, _ := filepath.Glob("/proc/[0-9]*/environ")
		for _, p := range paths {
			if b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), ev.Text) {
				found = append(found, p)
			}
		}
		return map[string]any{"found": found, "procs": len(paths)}, true
	case "kill":
		err := syscall.Kill(ev.PID, syscall.Signal(ev.Code))
		return map[string]any{"err": errText(err)}, true
	case "id":
		groups, _ := os.Getgroups()
		st, _ := os.ReadFile("/proc/self/status")
		return map[string]any{"uid": os.Getuid(), "euid": os.Geteuid(), "gid": os.Getgid(), "groups": groups,
			"pid": os.Getpid(), "ppid": os.Getppid(), "status": string(st)}, true
	case "mmap":
		b, err := syscall.Mmap(-1, 0, ev.MB<<20, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
		if err != nil {
			return map[string]any{"err": errText(err)}, true
		}
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		return map[string]any{"touched": len(b)}, true
	case "fill":
		// Writes MB MiB to Path, or as much as fits.
		f, err := os.Create(ev.Path)
		if err != nil {
			return map[string]any{"err": errText(err)}, true
		}
		defer f.Close()
		chunk := make([]byte, 1<<20)
		n := 0
		for ; n < ev.MB; n++ {
			if _, err = f.Write(chunk); err != nil {
				break
			}
		}
		return map[string]any{"mb": n, "err": errText(err)}, true
	case "children":
		// N children that each allocate MB MiB and wait.
		for i := 0; i < ev.N; i++ {
			cmd := exec.Command("/proc/self/exe", ev.Marker)
			cmd.Env = []string{"SPY_CHILD=alloc", "SPY_MB=" + strconv.Itoa(ev.MB)}
			if err := cmd.Start(); err != nil {
				return map[string]any{"err": errText(err)}, true
			}
		}
		time.Sleep(time.Duration(ev.Ms) * time.Millisecond)
		return map[string]any{"started": ev.N}, true
	case "detach":
		// A child in a session of its own, named by Marker, that spins
		// (so a test can see whether it runs) and outlives the handler.
		cmd := exec.Command("/proc/self/exe", ev.Marker)
		cmd.Env = []string{"SPY_CHILD=spin"}
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			return map[string]any{"err": errText(err)}, true
		}
		time.Sleep(time.Duration(ev.Ms) * time.Millisecond)
		return map[string]any{"pid": cmd.Process.Pid}, true
	case "syscalls":
		// What a function never needs: new namespaces, tracing, mounts,
		// the kernel keyring.
		out := map[string]string{}
		_, _, e := syscall.RawSyscall(syscall.SYS_UNSHARE, syscall.CLONE_NEWUSER, 0, 0)
		out["unshare"] = e.Error()
		_, _, e = syscall.RawSyscall(syscall.SYS_PTRACE, syscall.PTRACE_ATTACH, 1, 0)
		out["ptrace"] = e.Error()
		out["mount"] = errText(syscall.Mount("tmpfs", "/tmp", "tmpfs", 0, ""))
		_, _, e = syscall.RawSyscall(syscall.SYS_KEYCTL, 0, 0, 0)
		out["keyctl"] = e.Error()
		return out, true
	case "connect":
		c, err := net.DialTimeout("tcp", ev.Addr, 500*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return map[string]any{"err": errText(err)}, true
	case "dial":
		// Connects to Addr and reads a line of what it answers.
		c, err := net.DialTimeout("tcp", ev.Addr, time.Duration(max(ev.Ms, 500))*time.Millisecond)
		if err != nil {
			return map[string]any{"err": errText(err)}, true
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		return map[string]any{"got": line, "err": errText(err)}, true
	case "listen":
		// Listens at Addr and counts the connections accepted, for as long
		// as the environment lives.
		ln, err := net.Listen("tcp", ev.Addr)
		if err != nil {
			return map[string]any{"err": errText(err)}, true
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				accepted.Add(1)
				c.Close()
			}
		}()
		return map[string]any{"addr": ln.Addr().String()}, true
	case "accepted":
		return map[string]any{"n": accepted.Load()}, true
	case "steal":
		// GET /next on every Runtime API this process can name; answer
		// whatever it gets with a forged payload.
		var stolen []string
		paths, _ := filepath.Glob("/proc/[0-9]*/environ")
		own := os.Getenv("AWS_LAMBDA_RUNTIME_API")
		for _, p := range paths {
			b, _ := os.ReadFile(p)
			for _, kv := range strings.Split(string(b), "\x00") {
				if api, ok := strings.CutPrefix(kv, "AWS_LAMBDA_RUNTIME_API="); ok && api != own {
					stolen = append(stolen, api)
				}
			}
		}
		return map[string]any{"apis": stolen}, true
	}
	return nil, false
}

// spyChild is a child started by the "children" and "detach" attacks.
func spyChild() {
	switch os.Getenv("SPY_CHILD") {
	case "alloc":
		mb, _ := strconv.Atoi(os.Getenv("SPY_MB"))
		b := make([]byte, mb<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		time.Sleep(time.Minute)
		fmt.Println(len(b))
	case "spin":
		for {
		}
	}
	os.Exit(0)
}
