package server

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// LockFile is the file under a data directory that the node serving it
// holds an exclusive flock on, and in which it writes its process id.
const LockFile = "lambdad.pid"

// ErrDataDirInUse is wrapped by the error Start returns when another node
// holds the data directory.
var ErrDataDirInUse = errors.New("data directory in use")

// inUseError names the directory and, when it could be read, the process
// holding it.
type inUseError struct {
	dir string
	pid int // 0 when unknown
}

func (e *inUseError) Error() string {
	if e.pid == 0 {
		return fmt.Sprintf("data directory %s is in use by another lambdad", e.dir)
	}
	return fmt.Sprintf("data directory %s is in use by another lambdad (pid %d)", e.dir, e.pid)
}

func (e *inUseError) Unwrap() error { return ErrDataDirInUse }

// lockDataDir takes the data directory for this node: an exclusive,
// non-blocking flock on dir/LockFile, which then holds this process's id.
// The lock, not the file, is what counts: the kernel drops it when the
// process dies, so a node killed with kill -9 leaves nothing to clean up
// and the pid in a file nobody has locked means nothing. The store has a
// lock of its own, but it waits for it (and then only says "timeout"), and
// it comes after other work on the directory; this one answers at once and
// names the holder.
//
// flock belongs to the open file description, so a second Start in the
// same process conflicts too. The descriptor is close-on-exec (as every
// file Go opens), so function processes never inherit the lock.
func lockDataDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, LockFile), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock data directory: %w", err)
	}
	if err := flock(f, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			b, _ := io.ReadAll(io.LimitReader(f, 32))
			pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
			return nil, &inUseError{dir: dir, pid: pid}
		}
		return nil, fmt.Errorf("lock data directory %s: %w", dir, err)
	}
	if err := writePID(f, os.Getpid()); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock data directory %s: %w", dir, err)
	}
	return f, nil
}

// unlockDataDir empties the lock file, so it names no stale process, and
// closes it, which releases the lock. The file stays: removing it would
// let a node that opened the old file before the removal and one that
// creates a new file both believe they hold the directory.
func unlockDataDir(f *os.File) error {
	err := f.Truncate(0)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("unlock data directory: %w", err)
	}
	return nil
}

func writePID(f *os.File, pid int) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err := f.WriteAt([]byte(strconv.Itoa(pid)+"\n"), 0)
	return err
}

// flock retries on EINTR, which a signal arriving during the call causes.
func flock(f *os.File, how int) error {
	raw, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := raw.Control(func(fd uintptr) {
		for {
			if ferr = unix.Flock(int(fd), how); ferr != unix.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	return ferr
}
