package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/lambdad/lambdad/internal/lambdatest"
	"github.com/lambdad/lambdad/internal/sandbox"
)

// runBinary runs lambdad with args and returns its stdout, stderr and exit
// status. A command that should end by itself but serves instead is
// killed after a while, failing the test rather than hanging it.
func runBinary(t *testing.T, args ...string) (stdout, stderr string, status int) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(c, binary, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case c.Err() != nil:
		t.Fatalf("lambdad %q did not end: %v\n%s", args, err, errOut.String())
	case err == nil:
	case errors.As(err, &ee):
		status = ee.ExitCode()
	default:
		t.Fatalf("lambdad %q: %v", args, err)
	}
	return out.String(), errOut.String(), status
}

func TestHelpListsCommands(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}, {"-help"}} {
		out, errOut, status := runBinary(t, args...)
		if status != 0 {
			t.Errorf("lambdad %q: status %d, stderr %s", args, status, errOut)
		}
		for _, cmd := range []string{"serve", "logs", "events", "bench", "version"} {
			if !strings.Contains(out, "\n  "+cmd+" ") {
				t.Errorf("lambdad %q does not list %s:\n%s", args, cmd, out)
			}
		}
	}
	for _, args := range [][]string{{"serve", "-h"}, {"serve", "--help"}, {"help", "serve"}} {
		out, _, status := runBinary(t, args...)
		if status != 0 || !strings.Contains(out, "-min-unreserved int") || !strings.Contains(out, "-data-dir string") {
			t.Errorf("lambdad %q (status %d) does not list serve's flags:\n%s", args, status, out)
		}
	}
	if out, _, status := runBinary(t, "events", "replay", "-h"); status != 0 || !strings.Contains(out, "-endpoint string") || !strings.Contains(out, "-json") {
		t.Errorf("lambdad events replay -h (status %d):\n%s", status, out)
	}
}

// TestUsageErrors: unknown flags, missing and unexpected arguments are
// refused with exit status 2 and a message naming the problem.
func TestUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"events", "list", "--bogus"}, "unknown flag --bogus"},
		{[]string{"events", "--bogus=1", "list"}, "unknown flag --bogus"},
		{[]string{"events", "list", "extra"}, `unexpected argument "extra"`},
		{[]string{"events", "replay"}, "replay takes one SEQ"},
		{[]string{"events", "replay", "1", "2"}, "replay takes one SEQ"},
		{[]string{"events", "replay", "twelve"}, `SEQ must be a number, not "twelve"`},
		{[]string{"events", "drop"}, `unknown action "drop"`},
		{[]string{"events", "mappings", "extra"}, `mappings: unexpected argument "extra"`},
		{[]string{"events", "list", "--endpoint"}, "flag needs an argument"},
		{[]string{"logs"}, "expected one FUNCTION"},
		{[]string{"logs", "a", "b"}, "expected one FUNCTION"},
		{[]string{"logs", "f", "--follow", "yes"}, "expected one FUNCTION"},
		{[]string{"logs", "../f"}, "not a function name"},
		{[]string{"logs", "f", "--qualifier", "a:b"}, "--qualifier"},
		{[]string{"serve", "extra"}, `unexpected argument "extra"`},
		{[]string{"--listen", "127.0.0.1:0", "extra"}, `unexpected argument "extra"`},
		{[]string{"serve", "--min-unreserved", "-1"}, "--min-unreserved must be at least 0"},
		{[]string{"serve", "--scaling-rate", "-1"}, "--scaling-rate must be at least 0"},
		{[]string{"serve", "--lease-ttl", "100ms"}, "--lease-ttl must be at least 1s"},
		{[]string{"serve", "--account-concurrency", "0"}, "--account-concurrency must be from 1 to 1048575"},
		{[]string{"serve", "--account-concurrency", "1048576"}, "--account-concurrency must be from 1 to 1048575"},
		{[]string{"serve", "--async-time-scale", "0"}, "--async-time-scale must be positive"},
		{[]string{"serve", "--log-level", "loud"}, "--log-level"},
		{[]string{"--nonsense"}, "unknown flag --nonsense"},
		{[]string{"bench", "now"}, `unexpected argument "now"`},
		{[]string{"bench", "--rounds", "x"}, "invalid value"},
		{[]string{"version", "2"}, `unexpected argument "2"`},
		{[]string{"nonsense"}, `unknown command "nonsense"`},
		{[]string{"help", "nonsense"}, `unknown command "nonsense"`},
	} {
		out, errOut, status := runBinary(t, c.args...)
		if status != 2 || !strings.Contains(errOut, c.want) || out != "" {
			t.Errorf("lambdad %q: status %d, stdout %q, stderr %q; want status 2 and %q", c.args, status, out, errOut, c.want)
		}
	}
}

