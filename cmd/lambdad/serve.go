package main

import (
	"context"
	"fmt"
	"github.com/lambdad/lambdad/internal/admission"
	"github.com/lambdad/lambdad/internal/api"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/lambdad/lambdad/internal/iam"
	"github.com/lambdad/lambdad/internal/sandbox"
	"github.com/lambdad/lambdad/internal/server"
)

// watchReload reloads the credentials file on every SIGHUP until ctx ends;
// a file that does not load is reported and the credentials in force stay.
// The returned function waits for the watcher to stop.
func watchReload(ctx context.Context, node *server.Node, file string, log *slog.Logger) (wait func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				c, err := iam.Load(file)
				if err == nil {
					err = node.Reload(c)
				}
				if err != nil {
					log.Error("credentials not reloaded; the previous ones stay in force", "err", err)
					continue
				}
				log.Info("credentials reloaded", "credentials", file, "accounts", len(c.Accounts()))
			}
		}
	}()
	return func() { <-done }
}

// functionNetwork is what functions reach: the host's network unsandboxed.
func functionNetwork(o server.Options) string {
	if o.Sandbox == sandbox.Off {
		return "host"
	}
	return string(o.FunctionNetwork)
}

func serve(args []string) error {
	d := server.Defaults
	c := newCommand("serve", "[flags]", `
Serve the AWS Lambda API until SIGINT or SIGTERM. One server at a time may
use a data directory: a second one exits at once, naming the first's pid.`)
	o := server.Options{}
	c.StringVar(&o.Listen, "listen", d.Listen, "address to serve the API at")
	c.StringVar(&o.DataDir, "data-dir", d.DataDir, "directory for the database, code and logs (a relative one is taken from the working directory at start)")
	c.StringVar(&o.Region, "region", d.Region, "the region this server is")
	c.StringVar(&o.AccountID, "account-id", d.AccountID, "the account id in ARNs")
	c.IntVar(&o.AccountConcurrency, "account-concurrency", d.AccountConcurrency, "the account concurrency limit L")
	minUnreserved := c.Int("min-unreserved", *d.MinUnreserved, "concurrency that must stay unreserved M (min(M, L) applies; 0 allows reserving all of L)")
	c.DurationVar(&o.IdleTimeout, "idle-timeout", d.IdleTimeout, "stop an execution environment after it has been idle this long")
	c.IntVar(&o.AsyncWorkers, "async-workers", d.AsyncWorkers, "how many queued asynchronous events run at once")
	c.Float64Var(&o.AsyncTimeScale, "async-time-scale", d.AsyncTimeScale, "multiply asynchronous retry waits by this (1 = AWS's timing; smaller for testing)")
	c.IntVar(&o.MaxEnvironments, "max-environments", d.MaxEnvironments, "execution environments alive at once; at the cap idle ones are stopped oldest first, then cold starts are throttled")
	c.Int64Var(&o.LogMaxBytes, "log-max-bytes", d.LogMaxBytes, "size at which a function's log file is rotated to <function>.log.1 (one old file is kept)")
	c.IntVar(&o.MaxConnections, "max-connections", server.DefaultMaxConnections, "HTTP connections served at once; more wait to be accepted")
	streamMiB := c.Int("max-stream-response", 200, "MiB a function may stream to InvokeWithResponseStream or a RESPONSE_STREAM function URL")
	bodyMB := c.Int("max-body-memory", api.DefaultBodyMemory>>20, "MB of request bodies held in memory at once; large requests past it are refused with 429")
	c.StringVar(&o.SQSEndpoint, "sqs-endpoint", "", "the SQS endpoint event source mappings read (default: what AWS_ENDPOINT_URL_SQS, AWS_ENDPOINT_URL or the shared config names)")
	invocationRate := c.Int("invocation-rate", *d.InvocationRate, "invocation requests per second allowed per unit of a function's concurrency (AWS: 10; 0 turns the limit off)")
	scalingRate := c.Int("scaling-rate", *d.ScalingRate, "new execution environments each function may add per 10 seconds, refilled continuously (AWS: 1000; 0 turns the limit off)")
	c.BoolVar(&o.DebugEndpoints, "debug-endpoints", false, "serve Go's profiles (net/http/pprof) under /lambdad/debug/pprof/")
	c.StringVar(&o.S3Endpoint, "s3-endpoint", "", "S3 endpoint to read Code.S3Bucket/S3Key from (default: the AWS configuration: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, shared config files)")
	etcd := c.String("etcd-endpoints", "", "comma-separated etcd client URLs: share functions, settings, code, events and limits with every node using the same etcd and --etcd-prefix (default: one node, embedded database)")
	c.StringVar(&o.EtcdPrefix, "etcd-prefix", "/lambdad/", "the key prefix of this cluster's state in etcd")
	c.StringVar(&o.NodeID, "node-id", "", "this node's name in the cluster (default: host name and listen address)")
	c.StringVar(&o.Advertise, "advertise", "", "the URL other nodes reach this one at (default: its own endpoint)")
	c.DurationVar(&o.LeaseTTL, "lease-ttl", 10*time.Second, "with --etcd-endpoints: how long the cluster counts a silent node alive; its events and slots go to the others after it")
	level := c.String("log-level", "info", "debug, info, warn or error")
	box := c.String("sandbox", string(sandbox.Full), "contain each execution environment: full (namespaces, own uid, filesystem view, seccomp, cgroup limits and freezing), no-cgroup (all but the cgroup), or off (functions run as the server's user); lambdad refuses to start when the machine cannot give the level")
	network := c.String("function-network", string(sandbox.NetworkPasta), "outbound network of sandboxed functions: pasta (IPv4 out through a pasta process per environment, Debian's package passt; nothing inbound, nothing of the host's loopback) or none (the environment's loopback only); lambdad refuses to start when pasta cannot be used")
	c.IntVar(&o.SandboxSpares, "sandbox-spares", 1, "sandboxed environments kept started ahead of need (namespaces, cgroup and network made, no function yet), taken by cold starts and replaced in the background; 0 starts each on demand")
	credsFile := c.String("credentials", "", "turn on access control with this credentials file (JSON: accounts, principals, roles); SIGHUP reloads it")
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return c.usagef("unexpected argument %q", pos[0])
	}
	o.MinUnreserved, o.InvocationRate, o.ScalingRate = minUnreserved, invocationRate, scalingRate
	for _, e := range strings.Split(*etcd, ",") {
		if e = strings.TrimSpace(e); e != "" {
			o.EtcdEndpoints = append(o.EtcdEndpoints, e)
		}
	}
	if o.Sandbox, err = sandbox.ParseLevel(*box); err != nil {
		return c.usagef("--sandbox: %v", err)
	}
	if o.FunctionNetwork, err = sandbox.ParseNetwork(*network); err != nil {
		return c.usagef("--function-network: %v", err)
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		return c.usagef("--log-level: %v", err)
	}
	// server.Options reads zero as "the default"; from the command line a
	// zero (or negative) value is a mistake to report, not to replace.
	switch {
	case o.AccountConcurrency < 1 || o.AccountConcurrency > admission.MaxConcurrency:
		return c.usagef("--account-concurrency must be from 1 to %d", admission.MaxConcurrency)
	case *o.MinUnreserved < 0:
		return c.usagef("--min-unreserved must be at least 0")
	case *o.InvocationRate < 0:
		return c.usagef("--invocation-rate must be at least 0")
	case *o.ScalingRate < 0:
		return c.usagef("--scaling-rate must be at least 0")
	case o.IdleTimeout <= 0:
		return c.usagef("--idle-timeout must be positive")
	case o.SandboxSpares < 0 || o.SandboxSpares > 64:
		return c.usagef("--sandbox-spares must be from 0 to 64")
	case *bodyMB < 1:
		return c.usagef("--max-body-memory must be at least 1")
	case *streamMiB < 1:
		return c.usagef("--max-stream-response must be at least 1")
	case o.MaxEnvironments < 1:
		return c.usagef("--max-environments must be at least 1")
	case o.LogMaxBytes < 4096:
		return c.usagef("--log-max-bytes must be at least 4096")
	case o.MaxConnections < 1:
		return c.usagef("--max-connections must be at least 1")
	case o.AsyncWorkers < 1:
		return c.usagef("--async-workers must be at least 1")
	case o.AsyncTimeScale <= 0:
		return c.usagef("--async-time-scale must be positive")
	case o.LeaseTTL < time.Second:
		return c.usagef("--lease-ttl must be at least 1s")
	case o.Listen == "" || o.DataDir == "":
		return c.usagef("--listen and --data-dir must not be empty")
	}
	o.MaxBodyMemory = int64(*bodyMB) << 20
	o.MaxStreamResponse = int64(*streamMiB) << 20
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lv}))
	o.Logger = log
	if *credsFile != "" {
		// A malformed file stops the start, naming its line.
		if o.Credentials, err = iam.Load(*credsFile); err != nil {
			return err
		}
	}
	node, err := server.Start(o)
	if err != nil {
		return err
	}
	log.Info("lambdad serving", "endpoint", node.URL(), "data_dir", node.DataDir(), "region", o.Region,
		"account_concurrency", o.AccountConcurrency, "min_unreserved", node.MinUnreserved(), "sandbox", o.Sandbox, "function_network", functionNetwork(o))
	if len(o.EtcdEndpoints) > 0 {
		log.Info("one node of a cluster", "node_id", node.NodeID(), "etcd", o.EtcdEndpoints, "prefix", o.EtcdPrefix, "lease_ttl", o.LeaseTTL)
	}
	if o.Credentials == nil {
		log.Warn("access control is off: any credentials are accepted, every request acts in one account",
			"account", o.AccountID, "turn_on_with", "--credentials FILE")
	} else {
		log.Info("access control is on", "credentials", *credsFile, "accounts", len(o.Credentials.Accounts()))
	}
	// The signals are taken before the endpoint is announced: a SIGHUP
	// sent by whoever waits for that line must reload, not kill.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if *credsFile != "" {
		wait := watchReload(ctx, node, *credsFile, log)
		defer wait()
	}
	fmt.Fprintf(os.Stderr, "lambdad %s: endpoint %s\n", version, node.URL())
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case <-node.Failed():
		log.Error("the node can no longer follow its cluster; shutting down", "err", node.Err())
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return node.Close(shutdown)
}
