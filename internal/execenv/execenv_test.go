package execenv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lambdad/lambdad/internal/awserr"
	"github.com/lambdad/lambdad/internal/function"
	"github.com/lambdad/lambdad/internal/runtimeapi"
)

// goCodeDir holds the Go test function built by TestMain as "bootstrap".
var goCodeDir string

func TestMain(m *testing.M) {
	if marker := os.Getenv("LAMBDAD_TEST_BOXED_SERVER"); marker != "" {
		os.Exit(boxedServer(marker))
	}
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "execenv-gofunc-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	// As code directories are (see package archive): a sandboxed
	// function, another user, reads them.
	os.Chmod(dir, 0o755)
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if p, err := exec.LookPath("go"); err == nil {
		gobin = p
	}
	cmd := exec.Command(gobin, "build", "-tags", "lambda.norpc", "-o", filepath.Join(dir, "bootstrap"), "./testdata/gofunc")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the test function: %v\n%s", err, out)
		return 1
	}
	goCodeDir = dir
	return m.Run()
}

var requestSeq atomic.Int64

func newRequest(payload string) *Request {
	return &Request{
		RequestID: fmt.Sprintf("00000000-0000-4000-8000-%012d", requestSeq.Add(1)),
		Payload:   []byte(payload),
	}
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func newManager(t testing.TB, cfg Config) *Manager {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	if cfg.TempRoot == "" {
		cfg.TempRoot = t.TempDir()
	}
	m, err := NewManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func goSpec(name string) *Spec {
	return &Spec{
		Function: name,
		Version:  "$LATEST",
		Revision: "r1",
		Runtime:  "provided.al2023",
		Handler:  "bootstrap",
		CodeDir:  goCodeDir,
		MemoryMB: 128,
		Timeout:  10 * time.Second,
		Region:   "us-east-1",
		Account:  "123456789012",
	}
}

func invoke(t testing.TB, m *Manager, spec *Spec, payload string) (*Request, *Result) {
	t.Helper()
	req := newRequest(payload)
	res, err := m.Invoke(context.Background(), spec, req)
	if err != nil {
		t.Fatalf("Invoke(%s): %v", payload, err)
	}
	return req, res
}

func wantOK(t *testing.T, res *Result) {
	t.Helper()
	if res.FunctionError != "" {
		t.Fatalf("function error %s: %s\nlog:\n%s", res.FunctionError, res.Payload, res.Log)
	}
}

func pidOf(t *testing.T, m *Manager, spec *Spec) (int, *Result) {
	t.Helper()
	_, res := invoke(t, m, spec, `{"op":"pid"}`)
	wantOK(t, res)
	pid, err := strconv.Atoi(string(res.Payload))
	if err != nil {
		t.Fatalf("pid payload %q", res.Payload)
	}
	return pid, res
}

// alive reports whether pid is a live (non-zombie) process.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && len(s) > i+2 && s[i+2] != 'Z'
}

// groupMembers counts live processes in process group pgid.
func groupMembers(pgid int) int {
	ents, _ := os.ReadDir("/proc")
	n := 0
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		f := strings.Fields(s[i+1:])
		if len(f) > 2 && f[0] != "Z" && f[2] == strconv.Itoa(pgid) {
			n++
		}
		_ = pid
	}
	return n
}

// eventually polls cond for up to 5 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var reportRE = regexp.MustCompile(`(?m)^REPORT RequestId: (\S+)\tDuration: \d+\.\d\d ms\tBilled Duration: \d+ ms\tMemory Size: 128 MB\tMax Memory Used: [1-9]\d* MB\t(Init Duration: \d+\.\d\d ms\t)?$`)

func TestWarmReuseAndLog(t *testing.T) {
	logDir := t.TempDir()
	m := newManager(t, Config{LogDir: logDir})
	spec := goSpec("warm")
	pid1, res1 := pidOf(t, m, spec)
	pid2, res2 := pidOf(t, m, spec)
	if pid1 != pid2 {
		t.Fatalf("second invoke ran in pid %d, want the warm %d", pid2, pid1)
	}
	if !res1.ColdStart || res1.InitDuration <= 0 || res2.ColdStart || res2.InitDuration != 0 {
		t.Fatalf("cold/warm = %v %v / %v %v", res1.ColdStart, res1.InitDuration, res2.ColdStart, res2.InitDuration)
	}
	if res2.BilledDuration < res2.Duration || res2.BilledDuration%time.Millisecond != 0 || res2.MaxMemoryUsedMB <= 0 {
		t.Fatalf("billed %v for %v, max memory %d", res2.BilledDuration, res2.Duration, res2.MaxMemoryUsedMB)
	}
	for i, res := range []*Result{res1, res2} {
		lines := strings.Split(strings.TrimSuffix(string(res.Log), "\n"), "\n")
		if len(lines) != 3 || !strings.HasPrefix(lines[0], "START RequestId: ") || !strings.HasSuffix(lines[0], " Version: $LATEST") ||
			!strings.HasPrefix(lines[1], "END RequestId: ") {
			t.Fatalf("log %d:\n%s", i, res.Log)
		}
		mm := reportRE.FindStringSubmatch(lines[2])
		if mm == nil || (mm[2] != "") != (i == 0) {
			t.Fatalf("REPORT line %d = %q", i, lines[2])
		}
	}
	st := m.Stats()
	if st.Idle != 1 || st.Busy != 0 || st.Started != 1 || st.ColdStarts != 1 || st.WarmStarts != 1 {
		t.Fatalf("Stats = %+v", st)
	}
	m.FlushLogs()
	file, err := os.ReadFile(LogFile(logDir, "123456789012", "warm"))
	if err != nil {
		t.Fatal(err)
	}
	// The file holds the same lines, each stamped with its time and the
	// version that wrote it.
	var text []byte
	for _, line := range strings.SplitAfter(string(file), "\n") {
		if line == "" {
			continue
		}
		l, ok := ParseLogLine([]byte(strings.TrimSuffix(line, "\n")))
		if !ok || l.Version != "$LATEST" || time.Since(l.Time) > time.Minute || time.Since(l.Time) < 0 {
			t.Fatalf("log file line %q: parsed %+v %v", line, l, ok)
		}
		text = append(append(text, l.Text...), '\n')
	}
	if want := string(res1.Log) + string(res2.Log); string(text) != want {
		t.Fatalf("log file:\n%s\nwant the lines of:\n%s", file, want)
	}
}

