package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
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
)

// binary is lambdad built once for these tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "lambdad-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "lambdad")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building lambdad: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// requireTool skips a test when an outside program is missing, unless
// LAMBDAD_REQUIRE_E2E is set (as in CI), where it fails instead.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("LAMBDAD_REQUIRE_E2E") != "" {
			t.Fatalf("%s is not installed and LAMBDAD_REQUIRE_E2E is set", name)
		}
		t.Skipf("%s is not installed; skipping (set LAMBDAD_REQUIRE_E2E=1 to make this a failure)", name)
	}
	return path
}

type proc struct {
	cmd *exec.Cmd
	url string
	mu  sync.Mutex
	log bytes.Buffer // the server's stderr, as far as read
}

// logText is what the server has written to stderr so far.
func (p *proc) logText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

var endpointLine = regexp.MustCompile(`endpoint (http://127\.0\.0\.1:\d+)`)

// startServer starts the binary on dataDir and waits for it to say where it
// listens.
func startServer(t *testing.T, dataDir string, args ...string) *proc {
	t.Helper()
	p, err := startProc(t, exec.Command(binary, append([]string{"serve", "--listen", "127.0.0.1:0", "--data-dir", dataDir, "--log-level", "warn"}, args...)...))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// startProc starts a server command and waits until it prints its
// endpoint; an error says it exited first (with what it printed) or never
// printed it. The process is stopped when the test ends.
func startProc(t *testing.T, cmd *exec.Cmd) (*proc, error) {
	t.Helper()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd}
	found := make(chan string, 1)
	eof := make(chan struct{})
	go func() {
		defer close(eof)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			fmt.Fprintln(&p.log, sc.Text())
			p.mu.Unlock()
			if m := endpointLine.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
	}()
	select {
	case p.url = <-found:
	case <-eof:
		err := cmd.Wait()
		return nil, fmt.Errorf("lambdad exited before serving (%v):\n%s", err, p.logText())
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-eof
		cmd.Wait()
		return nil, fmt.Errorf("lambdad did not print its endpoint:\n%s", p.logText())
	}
	t.Cleanup(func() { p.stop(syscall.SIGTERM) })
	return p, nil
}

func (p *proc) stop(sig syscall.Signal) {
	if p.cmd.ProcessState != nil {
		return
	}
	p.cmd.Process.Signal(sig)
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		<-done
	}
}

var ctx = context.Background()

const role = "arn:aws:iam::123456789012:role/lambda-role"

func TestVersionAndUnknownCommand(t *testing.T) {
	out, err := exec.Command(binary, "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "lambdad ") {
		t.Errorf("version: %q %v", out, err)
	}
	if err := exec.Command(binary, "nonsense").Run(); err == nil {
		t.Error("an unknown command succeeded")
	}
}

// TestKill9KeepsAcknowledgedWrites writes through the API, kills the server
// without warning, and reads everything back from a new one.
func TestKill9KeepsAcknowledgedWrites(t *testing.T) {
	dir := t.TempDir()
	p := startServer(t, dir)
	c := lambdatest.Client(p.url)
	zip := lambdatest.Zip(t, map[string]string{"bootstrap": "#!/bin/sh\n"})
	for i := range 5 {
		if _, err := c.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String(fmt.Sprintf("f%d", i)),
			Runtime: types.RuntimeProvidedal2023, Handler: aws.String("x"), Role: aws.String(role),
			Code: &types.FunctionCode{ZipFile: zip}, Publish: i%2 == 0}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("f1"), ReservedConcurrentExecutions: aws.Int32(42)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String("f0"), Name: aws.String("live"), FunctionVersion: aws.String("1")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("f4")}); err != nil {
		t.Fatal(err)
	}
	p.stop(syscall.SIGKILL)

	p = startServer(t, dir)
	c = lambdatest.Client(p.url)
	r, err := c.GetFunctionConcurrency(ctx, &lambda.GetFunctionConcurrencyInput{FunctionName: aws.String("f1")})
	if err != nil || aws.ToInt32(r.ReservedConcurrentExecutions) != 42 {
		t.Errorf("reservation after kill -9: %v %v", r, err)
	}
	if a, err := c.GetAlias(ctx, &lambda.GetAliasInput{FunctionName: aws.String("f0"), Name: aws.String("live")}); err != nil || aws.ToString(a.FunctionVersion) != "1" {
		t.Errorf("alias after kill -9: %v %v", a, err)
	}
	settings, err := c.GetAccountSettings(ctx, &lambda.GetAccountSettingsInput{})
	if err != nil || settings.AccountUsage.FunctionCount != 4 || aws.ToInt32(settings.AccountLimit.UnreservedConcurrentExecutions) != 958 {
		t.Errorf("account settings after kill -9: %+v %+v %v", settings.AccountUsage, settings.AccountLimit, err)
	}
	if _, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("f4")}); err == nil {
		t.Error("a deleted function came back")
	}
}

