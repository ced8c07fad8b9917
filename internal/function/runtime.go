package function

import (
	"strings"

	"github.com/lambdad/lambdad/internal/awserr"
)

// The runtimes a function may name, and which of them this server runs.
//
// AWS's front end does not check Runtime against the model's enum: the
// service does, and its answers differ by kind of runtime (recorded from
// real AWS in 2026-01, in LocalStack's AWS-validated snapshots of
// test_create_lambda_exceptions and
// test_create_deprecated_function_runtime_with_validation_enabled):
//
//   - a runtime AWS has retired for new functions gets its own
//     deprecation message;
//   - anything else AWS does not offer gets the enum message listing the
//     runtimes AWS offers;
//   - lambdad then refuses what AWS offers but lambdad cannot run, so that a
//     function is never stored only to fail every invocation.

// awsRuntimes are the runtimes AWS accepts for new functions, in the order
// AWS lists them in its enum message (AWS sends them in a fixed but
// unsorted order). ruby4.0 is newer than that recording; its place in AWS's
// order is not known, so it comes last.
var awsRuntimes = []string{
	"nodejs20.x", "python3.14", "provided.al2023", "python3.12", "python3.13", "nodejs24.x",
	"nodejs22.x", "java25", "python3.10", "python3.11", "java21", "ruby3.3", "ruby3.4", "ruby3.2",
	"python3.8", "python3.9", "java17", "nodejs16.x", "dotnet10", "dotnet8", "java11", "dotnet6",
	"nodejs18.x", "provided.al2", "java8.al2", "ruby4.0",
}

// retiredRuntimes are the runtimes of the model whose "block function
// create" date has passed (AWS's Lambda runtimes page, deprecated runtimes
// table, as read 2026-07). The next dates there are 2027-02-01 (python3.8,
// python3.9, nodejs16.x to nodejs20.x, provided.al2, ruby3.2, dotnet6,
// dotnet8) and 2027-04-30 (ruby3.3); they move from awsRuntimes to here
// then.
var retiredRuntimes = map[string]bool{
	"nodejs": true, "nodejs4.3": true, "nodejs4.3-edge": true, "nodejs6.10": true, "nodejs8.10": true,
	"nodejs10.x": true, "nodejs12.x": true, "nodejs14.x": true,
	"python2.7": true, "python3.6": true, "python3.7": true,
	"java8": true, "go1.x": true, "provided": true,
	"dotnetcore1.0": true, "dotnetcore2.0": true, "dotnetcore2.1": true, "dotnetcore3.1": true,
	"ruby2.5": true, "ruby2.7": true,
}

// Interpreters lambdad starts functions with.
const (
	Python = "python3"
	Node   = "node"
)

// servedList is every runtime lambdad runs, for messages and the README.
// It must agree with how internal/execenv launches them: provided.* run the
// function's own bootstrap, python3.x run on python3, nodejs* on node.
var servedList = []string{
	"provided.al2", "provided.al2023",
	"python3.8", "python3.9", "python3.10", "python3.11", "python3.12", "python3.13", "python3.14",
	"nodejs16.x", "nodejs18.x", "nodejs20.x", "nodejs22.x", "nodejs24.x",
}

// served maps each runtime lambdad runs to the program it needs on the
// machine's PATH, "" for none.
var served = func() map[string]string {
	m := make(map[string]string, len(servedList))
	for _, rt := range servedList {
		switch {
		case strings.HasPrefix(rt, "python3."):
			m[rt] = Python
		case strings.HasPrefix(rt, "nodejs"):
			m[rt] = Node
		default:
			m[rt] = ""
		}
	}
	return m
}()

// ServedRuntimes lists the runtimes lambdad runs.
func ServedRuntimes() []string { return append([]string(nil), servedList...) }

// Interpreter returns the program rt runs on ("" for a provided runtime)
// and whether lambdad runs rt at all.
func Interpreter(rt string) (program string, ok bool) {
	program, ok = served[rt]
	return program, ok
}

// CheckRuntime reports why a function cannot be created with, or changed
// to, runtime rt, or nil when it can. lookPath finds a program on the
// machine's PATH (exec.LookPath); it is a parameter so that this package
// does no I/O and a test can take an interpreter away.
func CheckRuntime(rt string, lookPath func(string) (string, error)) error {
	if retiredRuntimes[rt] {
		return awserr.New(awserr.InvalidParameterValue,
			"The runtime parameter of %s is no longer supported for creating or updating AWS Lambda functions. We recommend you use a supported runtime while creating or updating functions.", rt)
	}
	program, ok := served[rt]
	if !ok {
		if !isAWSRuntime(rt) && !strings.HasPrefix(rt, "arn:") {
			return awserr.New(awserr.InvalidParameterValue,
				"Value %s at 'runtime' failed to satisfy constraint: Member must satisfy enum value set: [%s] or be a valid ARN",
				clip(rt), strings.Join(awsRuntimes, ", "))
		}
		return awserr.New(awserr.InvalidParameterValue,
			"The runtime parameter of %s is not supported on this server. Runtimes it supports: %s.", clip(rt), strings.Join(servedList, ", "))
	}
	if program != "" && lookPath != nil {
		if _, err := lookPath(program); err != nil {
			return awserr.New(awserr.InvalidParameterValue,
				"The runtime parameter of %s cannot be used on this server: %s was not found on its PATH.", rt, program)
		}
	}
	return nil
}

func isAWSRuntime(rt string) bool {
	for _, r := range awsRuntimes {
		if r == rt {
			return true
		}
	}
	return false
}

// CheckLayerRuntime checks one of a layer's CompatibleRuntimes: any runtime
// AWS names will do, retired or not, and whether this server runs it or
// not, since a layer only declares what it is built for.
func CheckLayerRuntime(rt string) error {
	if isAWSRuntime(rt) || retiredRuntimes[rt] {
		return nil
	}
	return awserr.New(awserr.InvalidParameterValue,
		"Value %s at 'compatibleRuntimes' failed to satisfy constraint: Member must satisfy enum value set: [%s]",
		clip(rt), strings.Join(awsRuntimes, ", "))
}