// TestLogFileFormat checks the stamps of the log file: every line gets the
// time its first byte arrived and the version, a line arriving in pieces
// gets one stamp, and an unfinished line is ended.
func TestLogFileFormat(t *testing.T) {
	logDir := t.TempDir()
	m := newManager(t, Config{LogDir: logDir})
	e := newEnv(m, &Spec{Function: "fmt", Version: "7"}, 0)
	t0 := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	e.logMu.Lock()
	for i, piece := range []string{"one\ntw", "o\n", "three", "\nfour\nfive"} {
		e.markLocked([]byte(piece))
		if n := len(e.marks); n > 0 && e.marks[n-1].off == len(e.out) {
			e.marks[n-1].at = at(i * 10)
		}
		e.out = append(e.out, piece...)
	}
	e.logMu.Unlock()
	e.takeLog()
	m.FlushLogs()
	file, err := os.ReadFile(LogFile(logDir, "", "fmt"))
	if err != nil {
		t.Fatal(err)
	}
	// "o\n" continues "tw" and begins no line: it takes no mark.
	want := "2024-05-06T07:08:09.123Z [7] one\n" +
		"2024-05-06T07:08:09.123Z [7] two\n" +
		"2024-05-06T07:08:09.143Z [7] three\n" +
		"2024-05-06T07:08:09.153Z [7] four\n" +
		"2024-05-06T07:08:09.153Z [7] five\n"
	if string(file) != want {
		t.Fatalf("log file:\n%s\nwant:\n%s", file, want)
	}
	if l, ok := ParseLogLine([]byte("2024-05-06T07:08:09.153Z [7] four")); !ok || l.Version != "7" || string(l.Text) != "four" || !l.Time.Equal(at(30).Truncate(time.Millisecond)) {
		t.Errorf("ParseLogLine = %+v %v", l, ok)
	}
	// Removing a START line and cutting the buffer keep the marks on the
	// bytes they stamp.
	e.logMu.Lock()
	e.out, e.marks = []byte("a\nSTART x\nb\nc\n"), []logMark{{0, at(0)}, {2, at(1)}, {10, at(2)}, {12, at(3)}}
	e.logMu.Unlock()
	e.unlog([]byte("START x\n"))
	if want := []logMark{{0, at(0)}, {2, at(1)}, {2, at(2)}, {4, at(3)}}; !slices.Equal(e.marks, want) {
		t.Errorf("marks after unlog = %v, want %v", e.marks, want)
	}
	e.logMu.Lock()
	e.dropMarksLocked(3)
	e.logMu.Unlock()
	if want := []logMark{{0, at(2)}, {1, at(3)}}; !slices.Equal(e.marks, want) {
		t.Errorf("marks after a cut = %v, want %v", e.marks, want)
	}
	for _, bad := range []string{"START RequestId: x Version: 1", "", "2024-05-06 [7] x", "2024-05-06T07:08:09.153Z [] x"} {
		if _, ok := ParseLogLine([]byte(bad)); ok {
			t.Errorf("ParseLogLine(%q) accepted a line not in the format", bad)
		}
	}
}

func TestOutputCapture(t *testing.T) {
	m := newManager(t, Config{})
	spec := goSpec("out")
	spec.Env = map[string]string{"TEST_INIT": "print"}
	req, res := invoke(t, m, spec, `{"op":"print","text":"hello"}`)
	wantOK(t, res)
	want := "init: hello\nSTART RequestId: " + req.RequestID + " Version: $LATEST\nstdout: hello\nstderr: hello\nEND RequestId: " + req.RequestID + "\nREPORT "
	if !strings.HasPrefix(string(res.Log), want) {
		t.Fatalf("log:\n%s\nwant prefix:\n%s", res.Log, want)
	}
	// Every invocation's output lands in its own log, even right before
	// the response.
	for i := range 20 {
		text := "line-" + strconv.Itoa(i)
		_, res := invoke(t, m, spec, `{"op":"print","text":"`+text+`"}`)
		if !bytes.Contains(res.Log, []byte("stdout: "+text+"\nstderr: "+text+"\nEND")) {
			t.Fatalf("invocation %d log:\n%s", i, res.Log)
		}
	}
}

func TestContextAndHeaders(t *testing.T) {
	m := newManager(t, Config{})
	spec := goSpec("ctx")
	spec.Timeout = 5 * time.Second
	req := newRequest(`{"op":"ctx"}`)
	req.ClientContext = `{"custom":{"k":"v"}}`
	req.InvokedARN = "arn:aws:lambda:us-east-1:123456789012:function:ctx:prod"
	res, err := m.Invoke(t.Context(), spec, req)
	if err != nil {
		t.Fatal(err)
	}
	wantOK(t, res)
	var got struct {
		RequestID     string            `json:"requestId"`
		InvokedArn    string            `json:"invokedArn"`
		ClientContext map[string]string `json:"clientContext"`
		RemainingMs   int64             `json:"remainingMs"`
		TraceID       string            `json:"traceId"`
	}
	if err := json.Unmarshal(res.Payload, &got); err != nil {
		t.Fatal(err)
	}
	if got.RequestID != req.RequestID || got.InvokedArn != req.InvokedARN || got.ClientContext["k"] != "v" ||
		got.RemainingMs <= 0 || got.RemainingMs > 5000 ||
		!regexp.MustCompile(`^Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=0$`).MatchString(got.TraceID) {
		t.Fatalf("context = %+v", got)
	}
}

// TestTenantsKeepTheirEnvironments: the tenant is part of the pool's key,
// so environments started for one tenant never serve another, each
// tenant's own is reused, and each invocation tells the runtime its tenant
// (aws-lambda-go's LambdaContext.TenantID).
func TestTenantsKeepTheirEnvironments(t *testing.T) {
	m := newManager(t, Config{})
	a, b := goSpec("tenants"), goSpec("tenants")
	a.TenantID, b.TenantID = "tenant-a", "tenant-b"
	pids := map[string]int{}
	for i := range 4 {
		spec := []*Spec{a, b}[i%2]
		pid, res := pidOf(t, m, spec)
		if p, seen := pids[spec.TenantID]; seen && (p != pid || res.ColdStart) {
			t.Errorf("invocation %d of %s ran in pid %d (cold %v), want its warm %d", i, spec.TenantID, pid, res.ColdStart, p)
		}
		pids[spec.TenantID] = pid
		_, res = invoke(t, m, spec, `{"op":"ctx"}`)
		var got struct {
			TenantID string `json:"tenantId"`
		}
		if err := json.Unmarshal(res.Payload, &got); err != nil || got.TenantID != spec.TenantID {
			t.Errorf("the runtime saw tenant %q, want %q (%s)", got.TenantID, spec.TenantID, res.Payload)
		}
	}
	if pids["tenant-a"] == pids["tenant-b"] {
		t.Fatalf("two tenants shared pid %d", pids["tenant-a"])
	}
	if st := m.Stats(); st.ColdStarts != 2 || st.Idle != 2 {
		t.Errorf("stats %+v, want 2 cold starts and 2 idle environments", st)
	}
}

