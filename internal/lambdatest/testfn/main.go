// Command testfn is a Lambda function for lambdad's end-to-end tests, built
// with aws-lambda-go as users build theirs. What it does is chosen by the
// event:
//
//	{"sleep_ms": 50}            sleep first
//	{"fail": "message"}         return an error (a function error)
//	{"exit": 2}                 exit the process mid-invocation
//	{"panic": true}             panic
//	{"env": true}               answer the process environment
//	{"inflight_dir": "/tmp/x"}  count concurrent invocations in that
//	                            directory and answer the count seen on entry
//	{"bytes": 7000000}          answer that many bytes
//	{"file": "marker.txt"}      answer the content of that file of the code
//	{"dial": "host:port"}       connect there (TCP, 1 s at most) and answer
//	                            "connected" or the error
//
// Anything else is echoed back with the invocation's request id, the
// version that ran, the initialisation type, the process id and the tenant
// (of a function with tenant isolation). When the environment
// variable RECORD_DIR is set, every event is also written there as it came,
// one file per invocation, so a test can see what was delivered (queued
// events, destination records), and each run is a line of runs.log there
// (request id, temporary directory, process id, tenant).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

type event struct {
	SleepMS     int    `json:"sleep_ms"`
	Fail        string `json:"fail"`
	Exit        int    `json:"exit"`
	Panic       bool   `json:"panic"`
	Env         bool   `json:"env"`
	InflightDir string `json:"inflight_dir"`
	Bytes       int    `json:"bytes"`
	File        string `json:"file"`
	Dial        string `json:"dial"`
	Echo        any    `json:"echo"`
	// WaitFor holds the invocation until the file exists (at most a
	// minute), so a test decides when it ends whatever the machine's
	// speed.
	WaitFor string `json:"wait_for"`
}

type answer struct {
	RequestID string            `json:"request_id"`
	Version   string            `json:"version"`
	InitType  string            `json:"init_type"`
	PID       int               `json:"pid"`
	TenantID  string            `json:"tenant_id,omitempty"`
	Echo      any               `json:"echo,omitempty"`
	Inflight  int               `json:"inflight,omitempty"`
	Env       map[string]string `json:"env,omitempty"`
	Blob      string            `json:"blob,omitempty"`
}

var initType = os.Getenv("AWS_LAMBDA_INITIALIZATION_TYPE")

func handle(ctx context.Context, raw json.RawMessage) (*answer, error) {
	lc, _ := lambdacontext.FromContext(ctx)
	if dir := os.Getenv("RECORD_DIR"); dir != "" && lc != nil {
		if err := os.WriteFile(filepath.Join(dir, lc.AwsRequestID+".json"), raw, 0o644); err != nil {
			return nil, err
		}
		// Every run is also a line of runs.log, with its temporary
		// directory (which lies in the data directory of the server that
		// ran it), its process and its tenant, so a test sees reruns,
		// which server ran each and in which environment.
		line, _ := json.Marshal(map[string]any{"id": lc.AwsRequestID, "tmp": os.TempDir(), "pid": os.Getpid(), "tenant": lc.TenantID})
		f, err := os.OpenFile(filepath.Join(dir, "runs.log"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return nil, err
		}
		_, err = f.Write(append(line, '\n'))
		f.Close()
		if err != nil {
			return nil, err
		}
	}
	var ev event
	json.Unmarshal(raw, &ev) // events of other shapes are simply echoed
	a := &answer{Version: os.Getenv("AWS_LAMBDA_FUNCTION_VERSION"), InitType: initType, PID: os.Getpid(), Echo: ev.Echo}
	if lc != nil {
		a.RequestID, a.TenantID = lc.AwsRequestID, lc.TenantID
	}
	if ev.InflightDir != "" {
		n, done, err := enter(ev.InflightDir)
		if err != nil {
			return nil, err
		}
		defer done()
		a.Inflight = n
	}
	for deadline := time.Now().Add(time.Minute); ev.WaitFor != "" && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if _, err := os.Stat(ev.WaitFor); err == nil {
			break
		}
	}
	if ev.SleepMS > 0 {
		time.Sleep(time.Duration(ev.SleepMS) * time.Millisecond)
	}
	switch {
	case ev.Fail != "":
		return nil, errors.New(ev.Fail)
	case ev.Exit != 0:
		os.Exit(ev.Exit)
	case ev.Panic:
		panic("testfn panics")
	case ev.Env:
		a.Env = map[string]string{}
		for _, kv := range os.Environ() {
			k, v, _ := strings.Cut(kv, "=")
			a.Env[k] = v
		}
	case ev.Bytes > 0:
		a.Blob = strings.Repeat("x", ev.Bytes)
	case ev.Dial != "":
		c, err := net.DialTimeout("tcp", ev.Dial, time.Second)
		if err != nil {
			a.Blob = err.Error()
			break
		}
		c.Close()
		a.Blob = "connected"
	case ev.File != "":
		b, err := os.ReadFile(filepath.Join(os.Getenv("LAMBDA_TASK_ROOT"), ev.File))
		if err != nil {
			return nil, err
		}
		a.Blob = string(b)
	}
	return a, nil
}

// enter records this invocation as in flight in dir (one file per
// process, so the count is the number of files) and returns how many were
// in flight including this one. An exclusive lock on the directory makes
// entering and counting one step across processes.
func enter(dir string) (int, func(), error) {
	lock, err := os.Open(dir)
	if err != nil {
		return 0, nil, err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return 0, nil, err
	}
	mine := filepath.Join(dir, fmt.Sprint(os.Getpid()))
	if err := os.WriteFile(mine, nil, 0o644); err != nil {
		syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
		return 0, nil, err
	}
	entries, err := os.ReadDir(dir)
	syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if err != nil {
		return 0, nil, err
	}
	return len(entries), func() { os.Remove(mine) }, nil
}

func main() { lambda.Start(handle) }
