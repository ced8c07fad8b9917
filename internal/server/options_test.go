package server_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/lambdad/lambdad/internal/lambdatest"
	"github.com/lambdad/lambdad/internal/server"
)

// requireTool skips a test when an outside program is missing, unless
// LAMBDAD_REQUIRE_E2E is set (as in CI), where it fails instead.
func requireTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("LAMBDAD_REQUIRE_E2E") != "" {
			t.Fatalf("%s is not installed and LAMBDAD_REQUIRE_E2E is set", name)
		}
		t.Skipf("%s is not installed; skipping (set LAMBDAD_REQUIRE_E2E=1 to make this a failure)", name)
	}
}

// createShell creates a provided-runtime function whose code is never run.
func (n *node) createShell(t *testing.T, name string) {
	t.Helper()
	if _, err := n.client.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String(name),
		Runtime: types.RuntimeProvidedal2023, Handler: aws.String("x"), Role: aws.String(role),
		Code: &types.FunctionCode{ZipFile: lambdatest.Zip(t, map[string]string{"bootstrap": "#!/bin/sh\n"})}}); err != nil {
		t.Fatal(err)
	}
}

func (n *node) unreserved(t *testing.T) int32 {
	t.Helper()
	s, err := n.client.GetAccountSettings(ctx, &lambda.GetAccountSettingsInput{})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToInt32(s.AccountLimit.UnreservedConcurrentExecutions)
}

// TestRelativeDataDir starts a node on a relative data directory, as
// lambdad's default (.lambdad) is, and runs a python function: its bootstrap
// shim lives under the data directory and the function runs in its code
// directory, so a path relative to the server's working directory would
// not be found there.
func TestRelativeDataDir(t *testing.T) {
	requireTool(t, "python3")
	cwd := t.TempDir()
	t.Chdir(cwd)
	n := start(t, server.Options{DataDir: ".lambdad"})
	if want := filepath.Join(cwd, ".lambdad"); n.DataDir() != want {
		t.Errorf("DataDir() = %q, want %q", n.DataDir(), want)
	}
	if _, err := n.client.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("py"),
		Runtime: types.RuntimePython312, Handler: aws.String("app.handler"), Role: aws.String(role),
		Code: &types.FunctionCode{ZipFile: lambdatest.Zip(t, map[string]string{
			"app.py": "def handler(event, context):\n    return {'hello': event['name']}\n"})}}); err != nil {
		t.Fatal(err)
	}
	out, err := n.invoke(t, "py", `{"name":"relative"}`)
	if err != nil {
		t.Fatal(err)
	}
	if out.FunctionError != nil || string(out.Payload) != `{"hello": "relative"}` {
		t.Fatalf("invoke: %s %s", aws.ToString(out.FunctionError), out.Payload)
	}
	if _, err := os.Stat(filepath.Join(cwd, ".lambdad", server.LockFile)); err != nil {
		t.Errorf("the data directory is not where it was asked for: %v", err)
	}
}

// TestMinUnreservedZero: M = 0 is a setting of its own, not "the default":
// the whole account limit can be reserved.
func TestMinUnreservedZero(t *testing.T) {
	n := start(t, server.Options{AccountConcurrency: 10, MinUnreserved: new(0)})
	if n.MinUnreserved() != 0 {
		t.Errorf("MinUnreserved() = %d, want 0", n.MinUnreserved())
	}
	n.createShell(t, "all")
	n.reserve(t, "all", 10)
	if u := n.unreserved(t); u != 0 {
		t.Errorf("UnreservedConcurrentExecutions = %d after reserving all of L = 10, want 0", u)
	}

	// Left out, M is AWS's 100, capped at L: nothing can be reserved.
	d := start(t, server.Options{AccountConcurrency: 10})
	if d.MinUnreserved() != 10 {
		t.Errorf("default MinUnreserved() = %d, want min(100, 10)", d.MinUnreserved())
	}
	d.createShell(t, "some")
	_, err := d.client.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("some"), ReservedConcurrentExecutions: aws.Int32(1)})
	if _, msg := lambdatest.APIError(t, err); !strings.Contains(msg, "below its minimum value of [10]") {
		t.Errorf("reserving 1 of L = 10 with the default M: %v", err)
	}

	if _, err := server.Start(server.Options{DataDir: t.TempDir(), Listen: "127.0.0.1:0", MinUnreserved: new(-1)}); err == nil {
		t.Error("a negative minimum was accepted")
	}
}

// TestDataDirLock: a second node on a data directory in use is refused at
// once, naming the holder; once the first closes, the directory is free.
func TestDataDirLock(t *testing.T) {
	dir := t.TempDir()
	first := start(t, server.Options{DataDir: dir})
	pidFile := filepath.Join(dir, server.LockFile)
	if b, err := os.ReadFile(pidFile); err != nil || strings.TrimSpace(string(b)) != fmt.Sprint(os.Getpid()) {
		t.Errorf("%s holds %q (%v), want this process's id", pidFile, b, err)
	}
	t0 := time.Now()
	second, err := server.Start(server.Options{DataDir: dir, Listen: "127.0.0.1:0"})
	if err == nil {
		second.Close(ctx)
		t.Fatal("a second node started on a data directory in use")
	}
	want := fmt.Sprintf("data directory %s is in use by another lambdad (pid %d)", dir, os.Getpid())
	if !errors.Is(err, server.ErrDataDirInUse) || err.Error() != want {
		t.Errorf("second Start: %v, want %q", err, want)
	}
	if d := time.Since(t0); d > time.Second {
		t.Errorf("the refusal took %v; it must not wait", d)
	}
	// The first node is untouched by the attempt.
	first.createShell(t, "still-here")

	c, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := first.Close(c); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(pidFile); err != nil || len(b) != 0 {
		t.Errorf("after Close %s holds %q (%v), want it empty", pidFile, b, err)
	}
	again := start(t, server.Options{DataDir: dir})
	if _, err := again.client.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("still-here")}); err != nil {
		t.Errorf("after a restart: %v", err)
	}
}