func TestEnvironmentExact(t *testing.T) {
	t.Setenv("LAMBDAD_SERVER_SECRET", "must-not-leak")
	tempRoot := t.TempDir()
	m := newManager(t, Config{TempRoot: tempRoot})
	spec := goSpec("envcheck")
	spec.Version = "7"
	spec.MemoryMB = 256
	spec.Region = "eu-west-1"
	spec.Env = map[string]string{
		"MY_VAR":           "mine",
		"LANG":             "C.UTF-8", // a default the function may change
		"AWS_REGION":       "evil-1",  // reserved: ours win
		"_HANDLER":         "evil",
		"LAMBDA_TASK_ROOT": "/evil",
		"TMPDIR":           "/evil",
	}
	_, res := invoke(t, m, spec, `{"op":"env"}`)
	wantOK(t, res)
	var got struct {
		Env []string `json:"env"`
		Cwd string   `json:"cwd"`
	}
	if err := json.Unmarshal(res.Payload, &got); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, kv := range got.Env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	if got.Cwd != goCodeDir {
		t.Errorf("cwd = %q, want %q", got.Cwd, goCodeDir)
	}
	want := map[string]string{
		"_HANDLER":                        "bootstrap",
		"AWS_LAMBDA_FUNCTION_NAME":        "envcheck",
		"AWS_LAMBDA_FUNCTION_VERSION":     "7",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
		"AWS_LAMBDA_LOG_GROUP_NAME":       "/aws/lambda/envcheck",
		"AWS_REGION":                      "eu-west-1",
		"AWS_DEFAULT_REGION":              "eu-west-1",
		"AWS_LAMBDA_INITIALIZATION_TYPE":  "on-demand",
		"LAMBDA_TASK_ROOT":                goCodeDir,
		"TZ":                              ":UTC",
		"LANG":                            "C.UTF-8",
		"PATH":                            "/usr/local/bin:/usr/bin:/bin",
		"MY_VAR":                          "mine",
		// Set by aws-lambda-go itself for each invocation.
		"_X_AMZN_TRACE_ID": env["_X_AMZN_TRACE_ID"],
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s = %q, want %q", k, env[k], v)
		}
	}
	if !regexp.MustCompile(`^127\.0\.0\.1:\d+$`).MatchString(env["AWS_LAMBDA_RUNTIME_API"]) {
		t.Errorf("AWS_LAMBDA_RUNTIME_API = %q", env["AWS_LAMBDA_RUNTIME_API"])
	}
	today := time.Now().UTC().Format("2006/01/02")
	if !regexp.MustCompile(`^\d{4}/\d\d/\d\d/\[7\][0-9a-f]{32}$`).MatchString(env["AWS_LAMBDA_LOG_STREAM_NAME"]) ||
		!strings.HasPrefix(env["AWS_LAMBDA_LOG_STREAM_NAME"], today[:4]) {
		t.Errorf("AWS_LAMBDA_LOG_STREAM_NAME = %q", env["AWS_LAMBDA_LOG_STREAM_NAME"])
	}
	if tmp := env["TMPDIR"]; !strings.HasPrefix(tmp, tempRoot+string(filepath.Separator)) {
		t.Errorf("TMPDIR = %q, want a directory under %q", tmp, tempRoot)
	} else if st, err := os.Stat(tmp); err != nil || !st.IsDir() {
		t.Errorf("TMPDIR %q: %v", tmp, err)
	}
	if rd := env["LAMBDA_RUNTIME_DIR"]; rd == "" || !strings.HasPrefix(rd, tempRoot) {
		t.Errorf("LAMBDA_RUNTIME_DIR = %q", rd)
	}
	if ld := env["LD_LIBRARY_PATH"]; !strings.Contains(ld, goCodeDir+"/lib") {
		t.Errorf("LD_LIBRARY_PATH = %q", ld)
	}
	if _, ok := env["AWS_EXECUTION_ENV"]; ok {
		t.Errorf("AWS_EXECUTION_ENV is set for a provided runtime")
	}
	wantKeys := []string{"AWS_DEFAULT_REGION", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_NAME",
		"AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_INITIALIZATION_TYPE", "AWS_LAMBDA_LOG_GROUP_NAME",
		"AWS_LAMBDA_LOG_STREAM_NAME", "AWS_LAMBDA_RUNTIME_API", "AWS_REGION", "LAMBDA_RUNTIME_DIR",
		"LAMBDA_TASK_ROOT", "LANG", "LD_LIBRARY_PATH", "MY_VAR", "PATH", "TMPDIR", "TZ", "_HANDLER", "_X_AMZN_TRACE_ID"}
	var keys []string
	for k := range env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, wantKeys) {
		t.Errorf("environment keys:\n got %v\nwant %v", keys, wantKeys)
	}
}

func TestTimeoutKillsProcessGroup(t *testing.T) {
	m := newManager(t, Config{})
	spec := goSpec("timeout")
	spec.Timeout = 300 * time.Millisecond
	pid, _ := pidOf(t, m, spec)
	req, res := invoke(t, m, spec, `{"op":"spawn","ms":60000}`)
	want := `{"errorType":"Sandbox.Timedout","errorMessage":"RequestId: ` + req.RequestID + ` Error: Task timed out after 0.30 seconds"}`
	if res.FunctionError != "Unhandled" || string(res.Payload) != want {
		t.Fatalf("timeout result %q %s, want %s", res.FunctionError, res.Payload, want)
	}
	if res.Duration < 300*time.Millisecond {
		t.Errorf("Duration = %v, shorter than the timeout", res.Duration)
	}
	mm := regexp.MustCompile(`child-pid=(\d+)`).FindSubmatch(res.Log)
	if mm == nil {
		t.Fatalf("no child pid in log:\n%s", res.Log)
	}
	child, _ := strconv.Atoi(string(mm[1]))
	if !regexp.MustCompile(`(?m)^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ` + req.RequestID + ` Task timed out after 0\.30 seconds\nEND RequestId: `).Match(res.Log) {
		t.Errorf("log lacks the timeout line:\n%s", res.Log)
	}
	if alive(pid) {
		t.Errorf("runtime process %d still alive", pid)
	}
	eventually(t, "the spawned grandchild to die", func() bool { return !alive(child) && groupMembers(pid) == 0 })
	if pid2, res2 := pidOf(t, m, spec); pid2 == pid || !res2.ColdStart {
		t.Fatalf("after a timeout the environment must be new: pid %d cold %v", pid2, res2.ColdStart)
	}
}

func TestRuntimeExit(t *testing.T) {
	m := newManager(t, Config{})
	spec := goSpec("crash")
	pidOf(t, m, spec) // warm first: the exit happens mid-invocation of a warm environment
	req, res := invoke(t, m, spec, `{"op":"exit","code":2}`)
	want := `{"errorType":"Runtime.ExitError","errorMessage":"RequestId: ` + req.RequestID + ` Error: Runtime exited with error: exit status 2"}`
	if res.FunctionError != "Unhandled" || string(res.Payload) != want {
		t.Fatalf("result %q %s, want %s", res.FunctionError, res.Payload, want)
	}
	wantLog := "exiting with 2\nRequestId: " + req.RequestID + " Error: Runtime exited with error: exit status 2\nRuntime.ExitError\nEND RequestId: " + req.RequestID + "\n"
	if !bytes.Contains(res.Log, []byte(wantLog)) {
		t.Fatalf("log:\n%s\nwant it to contain:\n%s", res.Log, wantLog)
	}
	_, res = invoke(t, m, spec, `{"op":"echo"}`)
	wantOK(t, res)
	if !res.ColdStart {
		t.Fatal("the crashed environment was reused")
	}
}

