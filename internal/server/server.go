// Package server assembles one lambdad node from its parts: it opens the
// store, builds admission, the execution environments, the control plane,
// the invoker and the HTTP API, serves, and on Close stops them in the
// reverse order, waiting for every goroutine and child process.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lambdad/lambdad/internal/account"
	"github.com/lambdad/lambdad/internal/admission"
	"github.com/lambdad/lambdad/internal/api"
	"github.com/lambdad/lambdad/internal/clock"
	"github.com/lambdad/lambdad/internal/cluster"
	"github.com/lambdad/lambdad/internal/console"
	"github.com/lambdad/lambdad/internal/control"
	"github.com/lambdad/lambdad/internal/esm"
	"github.com/lambdad/lambdad/internal/events"
	"github.com/lambdad/lambdad/internal/execenv"
	"github.com/lambdad/lambdad/internal/function"
	"github.com/lambdad/lambdad/internal/iam"
	"github.com/lambdad/lambdad/internal/invoke"
	"github.com/lambdad/lambdad/internal/metrics"
	"github.com/lambdad/lambdad/internal/provision"
	"github.com/lambdad/lambdad/internal/s3code"
	"github.com/lambdad/lambdad/internal/sandbox"
	"github.com/lambdad/lambdad/internal/slots"
	"github.com/lambdad/lambdad/internal/store"
)

