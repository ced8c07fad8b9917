package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// usageError is a command line a command cannot run (an unknown flag, a
// missing or unexpected argument): main prints it with a pointer to the
// command's help and exits with status 2, as for any misuse.
type usageError struct {
	cmd string
	msg string
}

func (e *usageError) Error() string { return e.msg }

// errHelp means help was asked for and printed: main exits with status 0.
var errHelp = errors.New("help printed")

// command is one subcommand's flags and the words of its synopsis.
type command struct {
	*flag.FlagSet
	name     string
	synopsis string // what follows "lambdad NAME", e.g. "[flags] FUNCTION"
	about    string // one paragraph printed under the synopsis by -h
}

func newCommand(name, synopsis, about string) *command {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	// Errors are reported once, by main, in one format; -h prints through
	// printHelp.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &command{FlagSet: fs, name: name, synopsis: synopsis, about: about}
}

// usagef makes a usage error of c.
func (c *command) usagef(format string, a ...any) error {
	return &usageError{cmd: c.name, msg: fmt.Sprintf(format, a...)}
}

// parse parses args with flags and positional arguments in any order:
// "events replay 12 --endpoint URL" sets --endpoint, which the flag
// package alone would leave as two more arguments after the first
// positional one. Everything after "--" is positional. It returns the
// positional arguments, a usage error for an unknown flag or a bad value,
// or errHelp once -h's text is printed.
func (c *command) parse(args []string) ([]string, error) {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimPrefix(a[1:], "-")
		name, _, inline := strings.Cut(name, "=")
		f := c.Lookup(name)
		if f == nil && name != "h" && name != "help" {
			typed, _, _ := strings.Cut(a, "=")
			return nil, c.usagef("unknown flag %s", typed)
		}
		// -h is left to Parse, which answers ErrHelp; a flag that takes a
		// value takes the next argument, whatever it looks like, as the
		// flag package does.
		if f == nil || inline || isBool(f) || i+1 == len(args) {
			continue
		}
		i++
		flags = append(flags, args[i])
	}
	if err := c.Parse(flags); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			c.printHelp(os.Stdout)
			return nil, errHelp
		}
		return nil, &usageError{cmd: c.name, msg: err.Error()}
	}
	return pos, nil
}

func isBool(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// printHelp prints the synopsis, the paragraph about the command and its
// flags.
func (c *command) printHelp(w io.Writer) {
	fmt.Fprintf(w, "usage: lambdad %s %s\n", c.name, c.synopsis)
	if c.about != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(c.about))
	}
	n := 0
	c.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		fmt.Fprintf(w, "\nflags:\n")
		c.SetOutput(w)
		c.PrintDefaults()
		c.SetOutput(io.Discard)
	}
}