func TestFunctionErrors(t *testing.T) {
	m := newManager(t, Config{})
	spec := goSpec("errors")
	pid, _ := pidOf(t, m, spec)

	_, res := invoke(t, m, spec, `{"op":"error"}`)
	if res.FunctionError != "Unhandled" || string(res.Payload) != `{"errorMessage":"handler failed","errorType":"errorString"}` {
		t.Fatalf("returned error: %q %s", res.FunctionError, res.Payload)
	}
	// A streamed response that fails reports through trailers.
	_, res = invoke(t, m, spec, `{"op":"badstream"}`)
	if res.FunctionError != "Unhandled" || string(res.Payload) != `{"errorMessage":"stream broke","errorType":"errorString"}` {
		t.Fatalf("stream error: %q %s", res.FunctionError, res.Payload)
	}
	if pid2, _ := pidOf(t, m, spec); pid2 != pid {
		t.Fatalf("a handled function error must keep the environment: pid %d, was %d", pid2, pid)
	}

	// A panic posts /error and the runtime exits; the next invocation
	// finds a new environment, even when it picks the dying one first.
	_, res = invoke(t, m, spec, `{"op":"panic"}`)
	var doc struct {
		ErrorMessage string `json:"errorMessage"`
		ErrorType    string `json:"errorType"`
		StackTrace   []any  `json:"stackTrace"`
	}
	if err := json.Unmarshal(res.Payload, &doc); err != nil || res.FunctionError != "Unhandled" ||
		doc.ErrorMessage != "boom" || doc.ErrorType != "string" || len(doc.StackTrace) == 0 {
		t.Fatalf("panic: %q %s", res.FunctionError, res.Payload)
	}
	_, res = invoke(t, m, spec, `{"op":"echo","text":"after"}`)
	wantOK(t, res)
	if string(res.Payload) != `{"op":"echo","text":"after"}` {
		t.Fatalf("after panic: %s", res.Payload)
	}
}

func TestInitFailures(t *testing.T) {
	m := newManager(t, Config{InitTimeout: 500 * time.Millisecond})

	spec := goSpec("initexit")
	spec.Env = map[string]string{"TEST_INIT": "exit"}
	req, res := invoke(t, m, spec, `{}`)
	want := `{"errorType":"Runtime.ExitError","errorMessage":"RequestId: ` + req.RequestID + ` Error: Runtime exited with error: exit status 3"}`
	if res.FunctionError != "Unhandled" || string(res.Payload) != want || !res.ColdStart {
		t.Fatalf("init exit: %q %s", res.FunctionError, res.Payload)
	}
	if !bytes.HasPrefix(res.Log, []byte("init: exiting\nINIT_REPORT Init Duration: ")) || !bytes.Contains(res.Log, []byte("\nRuntime.ExitError\nEND RequestId: ")) {
		t.Fatalf("init exit log:\n%s", res.Log)
	}

	spec = goSpec("initerror")
	spec.Env = map[string]string{"TEST_INIT": "initerror"}
	_, res = invoke(t, m, spec, `{}`)
	if res.FunctionError != "Unhandled" || string(res.Payload) != `{"errorMessage":"config missing","errorType":"Custom.InitFailed","stackTrace":[]}` {
		t.Fatalf("init error: %q %s", res.FunctionError, res.Payload)
	}

	spec = goSpec("initslow")
	spec.Env = map[string]string{"TEST_INIT": "sleep"}
	req, res = invoke(t, m, spec, `{}`)
	want = `{"errorType":"Sandbox.Timedout","errorMessage":"RequestId: ` + req.RequestID + ` Error: Task timed out after 0.50 seconds"}`
	if res.FunctionError != "Unhandled" || string(res.Payload) != want {
		t.Fatalf("init timeout: %q %s", res.FunctionError, res.Payload)
	}

	empty := t.TempDir()
	spec = goSpec("nobootstrap")
	spec.CodeDir = empty
	req, res = invoke(t, m, spec, `{}`)
	want = `{"errorType":"Runtime.InvalidEntrypoint","errorMessage":"RequestId: ` + req.RequestID + ` Error: Couldn't find valid bootstrap(s): [` + empty + `/bootstrap]"}`
	if res.FunctionError != "Unhandled" || string(res.Payload) != want {
		t.Fatalf("missing bootstrap: %q %s\nwant %s", res.FunctionError, res.Payload, want)
	}

	if err := os.WriteFile(filepath.Join(empty, "bootstrap"), []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	req, res = invoke(t, m, spec, `{}`)
	want = `{"errorType":"Runtime.InvalidEntrypoint","errorMessage":"RequestId: ` + req.RequestID + ` Error: fork/exec ` + empty + `/bootstrap: permission denied"}`
	if res.FunctionError != "Unhandled" || string(res.Payload) != want {
		t.Fatalf("non-executable bootstrap: %q %s", res.FunctionError, res.Payload)
	}
	eventually(t, "failed environments to be stopped", func() bool {
		st := m.Stats()
		return st.Idle == 0 && st.Busy == 0 && st.Stopped == st.Started
	})
}

func TestResponseSizeLimit(t *testing.T) {
	m := newManager(t, Config{})
	spec := goSpec("huge")
	_, res := invoke(t, m, spec, `{"op":"huge","size":6291556}`)
	wantOK(t, res)
	if len(res.Payload) != 6291556 {
		t.Fatalf("payload of %d bytes", len(res.Payload))
	}
	_, res = invoke(t, m, spec, `{"op":"huge","size":6291557}`)
	want := `{"errorType":"Function.ResponseSizeTooLarge","errorMessage":"Response payload size exceeded maximum allowed payload size (6291556 bytes)."}`
	if res.FunctionError != "Unhandled" || string(res.Payload) != want {
		t.Fatalf("too large: %q %.200s", res.FunctionError, res.Payload)
	}
	// aws-lambda-go exits on the 413; the next invocation still succeeds.
	_, res = invoke(t, m, spec, `{"op":"echo"}`)
	wantOK(t, res)
}

func TestMemoryLimit(t *testing.T) {
	m := newManager(t, Config{})
	spec := goSpec("memory")
	_, res := invoke(t, m, spec, `{"op":"alloc","mb":16}`)
	wantOK(t, res)
	if res.MaxMemoryUsedMB < 16 || res.MaxMemoryUsedMB > 128 {
		t.Fatalf("Max Memory Used = %d MB after allocating 16 MB", res.MaxMemoryUsedMB)
	}
	req, res := invoke(t, m, spec, `{"op":"alloc","mb":300}`)
	want := `{"errorType":"Runtime.ExitError","errorMessage":"RequestId: ` + req.RequestID + ` Error: Runtime exited with error: exit status 2"}`
	// The Go runtime dies of the failed mmap in more than one way (fatal
	// error, or a fault in the collector); each is exit status 2.
	if string(res.Payload) != want || !bytes.Contains(res.Log, []byte("\ngoroutine ")) {
		t.Fatalf("allocating past MemorySize: %s\nlog:\n%.2000s", res.Payload, res.Log)
	}
}

func TestRetire(t *testing.T) {
	m := newManager(t, Config{})
	spec := goSpec("retire")
	other := goSpec("other")
	pid, _ := pidOf(t, m, spec)
	otherPid, _ := pidOf(t, m, other)
	m.Retire(function.Key{Account: "123456789012", Name: "retire"})
	eventually(t, "the retired environment to stop", func() bool { return !alive(pid) && m.Stats().Idle == 1 })
	if !alive(otherPid) {
		t.Fatal("Retire stopped another function's environment")
	}
	if pid2, res := pidOf(t, m, spec); pid2 == pid || !res.ColdStart {
		t.Fatal("a retired environment was reused")
	}

	// A busy environment finishes its invocation, then stops.
	done := make(chan *Result, 1)
	go func() {
		res, err := m.Invoke(context.Background(), spec, newRequest(`{"op":"sleep","ms":300}`))
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	eventually(t, "the invocation to start", func() bool { return m.Stats().Busy == 1 })
	m.Retire(function.Key{Account: "123456789012", Name: "retire"})
	res := <-done
	wantOK(t, res)
	if string(res.Payload) != `"slept"` {
		t.Fatalf("busy invocation: %s", res.Payload)
	}
	eventually(t, "the busy retired environment to stop", func() bool {
		st := m.Stats()
		return st.Idle == 1 && st.Busy == 0 && st.Stopped == 2 // "other" stays
	})
}

func TestRevisionKeysEnvironments(t *testing.T) {
	m := newManager(t, Config{})
	spec := goSpec("rev")
	pid1, _ := pidOf(t, m, spec)
	spec2 := goSpec("rev")
	spec2.Revision = "r2"
	if pid2, _ := pidOf(t, m, spec2); pid2 == pid1 {
		t.Fatal("a new revision reused an old environment")
	}
	spec3 := goSpec("rev")
	spec3.Version = "1"
	if pid3, _ := pidOf(t, m, spec3); pid3 == pid1 {
		t.Fatal("another version reused an environment")
	}
}

// TestIdleReaping is the whole path with a real process: the reaper, on
// the Manager's clock, stops the environment and its process. When it
// decides to is TestIdleReaper's subject, on virtual time.
func TestIdleReaping(t *testing.T) {
	clk := newManualClock()
	m := newManager(t, Config{Clock: clk})
	spec := goSpec("reap")
	pid, _ := pidOf(t, m, spec)
	clk.Advance(DefaultIdleTimeout + 30*time.Second) // and one reaper interval
	eventually(t, "the idle environment to be reaped", func() bool {
		st := m.Stats()
		return st.Reaped == 1 && st.Idle == 0 && !alive(pid)
	})
}

func TestContextCancelKillsProcess(t *testing.T) {
	m := newManager(t, Config{})
	spec := goSpec("cancel")
	pid, _ := pidOf(t, m, spec)
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, err := m.Invoke(ctx, spec, newRequest(`{"op":"spawn","ms":60000}`))
		errc <- err
	}()
	eventually(t, "the spawned child", func() bool { return groupMembers(pid) == 2 })
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Invoke = %v, want context.Canceled", err)
	}
	eventually(t, "the process group to die", func() bool { return groupMembers(pid) == 0 })
	eventually(t, "the environment to be stopped", func() bool {
		st := m.Stats()
		return st.Busy == 0 && st.Idle == 0 && st.Stopped == 1
	})

	// Cancelled before the call: nothing starts, nothing is lost.
	pid, _ = pidOf(t, m, spec)
	ctx, cancel = context.WithCancel(t.Context())
	cancel()
	if _, err := m.Invoke(ctx, spec, newRequest(`{}`)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Invoke with a cancelled context = %v", err)
	}
	if pid2, _ := pidOf(t, m, spec); pid2 != pid {
		t.Fatalf("a cancelled call cost the environment: pid %d, was %d", pid2, pid)
	}
}

