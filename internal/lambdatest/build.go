package lambdatest

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

var (
	buildOnce sync.Once
	buildZip  []byte
	buildBin  []byte
	buildErr  error
)

// GoFunction builds testfn (a real aws-lambda-go function) once per test
// binary and returns it zipped as a provided-runtime bootstrap.
func GoFunction(t testing.TB) []byte {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "lambdad-testfn-")
		if err != nil {
			buildErr = err
			return
		}
		defer os.RemoveAll(dir)
		_, self, _, _ := runtime.Caller(0)
		out := filepath.Join(dir, "bootstrap")
		cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-o", out, "./testfn")
		cmd.Dir = filepath.Dir(self)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if msg, err := cmd.CombinedOutput(); err != nil {
			buildErr = &buildError{err: err, out: string(msg)}
			return
		}
		bin, err := os.ReadFile(out)
		if err != nil {
			buildErr = err
			return
		}
		buildBin = bin
		buildZip = zipFiles(map[string][]byte{"bootstrap": bin})
	})
	if buildErr != nil {
		t.Fatalf("building the test function: %v", buildErr)
	}
	return buildZip
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + e.out }

// GoFunctionWith is GoFunction with more files beside the bootstrap, so
// that each function of a test can have code of its own (a different
// archive, a different CodeSha256) that it can read back ({"file": name}).
func GoFunctionWith(t testing.TB, files map[string]string) []byte {
	t.Helper()
	GoFunction(t)
	all := map[string][]byte{"bootstrap": buildBin}
	for n, c := range files {
		all[n] = []byte(c)
	}
	return zipFiles(all)
}