// fakeEvents is a stand-in for a server's /lambdad/events endpoints that
// records what it was asked.
type fakeEvents struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []string
}

const fakeDeadLetters = `{"DeadLetters":[{"Seq":12,"At":"2024-05-06T07:08:09Z","Event":{"Function":"f","Qualifier":"1","RequestID":"r-12"},"Record":{"requestContext":{"condition":"RetriesExhausted"}}}]}`

func newFakeEvents(t *testing.T) *fakeEvents {
	f := &fakeEvents{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.reqs = append(f.reqs, r.Method+" "+r.URL.Path)
		f.mu.Unlock()
		switch {
		case r.Method == "GET" && r.URL.Path == "/lambdad/events/dead-letters":
			io.WriteString(w, fakeDeadLetters)
		case r.Method == "POST" && r.URL.Path == "/lambdad/events/dead-letters/12/replay":
			io.WriteString(w, `{"Event":40,"Replayed":12,"RequestId":"r-40"}`)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeEvents) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.reqs...)
}

// TestFlagsWhereverTheyStand: a subcommand's flags count before, between
// and after its arguments.
func TestFlagsWhereverTheyStand(t *testing.T) {
	for _, args := range [][]string{
		{"events", "replay", "12", "--endpoint", "URL"},
		{"events", "replay", "--endpoint=URL", "12"},
		{"events", "--endpoint", "URL", "replay", "12"},
	} {
		f := newFakeEvents(t)
		for i := range args {
			args[i] = strings.ReplaceAll(args[i], "URL", f.URL)
		}
		out, errOut, status := runBinary(t, args...)
		if status != 0 || out != "replayed dead letter 12 as event 40, request id r-40\n" {
			t.Errorf("lambdad %q: status %d, stdout %q, stderr %q", args, status, out, errOut)
		}
		if got := f.requests(); len(got) != 1 || got[0] != "POST /lambdad/events/dead-letters/12/replay" {
			t.Errorf("lambdad %q asked the server %q", args, got)
		}
	}

	f := newFakeEvents(t)
	for _, args := range [][]string{
		{"events", "list", "--json", "--endpoint", f.URL},
		{"events", "--json", "list", "--endpoint", f.URL},
		{"events", "--endpoint", f.URL, "--json"},
	} {
		out, errOut, status := runBinary(t, args...)
		if status != 0 || out != fakeDeadLetters+"\n" {
			t.Errorf("lambdad %q: status %d, stdout %q, stderr %q; want the server's JSON", args, status, out, errOut)
		}
	}
	out, _, status := runBinary(t, "events", "list", "--endpoint", f.URL)
	if status != 0 || !strings.Contains(out, "SEQ") || !strings.Contains(out, "12") || !strings.Contains(out, "f:1") || !strings.Contains(out, "RetriesExhausted") {
		t.Errorf("events list: status %d\n%s", status, out)
	}
	out, _, status = runBinary(t, "events", "replay", "12", "--json", "--endpoint", f.URL)
	if status != 0 || out != `{"Event":40,"Replayed":12,"RequestId":"r-40"}`+"\n" {
		t.Errorf("events replay --json: status %d, %q", status, out)
	}
	// Everything after "--" is an argument, even what looks like a flag.
	if _, errOut, status := runBinary(t, "events", "--endpoint", f.URL, "--", "list", "--json"); status != 2 || !strings.Contains(errOut, `unexpected argument "--json"`) {
		t.Errorf(`events -- list --json: status %d, %s`, status, errOut)
	}
}