func TestCloseStopsEverything(t *testing.T) {
	goroutines := runtime.NumGoroutine()
	tempRoot := t.TempDir()
	m, err := NewManager(Config{Logger: testLogger(t), TempRoot: tempRoot})
	if err != nil {
		t.Fatal(err)
	}
	// Two idle environments of two functions, one busy with a grandchild.
	pidA, _ := pidOf(t, m, goSpec("a"))
	pidB, _ := pidOf(t, m, goSpec("b"))
	busy := goSpec("busy")
	pidBusy, _ := pidOf(t, m, busy)
	errc := make(chan error, 1)
	go func() {
		_, err := m.Invoke(context.Background(), busy, newRequest(`{"op":"spawn","ms":60000}`))
		errc <- err
	}()
	eventually(t, "the spawned child", func() bool { return groupMembers(pidBusy) == 2 })

	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Fatalf("busy Invoke after Close = %v, want ErrClosed", err)
	}
	for _, pid := range []int{pidA, pidB, pidBusy} {
		if alive(pid) {
			t.Errorf("process %d outlived Close", pid)
		}
	}
	eventually(t, "the grandchild to die", func() bool { return groupMembers(pidBusy) == 0 })
	if ents, _ := os.ReadDir(tempRoot); len(ents) != 0 {
		t.Errorf("Close left %d entries in TempRoot", len(ents))
	}
	if _, err := m.Invoke(context.Background(), goSpec("a"), newRequest(`{}`)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Invoke after Close = %v", err)
	}
	if st := m.Stats(); st.Started != st.Stopped || st.Idle != 0 || st.Busy != 0 {
		t.Fatalf("Stats after Close = %+v", st)
	}
	// net/http's connection goroutines exit as their connections close.
	eventually(t, "goroutines to return", func() bool { return runtime.NumGoroutine() <= goroutines })
}

func TestConcurrentInvocations(t *testing.T) {
	m := newManager(t, Config{})
	spec := goSpec("concurrent")
	var wg sync.WaitGroup
	pids := make([]string, 4)
	for range pids {
		wg.Go(func() {
			res, err := m.Invoke(context.Background(), spec, newRequest(`{"op":"sleep","ms":200}`))
			if err != nil || res.FunctionError != "" {
				t.Errorf("Invoke: %v %v", err, res)
			}
		})
	}
	wg.Wait()
	if st := m.Stats(); st.Idle != 4 || st.Started != 4 {
		t.Fatalf("four overlapping invocations: Stats %+v", st)
	}
	for i := range pids {
		_, res := invoke(t, m, spec, `{"op":"pid"}`)
		pids[i] = string(res.Payload)
	}
	slices.Sort(pids)
	if len(slices.Compact(pids)) != 1 {
		t.Fatalf("sequential invocations used %v; the warmest environment should be reused", pids)
	}
}

func TestPrewarm(t *testing.T) {
	m := newManager(t, Config{})
	spec := goSpec("prewarm")
	if err := m.Prewarm(t.Context(), spec); err != nil {
		t.Fatal(err)
	}
	if st := m.Stats(); st.Idle != 1 || st.ColdStarts != 0 {
		t.Fatalf("after Prewarm: %+v", st)
	}
	_, res := invoke(t, m, spec, `{}`)
	wantOK(t, res)
	if res.ColdStart || res.InitDuration != 0 {
		t.Fatal("the invocation after Prewarm was a cold start")
	}
	bad := goSpec("prewarm-bad")
	bad.Env = map[string]string{"TEST_INIT": "exit"}
	if err := m.Prewarm(t.Context(), bad); err == nil || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("Prewarm of a failing Init = %v", err)
	}
}

