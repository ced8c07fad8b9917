package simulate

import (
	"bufio"
	"bytes"
	"container/heap"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
)

// Invocation is one request of a trace, times in nanoseconds.
type Invocation struct {
	// At is when the request arrives, from the trace's epoch.
	At int64
	// Target is the trace's function[:qualifier] as written; Function and
	// Qualifier its parts ("" when unqualified). The three are interned:
	// the same text is the same string for the whole trace.
	Target, Function, Qualifier string
	// Duration is how long the invocation runs; Init how long a cold start
	// adds before it (0: not given).
	Duration, Init int64
}

// Trace reads a trace as a stream of invocations, in the order of its
// lines, holding only the line at hand (and, for aggregated rates, the
// rows of the second at hand). Formats, told apart by the first line:
//
//   - CSV with a header naming its columns: timestamp_ms, function,
//     duration_ms and optionally init_ms (one invocation a line), or
//     second, function, requests, mean_duration_ms (aggregated rates);
//     other columns are ignored. Lines starting with # are comments.
//   - JSON lines, one object a line, with the same keys: an object with
//     "second" is a rate row, else an invocation.
//
// A rate row stands for requests invocations of mean_duration_ms each,
// evenly spaced over its second; the rows of one second are merged in
// time order. Lines must come in time order (rows by second).
type Trace struct {
	sc   *bufio.Scanner
	line int
	json bool
	// cols maps a CSV column to its field (a col* constant); -1: ignored.
	cols  []int
	rates bool
	names map[string]*name
	// last is the previous invocation's time, to refuse lines out of
	// order.
	last    int64
	started bool
	// The rate rows of the current second and their expansion.
	group   []rateRow
	peek    *rateRow
	cursor  []int64 // per row of group: invocations emitted so far
	pending rows
	fields  [8][]byte
}

type name struct{ target, function, qualifier string }

type rateRow struct {
	line     int
	second   int64
	name     *name
	requests int64
	duration int64
}

const (
	colIgnored = iota - 1
	colTimestamp
	colFunction
	colDuration
	colInit
	colSecond
	colRequests
	colMean
)

var columns = map[string]int{
	"timestamp_ms": colTimestamp, "function": colFunction, "duration_ms": colDuration, "init_ms": colInit,
	"second": colSecond, "requests": colRequests, "mean_duration_ms": colMean,
}

// maxLine bounds a trace line; a longer one is an error, not a growing
// buffer.
const maxLine = 1 << 20

// NewTrace reads a trace from r.
func NewTrace(r io.Reader) *Trace {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	return &Trace{sc: sc, names: map[string]*name{}}
}

// Line is the number of the line last read.
func (t *Trace) Line() int { return t.line }

func (t *Trace) errorf(line int, format string, a ...any) error {
	return fmt.Errorf("trace line %d: %s", line, fmt.Sprintf(format, a...))
}

// Next reads the next invocation into inv; false at the end of the trace
// or on an error (then err says which line is wrong and why).
func (t *Trace) Next(inv *Invocation) (ok bool, err error) {
	for {
		if t.rates {
			ok, err := t.nextRate(inv)
			if ok || err != nil {
				return ok, err
			}
			if t.rates {
				return false, nil
			}
		}
		b, err := t.readLine()
		if err != nil || b == nil {
			return false, err
		}
		if !t.started {
			if err := t.header(b); err != nil {
				return false, err
			}
			if !t.json {
				continue
			}
		}
		if t.rates {
			// The first JSON line was a rate row: header read it as such.
			continue
		}
		if err := t.invocation(b, inv); err != nil {
			return false, err
		}
		if inv.At < t.last {
			return false, t.errorf(t.line, "timestamp %s is before the previous line's %s: the trace must be in time order (sort it by timestamp_ms)", ms(inv.At), ms(t.last))
		}
		t.last = inv.At
		return true, nil
	}
}