// TestKill9KeepsAcceptedEvents kills the server in the middle of a burst of
// asynchronous invocations and checks, after a restart, that every event
// answered with 202 ran.
func TestKill9KeepsAcceptedEvents(t *testing.T) {
	dir := t.TempDir()
	records := t.TempDir()
	// The function records each event in a directory of the host, which a
	// sandbox hides from it (its purpose): this server runs unsandboxed.
	p := startServer(t, dir, "--sandbox=off")
	c := lambdatest.Client(p.url)
	if _, err := c.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("sink"),
		Runtime: types.RuntimeProvidedal2023, Handler: aws.String("x"), Role: aws.String(role),
		Code:        &types.FunctionCode{ZipFile: lambdatest.GoFunction(t)},
		Environment: &types.Environment{Variables: map[string]string{"RECORD_DIR": records}}}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var accepted []string
	var wg sync.WaitGroup
	killed := make(chan struct{})
	var once sync.Once
	for w := range 16 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-killed:
					return
				default:
				}
				status, id, err := sendEvent(p.url+"/2015-03-31/functions/sink/invocations", fmt.Sprintf(`{"echo":"%d-%d","sleep_ms":20}`, w, i))
				if err != nil {
					return // the server is gone
				}
				if status == 202 {
					mu.Lock()
					accepted = append(accepted, id)
					n := len(accepted)
					mu.Unlock()
					if n == 150 {
						once.Do(func() {
							p.stop(syscall.SIGKILL)
							close(killed)
						})
					}
				}
			}
		})
	}
	wg.Wait()
	mu.Lock()
	want := append([]string(nil), accepted...)
	mu.Unlock()
	t.Logf("%d events accepted before kill -9", len(want))

	startServer(t, dir, "--sandbox=off")
	deadline := time.Now().Add(60 * time.Second)
	for {
		missing := 0
		for _, id := range want {
			if _, err := os.Stat(filepath.Join(records, id+".json")); err != nil {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d accepted events never ran after the restart", missing, len(want))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// sendEvent posts one Event invocation and returns the status and the
// request id the server gave it; a connection error is returned, not fatal.
func sendEvent(url, payload string) (int, string, error) {
	req, err := http.NewRequest("POST", url, strings.NewReader(payload))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("X-Amz-Invocation-Type", "Event")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, "", err
	}
	return resp.StatusCode, resp.Header.Get("X-Amzn-Requestid"), nil
}

// TestQuickstart runs the README's quickstart as written, with the AWS CLI,
// against the server started as the README starts it: no flags at all, so
// on 127.0.0.1:9001 with the relative data directory .lambdad, from a fresh
// copy of the repository as working directory.
func TestQuickstart(t *testing.T) {
	requireTool(t, "aws")
	requireTool(t, "python3")
	requireTool(t, "git")
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile("(?s)<!-- quickstart -->\\s*```sh\\n(.*?)```\\s*<!-- /quickstart -->").FindSubmatch(readme)
	if block == nil {
		t.Fatal("README.md has no quickstart block")
	}
	clone := copyRepo(t, "../..")

	const readmeAddr = "127.0.0.1:9001"
	busy := func(why string) {
		if os.Getenv("LAMBDAD_REQUIRE_E2E") != "" {
			t.Fatalf("%s is %s; the quickstart needs the README's default address (LAMBDAD_REQUIRE_E2E is set)", readmeAddr, why)
		}
		t.Skipf("%s is %s; skipping: the quickstart needs the README's default address (set LAMBDAD_REQUIRE_E2E=1 to make this a failure)", readmeAddr, why)
	}
	if ln, err := net.Listen("tcp", readmeAddr); err != nil {
		busy("in use")
	} else {
		ln.Close()
	}
	server := exec.Command(binary) // no flags: the README's `go run ./cmd/lambdad`
	server.Dir = clone
	p, err := startProc(t, server)
	if err != nil {
		if strings.Contains(err.Error(), "address already in use") {
			busy("taken by another program meanwhile")
		}
		t.Fatal(err)
	}
	if p.url != "http://"+readmeAddr {
		t.Fatalf("lambdad with no flags serves at %s, not at the README's %s", p.url, readmeAddr)
	}

	cmd := exec.Command("bash", "-euo", "pipefail", "-c", string(block[1]))
	cmd.Dir = clone
	cmd.Env = append(os.Environ(), "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_PAGER=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("quickstart failed: %v\n%s\nserver:\n%s", err, out, p.logText())
	}
	if !strings.Contains(string(out), "{\n    \"ReservedConcurrentExecutions\": 100\n}\n") {
		t.Errorf("put-function-concurrency did not print the seed's output:\n%s", out)
	}
	if !strings.Contains(string(out), `{"hello": "lambdad"}`) {
		t.Errorf("the invocation did not answer:\n%s\nserver:\n%s", out, p.logText())
	}
	var settings struct {
		AccountLimit struct{ UnreservedConcurrentExecutions int }
	}
	i := strings.LastIndex(string(out), "{\n    \"AccountLimit\"")
	if i < 0 || json.Unmarshal(out[i:], &settings) != nil || settings.AccountLimit.UnreservedConcurrentExecutions != 900 {
		t.Errorf("get-account-settings:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(clone, ".lambdad", "lambdad.pid")); err != nil {
		t.Errorf("the server did not use ./.lambdad of its working directory: %v", err)
	}
}

// copyRepo copies the files git tracks in repo (as they are in the working
// tree, so uncommitted edits are tested too) into a new directory: what a
// fresh clone holds.
func copyRepo(t *testing.T, repo string) string {
	t.Helper()
	list, err := exec.Command("git", "-C", repo, "ls-files", "-z").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	dst := t.TempDir()
	for _, name := range strings.Split(strings.TrimRight(string(list), "\x00"), "\x00") {
		src := filepath.Join(repo, name)
		fi, err := os.Lstat(src)
		if errors.Is(err, os.ErrNotExist) {
			continue // deleted in the working tree, not yet committed
		}
		if err != nil {
			t.Fatal(err)
		}
		to := filepath.Join(dst, name)
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			t.Fatal(err)
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			target, err := os.Readlink(src)
			if err == nil {
				err = os.Symlink(target, to)
			}
			if err != nil {
				t.Fatal(err)
			}
			continue
		}
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, b, fi.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// TestLogsAndEventsCommands reads a function's log file with `lambdad logs`
// and the dead-letter list with `lambdad events`.
func TestLogsAndEventsCommands(t *testing.T) {
	dir := t.TempDir()
	p := startServer(t, dir, "--async-time-scale", "0.001")
	c := lambdatest.Client(p.url)
	if _, err := c.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("talky"),
		Runtime: types.RuntimeProvidedal2023, Handler: aws.String("x"), Role: aws.String(role),
		Code: &types.FunctionCode{ZipFile: lambdatest.GoFunction(t)}}); err != nil {
		t.Fatal(err)
	}
	out, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("talky"), Payload: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	var answer struct {
		RequestID string `json:"request_id"`
	}
	json.Unmarshal(out.Payload, &answer)
	deadline := time.Now().Add(10 * time.Second)
	for {
		logs, _ := exec.Command(binary, "logs", "--data-dir", dir, "talky").CombinedOutput()
		if strings.Contains(string(logs), "START RequestId: "+answer.RequestID) && strings.Contains(string(logs), "REPORT RequestId: "+answer.RequestID) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lambdad logs never showed the invocation:\n%s", logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := exec.Command(binary, "logs", "--data-dir", dir, "nobody").Run(); err == nil {
		t.Error("logs of a function with none succeeded")
	}

	if _, err := c.PutFunctionEventInvokeConfig(ctx, &lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String("talky"), MaximumRetryAttempts: aws.Int32(0)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("talky"), InvocationType: types.InvocationTypeEvent, Payload: []byte(`{"fail":"no"}`)}); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(15 * time.Second)
	for {
		list, err := exec.Command(binary, "events", "--endpoint", p.url, "list").CombinedOutput()
		if err == nil && strings.Contains(string(list), "RetriesExhausted") && strings.Contains(string(list), "talky") {
			seq := strings.Fields(strings.Split(strings.TrimSpace(string(list)), "\n")[1])[0]
			replayed, err := exec.Command(binary, "events", "--endpoint", p.url, "replay", seq).CombinedOutput()
			if err != nil || !strings.HasPrefix(string(replayed), "replayed dead letter "+seq+" as event ") {
				t.Errorf("replay %s: %v %s", seq, err, replayed)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lambdad events never listed the failed event: %v\n%s", err, list)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestClusterKill9KeepsAcceptedEvents: of two nodes sharing one etcd, the
// one that accepted the events is killed with kill -9 mid-stream; the
// other runs every event it acknowledged once the dead node's lease has
// expired.
func TestClusterKill9KeepsAcceptedEvents(t *testing.T) {
	endpoint := lambdatest.Etcd(t)
	records := t.TempDir()
	cluster := []string{"--sandbox=off", "--etcd-endpoints", endpoint, "--etcd-prefix", "/kill9/", "--lease-ttl", "2s"}
	a := startServer(t, t.TempDir(), cluster...)
	b := startServer(t, t.TempDir(), cluster...)
	c := lambdatest.Client(a.url)
	if _, err := c.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("sink"),
		Runtime: types.RuntimeProvidedal2023, Handler: aws.String("x"), Role: aws.String(role),
		Code:        &types.FunctionCode{ZipFile: lambdatest.GoFunction(t)},
		Environment: &types.Environment{Variables: map[string]string{"RECORD_DIR": records}}}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var accepted []string
	var wg sync.WaitGroup
	killed := make(chan struct{})
	var once sync.Once
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-killed:
					return
				default:
				}
				status, id, err := sendEvent(a.url+"/2015-03-31/functions/sink/invocations", fmt.Sprintf(`{"echo":"%d-%d","sleep_ms":50}`, w, i))
				if err != nil {
					return // the node is gone
				}
				if status == 202 {
					mu.Lock()
					accepted = append(accepted, id)
					n := len(accepted)
					mu.Unlock()
					if n == 100 {
						once.Do(func() {
							a.stop(syscall.SIGKILL)
							close(killed)
						})
					}
				}
			}
		})
	}
	wg.Wait()
	mu.Lock()
	want := append([]string(nil), accepted...)
	mu.Unlock()
	t.Logf("%d events accepted by the node killed", len(want))
	deadline := time.Now().Add(60 * time.Second)
	for {
		missing := 0
		for _, id := range want {
			if _, err := os.Stat(filepath.Join(records, id+".json")); err != nil {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events accepted by the killed node never ran on the other\n%s", missing, len(want), b.logText())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestClusterKill9ReturnsSlots: a node killed with kill -9 while it runs
// the whole of a reservation gives the reservation back to the cluster
// once its lease has expired, and not before.
func TestClusterKill9ReturnsSlots(t *testing.T) {
	endpoint := lambdatest.Etcd(t)
	cluster := []string{"--sandbox=off", "--etcd-endpoints", endpoint, "--etcd-prefix", "/kill9slots/", "--lease-ttl", "2s"}
	a := startServer(t, t.TempDir(), cluster...)
	b := startServer(t, t.TempDir(), cluster...)
	ca, cb := lambdatest.Client(a.url), lambdatest.Client(b.url)
	if _, err := ca.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("held"),
		Runtime: types.RuntimeProvidedal2023, Handler: aws.String("x"), Role: aws.String(role), Timeout: aws.Int32(120),
		Code: &types.FunctionCode{ZipFile: lambdatest.GoFunction(t)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := ca.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("held"), ReservedConcurrentExecutions: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	inflight := t.TempDir()
	never := filepath.Join(t.TempDir(), "never")
	for range 2 {
		go ca.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("held"), Payload: []byte(fmt.Sprintf(`{"wait_for":%q,"inflight_dir":%q}`, never, inflight))})
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if e, _ := os.ReadDir(inflight); len(e) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the two held invocations did not start")
		}
	}
	invoke := func() error {
		_, err := cb.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("held"), Payload: []byte(`{}`)})
		return err
	}
	if err := invoke(); err == nil {
		t.Fatal("the other node ran a third invocation under a reservation of 2")
	}
	killed := time.Now()
	a.stop(syscall.SIGKILL)
	for invoke() != nil {
		if time.Since(killed) > 20*time.Second {
			t.Fatalf("the reservation did not come back 20 s after the node holding it was killed\n%s", b.logText())
		}
		time.Sleep(50 * time.Millisecond)
	}
	back := time.Since(killed)
	t.Logf("the reservation came back %v after kill -9 (lease TTL 2 s)", back.Round(time.Millisecond))
	if back < time.Second {
		t.Errorf("the reservation came back %v after the kill, before the lease could have expired", back)
	}
	// The killed node's invocations went with it: nothing of them runs
	// beside what the other node now admits.
	held, _ := os.ReadDir(inflight)
	for _, e := range held {
		if _, err := os.Stat("/proc/" + e.Name()); err == nil {
			t.Errorf("function process %s of the killed node still runs", e.Name())
		}
	}
}