func TestProvisionedPool(t *testing.T) {
	clk := newManualClock()
	m := newManager(t, Config{Clock: clk})
	prov := goSpec("prov")
	prov.InitType = "provisioned-concurrency"
	for range 2 {
		if err := m.Prewarm(t.Context(), prov); err != nil {
			t.Fatal(err)
		}
	}
	if n := m.Live(prov); n != 2 {
		t.Fatalf("Live = %d, want 2", n)
	}
	// An on-demand environment of the same version goes idle and is
	// reaped; the pinned ones are not, and on-demand invocations do not
	// take them.
	onDemand := goSpec("prov")
	_, res := invoke(t, m, onDemand, `{"op":"env"}`)
	if !res.ColdStart || !bytes.Contains(res.Payload, []byte(`"AWS_LAMBDA_INITIALIZATION_TYPE=on-demand"`)) {
		t.Fatalf("on-demand invocation: cold=%v %s", res.ColdStart, res.Payload)
	}
	clk.Advance(DefaultIdleTimeout + 30*time.Second) // and one reaper interval
	eventually(t, "the on-demand environment to be reaped", func() bool { return m.Stats().Reaped == 1 })
	if st := m.Stats(); st.Idle != 2 || m.Live(prov) != 2 {
		t.Fatalf("pinned environments after reaping: %+v, Live %d", st, m.Live(prov))
	}
	_, res = invoke(t, m, prov, `{"op":"env"}`)
	if res.ColdStart || !bytes.Contains(res.Payload, []byte(`"AWS_LAMBDA_INITIALIZATION_TYPE=provisioned-concurrency"`)) {
		t.Fatalf("provisioned invocation: cold=%v %s", res.ColdStart, res.Payload)
	}

	// Shrink: a busy one finishes first, then goes.
	done := make(chan *Result, 1)
	go func() {
		res, _ := m.Invoke(context.Background(), prov, newRequest(`{"op":"sleep","ms":200}`))
		done <- res
	}()
	eventually(t, "the invocation to start", func() bool { return m.Stats().Busy == 1 })
	m.Shrink(prov, 1)
	if n := m.Live(prov); n != 1 {
		t.Fatalf("Live after Shrink(1) = %d", n)
	}
	m.Shrink(prov, 0)
	if n := m.Live(prov); n != 0 {
		t.Fatalf("Live after Shrink(0) = %d", n)
	}
	if res := <-done; res == nil || string(res.Payload) != `"slept"` {
		t.Fatalf("the busy invocation during Shrink: %+v", res)
	}
	eventually(t, "every environment to stop", func() bool {
		st := m.Stats()
		return st.Idle == 0 && st.Busy == 0 && st.Stopped == st.Started
	})
}

func TestUnsupportedRuntime(t *testing.T) {
	m := newManager(t, Config{})
	spec := goSpec("java")
	spec.Runtime = "java21"
	_, err := m.Invoke(t.Context(), spec, newRequest(`{}`))
	if !awserr.Is(err, awserr.InvalidRuntime) {
		t.Fatalf("Invoke = %v, want InvalidRuntimeException", err)
	}
}

// shellRuntime is a custom runtime in bash, speaking HTTP/1.1 over
// /dev/tcp. An event containing "die" is answered, then the runtime exits
// after 300 ms without asking for more work; one containing "pause" is
// answered, then the runtime waits 300 ms before asking for more.
const shellRuntime = `
IFS=: read -r host port <<< "$AWS_LAMBDA_RUNTIME_API"
echo "shell init"
while true; do
  exec 3<>"/dev/tcp/$host/$port"
  printf 'GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$host" >&3
  id=""; len=0
  while IFS= read -r line <&3; do
    line=${line%$'\r'}
    [ -z "$line" ] && break
    case "${line,,}" in
      lambda-runtime-aws-request-id:*) id=${line#*: } ;;
      content-length:*) len=${line#*: } ;;
    esac
  done
  body=""
  [ "$len" -gt 0 ] && read -r -N "$len" body <&3
  exec 3<&-
  echo "handling $id"
  resp="{\"shell\":true,\"event\":$body}"
  exec 3<>"/dev/tcp/$host/$port"
  printf 'POST /2018-06-01/runtime/invocation/%s/response HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' "$id" "$host" "${#resp}" "$resp" >&3
  while IFS= read -r line <&3; do :; done
  exec 3<&-
  case "$body" in
    *die*) sleep 0.3; exit 0 ;;
    *pause*) sleep 0.3 ;;
  esac
done
`

func shellSpec(t *testing.T, name string) *Spec {
	t.Helper()
	bash, err := exec.LookPath("bash")
	if err != nil {
		requireE2E(t, "bash is not installed")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bootstrap"), []byte("#!"+bash+"\n"+shellRuntime), 0o755); err != nil {
		t.Fatal(err)
	}
	spec := goSpec(name)
	spec.Runtime = "provided"
	spec.CodeDir = dir
	return spec
}

func TestShellBootstrap(t *testing.T) {
	m := newManager(t, Config{})
	spec := shellSpec(t, "shell")
	for i := range 2 {
		req, res := invoke(t, m, spec, `{"n":1}`)
		wantOK(t, res)
		if string(res.Payload) != `{"shell":true,"event":{"n":1}}` || res.ColdStart != (i == 0) {
			t.Fatalf("shell runtime: %s cold=%v\nlog:\n%s", res.Payload, res.ColdStart, res.Log)
		}
		if !bytes.Contains(res.Log, []byte("handling "+req.RequestID+"\n")) {
			t.Fatalf("log:\n%s", res.Log)
		}
	}
}

func TestCancelBeforeDeliveryKeepsEnvironment(t *testing.T) {
	// The runtime is slow to ask for its next event; an invocation whose
	// caller gives up meanwhile never reached it, so the environment stays.
	m := newManager(t, Config{})
	spec := shellSpec(t, "paused")
	_, res := invoke(t, m, spec, `{"pause":1}`)
	wantOK(t, res)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := m.Invoke(ctx, spec, newRequest(`{"n":1}`)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Invoke = %v, want context.DeadlineExceeded", err)
	}
	req, res := invoke(t, m, spec, `{"n":2}`)
	wantOK(t, res)
	if res.ColdStart || string(res.Payload) != `{"shell":true,"event":{"n":2}}` {
		t.Fatalf("after the undelivered cancel: %s cold=%v", res.Payload, res.ColdStart)
	}
	// The abandoned invocation left no START line behind.
	if n := bytes.Count(res.Log, []byte("START RequestId: ")); n != 1 || !bytes.Contains(res.Log, []byte("START RequestId: "+req.RequestID)) {
		t.Fatalf("log:\n%s", res.Log)
	}
	if st := m.Stats(); st.Started != 1 || st.Stopped != 0 {
		t.Fatalf("Stats = %+v", st)
	}
}

