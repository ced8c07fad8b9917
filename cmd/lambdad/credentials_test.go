package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/lambdad/lambdad/internal/lambdatest"
)

const (
	credsV1 = `{"accounts": [{"id": "111111111111"}],
 "principals": [{"accessKeyId": "AKIAFIRST0000000001", "secretAccessKey": "first-secret", "account": "111111111111", "user": "first",
   "policy": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "lambda:*", "Resource": "*"}]}}]}`
	credsV2 = `{"accounts": [{"id": "111111111111"}],
 "principals": [{"accessKeyId": "AKIASECOND000000001", "secretAccessKey": "second-secret", "account": "111111111111", "user": "second",
   "policy": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "lambda:*", "Resource": "*"}]}}]}`
)

// TestCredentialsFile checks the --credentials flag from the outside: a
// malformed file stops the start naming file and line, a server without
// the flag says it is open, SIGHUP reloads the file, and a reload of an
// invalid file keeps the credentials in force.
func TestCredentialsFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "credentials.json")
	os.WriteFile(file, []byte("{\"accounts\": [\n  {\"id\": \"42\"}]}"), 0o600)
	_, stderr, status := runBinary(t, "serve", "--listen", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "d0"), "--credentials", file)
	if status == 0 || !strings.Contains(stderr, file+":2: account id \"42\" must be twelve digits") {
		t.Errorf("malformed file: status %d\n%s", status, stderr)
	}

	open := startServer(t, filepath.Join(dir, "d1"))
	if !strings.Contains(open.logText(), "access control is off") {
		t.Errorf("an open server does not say so:\n%s", open.logText())
	}
	open.stop(syscall.SIGTERM)

	os.WriteFile(file, []byte(credsV1), 0o600)
	p := startServer(t, filepath.Join(dir, "d2"), "--credentials", file, "--log-level", "info")
	list := func(key, secret string) error {
		_, err := lambdatest.ClientWith(p.url, key, secret, "").ListFunctions(ctx, &lambda.ListFunctionsInput{})
		return err
	}
	if err := list("AKIAFIRST0000000001", "first-secret"); err != nil {
		t.Fatalf("first key: %v", err)
	}
	waitLog := func(part string, n int) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); strings.Count(p.logText(), part) < n; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the server never logged %q:\n%s", part, p.logText())
			}
		}
	}
	// An invalid file is refused and the first key still works.
	os.WriteFile(file, []byte(`{"accounts": [`), 0o600)
	p.cmd.Process.Signal(syscall.SIGHUP)
	waitLog("credentials not reloaded", 1)
	if err := list("AKIAFIRST0000000001", "first-secret"); err != nil {
		t.Errorf("first key after a failed reload: %v", err)
	}
	// A valid one replaces it.
	os.WriteFile(file, []byte(credsV2), 0o600)
	p.cmd.Process.Signal(syscall.SIGHUP)
	waitLog("credentials reloaded", 1)
	if err := list("AKIASECOND000000001", "second-secret"); err != nil {
		t.Errorf("second key after the reload: %v", err)
	}
	if code, _ := lambdatest.APIError(t, list("AKIAFIRST0000000001", "first-secret")); code != "UnrecognizedClientException" {
		t.Errorf("first key after the reload: %s", code)
	}
	for _, secret := range []string{"first-secret", "second-secret"} {
		if strings.Contains(p.logText(), secret) {
			t.Errorf("the log shows a secret")
		}
	}
}

// TestCredentialsWithAWSCLI signs with the AWS CLI (botocore's signer, not
// the Go SDK's): STS tells each principal who it is, the reader is refused
// put-function-concurrency with AWS's message, the admin is not.
func TestCredentialsWithAWSCLI(t *testing.T) {
	requireTool(t, "aws")
	dir := t.TempDir()
	file := filepath.Join(dir, "credentials.json")
	os.WriteFile(file, []byte(`{"accounts": [{"id": "111111111111"}],
 "principals": [
  {"accessKeyId": "AKIAADMIN0000000001", "secretAccessKey": "admin-secret", "account": "111111111111", "user": "admin",
   "policy": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "lambda:*", "Resource": "*"}]}},
  {"accessKeyId": "AKIAREADER000000001", "secretAccessKey": "reader-secret", "account": "111111111111", "user": "reader",
   "policy": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["lambda:Get*", "lambda:List*"], "Resource": "*"}]}}],
 "roles": [{"arn": "arn:aws:iam::111111111111:role/r"}]}`), 0o600)
	p := startServer(t, filepath.Join(dir, "d"), "--credentials", file)
	zip := filepath.Join(dir, "f.zip")
	os.WriteFile(zip, lambdatest.Zip(t, map[string]string{"bootstrap": "#!/bin/sh\n"}), 0o644)
	aws := func(key, secret string, args ...string) (string, error) {
		cmd := exec.Command("aws", append([]string{"--endpoint-url", p.url, "--output", "json"}, args...)...)
		cmd.Env = append(os.Environ(), "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_PAGER=",
			"AWS_ACCESS_KEY_ID="+key, "AWS_SECRET_ACCESS_KEY="+secret, "AWS_DEFAULT_REGION=us-east-1", "AWS_MAX_ATTEMPTS=1")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	const admin, adminSecret, reader, readerSecret = "AKIAADMIN0000000001", "admin-secret", "AKIAREADER000000001", "reader-secret"
	if out, err := aws(reader, readerSecret, "sts", "get-caller-identity"); err != nil || !strings.Contains(out, `"Arn": "arn:aws:iam::111111111111:user/reader"`) {
		t.Errorf("get-caller-identity: %v\n%s", err, out)
	}
	if out, err := aws(admin, adminSecret, "lambda", "create-function", "--function-name", "f", "--runtime", "provided.al2023",
		"--handler", "x", "--role", "arn:aws:iam::111111111111:role/r", "--zip-file", "fileb://"+zip); err != nil {
		t.Fatalf("create-function: %v\n%s", err, out)
	}
	out, err := aws(reader, readerSecret, "lambda", "put-function-concurrency", "--function-name", "f", "--reserved-concurrent-executions", "5")
	if want := "An error occurred (AccessDeniedException) when calling the PutFunctionConcurrency operation: User: arn:aws:iam::111111111111:user/reader is not authorized to perform: lambda:PutFunctionConcurrency on resource: arn:aws:lambda:us-east-1:111111111111:function:f because no identity-based policy allows the lambda:PutFunctionConcurrency action"; err == nil || !strings.Contains(out, want) {
		t.Errorf("reader put-function-concurrency: %v\n%s", err, out)
	}
	if out, err := aws(admin, adminSecret, "lambda", "put-function-concurrency", "--function-name", "f", "--reserved-concurrent-executions", "5"); err != nil {
		t.Errorf("admin put-function-concurrency: %v\n%s", err, out)
	}
	if out, err := aws(admin, "wrong", "lambda", "list-functions"); err == nil || !strings.Contains(out, "InvalidSignatureException") {
		t.Errorf("wrong secret: %v\n%s", err, out)
	}
}