// readLine returns the next line that is neither blank nor a comment, nil
// at the end.
func (t *Trace) readLine() ([]byte, error) {
	for t.sc.Scan() {
		t.line++
		b := bytes.TrimSpace(t.sc.Bytes())
		if len(b) == 0 || b[0] == '#' {
			continue
		}
		return b, nil
	}
	if err := t.sc.Err(); err != nil {
		if err == bufio.ErrTooLong {
			return nil, t.errorf(t.line+1, "longer than %d bytes", maxLine)
		}
		return nil, fmt.Errorf("trace: %w", err)
	}
	if !t.started {
		return nil, fmt.Errorf("trace: empty (want a CSV header line or JSON lines)")
	}
	return nil, nil
}

// header reads the first line: a CSV header, or the first JSON line.
func (t *Trace) header(b []byte) error {
	t.started = true
	if b[0] == '{' {
		t.json = true
		var probe map[string]json.RawMessage
		if err := json.Unmarshal(b, &probe); err != nil {
			return t.errorf(t.line, "not a JSON object: %v", err)
		}
		if _, ok := probe["second"]; ok {
			t.rates = true
			r, err := t.rateRow(b)
			if err != nil {
				return err
			}
			t.peek = r
		}
		return nil
	}
	seen := map[int]bool{}
	for _, f := range bytes.Split(b, []byte(",")) {
		c, ok := columns[string(bytes.TrimSpace(f))]
		if !ok {
			c = colIgnored
		} else if seen[c] {
			return t.errorf(t.line, "column %s appears twice", f)
		}
		seen[c] = true
		t.cols = append(t.cols, c)
	}
	switch {
	case seen[colTimestamp] && seen[colFunction] && seen[colDuration]:
	case seen[colSecond] && seen[colFunction] && seen[colRequests] && seen[colMean]:
		t.rates = true
		r, err := t.nextRateLine()
		if err != nil {
			return err
		}
		t.peek = r
	default:
		return t.errorf(t.line, "the header %q names neither timestamp_ms,function,duration_ms[,init_ms] nor second,function,requests,mean_duration_ms", b)
	}
	return nil
}

// split cuts a CSV line into t.fields by column; it reports the number of
// fields.
func (t *Trace) split(b []byte) (int, error) {
	n := 0
	for {
		i := bytes.IndexByte(b, ',')
		f := b
		if i >= 0 {
			f = b[:i]
		}
		if n >= len(t.cols) {
			return 0, t.errorf(t.line, "more fields than the header's %d", len(t.cols))
		}
		if c := t.cols[n]; c >= 0 {
			t.fields[c] = bytes.TrimSpace(f)
		}
		n++
		if i < 0 {
			break
		}
		b = b[i+1:]
	}
	// Trailing optional fields (init_ms, ignored columns) may be left out.
	for _, c := range t.cols[n:] {
		if c != colInit && c != colIgnored {
			return 0, t.errorf(t.line, "%d fields, the header has %d", n, len(t.cols))
		}
	}
	return n, nil
}

func (t *Trace) invocation(b []byte, inv *Invocation) error {
	if t.json {
		var j struct {
			Timestamp *float64 `json:"timestamp_ms"`
			Function  *string  `json:"function"`
			Duration  *float64 `json:"duration_ms"`
			Init      *float64 `json:"init_ms"`
		}
		if err := json.Unmarshal(b, &j); err != nil {
			return t.errorf(t.line, "%v", err)
		}
		if j.Timestamp == nil || j.Function == nil || j.Duration == nil {
			return t.errorf(t.line, "an invocation needs timestamp_ms, function and duration_ms")
		}
		var err error
		if inv.At, err = t.floatNanos("timestamp_ms", *j.Timestamp); err != nil {
			return err
		}
		if inv.Duration, err = t.floatNanos("duration_ms", *j.Duration); err != nil {
			return err
		}
		inv.Init = 0
		if j.Init != nil {
			if inv.Init, err = t.floatNanos("init_ms", *j.Init); err != nil {
				return err
			}
		}
		n, err := t.intern([]byte(*j.Function))
		if err != nil {
			return err
		}
		inv.Target, inv.Function, inv.Qualifier = n.target, n.function, n.qualifier
		return nil
	}
	t.fields[colInit] = nil
	if _, err := t.split(b); err != nil {
		return err
	}
	var err error
	if inv.At, err = t.nanos("timestamp_ms", t.fields[colTimestamp]); err != nil {
		return err
	}
	if inv.Duration, err = t.nanos("duration_ms", t.fields[colDuration]); err != nil {
		return err
	}
	inv.Init = 0
	if len(t.fields[colInit]) > 0 {
		if inv.Init, err = t.nanos("init_ms", t.fields[colInit]); err != nil {
			return err
		}
	}
	n, err := t.intern(t.fields[colFunction])
	if err != nil {
		return err
	}
	inv.Target, inv.Function, inv.Qualifier = n.target, n.function, n.qualifier
	return nil
}

