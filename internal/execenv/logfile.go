// This file owns the function log files: LogDir/<function>.log, opened on
// first write, written through a buffer, flushed by a goroutine of its own
// every logFlushEvery and at Close, and the line format (LogLine,
// ParseLogLine) readers of those files parse.

package execenv

import (
	"bufio"
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// logFiles is the Manager's set of function log files. Writes are
// buffered and flushed every logFlushEvery by a goroutine of its own (and
// when a buffer fills, and at close), so that an invocation does not pay a
// write system call for its log.
type logFiles struct {
	dir string // "" for none: writes are dropped
	max int64  // a file reaching this size is rotated; 0: never
	log *slog.Logger

	stop chan struct{} // closed by close: stops the flusher
	done chan struct{} // closed when the flusher has returned

	mu     sync.Mutex             // guards the following; taken after env.logMu
	files  map[[2]string]*logFile // by account and function, opened on first write
	closed bool                   // set by close; later writes are dropped
}

// logFile is one function's log file.
type logFile struct {
	f     *os.File
	w     *bufio.Writer
	size  int64  // bytes in the file, buffered ones included
	stamp []byte // a line's prefix, reused
}

// logFlushEvery bounds how late a line reaches the log file. The flusher
// runs on the wall clock, not the Manager's Clock: it bounds how stale the
// file looks to a reader outside lambdad, and nothing in lambdad waits on
// it, so a virtual clock that stands still must not hold lines back.
const logFlushEvery = 200 * time.Millisecond

// newLogFiles prepares the log files under dir and starts their flusher;
// with dir "" there is nothing to flush, and no flusher.
func newLogFiles(dir string, max int64, log *slog.Logger) *logFiles {
	l := &logFiles{
		dir:   dir,
		max:   max,
		log:   log,
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
		files: map[[2]string]*logFile{},
	}
	if dir == "" {
		close(l.done)
	} else {
		go l.flusher()
	}
	return l
}

// flusher writes the buffered logs out every logFlushEvery until close.
func (l *logFiles) flusher() {
	defer close(l.done)
	t := time.NewTicker(logFlushEvery)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		l.flush()
	}
}

// flush writes every buffered log line out to the log files now.
func (l *logFiles) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for fn, f := range l.files {
		if err := f.w.Flush(); err != nil {
			l.log.Warn("writing the function log failed", "account", fn[0], "function", fn[1], "err", err)
		}
	}
}

// close stops the flusher, writes out what is buffered and closes every
// file. Later writes are dropped.
func (l *logFiles) close() {
	close(l.stop)
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	for _, f := range l.files {
		f.w.Flush()
		f.f.Close()
	}
	clear(l.files)
}

// write appends b, output of an environment of version, to the function's
// log file, each line stamped with the time of the mark in force where it
// begins (see LogLine). A line that does not end in b (output cut at
// maxLogBuffer, or left without its newline when an invocation ended) is
// ended here; its rest becomes a line of its own.
func (l *logFiles) write(account, function, version string, b []byte, marks []logMark) {
	if l.dir == "" || len(b) == 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	id := [2]string{account, function}
	f := l.files[id]
	if f == nil {
		if f = l.open(account, function); f == nil {
			return
		}
	}
	var off, mi int
	for off < len(b) {
		for mi+1 < len(marks) && marks[mi+1].off <= off {
			mi++
		}
		at := time.Now()
		if mi < len(marks) {
			at = marks[mi].at
		}
		line := b[off:]
		if i := bytes.IndexByte(line, '\n'); i >= 0 {
			line = line[:i]
		}
		off += len(line) + 1
		if l.max > 0 && f.size >= l.max {
			if f = l.rotate(account, function, f); f == nil {
				return
			}
		}
		f.stamp = appendLogPrefix(f.stamp[:0], at, version)
		f.size += int64(len(f.stamp) + len(line) + 1)
		f.w.Write(f.stamp)
		f.w.Write(line)
		if err := f.w.WriteByte('\n'); err != nil {
			l.log.Warn("writing the function log failed", "function", function, "err", err)
			return
		}
	}
}

// open opens function's log file for appending; nil after logging why not.
// l.mu must be held.
func (l *logFiles) open(account, function string) *logFile {
	path := LogFile(l.dir, account, function)
	os.MkdirAll(filepath.Dir(path), 0o755)
	file, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		l.log.Warn("opening the function log failed", "function", function, "err", err)
		return nil
	}
	f := &logFile{f: file, w: bufio.NewWriterSize(file, 64<<10)}
	if st, err := file.Stat(); err == nil {
		f.size = st.Size()
	}
	l.files[[2]string{account, function}] = f
	return f
}

// rotate moves a full log file to <function>.log.1, replacing the one
// there, and opens a new one: a function's logs take at most twice
// LogMaxBytes, plus a line. l.mu must be held.
func (l *logFiles) rotate(account, function string, f *logFile) *logFile {
	f.w.Flush()
	f.f.Close()
	delete(l.files, [2]string{account, function})
	name := LogFile(l.dir, account, function)
	if err := os.Rename(name, name+".1"); err != nil {
		l.log.Warn("rotating the function log failed", "function", function, "err", err)
	}
	return l.open(account, function)
}

// The function log file (LogFile) has one line per line of output, in the
// order written:
//
//	2006-01-02T15:04:05.000Z [VERSION] TEXT
//
// the UTC time, on the wall clock, the line's first byte reached lambdad
// (milliseconds, as CloudWatch Logs keeps them), the version whose
// environment wrote it in brackets, as in AWS's log stream names ($LATEST
// or a number), and the line as the function (or lambdad: START, END,
// REPORT, ...) wrote it. TEXT is what an invocation's
// LogType=Tail log holds, unstamped.
const logTimeLayout = "2006-01-02T15:04:05.000Z"

func appendLogPrefix(b []byte, at time.Time, version string) []byte {
	b = at.UTC().AppendFormat(b, logTimeLayout)
	b = append(b, " ["...)
	b = append(b, version...)
	return append(b, "] "...)
}

// LogLine is one parsed line of a function log file.
type LogLine struct {
	Time    time.Time
	Version string
	Text    []byte // aliases the parsed line
}

// ParseLogLine reads a line of a function log file, without its newline.
// ok is false for a line not in the format (as files written before it
// hold).
func ParseLogLine(line []byte) (l LogLine, ok bool) {
	stamp, rest, ok := bytes.Cut(line, []byte(" ["))
	if !ok {
		return LogLine{}, false
	}
	version, text, ok := bytes.Cut(rest, []byte("] "))
	if !ok || len(version) == 0 {
		return LogLine{}, false
	}
	at, err := time.Parse(logTimeLayout, string(stamp))
	if err != nil {
		return LogLine{}, false
	}
	return LogLine{Time: at, Version: string(version), Text: text}, true
}

// FlushLogs writes every buffered log line out to the log files now.
func (m *Manager) FlushLogs() { m.logs.flush() }

// LogFile is the path of the log file of account's function under logDir:
// <logDir>/<account>/<function>.log. Accounts are digits and function names
// [A-Za-z0-9_-]; anything else is replaced so a name can never leave its
// directory.
func LogFile(logDir, account, function string) string {
	return filepath.Join(logDir, pathSafe(account), pathSafe(function)+".log")
}

func pathSafe(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	if len(b) == 0 {
		b = []byte("_")
	}
	return string(b)
}
