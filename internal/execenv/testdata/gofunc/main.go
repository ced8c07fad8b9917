// Command gofunc is the Go function the execenv tests run as a provided
// runtime bootstrap. The event's "op" picks what it does; TEST_INIT picks a
// behaviour during Init.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

type event struct {
	Op   string `json:"op"`
	Ms   int    `json:"ms"`
	Code int    `json:"code"`
	Size int    `json:"size"`
	Text string `json:"text"`
	MB   int    `json:"mb"`
	// For the sandbox's attack tests (see spy.go).
	Path   string `json:"path"`
	PID    int    `json:"pid"`
	N      int    `json:"n"`
	Marker string `json:"marker"`
	Addr   string `json:"addr"`
}

// failingReader streams some bytes, then fails: aws-lambda-go reports the
// failure in the response trailers.
type failingReader struct{ sent bool }

func (r *failingReader) Read(p []byte) (int, error) {
	if !r.sent {
		r.sent = true
		return copy(p, "partial"), nil
	}
	return 0, errors.New("stream broke")
}

// pacedReader streams n pieces of text, ms apart: aws-lambda-go posts a
// handler's io.Reader chunked, as it reads it.
type pacedReader struct {
	text  string
	n, ms int
	sent  int
}

func (r *pacedReader) Read(p []byte) (int, error) {
	if r.sent == r.n {
		return 0, io.EOF
	}
	if r.sent > 0 {
		time.Sleep(time.Duration(r.ms) * time.Millisecond)
	}
	r.sent++
	return copy(p, r.text+strconv.Itoa(r.sent)+";"), nil
}

func handle(ctx context.Context, raw json.RawMessage) (any, error) {
	var ev event
	if err := json.Unmarshal(raw, &ev); err != nil {
		return nil, err
	}
	switch ev.Op {
	case "echo", "":
		return raw, nil
	case "sleep":
		time.Sleep(time.Duration(ev.Ms) * time.Millisecond)
		return "slept", nil
	case "panic":
		panic("boom")
	case "exit":
		fmt.Println("exiting with", ev.Code)
		os.Exit(ev.Code)
	case "error":
		return nil, errors.New("handler failed")
	case "print":
		fmt.Println("stdout: " + ev.Text)
		fmt.Fprintln(os.Stderr, "stderr: "+ev.Text)
		return "printed", nil
	case "env":
		env := os.Environ()
		sort.Strings(env)
		wd, _ := os.Getwd()
		return map[string]any{"env": env, "cwd": wd}, nil
	case "pid":
		return os.Getpid(), nil
	case "huge":
		// A JSON string of exactly Size bytes, quotes included.
		return json.RawMessage(`"` + strings.Repeat("x", ev.Size-2) + `"`), nil
	case "spawn":
		// A grandchild in the same process group, then a long sleep.
		cmd := exec.Command("/bin/sleep", "30")
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		fmt.Println("child-pid=" + strconv.Itoa(cmd.Process.Pid))
		time.Sleep(time.Duration(ev.Ms) * time.Millisecond)
		return "spawned", nil
	case "alloc":
		b := make([]byte, ev.MB<<20)
		for i := range b {
			b[i] = byte(i)
		}
		return len(b), nil
	case "badstream":
		return &failingReader{}, nil
	case "stream":
		return &pacedReader{text: ev.Text, n: ev.N, ms: ev.Ms}, nil
	case "ctx":
		lc, _ := lambdacontext.FromContext(ctx)
		deadline, _ := ctx.Deadline()
		return map[string]any{
			"requestId":     lc.AwsRequestID,
			"invokedArn":    lc.InvokedFunctionArn,
			"clientContext": lc.ClientContext.Custom,
			"remainingMs":   time.Until(deadline).Milliseconds(),
			"traceId":       os.Getenv("_X_AMZN_TRACE_ID"),
			"tenantId":      lc.TenantID,
		}, nil
	}
	if out, ok := spy(&ev); ok {
		return out, nil
	}
	return nil, fmt.Errorf("unknown op %q", ev.Op)
}

// postInitError reports a failed Init the way a custom runtime does.
func postInitError() {
	body := `{"errorMessage":"config missing","errorType":"Custom.InitFailed","stackTrace":[]}`
	req, _ := http.NewRequest("POST", "http://"+os.Getenv("AWS_LAMBDA_RUNTIME_API")+"/2018-06-01/runtime/init/error", bytes.NewBufferString(body))
	req.Header.Set("Lambda-Runtime-Function-Error-Type", "Custom.InitFailed")
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	os.Exit(1)
}

func main() {
	if os.Getenv("SPY_CHILD") != "" {
		spyChild()
	}
	switch os.Getenv("TEST_INIT") {
	case "exit":
		fmt.Println("init: exiting")
		os.Exit(3)
	case "sleep":
		time.Sleep(time.Minute)
	case "initerror":
		postInitError()
	case "print":
		fmt.Println("init: hello")
	}
	lambda.Start(handle)
}
