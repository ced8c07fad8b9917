package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/lambdad/lambdad/internal/server"
)

func serve(args []string) error {
	d := server.Defaults
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	o := server.Options{}
	fs.StringVar(&o.Listen, "listen", d.Listen, "address to serve the API at")
	fs.StringVar(&o.DataDir, "data-dir", d.DataDir, "directory for the database, code and logs")
	fs.StringVar(&o.Region, "region", d.Region, "the region this server is")
	fs.StringVar(&o.AccountID, "account-id", d.AccountID, "the account id in ARNs")
	fs.IntVar(&o.AccountConcurrency, "account-concurrency", d.AccountConcurrency, "the account concurrency limit L")
	fs.IntVar(&o.MinUnreserved, "min-unreserved", d.MinUnreserved, "concurrency that must stay unreserved M (min(M, L) applies)")
	fs.DurationVar(&o.IdleTimeout, "idle-timeout", d.IdleTimeout, "stop an execution environment after it has been idle this long")
	fs.IntVar(&o.AsyncWorkers, "async-workers", d.AsyncWorkers, "how many queued asynchronous events run at once")
	fs.Float64Var(&o.AsyncTimeScale, "async-time-scale", d.AsyncTimeScale, "multiply asynchronous retry waits by this (1 = AWS's timing; smaller for testing)")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	fs.Parse(args)
	if fs.NArg() > 0 {
		return fmt.Errorf("serve: unexpected argument %q", fs.Arg(0))
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	if o.AccountConcurrency < 1 || o.MinUnreserved < 0 {
		return fmt.Errorf("--account-concurrency must be at least 1 and --min-unreserved at least 0")
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lv}))
	o.Logger = log
	node, err := server.Start(o)
	if err != nil {
		return err
	}
	log.Info("lambdad serving", "endpoint", node.URL(), "data_dir", o.DataDir, "region", o.Region,
		"account_concurrency", o.AccountConcurrency, "min_unreserved", min(o.MinUnreserved, o.AccountConcurrency))
	fmt.Fprintf(os.Stderr, "lambdad %s: endpoint %s\n", version, node.URL())

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	log.Info("shutting down")
	shutdown, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return node.Close(shutdown)
}