// Options configure a node. The zero value of each field (nil for
// MinUnreserved) is replaced by its default (Defaults).
type Options struct {
	Listen string
	// DataDir holds the database, code, logs and the lock file; Start
	// makes it absolute, because paths derived from it are handed to
	// function processes that run in other working directories.
	DataDir            string
	Region             string
	AccountID          string
	AccountConcurrency int
	// MinUnreserved is M. It is a pointer because 0 is a real setting
	// (nothing has to stay unreserved): nil means the default.
	MinUnreserved *int
	IdleTimeout   time.Duration
	// AsyncWorkers bounds how many queued events run at once.
	AsyncWorkers int
	// AsyncTimeScale multiplies the asynchronous retry waits (1 = AWS's).
	AsyncTimeScale float64
	// EventClock is the event queue's time: when an event was received,
	// its age, its retry waits (default the real clock). A test of stored
	// events made at a known time sets it to that time.
	EventClock clock.Clock
	// Sandbox is how far each execution environment is contained (see
	// package sandbox). Unlike the other fields, "" is not replaced by
	// the command's default (full): a program embedding a node opts in.
	// At any other level than off, Start refuses to run when this machine
	// cannot give every guarantee of the level, and says which it lacks.
	Sandbox sandbox.Level
	// FunctionNetwork is the outbound network of sandboxed environments:
	// sandbox.NetworkPasta, or sandbox.NetworkNone (their loopback only).
	// As with Sandbox, "" is not replaced by the command's default
	// (pasta): it is none. Start refuses to run when pasta is asked for
	// and cannot be used. Without the sandbox functions use the host's
	// network, as the server's own processes.
	FunctionNetwork sandbox.Network
	// SandboxSpares is how many sandboxed environments are kept started
	// ahead of need (namespaces, cgroup and network made, no function
	// yet), so that a cold start does not wait for them. As with
	// Sandbox, 0 is not replaced by the command's default (1): none.
	SandboxSpares int
	// MaxEnvironments caps the execution environments alive at once
	// (default 1000; idle ones are evicted oldest first before a cold
	// start is throttled).
	MaxEnvironments int
	// LogMaxBytes caps each function's log file; past it the file is
	// rotated to <function>.log.1 (default 64 MiB).
	LogMaxBytes int64
	// MaxConnections caps the HTTP connections open at once (default
	// DefaultMaxConnections).
	MaxConnections int
	// BodyTimeout bounds reading a request's body (default 2 minutes).
	BodyTimeout time.Duration
	// MaxStreamResponse is the largest response a function may stream to
	// InvokeWithResponseStream or a RESPONSE_STREAM function URL (default
	// 200 MiB, as on Lambda).
	MaxStreamResponse int64
	// MaxBodyMemory caps the request body bytes in memory at once
	// (default api.DefaultBodyMemory); past it, large requests get 429.
	MaxBodyMemory int64
	// InvocationRate is the invocation requests per second allowed per
	// unit of a function's concurrency (AWS's is 10); 0 turns the limit
	// off. A pointer because 0 is a real setting: nil means the default.
	InvocationRate *int
	// ScalingRate is the new on-demand execution environments each
	// function may add per 10 seconds, refilled continuously (AWS's is
	// 1,000); 0 turns the limit off. A pointer for the same reason as
	// InvocationRate.
	ScalingRate *int
	// DebugEndpoints serves Go's profiles (net/http/pprof) under
	// /lambdad/debug/pprof/. Off by default: profiles reveal the server's
	// internals and cost CPU while they run.
	DebugEndpoints bool
	Logger         *slog.Logger
	// Auth establishes each request's caller and so its account; nil
	// means one account, AccountID, whatever the credentials.
	Auth api.Authenticator
	// Accounts gives each account its limits L and M; nil means every
	// account has AccountConcurrency and MinUnreserved.
	Accounts account.Settings
	// Credentials, when set, turns access control on: every request must
	// be signed (SigV4) by a principal of these credentials and allowed by
	// IAM's rules, accounts and their limits come from them, and Auth and
	// Accounts are ignored. Nil leaves the server open (one account,
	// any credentials).
	Credentials *iam.Credentials
	// SQSEndpoint is where event source mappings read their queues; ""
	// means what the standard AWS configuration names
	// (AWS_ENDPOINT_URL_SQS, AWS_ENDPOINT_URL, the shared config files).
	SQSEndpoint string
	// S3Endpoint is where code given as an S3 object is read from; ""
	// leaves it to the standard AWS configuration (AWS_ENDPOINT_URL_S3,
	// AWS_ENDPOINT_URL, the shared config files), as any AWS client does.
	S3Endpoint string
	// URLAuth authorizes requests to function URLs with AuthType AWS_IAM;
	// nil refuses them (there is no access control to decide).
	URLAuth api.URLAuthorizer
	// EtcdEndpoints, when set, make this node one of several sharing
	// their state through that etcd cluster (see README, "Several
	// nodes"): the records, the feed, the code and the event queue live
	// there, and DataDir holds only this node's own copies, trees and
	// logs. Empty: one node with its embedded database.
	EtcdEndpoints []string
	// EtcdPrefix is the key prefix of the shared state ("/lambdad/" if
	// empty): nodes with the same endpoints and prefix are one cluster.
	EtcdPrefix string
	// NodeID names this node in the cluster (default: the host name and
	// the listen address); Advertise is the URL the others reach it at
	// (default: its own URL).
	NodeID    string
	Advertise string
	// LeaseTTL is how long the cluster counts a node that stopped
	// answering as alive (default 10 s): its events, and its slots, go
	// to the others after it.
	LeaseTTL time.Duration
}

// Defaults are the embedded defaults lambdad runs with.
var Defaults = Options{
	Listen:             "127.0.0.1:9001",
	DataDir:            ".lambdad",
	Region:             "us-east-1",
	AccountID:          "123456789012",
	AccountConcurrency: 1000,
	MinUnreserved:      new(100),
	InvocationRate:     new(admission.DefaultRequestRate),
	ScalingRate:        new(admission.DefaultScalingRate),
	IdleTimeout:        10 * time.Minute,
	AsyncWorkers:       100,
	AsyncTimeScale:     1,
	MaxEnvironments:    1000,
	LogMaxBytes:        64 << 20,
}