func TestEnvironmentLostBeforeDelivery(t *testing.T) {
	// The runtime answers, goes back to the idle pool, and exits before it
	// asks for the next event: the next invocation, which picks it, must
	// run in a new environment instead of failing.
	m := newManager(t, Config{})
	spec := shellSpec(t, "dying")
	_, res := invoke(t, m, spec, `{"die":1}`)
	wantOK(t, res)
	_, res = invoke(t, m, spec, `{"n":2}`)
	wantOK(t, res)
	if string(res.Payload) != `{"shell":true,"event":{"n":2}}` || !res.ColdStart {
		t.Fatalf("after the idle environment died: %s cold=%v", res.Payload, res.ColdStart)
	}
	if st := m.Stats(); st.Started != 2 || st.WarmStarts != 0 || st.ColdStarts != 2 {
		t.Fatalf("Stats = %+v", st)
	}
}

// requireE2E skips, or fails when LAMBDAD_REQUIRE_E2E=1.
func requireE2E(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("LAMBDAD_REQUIRE_E2E") == "1" {
		t.Fatalf("%s (LAMBDAD_REQUIRE_E2E=1)", why)
	}
	t.Skip(why)
}

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestPython(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		requireE2E(t, "python3 is not installed")
	}
	dir := writeFiles(t, map[string]string{
		"lambda_function.py": `import os
print("init from python")

def handler(event, context):
    print("handling", context.aws_request_id)
    return {
        "event": event,
        "requestId": context.aws_request_id,
        "functionName": context.function_name,
        "memory": context.memory_limit_in_mb,
        "arn": context.invoked_function_arn,
        "remaining": context.get_remaining_time_in_millis(),
        "execEnv": os.environ.get("AWS_EXECUTION_ENV"),
        "clientContext": context.client_context,
    }

def fail(event, context):
    raise ValueError("bad value")
`,
		"pkg/nested.py": "def handler(event, context):\n    return 'nested'\n",
		"broken.py":     "def handler(:\n",
	})
	m := newManager(t, Config{})
	spec := &Spec{Function: "py", Runtime: "python3.12", Handler: "lambda_function.handler", CodeDir: dir, Timeout: 10 * time.Second}
	req := newRequest(`{"k":"v"}`)
	req.ClientContext = `{"custom":{"a":"b"}}`
	res, err := m.Invoke(t.Context(), spec, req)
	if err != nil {
		t.Fatal(err)
	}
	wantOK(t, res)
	var got map[string]any
	if err := json.Unmarshal(res.Payload, &got); err != nil {
		t.Fatalf("payload %s: %v", res.Payload, err)
	}
	if got["requestId"] != req.RequestID || got["functionName"] != "py" || got["memory"] != "128" ||
		got["arn"] != "arn:aws:lambda:us-east-1::function:py" || got["execEnv"] != "AWS_Lambda_python3.12" ||
		fmt.Sprint(got["event"]) != "map[k:v]" || got["remaining"].(float64) <= 0 ||
		fmt.Sprint(got["clientContext"]) != "map[custom:map[a:b]]" {
		t.Fatalf("python context: %s", res.Payload)
	}
	if !bytes.Contains(res.Log, []byte("init from python\n")) || !bytes.Contains(res.Log, []byte("handling "+req.RequestID+"\n")) {
		t.Fatalf("python log:\n%s", res.Log)
	}
	// Warm, and nested module paths.
	_, res = invoke(t, m, spec, `{}`)
	if res.ColdStart {
		t.Fatal("python environment not reused")
	}
	nested := *spec
	nested.Handler, nested.Revision = "pkg/nested.handler", "nested"
	if _, res = invoke(t, m, &nested, `{}`); string(res.Payload) != `"nested"` {
		t.Fatalf("nested handler: %s", res.Payload)
	}

	failing := *spec
	failing.Handler, failing.Revision = "lambda_function.fail", "fail"
	req, res = invoke(t, m, &failing, `{}`)
	var doc struct {
		ErrorMessage string   `json:"errorMessage"`
		ErrorType    string   `json:"errorType"`
		RequestID    string   `json:"requestId"`
		StackTrace   []string `json:"stackTrace"`
	}
	if err := json.Unmarshal(res.Payload, &doc); err != nil || res.FunctionError != "Unhandled" || doc.ErrorType != "ValueError" ||
		doc.ErrorMessage != "bad value" || doc.RequestID != req.RequestID || len(doc.StackTrace) != 1 ||
		!strings.Contains(doc.StackTrace[0], "lambda_function.py") {
		t.Fatalf("python error: %s", res.Payload)
	}

	for _, c := range []struct{ handler, payload string }{
		{"missing.handler", `{"errorMessage": "Unable to import module 'missing': No module named 'missing'", "errorType": "Runtime.ImportModuleError", "requestId": "", "stackTrace": []}`},
		{"lambda_function.nope", `{"errorMessage": "Handler 'nope' missing on module 'lambda_function'", "errorType": "Runtime.HandlerNotFound", "requestId": "", "stackTrace": []}`},
		{"nodot", `{"errorMessage": "Bad handler 'nodot': not enough values to unpack (expected 2, got 1)", "errorType": "Runtime.MalformedHandlerName", "requestId": "", "stackTrace": []}`},
	} {
		bad := *spec
		bad.Handler, bad.Revision = c.handler, c.handler
		_, res := invoke(t, m, &bad, `{}`)
		if res.FunctionError != "Unhandled" || string(res.Payload) != c.payload {
			t.Errorf("handler %s: %q %s\nwant %s", c.handler, res.FunctionError, res.Payload, c.payload)
		}
	}
	syntax := *spec
	syntax.Handler, syntax.Revision = "broken.handler", "broken"
	if _, res = invoke(t, m, &syntax, `{}`); !bytes.Contains(res.Payload, []byte(`"errorType": "Runtime.UserCodeSyntaxError"`)) {
		t.Errorf("syntax error: %s", res.Payload)
	}
	if _, err := os.Stat(filepath.Join(dir, "__pycache__")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("python wrote bytecode into the code directory: %v", err)
	}
}