// intern returns the one name record of a function[:qualifier]; the map
// lookup with string(b) does not allocate.
func (t *Trace) intern(b []byte) (*name, error) {
	if n, ok := t.names[string(b)]; ok {
		return n, nil
	}
	s := string(b)
	fn, q := splitName(s)
	if fn == "" {
		return nil, t.errorf(t.line, "function %q has no name", s)
	}
	if len(t.names) >= maxNames {
		return nil, t.errorf(t.line, "more than %d functions and qualifiers", maxNames)
	}
	n := &name{target: s, function: fn, qualifier: q}
	t.names[s] = n
	return n, nil
}

// maxNames bounds the distinct function[:qualifier] values of a trace,
// the one thing held that grows with it.
const maxNames = 100000

// nanos parses a non-negative decimal number of milliseconds (digits, an
// optional fraction) into nanoseconds, without allocating for the common
// forms.
func (t *Trace) nanos(field string, b []byte) (int64, error) {
	if len(b) == 0 {
		return 0, t.errorf(t.line, "%s is empty", field)
	}
	var whole, frac, scale int64 = 0, 0, 1e6
	i := 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		if whole > (math.MaxInt64/1000000-9)/10 {
			return 0, t.errorf(t.line, "%s %q is too large", field, b)
		}
		whole = whole*10 + int64(b[i]-'0')
	}
	if i < len(b) && b[i] == '.' && i > 0 {
		for i++; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
			if scale > 1 {
				scale /= 10
				frac += int64(b[i]-'0') * scale
			}
		}
	}
	if i == len(b) && b[0] != '.' {
		return whole*1e6 + frac, nil
	}
	// Anything else (an exponent, a sign) goes through ParseFloat.
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return 0, t.errorf(t.line, "%s %q is not a number", field, b)
	}
	return t.floatNanos(field, f)
}

func (t *Trace) floatNanos(field string, f float64) (int64, error) {
	if f < 0 || math.IsNaN(f) {
		return 0, t.errorf(t.line, "%s %v is negative", field, f)
	}
	if f*1e6 >= math.MaxInt64/2 {
		return 0, t.errorf(t.line, "%s %v is too large", field, f)
	}
	return int64(math.Round(f * 1e6)), nil
}

// nextRateLine reads the next rate row, nil at the end.
func (t *Trace) nextRateLine() (*rateRow, error) {
	b, err := t.readLine()
	if err != nil || b == nil {
		return nil, err
	}
	return t.rateRow(b)
}

func (t *Trace) rateRow(b []byte) (*rateRow, error) {
	r := &rateRow{line: t.line}
	var fn []byte
	var second, requests, mean int64
	var err error
	if t.json {
		var j struct {
			Second   *float64 `json:"second"`
			Function *string  `json:"function"`
			Requests *float64 `json:"requests"`
			Mean     *float64 `json:"mean_duration_ms"`
		}
		if err := json.Unmarshal(b, &j); err != nil {
			return nil, t.errorf(t.line, "%v", err)
		}
		if j.Second == nil || j.Function == nil || j.Requests == nil || j.Mean == nil {
			return nil, t.errorf(t.line, "a rate row needs second, function, requests and mean_duration_ms")
		}
		if *j.Second != math.Trunc(*j.Second) || *j.Requests != math.Trunc(*j.Requests) {
			return nil, t.errorf(t.line, "second and requests must be whole numbers")
		}
		if second, err = t.floatNanos("second", *j.Second); err != nil {
			return nil, err
		}
		if requests, err = t.floatNanos("requests", *j.Requests); err != nil {
			return nil, err
		}
		if mean, err = t.floatNanos("mean_duration_ms", *j.Mean); err != nil {
			return nil, err
		}
		fn = []byte(*j.Function)
	} else {
		if _, err := t.split(b); err != nil {
			return nil, err
		}
		if second, err = t.nanos("second", t.fields[colSecond]); err != nil {
			return nil, err
		}
		if requests, err = t.nanos("requests", t.fields[colRequests]); err != nil {
			return nil, err
		}
		if mean, err = t.nanos("mean_duration_ms", t.fields[colMean]); err != nil {
			return nil, err
		}
		fn = t.fields[colFunction]
	}
	// second and requests were read as milliseconds: scaled by 1e6.
	if second%1e6 != 0 || requests%1e6 != 0 {
		return nil, t.errorf(t.line, "second and requests must be whole numbers")
	}
	if second/1e6 > math.MaxInt64/1000000000/2 {
		return nil, t.errorf(t.line, "second %d is too large", second/1e6)
	}
	r.second, r.requests, r.duration = second/1e6, requests/1e6, mean
	if r.requests > maxRequestsPerRow {
		return nil, t.errorf(t.line, "requests %d is more than %d", r.requests, maxRequestsPerRow)
	}
	if r.name, err = t.intern(fn); err != nil {
		return nil, err
	}
	return r, nil
}