// TestMinUnreservedZeroFlag: --min-unreserved 0 means 0, so the whole of
// --account-concurrency can be reserved.
func TestMinUnreservedZeroFlag(t *testing.T) {
	p := startServer(t, t.TempDir(), "--account-concurrency", "10", "--min-unreserved", "0")
	c := lambdatest.Client(p.url)
	if _, err := c.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("all"),
		Runtime: types.RuntimeProvidedal2023, Handler: aws.String("x"), Role: aws.String(role),
		Code: &types.FunctionCode{ZipFile: lambdatest.Zip(t, map[string]string{"bootstrap": "#!/bin/sh\n"})}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("all"), ReservedConcurrentExecutions: aws.Int32(10)}); err != nil {
		t.Fatalf("reserving all of L = 10 with --min-unreserved 0: %v", err)
	}
	s, err := c.GetAccountSettings(ctx, &lambda.GetAccountSettingsInput{})
	if err != nil || aws.ToInt32(s.AccountLimit.UnreservedConcurrentExecutions) != 0 || s.AccountLimit.ConcurrentExecutions != 10 {
		t.Errorf("account settings: %+v %v", s.AccountLimit, err)
	}
}

// TestSecondServerRefused: a second lambdad on a data directory in use
// exits at once, naming the first one's pid; after the first stops, the
// directory can be served again.
func TestSecondServerRefused(t *testing.T) {
	dir := t.TempDir()
	first := startServer(t, dir)
	t0 := time.Now()
	_, errOut, status := runBinary(t, "serve", "--listen", "127.0.0.1:0", "--data-dir", dir)
	want := fmt.Sprintf("lambdad: data directory %s is in use by another lambdad (pid %d)\n", dir, first.cmd.Process.Pid)
	if status != 1 || errOut != want {
		t.Errorf("second server: status %d, stderr %q; want 1 and %q", status, errOut, want)
	}
	if d := time.Since(t0); d > 3*time.Second {
		t.Errorf("the second server took %v to give up", d)
	}
	first.stop(syscall.SIGTERM)
	startServer(t, dir)
}

// TestBenchCleansUp: lambdad bench against a running server deletes the
// function it created, whether it finishes, fails or is interrupted.
func TestBenchCleansUp(t *testing.T) {
	p := startServer(t, t.TempDir())
	c := lambdatest.Client(p.url)
	functions := func() []string {
		t.Helper()
		out, err := c.ListFunctions(ctx, &lambda.ListFunctionsInput{})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, f := range out.Functions {
			names = append(names, aws.ToString(f.FunctionName))
		}
		return names
	}

	out, errOut, status := runBinary(t, "bench", "--endpoint", p.url, "--count", "5")
	if status != 0 || !strings.Contains(out, "lambdad ") {
		t.Fatalf("bench: status %d\n%s\n%s", status, out, errOut)
	}
	if left := functions(); len(left) != 0 {
		t.Errorf("after a finished run: %q left behind", left)
	}

	// --idle-envs fails against a remote server, after the function exists.
	if _, errOut, status := runBinary(t, "bench", "--endpoint", p.url, "--count", "1", "--idle-envs", "1"); status != 1 || !strings.Contains(errOut, "--idle-envs") {
		t.Errorf("bench --idle-envs with --endpoint: status %d, %s", status, errOut)
	}
	if left := functions(); len(left) != 0 {
		t.Errorf("after a failed run: %q left behind", left)
	}

	cmd := exec.Command(binary, "bench", "--endpoint", p.url, "--duration", "1m")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-done
		}
	}()
	deadline := time.Now().Add(20 * time.Second)
	for len(functions()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the bench never created its function")
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // into the measured run
	cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("bench after Ctrl-C: %v\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the bench did not stop after Ctrl-C")
	}
	if left := functions(); len(left) != 0 {
		t.Errorf("after Ctrl-C: %q left behind", left)
	}
}

var logLine = regexp.MustCompile(`^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) \[(\$LATEST|\d+)\] (.*)$`)

