package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/lambdad/lambdad/internal/server"
)

// logs prints the log file of one function, as the execution environments
// write it under the data directory; with --follow it keeps printing what
// is appended until interrupted.
func logs(args []string) error {
	fs := flag.NewFlagSet("logs", flag.ExitOnError)
	dataDir := fs.String("data-dir", server.Defaults.DataDir, "the server's data directory")
	follow := fs.Bool("follow", false, "keep printing new lines as they are written")
	fs.Parse(args)
	if fs.NArg() != 1 {
		return errors.New("usage: lambdad logs [--data-dir DIR] [--follow] FUNCTION")
	}
	name := fs.Arg(0)
	if filepath.Base(name) != name || name == "." || name == ".." {
		return fmt.Errorf("not a function name: %q", name)
	}
	path := filepath.Join(server.LogDir(*dataDir), name+".log")
	f, err := os.Open(path)
	switch {
	case errors.Is(err, os.ErrNotExist) && !*follow:
		return fmt.Errorf("no logs for %s (looked in %s)", name, path)
	case err != nil && !errors.Is(err, os.ErrNotExist):
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	for f == nil {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(250 * time.Millisecond):
		}
		if f, err = os.Open(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	defer f.Close()
	for {
		if _, err := io.Copy(os.Stdout, f); err != nil {
			return err
		}
		if !*follow {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(250 * time.Millisecond):
		}
	}
}
