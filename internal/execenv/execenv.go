// Package execenv runs function code: it starts execution environments
// (one runtime process each, behind its own Runtime API server from
// package runtimeapi), hands them invocations one at a time, keeps idle
// ones warm for reuse, and stops them when they time out, crash, go idle
// too long, or belong to a retired function revision.
//
// Every environment's process runs in its own process group with an
// environment built from scratch (see buildEnviron), the function's code
// directory as working directory, a private TMPDIR and a data-segment limit
// of its memory size (see limitMemory). Its stdout and stderr go to the
// invocation's log and to LogDir/<function>.log, where each line is stamped
// with its time and the version that wrote it (see logTimeLayout).
//
// The package is Linux-only: it relies on process groups with a parent-death
// signal, RLIMIT_DATA and /proc.
//
// Files: this one holds the package's vocabulary (Spec, Request, Result,
// Config, Stats); pool.go the Manager and its pool of environments
// (starting, reusing, retiring, reaping and stopping them, and running an
// invocation in one); env.go one environment (its process, output and
// in-memory log); logfile.go the per-function log files and the goroutine
// that flushes them; report.go the lines lambdad itself writes to a log
// (START, END, REPORT, INIT_REPORT, timeouts, exits) and the error
// documents that go with them; runtime.go and environ.go how a runtime is
// launched and the environment variables it gets.
//
// Time: what decides when something happens to an environment or an
// invocation (idle reaping, the Init timeout, an invocation's deadline)
// reads Config.Clock, clock.Real unless set, so that tests and simulators
// can run it on virtual time. What measures a real process stays on the
// wall clock: Duration and Init Duration, the log file's stamps, the pace
// of memory readings; a virtual clock need not move while a process runs.
//
// Ownership: the Manager owns every environment and the log files; an
// environment owns its process, its Runtime API server, and two goroutines
// (one reaps the process, one reads its output). Stopping an environment
// waits for all of them; Close stops every environment and waits for every
// goroutine the Manager started.
package execenv

import (
	"errors"
	"log/slog"
	"net/http"
	"path/filepath"
	"time"

	"github.com/lambdad/lambdad/internal/clock"
	"github.com/lambdad/lambdad/internal/function"
	"github.com/lambdad/lambdad/internal/runtimeapi"
	"github.com/lambdad/lambdad/internal/sandbox"
)

// ErrClosed is returned by calls on a closed Manager, and by invocations
// cut short by Close.
var ErrClosed = errors.New("execenv: manager closed")

// ErrCutOff ends an invocation whose environment KillBusy ended: the node
// lost its place in its cluster, so nothing it admitted may run on.
var ErrCutOff = errors.New("execenv: the invocation was ended: this node was cut off from its cluster")

// errRetry means a warm environment died before it received the event: the
// invocation runs in another environment.
var errRetry = errors.New("execenv: environment lost before delivery")

// Defaults.
const (
	DefaultIdleTimeout = 10 * time.Minute
	DefaultInitTimeout = 10 * time.Second
	defaultMemoryMB    = 128
	defaultEphemeralMB = 512 // AWS's default /tmp
	defaultTimeout     = 3 * time.Second
	defaultRegion      = "us-east-1"
)

// Spec is what an environment runs: one function version at one revision.
type Spec struct {
	Function    string // function name
	Version     string // "$LATEST" (default) or "3"
	FunctionARN string // qualified ARN the invocation used, unless Request.InvokedARN says otherwise
	// Revision changes whenever code or configuration changes:
	// environments are reused only for the same (Function, Version,
	// Revision).
	Revision string
	Runtime  string // provided, provided.al2, provided.al2023, python3.x, nodejs*
	Handler  string
	CodeDir  string            // unpacked code; never written or removed here
	Env      map[string]string // the function's Environment.Variables
	MemoryMB int               // default 128
	// EphemeralMB is the size of a sandboxed environment's /tmp (default
	// 512, AWS's EphemeralStorage).
	EphemeralMB int
	Timeout     time.Duration // default 3 s
	Region      string        // default us-east-1
	Account     string
	InitType    string // "on-demand" (default) or "provisioned-concurrency"
	// Pool names the provisioned config (the version or alias) a pinned
	// environment belongs to, so that two configs on one version keep
	// their environments apart; "" for on-demand.
	Pool string
	// TenantID is the tenant an environment of a function with tenant
	// isolation belongs to ("" for a function without it). It is part of
	// the pool's key, so an environment started for one tenant never
	// serves another, and each invocation tells the runtime its tenant
	// (Lambda-Runtime-Aws-Tenant-Id).
	TenantID string
	// Code, when set, gives each new environment of this spec its code:
	// Code.CodeDir(CodeSHA) is called as the environment is created,
	// before its process starts, and sets CodeDir; the release it returns
	// runs once the environment has stopped and its process is gone. So
	// the owner of the code keeps the directory while anything runs in it,
	// and a warm invocation never asks for it.
	Code    CodeSource
	CodeSHA string
	// LayerSHAs are the CodeSha256 of the function's layers, in order;
	// each new environment holds their directories from Code as it holds
	// its own code, and LayerDirs is set to them. Without a filesystem
	// sandbox there is no /opt to merge them into: the runtime's search
	// paths name them instead, the last layer first (see layerPaths).
	LayerSHAs []string
	LayerDirs []string
	// Role is the function's execution role; Credentials, when set, gives
	// each new environment the variables of that role's credentials as
	// its process starts (see CredentialSource).
	Role        string
	Credentials CredentialSource
}