// TestLogsVersionsAndTimes: lambdad logs prints every line with its time and
// the version that wrote it, and --qualifier keeps one version's lines (an
// alias standing for its version), with and without --follow.
func TestLogsVersionsAndTimes(t *testing.T) {
	dir := t.TempDir()
	p := startServer(t, dir)
	c := lambdatest.Client(p.url)
	if _, err := c.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("talky"),
		Runtime: types.RuntimeProvidedal2023, Handler: aws.String("x"), Role: aws.String(role),
		Code: &types.FunctionCode{ZipFile: lambdatest.GoFunction(t)}, Publish: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String("talky"), Name: aws.String("live"), FunctionVersion: aws.String("1")}); err != nil {
		t.Fatal(err)
	}
	invoke := func(name string) string {
		t.Helper()
		out, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(name), Payload: []byte(`{}`)})
		if err != nil || out.FunctionError != nil {
			t.Fatalf("invoke %s: %v %s", name, err, out.Payload)
		}
		var a struct {
			RequestID string `json:"request_id"`
		}
		json.Unmarshal(out.Payload, &a)
		return a.RequestID
	}
	since := time.Now().Add(-time.Second)
	v1, latest := invoke("talky:1"), invoke("talky")

	var all string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		all, _, _ = runBinary(t, "logs", "--data-dir", dir, "talky")
		if strings.Contains(all, "REPORT RequestId: "+v1) && strings.Contains(all, "REPORT RequestId: "+latest) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lambdad logs never showed both invocations:\n%s", all)
		}
	}
	for _, line := range strings.Split(strings.TrimSuffix(all, "\n"), "\n") {
		m := logLine.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("line not stamped with a time and a version: %q", line)
			continue
		}
		if at, err := time.Parse("2006-01-02T15:04:05.000Z", m[1]); err != nil || at.Before(since.Truncate(time.Millisecond)) || at.After(time.Now()) {
			t.Errorf("line stamped %s, not during the test (%v)", m[1], err)
		}
	}
	for _, want := range []string{"[1] START RequestId: " + v1 + " Version: 1", "[$LATEST] START RequestId: " + latest + " Version: $LATEST", "[1] END RequestId: " + v1} {
		if !strings.Contains(all, want) {
			t.Errorf("logs lack %q:\n%s", want, all)
		}
	}

	onlyVersion := func(out, version, want, not string) {
		t.Helper()
		if !strings.Contains(out, "START RequestId: "+want) || strings.Contains(out, not) {
			t.Errorf("logs of %s should show %s and not %s:\n%s", version, want, not, out)
		}
		for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
			if m := logLine.FindStringSubmatch(line); m == nil || m[2] != version {
				t.Errorf("logs of %s hold %q", version, line)
			}
		}
	}
	out, errOut, status := runBinary(t, "logs", "talky", "--qualifier", "1", "--data-dir", dir)
	if status != 0 {
		t.Fatalf("logs --qualifier 1: %d %s", status, errOut)
	}
	onlyVersion(out, "1", v1, latest)
	out, _, _ = runBinary(t, "logs", "--qualifier", "$LATEST", "talky", "--data-dir", dir)
	onlyVersion(out, "$LATEST", latest, v1)
	out, errOut, _ = runBinary(t, "logs", "talky", "--data-dir", dir, "--qualifier", "live", "--endpoint", p.url)
	onlyVersion(out, "1", v1, latest)
	if out != strings.Join(linesWith(all, " [1] "), "") {
		t.Errorf("logs of alias live (version 1) differ from version 1's lines in the full log:\n%s%s", out, errOut)
	}
	if _, errOut, status := runBinary(t, "logs", "talky", "--data-dir", dir, "--qualifier", "gone", "--endpoint", p.url); status != 1 || !strings.Contains(errOut, "resolving alias gone") {
		t.Errorf("logs of a missing alias: status %d, %s", status, errOut)
	}

	// --follow keeps printing version 1's new lines until interrupted.
	follow := exec.Command(binary, "logs", "--follow", "talky", "--qualifier", "1", "--data-dir", dir)
	stdout, err := follow.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	defer func() {
		if follow.ProcessState == nil {
			follow.Process.Kill()
			follow.Wait()
		}
	}()
	latest2, v1b := invoke("talky"), invoke("talky:live")
	timeout := time.After(10 * time.Second)
	for seen := false; !seen; {
		select {
		case line := <-lines:
			if strings.Contains(line, latest2) {
				t.Errorf("--follow --qualifier 1 printed a $LATEST line: %q", line)
			}
			seen = strings.Contains(line, "REPORT RequestId: "+v1b)
		case <-timeout:
			t.Fatal("--follow never printed the new invocation")
		}
	}
	follow.Process.Signal(syscall.SIGINT)
	for range lines {
	}
	if err := follow.Wait(); err != nil {
		t.Errorf("logs --follow after SIGINT: %v", err)
	}
}