func TestNode(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		requireE2E(t, "node is not installed")
	}
	dir := writeFiles(t, map[string]string{
		"index.js": `console.log("init from node");
exports.handler = async (event, context) => {
  console.log("handling", context.awsRequestId);
  return {
    event,
    requestId: context.awsRequestId,
    functionName: context.functionName,
    memory: context.memoryLimitInMB,
    arn: context.invokedFunctionArn,
    remaining: context.getRemainingTimeInMillis(),
    execEnv: process.env.AWS_EXECUTION_ENV,
  };
};
exports.callback = (event, context, callback) => { setTimeout(() => callback(null, "via callback"), 5); };
exports.fail = async () => { throw new TypeError("bad type"); };
`,
		"esm.mjs": `export const handler = async (event) => ({ esm: true, event });`,
	})
	m := newManager(t, Config{})
	spec := &Spec{Function: "js", Runtime: "nodejs20.x", Handler: "index.handler", CodeDir: dir, Timeout: 10 * time.Second}
	req, res := invoke(t, m, spec, `{"k":"v"}`)
	wantOK(t, res)
	var got map[string]any
	if err := json.Unmarshal(res.Payload, &got); err != nil {
		t.Fatalf("payload %s: %v", res.Payload, err)
	}
	if got["requestId"] != req.RequestID || got["functionName"] != "js" || got["memory"] != "128" ||
		got["execEnv"] != "AWS_Lambda_nodejs20.x" || fmt.Sprint(got["event"]) != "map[k:v]" || got["remaining"].(float64) <= 0 {
		t.Fatalf("node context: %s", res.Payload)
	}
	if !bytes.Contains(res.Log, []byte("\tundefined\tINFO\tinit from node\n")) ||
		!bytes.Contains(res.Log, []byte("\t"+req.RequestID+"\tINFO\thandling "+req.RequestID+"\n")) {
		t.Fatalf("node log:\n%s", res.Log)
	}
	if _, res = invoke(t, m, spec, `{}`); res.ColdStart {
		t.Fatal("node environment not reused")
	}
	for _, c := range []struct{ handler, want string }{
		{"index.callback", `"via callback"`},
		{"esm.handler", `{"esm":true,"event":{"a":1}}`},
	} {
		s := *spec
		s.Handler, s.Revision = c.handler, c.handler
		if _, res := invoke(t, m, &s, `{"a":1}`); string(res.Payload) != c.want {
			t.Errorf("%s: %s, want %s", c.handler, res.Payload, c.want)
		}
	}
	failing := *spec
	failing.Handler, failing.Revision = "index.fail", "fail"
	_, res = invoke(t, m, &failing, `{}`)
	var doc struct {
		ErrorType    string   `json:"errorType"`
		ErrorMessage string   `json:"errorMessage"`
		Trace        []string `json:"trace"`
	}
	if err := json.Unmarshal(res.Payload, &doc); err != nil || res.FunctionError != "Unhandled" ||
		doc.ErrorType != "TypeError" || doc.ErrorMessage != "bad type" || len(doc.Trace) < 2 || doc.Trace[0] != "TypeError: bad type" {
		t.Fatalf("node error: %s", res.Payload)
	}
	for _, c := range []struct{ handler, errorType, message string }{
		{"missing.handler", "Runtime.ImportModuleError", "Error: Cannot find module 'missing'"},
		{"index.nope", "Runtime.HandlerNotFound", "index.nope is undefined or not exported"},
	} {
		s := *spec
		s.Handler, s.Revision = c.handler, c.handler
		_, res := invoke(t, m, &s, `{}`)
		if err := json.Unmarshal(res.Payload, &doc); err != nil || res.FunctionError != "Unhandled" ||
			doc.ErrorType != c.errorType || !strings.HasPrefix(doc.ErrorMessage, c.message) {
			t.Errorf("%s: %s", c.handler, res.Payload)
		}
	}
}

func TestBuildEnvironPure(t *testing.T) {
	spec := &Spec{Function: "f", Version: "$LATEST", Runtime: "python3.12", Handler: "h.h", CodeDir: "/code",
		MemoryMB: 128, Region: "r", InitType: "provisioned-concurrency",
		Env: map[string]string{"PATH": "/custom", "bad-name": "x", "AWS_LAMBDA_RUNTIME_API": "evil", "OK_1": "a=b"}}
	got := buildEnviron(envParams{spec: spec, launch: launch{runtimeDir: "/rt", extraPath: "/opt/py/bin"},
		runtimeAPI: "127.0.0.1:1", tmpDir: "/tmp/x", logStream: "s"})
	want := []string{
		"AWS_DEFAULT_REGION=r", "AWS_EXECUTION_ENV=AWS_Lambda_python3.12", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128",
		"AWS_LAMBDA_FUNCTION_NAME=f", "AWS_LAMBDA_FUNCTION_VERSION=$LATEST", "AWS_LAMBDA_INITIALIZATION_TYPE=provisioned-concurrency",
		"AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/f", "AWS_LAMBDA_LOG_STREAM_NAME=s", "AWS_LAMBDA_RUNTIME_API=127.0.0.1:1",
		"AWS_REGION=r", "LAMBDA_RUNTIME_DIR=/rt", "LAMBDA_TASK_ROOT=/code", "LANG=en_US.UTF-8",
		"LD_LIBRARY_PATH=/rt:/code:/code/lib", "OK_1=a=b", "PATH=/custom", "TMPDIR=/tmp/x", "TZ=:UTC", "_HANDLER=h.h",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("buildEnviron:\n got %q\nwant %q", got, want)
	}
}

func TestLogFileName(t *testing.T) {
	for in, want := range map[string]string{"my-func_1": "/l/123456789012/my-func_1.log", "../x": "/l/123456789012/___x.log", "": "/l/123456789012/_.log"} {
		if got := LogFile("/l", "123456789012", in); got != want {
			t.Errorf("LogFile(%q) = %q, want %q", in, got, want)
		}
	}
}

func BenchmarkWarmInvoke(b *testing.B) {
	m := newManager(b, Config{Logger: slog.New(slog.DiscardHandler)})
	spec := goSpec("bench")
	req := &Request{RequestID: "11111111-2222-4333-8444-555555555555", Payload: []byte(`{"op":"echo","text":"hello"}`)}
	if _, err := m.Invoke(context.Background(), spec, req); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		res, err := m.Invoke(context.Background(), spec, req)
		if err != nil || res.FunctionError != "" || res.ColdStart {
			b.Fatalf("%v %+v", err, res)
		}
	}
}

func BenchmarkColdStart(b *testing.B) {
	m := newManager(b, Config{Logger: slog.New(slog.DiscardHandler)})
	spec := goSpec("cold")
	req := &Request{RequestID: "11111111-2222-4333-8444-555555555555", Payload: []byte(`{"op":"echo"}`)}
	var init time.Duration
	for b.Loop() {
		res, err := m.Invoke(context.Background(), spec, req)
		if err != nil || res.FunctionError != "" || !res.ColdStart {
			b.Fatalf("%v %+v", err, res)
		}
		init += res.InitDuration
		m.Retire(function.Key{Account: "123456789012", Name: "cold"})
	}
	b.ReportMetric(float64(init.Milliseconds())/float64(b.N), "init-ms/op")
}

// BenchmarkRawRoundTrip is the baseline for BenchmarkWarmInvoke: the same
// Go function process driven through a bare runtimeapi.Server, without the
// Manager (no pool, log capture, memory reading or REPORT line).
func BenchmarkRawRoundTrip(b *testing.B) {
	srv, err := runtimeapi.New(nil)
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	cmd := exec.Command(filepath.Join(goCodeDir, "bootstrap"))
	cmd.Env = []string{"AWS_LAMBDA_RUNTIME_API=" + srv.Addr()}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	if err := srv.WaitInit(context.Background()); err != nil {
		b.Fatal(err)
	}
	inv := &runtimeapi.Invocation{RequestID: "11111111-2222-4333-8444-555555555555", Payload: []byte(`{"op":"echo","text":"hello"}`)}
	b.ReportAllocs()
	for b.Loop() {
		inv.Deadline = time.Now().Add(time.Minute)
		if _, err := srv.Invoke(context.Background(), inv); err != nil {
			b.Fatal(err)
		}
	}
}
