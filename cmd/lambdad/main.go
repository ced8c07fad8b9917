// Command lambdad serves the AWS Lambda API on this machine: functions,
// versions, aliases, invocations that run their code, and AWS's concurrency
// rules.
//
//	lambdad [serve] [flags]     serve (the default)
//	lambdad logs FUNCTION       print a function's logs (--follow to keep reading)
//	lambdad events [list|replay SEQ]  read and replay failed asynchronous events
//	lambdad bench [flags]       drive load and compare with a reference
//	lambdad version             print the version
package main

import (
	"fmt"
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
	args := os.Args[1:]
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "serve":
		err = serve(args)
	case "logs":
		err = logs(args)
	case "events":
		err = eventsCmd(args)
	case "bench":
		err = benchCmd(args)
	case "version":
		fmt.Println("lambdad", version)
	case "help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "lambdad: unknown command %q\n\n%s", cmd, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "lambdad:", err)
		os.Exit(1)
	}
}

const usage = `usage:
  lambdad [serve] [flags]          serve the Lambda API (the default command)
  lambdad logs [flags] FUNCTION    print a function's logs
  lambdad events [flags] [list | replay SEQ]
                                   list failed asynchronous events, or replay one
  lambdad bench [flags]            drive load and compare with a reference
  lambdad version                  print the version

Run 'lambdad COMMAND -h' for a command's flags.
`
