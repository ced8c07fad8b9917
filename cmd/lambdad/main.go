// Command lambdad serves the AWS Lambda API on this machine: functions,
// versions, aliases, invocations that run their code, and AWS's concurrency
// rules.
//
//	lambdad [serve] [flags]     serve (the default)
//	lambdad logs FUNCTION       print a function's logs (--follow to keep reading)
//	lambdad events [list|replay SEQ|mappings]  read and replay failed asynchronous events; show the event source mappings
//	lambdad bench [flags]       drive load and compare with a reference
//	lambdad simulate --trace F --plan F  replay a trace against a concurrency plan in virtual time
//	lambdad plan export         print a running account's concurrency plan
//	lambdad replay --trace F    drive real invocations with a trace's timing
//	lambdad version             print the version
//	lambdad help [COMMAND]      list the commands, or one command's flags
//
// Every command takes its flags before, after or between its arguments, and
// refuses flags and arguments it does not know with exit status 2.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/lambdad/lambdad/internal/bench"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	// The bench's function is this binary itself, started as a bootstrap.
	if bench.IsEchoFunction() {
		bench.RunEchoFunction()
		return
	}
	os.Exit(run(os.Args[1:]))
}

// commands are the subcommands by name.
var commands = map[string]func(args []string) error{
	"serve":    serve,
	"logs":     logs,
	"events":   eventsCmd,
	"bench":    benchCmd,
	"simulate": simulateCmd,
	"plan":     planCmd,
	"replay":   replayCmd,
	"version":  versionCmd,
}

// run runs the command line and returns the exit status: 0, 1 when the
// command failed, 2 when the command line was wrong.
func run(args []string) int {
	cmd := "serve"
	if len(args) > 0 {
		switch a := args[0]; {
		case a == "help" || a == "-h" || a == "-help" || a == "--help":
			return help(args[1:])
		case len(a) > 0 && a[0] != '-':
			cmd, args = a, args[1:]
		}
	}
	f, ok := commands[cmd]
	if !ok {
		fmt.Fprintf(os.Stderr, "lambdad: unknown command %q\n\n", cmd)
		printUsage(os.Stderr)
		return 2
	}
	return exitStatus(f(args))
}

func exitStatus(err error) int {
	var ue *usageError
	switch {
	case err == nil, errors.Is(err, errHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(os.Stderr, "lambdad %s: %s\nRun 'lambdad %s -h' for its flags and arguments.\n", ue.cmd, ue.msg, ue.cmd)
		return 2
	default:
		fmt.Fprintln(os.Stderr, "lambdad:", err)
		return 1
	}
}

// help prints the list of commands, or with a command's name its help.
func help(args []string) int {
	switch len(args) {
	case 0:
		printUsage(os.Stdout)
		return 0
	case 1:
		f, ok := commands[args[0]]
		if !ok {
			fmt.Fprintf(os.Stderr, "lambdad help: unknown command %q\n\n", args[0])
			printUsage(os.Stderr)
			return 2
		}
		return exitStatus(f([]string{"-h"}))
	default:
		fmt.Fprintf(os.Stderr, "lambdad help: unexpected argument %q\n", args[1])
		return 2
	}
}

func versionCmd(args []string) error {
	c := newCommand("version", "", "Print lambdad's version.")
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return c.usagef("unexpected argument %q", pos[0])
	}
	fmt.Println("lambdad", version)
	return nil
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, `usage: lambdad [COMMAND] [flags] [arguments]

commands:
  serve [flags]                          serve the Lambda API (the default command)
  logs [flags] FUNCTION                  print a function's logs (--follow, --qualifier)
  events [flags] [list | replay SEQ | mappings]
                                         list failed asynchronous events, or replay one;
                                         show the event source mappings and their state
  bench [flags]                          drive load and compare with a reference
  simulate --trace FILE --plan FILE [--recommend] [--chart F.svg] [--format json]
                                         replay a trace against a concurrency plan
                                         in virtual time; recommend a plan
  plan export [--endpoint URL]           print a running account's concurrency plan
  replay --trace FILE [--endpoint URL] [--max-count N] [--max-duration D]
                                         drive real invocations with a trace's timing
  version                                print the version
  help [COMMAND]                         print this, or a command's flags

'lambdad' alone, or followed by flags, serves with the embedded defaults
(http://127.0.0.1:9001, data in ./.lambdad). Flags may come before, after
or between a command's arguments.

Run 'lambdad COMMAND -h' (or 'lambdad help COMMAND') for a command's flags.
`)
}