func (o *Options) fill() {
	d := Defaults
	if o.Listen == "" {
		o.Listen = d.Listen
	}
	if o.DataDir == "" {
		o.DataDir = d.DataDir
	}
	if o.Region == "" {
		o.Region = d.Region
	}
	if o.AccountID == "" {
		o.AccountID = d.AccountID
	}
	if o.AccountConcurrency == 0 {
		o.AccountConcurrency = d.AccountConcurrency
	}
	// A copy, so that neither the caller nor Defaults shares the node's.
	if o.InvocationRate == nil {
		o.InvocationRate = new(*d.InvocationRate)
	}
	if o.ScalingRate == nil {
		o.ScalingRate = new(*d.ScalingRate)
	}
	if o.MinUnreserved == nil {
		o.MinUnreserved = new(*d.MinUnreserved)
	} else {
		o.MinUnreserved = new(*o.MinUnreserved)
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = d.IdleTimeout
	}
	if o.AsyncWorkers == 0 {
		o.AsyncWorkers = d.AsyncWorkers
	}
	if o.AsyncTimeScale == 0 {
		o.AsyncTimeScale = d.AsyncTimeScale
	}
	if o.MaxEnvironments == 0 {
		o.MaxEnvironments = d.MaxEnvironments
	}
	if o.LogMaxBytes == 0 {
		o.LogMaxBytes = d.LogMaxBytes
	}
	if o.BodyTimeout == 0 {
		o.BodyTimeout = defaultBodyTimeout
	}
	if o.MaxConnections == 0 {
		o.MaxConnections = DefaultMaxConnections
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Node is a running lambdad node.
type Node struct {
	opts      Options
	db        *store.DB
	adm       *admission.Accounts
	envs      *execenv.Manager
	gate      *cluster.Gate // nil for a node of its own
	placement *placement    // likewise
	box       *sandbox.Host // nil when unsandboxed; closed after envs
	ctl       *control.Service
	queue     *events.Queue
	prov      *provision.Provisioner
	esm       *esm.Manager
	coarse    *clock.Coarse // the request rate's clock
	front     atomic.Pointer[http.Handler]
	api       *api.Server
	guard     *iam.Guard // nil when the server is open
	metrics   *metrics.Metrics
	console   *console.Console
	http      *http.Server
	listener  net.Listener
	lock      *os.File // the data directory's lock file, held until closeParts
	served    chan error
	cancelAll context.CancelFunc
	closeOnce sync.Once
	closeErr  error
}

// LogDir is where a data directory keeps the functions' log files.
func LogDir(dataDir string) string { return filepath.Join(dataDir, "logs") }

// Start opens the data directory, builds the node and starts serving. A
// data directory is served by one node at a time: Start fails at once when
// another holds it.
func Start(opts Options) (*Node, error) {
	opts.fill()
	if opts.AccountConcurrency < 1 || *opts.MinUnreserved < 0 {
		return nil, fmt.Errorf("the account concurrency must be at least 1 and the minimum unreserved at least 0 (have %d and %d)",
			opts.AccountConcurrency, *opts.MinUnreserved)
	}
	dir, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	opts.DataDir = dir
	if err := os.MkdirAll(opts.DataDir, 0o755); err != nil {
		return nil, err
	}
	n := &Node{opts: opts, served: make(chan error, 1)}
	// The lock comes before anything else touches the directory: a second
	// node must not, for one, clear the first one's environments' tmp.
	if n.lock, err = lockDataDir(opts.DataDir); err != nil {
		return nil, err
	}
	// The address is taken before the parts are built: function
	// environments are told where this server is.
	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		n.closeParts()
		return nil, err
	}
	n.listener = ln
	if err := n.build(); err != nil {
		ln.Close()
		n.closeParts()
		return nil, err
	}
	base, cancel := context.WithCancel(context.Background())
	n.cancelAll = cancel
	front := withBodyDeadline(n.handler(), opts.BodyTimeout)
	n.front.Store(&front)
	n.http = &http.Server{
		Handler:           front,
		ReadHeaderTimeout: headerTimeout,
		IdleTimeout:       idleTimeout,
		BaseContext:       func(net.Listener) context.Context { return base },
		ErrorLog:          slog.NewLogLogger(opts.Logger.Handler(), slog.LevelDebug),
	}
	go func() { n.served <- n.http.Serve(newLimitListener(ln, opts.MaxConnections)) }()
	return n, nil
}

func (n *Node) build() error {
	o := n.opts
	var err error
	if len(o.EtcdEndpoints) > 0 {
		n.db, err = store.OpenEtcd(o.DataDir, store.EtcdOptions{Endpoints: o.EtcdEndpoints, Prefix: o.EtcdPrefix, Log: o.Logger.With("part", "store")})
	} else {
		n.db, err = store.Open(o.DataDir, store.Options{LegacyAccount: o.AccountID})
	}
	if err != nil {
		return err
	}
	if n.db.Shared() {
		if o.NodeID == "" {
			host, _ := os.Hostname()
			o.NodeID = host + "-" + n.listener.Addr().String()
		}
		if o.Advertise == "" {
			o.Advertise = n.localURL()
		}
		if o.LeaseTTL <= 0 {
			o.LeaseTTL = 10 * time.Second
		}
		n.opts.NodeID, n.opts.Advertise, n.opts.LeaseTTL = o.NodeID, o.Advertise, o.LeaseTTL
		if err := n.db.Join(o.NodeID, o.Advertise, o.LeaseTTL); err != nil {
			return err
		}
	}
	if err := moveLegacyLogs(LogDir(o.DataDir), o.AccountID); err != nil {
		return err
	}
	// Without access control there is one account, the server's, and every
	// account has the limits of the flags.
	var limits account.Settings = account.Uniform{Concurrency: o.AccountConcurrency, MinUnreserved: *o.MinUnreserved}
	if o.Accounts != nil {
		limits = o.Accounts
	}
	var authz api.Authorizer
	var presign api.Presigner
	if o.Credentials != nil {
		n.guard = iam.New(o.Credentials, iam.Options{Logger: o.Logger.With("part", "iam")})
		limits, o.Auth, authz, presign = n.guard, n.guard, n.guard, n.guard
	}
	n.adm = admission.NewAccounts(o.AccountID, func(id string) int { return limits.Limits(id).Concurrency })
	n.adm.SetRequestRate(*o.InvocationRate)
	n.adm.SetScalingRate(*o.ScalingRate)
	// The request rate reads the time on every admission; a reading
	// refreshed every 10 ms is exact enough for a pace measured over a
	// second, and costs a load instead of a clock call.
	n.coarse = clock.NewCoarse(clock.Real, 10*time.Millisecond)
	n.adm.SetNanos(n.coarse.Nanos)
	// Environments' private directories do not outlive a run: what a
	// killed process left is removed.
	tmp := filepath.Join(o.DataDir, "tmp")
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	if o.Sandbox != "" && o.Sandbox != sandbox.Off {
		missing := append(sandbox.Check(o.Sandbox), sandbox.CheckNetwork(o.Sandbox, o.FunctionNetwork)...)
		if len(missing) > 0 {
			return errors.New(sandbox.Report(o.Sandbox, missing))
		}
		if n.box, err = sandbox.NewHost(sandbox.HostConfig{Level: o.Sandbox, Network: o.FunctionNetwork, Spares: o.SandboxSpares,
			// Not beneath tmp, which is removed above: what a killed
			// server left mounted there is detached first, by the Host.
			ScratchDir: filepath.Join(o.DataDir, "scratch"),
			Logger:     o.Logger.With("part", "sandbox")}); err != nil {
			return err
		}
	}
	n.envs, err = execenv.NewManager(execenv.Config{
		Logger:            o.Logger.With("part", "execenv"),
		IdleTimeout:       o.IdleTimeout,
		LogDir:            LogDir(o.DataDir),
		TempRoot:          tmp,
		Sandbox:           n.box,
		MaxEnvironments:   o.MaxEnvironments,
		LogMaxBytes:       o.LogMaxBytes,
		MaxStreamResponse: o.MaxStreamResponse,
		// The same front as the listener's: functions in a sandbox reach
		// the server's API at an address inside it, as any client would.
		API: http.HandlerFunc(n.serveInside),
	})
	if err != nil {
		return err
	}
	if n.db.Shared() {
		// The cluster's limits: every admission also holds slots of the
		// cluster-wide pools, bound to this node's lease; cut off from
		// etcd, the node ends what runs under them before the lease can
		// expire.
		n.gate, err = cluster.New(context.Background(), cluster.Options{
			Slots:  slots.Config{Client: n.db.EtcdClient(), NodeID: o.NodeID, Prefix: n.db.EtcdPrefix() + "slots", TTL: o.LeaseTTL},
			Fence:  func() { n.envs.KillBusy() },
			Logger: o.Logger.With("part", "cluster"),
		})
		if err != nil {
			return err
		}
		n.adm.SetGate(n.gate)
	}
	n.prov = provision.New(n.envs, n.adm, nil, o.Logger.With("part", "provision"))
	if n.db.Shared() {
		n.placement = newPlacement(n.db, o.NodeID, o.Logger.With("part", "placement"))
		n.prov.SetPlacement(n.placement)
	}
	// The in-memory owners of what the store holds hear of every committed
	// change from its feed, in order; nothing else tells them. The
	// provisioner goes first: a deleted function's provisioned slots are
	// given back before admission forgets the function.
	for _, sub := range []store.Subscriber{n.prov, control.AdmissionFeed(n.adm), control.RetireFeed(n.envs)} {
		if err := n.db.Subscribe(sub); err != nil {
			return err
		}
	}
	// A broken AWS configuration costs only code from S3, not the server:
	// such code is then refused, and the log says why.
	var fetcher control.CodeFetcher
	if f, err := s3code.New(context.Background(), s3code.Options{Endpoint: o.S3Endpoint, Region: o.Region}); err != nil {
		o.Logger.Warn("code from S3 is off", "err", err)
	} else {
		fetcher = f
	}
	n.ctl, err = control.New(control.Bolt(n.db), control.Options{
		Region: o.Region, AccountID: o.AccountID, S3: fetcher,
		AccountConcurrency: o.AccountConcurrency, MinUnreserved: *o.MinUnreserved, Limits: limits,
		Logger: o.Logger.With("part", "control"),
	}, n.prov)
	if err != nil {
		return err
	}
	if n.guard != nil {
		n.guard.SetResourcePolicies(n.ctl)
	}
	creds := &iam.FunctionCredentials{Guard: n.guard, Endpoint: n.localURL(), Logger: o.Logger.With("part", "iam")}
	n.metrics = metrics.New(n.adm.For(o.AccountID), queueStats{n}, metrics.Options{Account: o.AccountID})
	inv := invoke.New(invoke.Parts{Region: o.Region, Account: o.AccountID, Resolver: n.ctl, Admitter: n.adm, Runner: n.envs, Code: n.db,
		Credentials: creds, Observer: n.metrics, Logger: o.Logger.With("part", "invoke")})
	// etcd takes at most 128 operations (two an event) and 1.5 MiB in one
	// transaction by default; the embedded store takes any batch.
	maxBatch, maxBatchBytes := 0, 0
	if n.db.Shared() {
		maxBatch, maxBatchBytes = 40, 1<<20
	}
	n.queue, err = events.New(events.Bolt(n.db), n.ctl, inv, events.Options{
		Account:   o.AccountID,
		TimeScale: o.AsyncTimeScale, Workers: o.AsyncWorkers, Logger: o.Logger.With("part", "events"), Clock: o.EventClock,
		Node: o.NodeID, Members: n.members,
		MaxBatch: maxBatch, MaxBatchBytes: maxBatchBytes,
	})
	if err != nil {
		return err
	}
	urlAuth := o.URLAuth
	if urlAuth == nil && n.guard != nil {
		urlAuth = urlGuard{n.guard, o.Region}
	}
	n.api, err = api.New(n.ctl, api.Backends{Invoker: inv, Queue: n.queue, Auth: o.Auth, Authz: authz, Presign: presign, Requests: n.metrics, URLAuth: urlAuth}, o.Logger.With("part", "api"))
	if err != nil {
		return err
	}
	n.api.LimitBodyMemory(o.MaxBodyMemory)
	var sess console.Session
	if n.guard != nil {
		sess = consoleSession{n.guard}
	}
	if n.console, err = console.New(console.Options{Session: sess}); err != nil {
		return err
	}
	n.prov.Start(inv)
	n.queue.Start()
	var queues esm.Queues
	if q, err := esm.NewSQS(context.Background(), o.Region, o.SQSEndpoint); err != nil {
		o.Logger.Warn("event source mappings cannot read SQS: the AWS configuration could not be loaded", "err", err)
		queues = esm.Unavailable(err)
	} else {
		queues = q
	}
	n.esm = esm.New(queues, inv, o.Region, o.Logger.With("part", "esm"))
	if n.placement != nil {
		// One node of the cluster polls each mapping; they move as nodes
		// come and go.
		n.esm.Own(n.placement.ownsMapping, time.Second)
	}
	n.metrics.SetMappings(mappingFigures{n.esm})
	n.metrics.Start()
	return n.db.Subscribe(n.esm)
}

// moveLegacyLogs moves the log files of a data directory from before they
// were kept per account (<logs>/<function>.log) to the server's account
// (<logs>/<account>/<function>.log), where they go on.
func moveLegacyLogs(dir, account string) error {
	old, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil || len(old) == 0 {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, account), 0o755); err != nil {
		return err
	}
	for _, f := range old {
		if err := os.Rename(f, filepath.Join(dir, account, filepath.Base(f))); err != nil {
			return err
		}
	}
	return nil
}

