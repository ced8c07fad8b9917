package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"regexp"
	"slices"
	"sort"
	"syscall"
	"time"

	"github.com/lambdad/lambdad/internal/execenv"
	"github.com/lambdad/lambdad/internal/server"
)

var (
	functionName = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)
	versionName  = regexp.MustCompile(`^(\$LATEST|[0-9]+)$`)
	aliasName    = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,128}$`)
)

// logs prints the log file of one function, as the execution environments
// write it under the data directory (one line per line of output: time,
// [version], text); with --qualifier only the lines of one version, with
// --follow it keeps printing what is appended until interrupted.
func logs(args []string) error {
	c := newCommand("logs", "[flags] FUNCTION", `
Print a function's log from the data directory: every line of output of
every invocation, stamped with its UTC time and, in brackets, the version
whose environment wrote it:

  2024-05-06T07:08:09.123Z [3] START RequestId: 8f5e... Version: 3

--qualifier keeps the lines of one version: $LATEST, a number, or an alias,
which is asked of the server at --endpoint and stands for the version(s) it
points to now.`)
	dataDir := c.String("data-dir", server.Defaults.DataDir, "the server's data directory")
	accountID := c.String("account-id", server.Defaults.AccountID, "the account the function belongs to")
	follow := c.Bool("follow", false, "keep printing new lines as they are written")
	qualifier := c.String("qualifier", "", "print only the lines of this version ($LATEST, a number, or an alias)")
	endpoint := c.String("endpoint", "http://"+server.Defaults.Listen, "the lambdad to resolve an alias with (only with an alias --qualifier)")
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return c.usagef("expected one FUNCTION, got %d arguments", len(pos))
	}
	name := pos[0]
	if !functionName.MatchString(name) {
		return c.usagef("not a function name: %q (a name, not an ARN; --qualifier picks a version or alias)", name)
	}
	var versions []string // nil: every line
	switch q := *qualifier; {
	case q == "":
	case versionName.MatchString(q):
		versions = []string{q}
	case aliasName.MatchString(q):
		if versions, err = aliasVersions(*endpoint, name, q); err != nil {
			return err
		}
	default:
		return c.usagef("--qualifier %q is neither $LATEST, a version number nor an alias name", q)
	}

	path := execenv.LogFile(server.LogDir(*dataDir), *accountID, name)
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
	defer func() { f.Close() }()
	p := &logPrinter{out: bufio.NewWriter(os.Stdout), versions: versions}
	buf := make([]byte, 64<<10)
	for {
		n, err := f.Read(buf)
		if n > 0 {
			if werr := p.write(buf[:n]); werr != nil {
				return werr
			}
			continue
		}
		if err != nil && err != io.EOF {
			return err
		}
		if !*follow {
			return p.end()
		}
		// Rotated (see --log-max-bytes): the old file is read to its
		// end; go on with the new one.
		if cur, err := os.Stat(path); err == nil {
			if old, err := f.Stat(); err == nil && !os.SameFile(cur, old) {
				if nf, err := os.Open(path); err == nil {
					f.Close()
					f = nf
					continue
				}
			}
		}
		// The server writes a line in more than one write now and then
		// (its buffer fills mid-line): a partial line waits for its rest.
		if err := p.out.Flush(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return p.end()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// logPrinter prints the lines of a log file that pass its filter.
type logPrinter struct {
	out      *bufio.Writer
	versions []string // nil: all
	partial  []byte   // the start of a line whose end has not been read
}

func (p *logPrinter) write(b []byte) error {
	for {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			p.partial = append(p.partial, b...)
			return nil
		}
		line := b[:i]
		if len(p.partial) > 0 {
			line = append(p.partial, line...)
			p.partial = p.partial[:0]
		}
		if err := p.line(line); err != nil {
			return err
		}
		b = b[i+1:]
	}
}

func (p *logPrinter) line(line []byte) error {
	if p.versions != nil {
		// Lines not in the format (written by an older lambdad) carry no
		// version, so no filter keeps them.
		l, ok := execenv.ParseLogLine(line)
		if !ok || !slices.Contains(p.versions, l.Version) {
			return nil
		}
	}
	p.out.Write(line)
	return p.out.WriteByte('\n')
}

// end prints what is left of an unfinished last line and flushes.
func (p *logPrinter) end() error {
	if len(p.partial) > 0 {
		if err := p.line(p.partial); err != nil {
			return err
		}
		p.partial = nil
	}
	return p.out.Flush()
}

// aliasVersions asks the server which versions an alias points to: its
// FunctionVersion and those of its routing config.
func aliasVersions(endpoint, function, alias string) ([]string, error) {
	client := &http.Client{Timeout: 30 * time.Second}
	body, err := call(client, "GET", endpoint+"/2015-03-31/functions/"+url.PathEscape(function)+"/aliases/"+url.PathEscape(alias))
	if err != nil {
		return nil, fmt.Errorf("resolving alias %s of %s at %s (--endpoint): %w", alias, function, endpoint, err)
	}
	var a struct {
		FunctionVersion string
		RoutingConfig   struct{ AdditionalVersionWeights map[string]float64 }
	}
	if err := json.Unmarshal(body, &a); err != nil || a.FunctionVersion == "" {
		return nil, fmt.Errorf("resolving alias %s of %s: unexpected answer %q", alias, function, body)
	}
	versions := []string{a.FunctionVersion}
	for v := range a.RoutingConfig.AdditionalVersionWeights {
		versions = append(versions, v)
	}
	sort.Strings(versions[1:])
	return versions, nil
}
