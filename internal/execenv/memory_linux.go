package execenv

import (
	"bytes"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// limitMemory caps the data segment of the process at mb MiB with
// RLIMIT_DATA, set from outside right after the process starts.
//
// What this enforces: since Linux 4.7 RLIMIT_DATA counts every private
// writable mapping (heap, anonymous mmap, thread stacks other than the main
// one), so a Go, Python or Node.js function that allocates past its memory
// size gets ENOMEM and fails the way it would on AWS (Go: "fatal error:
// out of memory"; Python: MemoryError; Node.js: allocation failure), which
// ends the invocation with Runtime.ExitError or the runtime's error.
//
// What it does not enforce: RLIMIT_AS is not used, because Go and V8
// reserve gigabytes of address space they never touch; file-backed and
// shared mappings (the page cache, memfd, shared memory) are not counted;
// children the function starts inherit the limit each on their own, so a
// process tree can use more than the limit in total; and the few
// microseconds between exec and the prlimit call are unlimited. Max Memory
// Used is the peak resident set (VmHWM) of the main process only.
func limitMemory(pid, mb int) error {
	if mb <= 0 {
		return nil
	}
	n := uint64(mb) << 20
	return unix.Prlimit(pid, unix.RLIMIT_DATA, &unix.Rlimit{Cur: n, Max: n}, nil)
}

// openStatus opens /proc/<pid>/status once; each peakRSS reads it again
// with one pread.
func openStatus(pid int) (*os.File, error) {
	return os.Open("/proc/" + strconv.Itoa(pid) + "/status")
}

var vmHWM = []byte("VmHWM:")

// peakRSS returns VmHWM in KiB from an open /proc/<pid>/status, reading
// into buf (which must hold the whole file, about 1.5 KiB).
func peakRSS(f *os.File, buf []byte) (int64, bool) {
	if f == nil {
		return 0, false
	}
	// One pread regenerates the whole file; ReadAt would loop to EOF.
	n, err := unix.Pread(int(f.Fd()), buf, 0)
	if n <= 0 || err != nil {
		return 0, false
	}
	b := buf[:n]
	i := bytes.Index(b, vmHWM)
	if i < 0 {
		return 0, false
	}
	b = b[i+len(vmHWM):]
	if j := bytes.IndexByte(b, '\n'); j >= 0 {
		b = b[:j]
	}
	b = bytes.TrimSpace(bytes.TrimSuffix(bytes.TrimSpace(b), []byte("kB")))
	kb, err := strconv.ParseInt(string(b), 10, 64)
	return kb, err == nil
}