// linesWith returns the lines of text (with their newlines) that contain
// part.
func linesWith(text, part string) []string {
	var out []string
	for _, line := range strings.SplitAfter(text, "\n") {
		if strings.Contains(line, part) {
			out = append(out, line)
		}
	}
	return out
}

// TestSandboxRefusal: a server that cannot give the sandbox it is asked
// for (here: run as an unprivileged user, who can give environments
// neither uids of their own nor cgroups) names what is missing and does
// not start; --sandbox=off starts it.
func TestSandboxRefusal(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to run the binary as another user")
	}
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir), filepath.Dir(binary)} {
		os.Chmod(d, 0o777)
	}
	cmd := exec.Command(binary, "serve", "--listen", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("serve as an unprivileged user: %v, want exit status 1\n%s", err, stderr.String())
	}
	for _, want := range []string{"the sandbox (--sandbox=full) cannot be set up on this machine; missing:",
		"own unprivileged uid/gid", "lambdad runs as uid 65534", "--sandbox=off"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
	off := exec.Command(binary, "serve", "--listen", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data"), "--sandbox=off")
	off.SysProcAttr = cmd.SysProcAttr
	p, err := startProc(t, off)
	if err != nil {
		t.Fatalf("--sandbox=off: %v", err)
	}
	p.stop(syscall.SIGTERM)
}

// TestFunctionNetworkRefusal: where pasta is missing (here: not on the
// server's PATH), serve at its default --function-network names the
// missing guarantee and what to start with instead, and does not start;
// --function-network none starts without it; with pasta there, the
// default starts and says what functions reach.
func TestFunctionNetworkRefusal(t *testing.T) {
	if missing := sandbox.Check(sandbox.Full); len(missing) > 0 {
		lambdatest.RequireE2E(t, sandbox.Report(sandbox.Full, missing))
	}
	dir := t.TempDir()
	env := []string{"PATH=" + t.TempDir()} // nothing there
	cmd := exec.Command(binary, "serve", "--listen", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data"))
	cmd.Env = env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("serve without pasta: %v, want exit status 1\n%s", err, stderr.String())
	}
	for _, want := range []string{"the sandbox (--sandbox=full) cannot be set up on this machine; missing:",
		"outbound network through pasta", "pasta is not installed (Debian's package passt)",
		"start with --function-network=none to run functions without network, or with --sandbox=off"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
	none := exec.Command(binary, "serve", "--listen", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data"), "--function-network", "none")
	none.Env = env
	p, err := startProc(t, none)
	if err != nil {
		t.Fatalf("--function-network none: %v", err)
	}
	if log := p.logText(); !strings.Contains(log, "function_network=none") {
		t.Errorf("the start-up log does not say functions have no network:\n%s", log)
	}
	p.stop(syscall.SIGTERM)
	if m := sandbox.CheckNetwork(sandbox.Full, sandbox.NetworkPasta); len(m) > 0 {
		lambdatest.RequireE2E(t, sandbox.Report(sandbox.Full, m))
	}
	p, err = startProc(t, exec.Command(binary, "serve", "--listen", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data")))
	if err != nil {
		t.Fatalf("serve with pasta: %v", err)
	}
	if log := p.logText(); !strings.Contains(log, "function_network=pasta") {
		t.Errorf("the start-up log does not say functions reach out through pasta:\n%s", log)
	}
	p.stop(syscall.SIGTERM)
	if _, errOut, status := runBinary(t, "serve", "--function-network", "slirp"); status != 2 || !strings.Contains(errOut, "--function-network") {
		t.Errorf("--function-network slirp: exit %d\n%s", status, errOut)
	}
}