// Reload puts new credentials in force: requests from now on are checked
// against them, and each account they name gets its limits. It fails on a
// server started without credentials, which stays open.
func (n *Node) Reload(c *iam.Credentials) error {
	if n.guard == nil {
		return errors.New("the server was started without credentials; restart it with them to turn access control on")
	}
	n.guard.Replace(c)
	for _, id := range c.Accounts() {
		l, _ := c.Limits(id)
		n.adm.SetAccountLimit(id, l.Concurrency)
	}
	return nil
}

// Guard is the node's access control, nil when the server is open.
func (n *Node) Guard() *iam.Guard { return n.guard }

// Addr is the address the node serves at.
func (n *Node) Addr() string { return n.listener.Addr().String() }

// members lists the cluster's nodes alive now (nil on a node of its own).
func (n *Node) members() (map[string]string, error) {
	if !n.db.Shared() {
		return nil, nil
	}
	return n.db.Members()
}

// EtcdOps is how many etcd requests the node has made (its store's and its
// cluster slots' sessions'), 0 for a node of its own.
func (n *Node) EtcdOps() int64 {
	ops := n.db.EtcdOps()
	if n.gate != nil {
		ops += int64(n.gate.Ops())
	}
	return ops
}

// NodeID is the node's name in its cluster, "" for a node of its own.
func (n *Node) NodeID() string { return n.opts.NodeID }

