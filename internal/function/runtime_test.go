package function_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/lambdad/lambdad/internal/apimodel"
	"github.com/lambdad/lambdad/internal/awserr"
	"github.com/lambdad/lambdad/internal/function"
)

// everywhere finds every program; nowhere finds none.
func everywhere(p string) (string, error) { return "/usr/bin/" + p, nil }
func nowhere(string) (string, error)      { return "", errors.New("not found") }

const retired = " is no longer supported for creating or updating AWS Lambda functions. We recommend you use a supported runtime while creating or updating functions."

func TestCheckRuntime(t *testing.T) {
	served := "provided.al2, provided.al2023, python3.8, python3.9, python3.10, python3.11, python3.12, python3.13, python3.14, nodejs16.x, nodejs18.x, nodejs20.x, nodejs22.x, nodejs24.x"
	enum := "Member must satisfy enum value set: [nodejs20.x, python3.14, provided.al2023, python3.12, python3.13, nodejs24.x, nodejs22.x, java25, python3.10, python3.11, java21, ruby3.3, ruby3.4, ruby3.2, python3.8, python3.9, java17, nodejs16.x, dotnet10, dotnet8, java11, dotnet6, nodejs18.x, provided.al2, java8.al2, ruby4.0] or be a valid ARN"
	cases := []struct {
		runtime  string
		lookPath func(string) (string, error)
		want     string // "" for accepted
	}{
		{"provided.al2023", nowhere, ""},
		{"provided.al2", nowhere, ""},
		{"python3.12", everywhere, ""},
		{"python3.8", everywhere, ""},
		{"nodejs24.x", everywhere, ""},
		{"python3.12", nowhere, "The runtime parameter of python3.12 cannot be used on this server: python3 was not found on its PATH."},
		{"nodejs22.x", nowhere, "The runtime parameter of nodejs22.x cannot be used on this server: node was not found on its PATH."},
		// AWS offers these; lambdad does not run them.
		{"java21", everywhere, "The runtime parameter of java21 is not supported on this server. Runtimes it supports: " + served + "."},
		{"ruby3.3", everywhere, "The runtime parameter of ruby3.3 is not supported on this server. Runtimes it supports: " + served + "."},
		{"dotnet8", everywhere, "The runtime parameter of dotnet8 is not supported on this server. Runtimes it supports: " + served + "."},
		// AWS has retired these for new functions, whatever lambdad could run.
		{"python2.7", everywhere, "The runtime parameter of python2.7" + retired},
		{"python3.7", everywhere, "The runtime parameter of python3.7" + retired},
		{"nodejs12.x", everywhere, "The runtime parameter of nodejs12.x" + retired},
		{"provided", everywhere, "The runtime parameter of provided" + retired},
		{"go1.x", everywhere, "The runtime parameter of go1.x" + retired},
		// Outside AWS's list altogether.
		{"cobol", everywhere, "Value cobol at 'runtime' failed to satisfy constraint: " + enum},
		{"PYTHON3.9", everywhere, "Value PYTHON3.9 at 'runtime' failed to satisfy constraint: " + enum},
	}
	for _, c := range cases {
		err := function.CheckRuntime(c.runtime, c.lookPath)
		if c.want == "" {
			if err != nil {
				t.Errorf("%s: %v, want accepted", c.runtime, err)
			}
			continue
		}
		e, ok := awserr.As(err)
		if !ok || e.Code != awserr.InvalidParameterValue || e.Type != "User" || e.Message != c.want {
			t.Errorf("%s: %v\nwant InvalidParameterValueException %q", c.runtime, err, c.want)
		}
	}
}

// TestEveryModelRuntimeIsClassified makes a model update that adds a
// runtime fail here until someone decides what lambdad answers for it.
func TestEveryModelRuntimeIsClassified(t *testing.T) {
	for _, rt := range apimodel.MustLoad().Shapes["Runtime"].Enum {
		err := function.CheckRuntime(rt, everywhere)
		if e, ok := awserr.As(err); ok && strings.HasPrefix(e.Message, "Value ") {
			t.Errorf("%s is in the model's enum but neither offered nor retired by AWS here", rt)
		}
	}
	for _, rt := range function.ServedRuntimes() {
		if _, ok := function.Interpreter(rt); !ok {
			t.Errorf("%s is served but has no interpreter entry", rt)
		}
	}
}