// CredentialSource gives a new environment of a function the variables of
// its execution role's credentials: fixed ones the function's own
// variables cannot replace (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
// AWS_SESSION_TOKEN) and defaults they may (AWS_ENDPOINT_URL_LAMBDA).
type CredentialSource interface {
	Environ(account, role, function string) (fixed, defaults map[string]string)
}

// CodeSource gives an environment the directory of its code, by
// CodeSha256, and keeps it there until release is called.
type CodeSource interface {
	CodeDir(sha string) (dir string, release func(), err error)
}

// Request is one invocation.
type Request struct {
	RequestID     string
	Payload       []byte
	ClientContext string // decoded JSON from X-Amz-Client-Context; may be empty
	InvokedARN    string
	// Stream, when set, receives the response as the function sends it
	// (see runtimeapi.Invocation.Stream): the caller reads a stream.
	Stream Stream
}

// Stream receives a streamed response (runtimeapi.Stream).
type Stream = runtimeapi.Stream

// Result is the outcome of one invocation. A function error is a Result
// with FunctionError set, not an error.
type Result struct {
	Payload       []byte // the function's response, or the error document when FunctionError != ""
	FunctionError string // "" or "Unhandled"
	// Streamed is true when the response went to Request.Stream: Payload
	// then holds only an error document. ContentType is the one the
	// runtime declared on its response.
	Streamed    bool
	ContentType string
	// Log is this invocation's log: on a cold start the Init output, then
	// START, the process's output during the invocation, END and REPORT.
	Log             []byte
	Duration        time.Duration
	BilledDuration  time.Duration // Duration rounded up to the millisecond
	InitDuration    time.Duration // 0 when warm
	MaxMemoryUsedMB int
	ColdStart       bool
}

// Config configures a Manager.
type Config struct {
	Logger      *slog.Logger
	IdleTimeout time.Duration // an idle environment is stopped after this (default 10 min)
	InitTimeout time.Duration // limit of Init, start to first GET /next (default 10 s)
	LogDir      string        // LogDir/<function>.log receives every invocation's log; "" for none
	// LogMaxBytes rotates a function's log file to <function>.log.1 once
	// it holds this much (one old file is kept); 0 never rotates.
	LogMaxBytes int64
	TempRoot    string // parent of the Manager's private directory (default os.TempDir())
	MaxResponse int    // largest response payload (default 6291556)
	// MaxStreamResponse is the largest response streamed to a
	// Request.Stream (default runtimeapi.DefaultMaxStreamResponse, 200 MiB).
	MaxStreamResponse int64
	// Clock decides when idle environments are reaped, Init times out and
	// invocations reach their deadline; nil means clock.Real.
	Clock clock.Clock
	// Sandbox, when set, runs every environment in a sandbox of its own
	// (package sandbox), frozen while idle; nil runs them as the server's
	// own child processes. The caller owns it and closes it after Close.
	Sandbox *sandbox.Host
	// API, when set, is served to each sandboxed environment on its own
	// socket inside it (sandbox.LambdaAPIAddr), and AWS_ENDPOINT_URL_LAMBDA
	// points there unless the function sets it: from inside a sandbox the
	// server's own address is not reachable, and this socket reaches
	// nothing else of the host. Without it the socket is closed.
	API http.Handler
	// MaxEnvironments caps the environments alive at once (0: no cap).
	// At the cap, a cold start stops the idle on-demand environment used
	// least recently; when none is idle, the invocation is throttled
	// (429, ConcurrentInvocationLimitExceeded).
	MaxEnvironments int
}

// Stats is a snapshot of the Manager's environments.
type Stats struct {
	Idle, Busy int // environments now waiting for work / running an invocation or Init
	Started    uint64
	Stopped    uint64
	Reaped     uint64 // stopped for idleness
	Retired    uint64 // stopped by Retire while idle
	Evicted    uint64 // stopped while idle to make room under MaxEnvironments
	ColdStarts uint64 // invocations that started an environment
	WarmStarts uint64 // invocations served by an idle environment
}

// key names a pool of interchangeable environments. InitType is part of
// it: an environment started for provisioned concurrency serves only
// invocations admitted as provisioned, and reports itself as such in
// AWS_LAMBDA_INITIALIZATION_TYPE. So is the tenant: environments are
// never shared between the tenants of a function with tenant isolation.
type key struct{ account, function, version, revision, initType, pool, tenant string }

// fn is the function the pool's environments belong to.
func (k key) fn() function.Key { return function.Key{Account: k.account, Name: k.function} }

func keyOf(s *Spec) key {
	v, it := s.Version, s.InitType
	if v == "" {
		v = "$LATEST"
	}
	if it == "" {
		it = InitOnDemand
	}
	return key{s.Account, s.Function, v, s.Revision, it, s.Pool, s.TenantID}
}

// Initialization types (AWS_LAMBDA_INITIALIZATION_TYPE).
const (
	InitOnDemand    = "on-demand"
	InitProvisioned = "provisioned-concurrency"
)

// normalize fills in defaults.
func normalize(spec *Spec) Spec {
	s := *spec
	if s.Version == "" {
		s.Version = "$LATEST"
	}
	if s.MemoryMB <= 0 {
		s.MemoryMB = defaultMemoryMB
	}
	if s.Timeout <= 0 {
		s.Timeout = defaultTimeout
	}
	if s.Region == "" {
		s.Region = defaultRegion
	}
	if s.InitType == "" {
		s.InitType = InitOnDemand
	}
	if s.CodeDir != "" {
		if abs, err := filepath.Abs(s.CodeDir); err == nil {
			s.CodeDir = abs
		}
	}
	if s.FunctionARN == "" {
		s.FunctionARN = "arn:aws:lambda:" + s.Region + ":" + s.Account + ":function:" + s.Function
	}
	return s
}