// Failed is closed when the node can no longer serve what its cluster
// holds (its shared store's feed stopped; Err says why). It never closes
// for a node of its own.
func (n *Node) Failed() <-chan struct{} { return n.db.Failed() }

// Err is why Failed closed.
func (n *Node) Err() error { return n.db.Err() }

// DataDir is the node's data directory, absolute.
func (n *Node) DataDir() string { return n.opts.DataDir }

// MinUnreserved is the minimum unreserved concurrency in force: min(M, L).
func (n *Node) MinUnreserved() int {
	return account.Limits{Concurrency: n.opts.AccountConcurrency, MinUnreserved: *n.opts.MinUnreserved}.Minimum()
}

// localURL is the endpoint as a process on this machine reaches it: an
// unspecified listen address (0.0.0.0, [::]) is reached at 127.0.0.1.
func (n *Node) localURL() string {
	host, port, err := net.SplitHostPort(n.Addr())
	if err != nil {
		return n.URL()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// URL is the endpoint URL clients use.
func (n *Node) URL() string { return "http://" + n.Addr() }

// Admission exposes the admission controller of the node's own account
// (for tests and metrics).
func (n *Node) Admission() *admission.Controller { return n.adm.For(n.opts.AccountID) }

// Accounts exposes admission for every account (for tests and metrics).
func (n *Node) Accounts() *admission.Accounts { return n.adm }

// Provisioner exposes the node's provisioner (for tests and metrics).
func (n *Node) Provisioner() *provision.Provisioner { return n.prov }

// Mappings exposes the node's event source mappings (for tests and
// metrics).
func (n *Node) Mappings() *esm.Manager { return n.esm }

// Events exposes the node's asynchronous queue (for tests and metrics).
func (n *Node) Events() *events.Queue { return n.queue }

// Environments exposes the node's execution environments (for tests and metrics).
func (n *Node) Environments() *execenv.Manager { return n.envs }

// Close stops serving: new requests are refused, running invocations are
// cancelled (their environments killed, their slots released), and the
// store is closed last. Calling it again returns the first call's result.
func (n *Node) Close(ctx context.Context) error {
	n.closeOnce.Do(func() { n.closeErr = n.close(ctx) })
	return n.closeErr
}

func (n *Node) close(ctx context.Context) error {
	n.cancelAll()
	n.metrics.Close()
	err := n.http.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = n.http.Close()
	}
	if serr := <-n.served; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return errors.Join(err, n.closeParts())
}

func (n *Node) closeParts() error {
	var errs []error
	if n.coarse != nil {
		defer n.coarse.Stop() // after everything that admits has stopped
	}
	if n.metrics != nil {
		n.metrics.Close()
	}
	if n.esm != nil {
		errs = append(errs, n.esm.Close())
	}
	if n.queue != nil {
		errs = append(errs, n.queue.Close())
	}
	if n.prov != nil {
		errs = append(errs, n.prov.Close())
	}
	if n.envs != nil {
		errs = append(errs, n.envs.Close())
	}
	if n.gate != nil {
		// After the environments: nothing holds the cluster's slots now.
		errs = append(errs, n.gate.Close())
	}
	if n.box != nil {
		errs = append(errs, n.box.Close())
	}
	if n.db != nil {
		errs = append(errs, n.db.Close())
	}
	// Last: the directory is free only once nothing of this node uses it.
	if n.lock != nil {
		errs = append(errs, unlockDataDir(n.lock))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	return nil
}

// mappingFigures reports the event source mappings to the metrics.
type mappingFigures struct{ m *esm.Manager }

func (f mappingFigures) MappingFigures() []metrics.MappingFigures {
	var out []metrics.MappingFigures
	for id, s := range f.m.Stats() {
		out = append(out, metrics.MappingFigures{UUID: id, Function: s.Function, Queue: s.Queue, Batches: s.Batches, Messages: s.Messages,
			Deleted: s.Deleted, ThrottledBatches: s.ThrottledBatches, FailedBatches: s.FailedBatches, Filtered: s.Filtered, InFlight: s.InFlight, Concurrency: s.Concurrency})
	}
	return out
}

// urlGuard lets access control decide the function URLs whose AuthType is
// AWS_IAM.
type urlGuard struct {
	g      *iam.Guard
	region string
}

func (u urlGuard) AuthorizeURL(r *http.Request, account string, c *function.URLConfig) error {
	return u.g.AuthorizeURL(r, u.region, account, c)
}

// consoleSession gives the console the sign-ins of access control.
type consoleSession struct{ g *iam.Guard }

func (c consoleSession) Principal(r *http.Request) (console.Principal, bool) {
	acct, name, ok := c.g.ConsolePrincipal(r)
	return console.Principal{Account: acct, Name: name}, ok
}

func (c consoleSession) CSRFToken(r *http.Request) string { return c.g.ConsoleCSRF(r) }

// serveInside answers a request of a function in a sandbox, made to the
// server's API inside its environment, as the listener's requests are
// answered. An environment of a provisioned configuration may start (and
// call) before the front is in place.
func (n *Node) serveInside(w http.ResponseWriter, r *http.Request) {
	h := n.front.Load()
	if h == nil {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "the server is starting", http.StatusServiceUnavailable)
		return
	}
	(*h).ServeHTTP(w, r)
}
