package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// restartServer is one lambdad binary measured by restarts, with a data
// directory of its own that holds the bench function.
type restartServer struct {
	name, bin, dataDir string
	took               []time.Duration
}

// restarts measures what a restart costs a function that exists: from the
// exec of a fresh server process on a data directory that holds the
// function (run before, so its code was unpacked then) to the first
// successful invocation of it. Each round starts every binary once, in
// turn, and execs the function's bootstrap under a minimal Runtime API to
// its first answer (the floor: the function's own start-up and one event).
func restarts(ctx context.Context, o Options, code []byte) error {
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	servers := []*restartServer{{name: "lambdad", bin: o.self}}
	for i, bin := range o.RestartWith {
		servers = append(servers, &restartServer{name: fmt.Sprintf("with[%d]", i), bin: bin})
	}
	for _, s := range servers {
		dir, err := os.MkdirTemp("", "lambdad-restart-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		s.dataDir = dir
		if err := s.prepare(ctx, client, code); err != nil {
			return fmt.Errorf("%s (%s): %w", s.name, s.bin, err)
		}
	}
	boot, cleanup, err := bootstrapOf(o.self)
	if err != nil {
		return err
	}
	defer cleanup()
	fmt.Fprintf(o.Out, "lambdad bench: %d restarts of a server holding one function, to its first successful invocation\n", o.Restart)
	var floor []time.Duration
	for range o.Restart {
		for _, s := range servers {
			d, err := s.firstInvoke(ctx, client)
			if err != nil {
				return fmt.Errorf("%s (%s): %w", s.name, s.bin, err)
			}
			s.took = append(s.took, d)
		}
		d, err := firstAnswer(ctx, boot)
		if err != nil {
			return err
		}
		floor = append(floor, d)
	}
	sortD(floor)
	f := floor[len(floor)/2]
	for _, s := range servers {
		sortD(s.took)
		p50 := s.took[len(s.took)/2]
		fmt.Fprintf(o.Out, "%-10s start to first invoke p50=%-9v p90=%-9v ratio to floor=%.2fx  %s\n",
			s.name, round(p50), round(s.took[len(s.took)*9/10]), ratio(p50, f), s.bin)
	}
	fmt.Fprintf(o.Out, "%-10s exec to first answer   p50=%-9v p90=%-9v (the bootstrap alone, %d interleaved rounds)\n",
		"floor", round(f), round(floor[len(floor)*9/10]), o.Restart)
	return nil
}

// start execs the server on its data directory, listening on a free
// port, and returns when it was exec'd.
func (s *restartServer) start() (cmd *exec.Cmd, endpoint string, log *bytes.Buffer, at time.Time, err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", nil, at, err
	}
	addr := ln.Addr().String()
	ln.Close()
	log = new(bytes.Buffer)
	cmd = exec.Command(s.bin, "serve", "--listen", addr, "--data-dir", s.dataDir, "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	at = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, "", nil, at, err
	}
	return cmd, "http://" + addr, log, at, nil
}

// stop ends the server as an operator would (SIGTERM) and waits for it,
// so that the next start finds the data directory free.
func stopServer(cmd *exec.Cmd) {
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

// prepare creates the bench function on the server's data directory and
// invokes it once, so that its code is unpacked before the first round.
func (s *restartServer) prepare(ctx context.Context, client *http.Client, code []byte) error {
	cmd, endpoint, log, _, err := s.start()
	if err != nil {
		return err
	}
	defer stopServer(cmd)
	if err := untilServing(ctx, client, endpoint+"/lambdad/health"); err != nil {
		return fmt.Errorf("%w\n%s", err, log)
	}
	if err := createFunction(ctx, client, endpoint, "restart", code, 3); err != nil {
		return err
	}
	status, b, _, err := post(ctx, client, endpoint+"/2015-03-31/functions/restart/invocations", []byte(`{}`))
	if err != nil || status != 200 {
		return fmt.Errorf("first invoke: %d %s %v", status, b, err)
	}
	return nil
}

// firstInvoke starts the server and returns the time from its exec to the
// first successful invocation of the function.
func (s *restartServer) firstInvoke(ctx context.Context, client *http.Client) (time.Duration, error) {
	cmd, endpoint, log, t0, err := s.start()
	if err != nil {
		return 0, err
	}
	defer stopServer(cmd)
	url := endpoint + "/2015-03-31/functions/restart/invocations"
	for {
		status, b, _, err := post(ctx, client, url, []byte(`{}`))
		switch {
		case err == nil && status == 200:
			return time.Since(t0), nil
		case err == nil:
			return 0, fmt.Errorf("invoke after a restart: %d %s\n%s", status, b, log)
		case !errors.Is(err, syscall.ECONNREFUSED):
			return 0, fmt.Errorf("invoke after a restart: %w\n%s", err, log)
		case time.Since(t0) > 30*time.Second:
			return 0, fmt.Errorf("the server did not answer within 30 s\n%s", log)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// untilServing polls url until it answers at all.
func untilServing(ctx context.Context, client *http.Client, url string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the server did not answer within 30 s: %w", err)
		}
		time.Sleep(time.Millisecond)
	}
}

// firstAnswer execs bootstrap under a minimal Runtime API and returns the
// time from the exec to its answer to one event.
func firstAnswer(ctx context.Context, bootstrap string) (time.Duration, error) {
	t0 := time.Now()
	p, _, err := startRefProc(ctx, bootstrap, filepath.Dir(bootstrap))
	if err != nil {
		return 0, fmt.Errorf("reference: %w", err)
	}
	defer p.stop()
	p.work <- []byte(`{}`)
	<-p.done
	return time.Since(t0), nil
}