// maxRequestsPerRow bounds one rate row: a billion requests in one second
// of one function is a typo.
const maxRequestsPerRow = 1_000_000_000

// nextRate emits the next invocation of the rate rows: it gathers the
// rows of one second, then merges their evenly spaced invocations through
// a heap of the rows by their next invocation's time.
func (t *Trace) nextRate(inv *Invocation) (bool, error) {
	for {
		if len(t.pending) > 0 {
			i := t.pending[0]
			r := &t.group[i]
			at := t.pending.at(t, i)
			t.cursor[i]++
			if t.cursor[i] < r.requests {
				heap.Fix(&rowHeap{t}, 0)
			} else {
				heap.Pop(&rowHeap{t})
			}
			*inv = Invocation{At: at, Target: r.name.target, Function: r.name.function, Qualifier: r.name.qualifier, Duration: r.duration}
			t.last = at
			return true, nil
		}
		// The group is done: gather the next second's rows.
		t.group, t.cursor = t.group[:0], t.cursor[:0]
		if t.peek == nil {
			return false, nil
		}
		sec := t.peek.second
		if sec*1e9 < t.last {
			return false, t.errorf(t.peek.line, "second %d comes after second %d: the rows must be in time order (sort them by second)", sec, t.last/1e9)
		}
		for t.peek != nil && t.peek.second == sec {
			if len(t.group) >= maxNames {
				return false, t.errorf(t.peek.line, "more than %d rows in second %d", maxNames, sec)
			}
			if t.peek.requests > 0 {
				t.group = append(t.group, *t.peek)
				t.cursor = append(t.cursor, 0)
				t.pending = append(t.pending, len(t.group)-1)
			}
			r, err := t.nextRateLine()
			if err != nil {
				return false, err
			}
			t.peek = r
		}
		heap.Init(&rowHeap{t})
		t.last = sec * 1e9
	}
}

// rows are the indexes of the rows of t.group with invocations to come.
type rows []int

// at is when row i's next invocation comes.
func (rows) at(t *Trace, i int) int64 {
	r := &t.group[i]
	return r.second*1e9 + t.cursor[i]*1e9/r.requests
}

// rowHeap orders t.pending by rows.at.
type rowHeap struct{ t *Trace }

func (h *rowHeap) Len() int { return len(h.t.pending) }
func (h *rowHeap) Less(i, j int) bool {
	p := h.t.pending
	return p.at(h.t, p[i]) < p.at(h.t, p[j])
}
func (h *rowHeap) Swap(i, j int) { p := h.t.pending; p[i], p[j] = p[j], p[i] }
func (h *rowHeap) Push(x any)    { h.t.pending = append(h.t.pending, x.(int)) }
func (h *rowHeap) Pop() any {
	p := h.t.pending
	x := p[len(p)-1]
	h.t.pending = p[:len(p)-1]
	return x
}

// ms formats nanoseconds as milliseconds.
func ms(ns int64) string { return strconv.FormatFloat(float64(ns)/1e6, 'f', -1, 64) }
