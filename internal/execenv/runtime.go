package execenv

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/lambdad/lambdad/internal/awserr"
	"github.com/lambdad/lambdad/runtimes"
)

// basePath is the PATH every function process starts with.
const basePath = "/usr/local/bin:/usr/bin:/bin"

// interpreter is a language runtime found on this machine. LookPath runs at
// NewManager; the real executable is asked for once, at the first cold
// start that needs it, because version managers (pyenv, nvm, asdf) install
// shell-script shims that cost tens of milliseconds per start and need
// variables the function's environment does not carry.
type interpreter struct {
	name     string // "python3", "node"
	lookPath string // exec.LookPath result; "" when absent
	probe    []string

	once sync.Once
	path string // the resolved executable
	err  error
}

func newInterpreter(name string, probe ...string) *interpreter {
	p, _ := exec.LookPath(name)
	if p != "" {
		if abs, err := filepath.Abs(p); err == nil {
			p = abs
		}
	}
	return &interpreter{name: name, lookPath: p, probe: probe}
}

// resolve returns the absolute path of the real interpreter executable.
func (in *interpreter) resolve() (string, error) {
	in.once.Do(func() {
		if in.lookPath == "" {
			in.err = fmt.Errorf("%s was not found on this machine's PATH", in.name)
			return
		}
		in.path = in.lookPath
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, in.lookPath, in.probe...)
		cmd.Env = []string{"PATH=" + filepath.Dir(in.lookPath) + ":" + basePath, "HOME=" + os.Getenv("HOME"), "LANG=C"}
		out, err := cmd.Output()
		if p := strings.TrimSpace(string(out)); err == nil && filepath.IsAbs(p) {
			if st, serr := os.Stat(p); serr == nil && st.Mode().IsRegular() {
				in.path = p
				return
			}
		}
		// The probe failed: run what LookPath found, through any shim.
		if p, err := filepath.EvalSymlinks(in.lookPath); err == nil {
			in.path = p
		}
	})
	return in.path, in.err
}

// launch describes how to start one runtime.
type launch struct {
	argv       []string
	runtimeDir string // LAMBDA_RUNTIME_DIR
	extraPath  string // directory prepended to PATH, "" for none
	provided   bool
	// interpRoot is the interpreter's installation a sandbox must show
	// (read-only, at the same path), "" when the system directories hold it.
	interpRoot string
}

// errInvalidEntrypoint marks a bootstrap that cannot be executed; the
// invocation fails with Runtime.InvalidEntrypoint.
type errInvalidEntrypoint struct{ msg string }

func (e *errInvalidEntrypoint) Error() string { return e.msg }

// launchFor returns how to start spec's runtime, or an *awserr.Error when
// this machine cannot run it.
func (m *Manager) launchFor(spec *Spec) (launch, error) {
	rt := spec.Runtime
	switch {
	case rt == "provided" || rt == "provided.al2" || rt == "provided.al2023":
		return launch{
			argv:       []string{bootstrapOf(spec)},
			runtimeDir: m.shimDir,
			provided:   true,
		}, nil
	case strings.HasPrefix(rt, "python3."):
		p, err := m.python.resolve()
		if err != nil {
			return launch{}, awserr.New(awserr.InvalidRuntime, "The runtime parameter of %s is not supported on this server: %v.", rt, err)
		}
		dir := filepath.Join(m.shimDir, "python")
		return launch{
			// -u: output reaches the log as it is written, as on AWS.
			// -B: no __pycache__ in the code directory, which is the
			// function's package and read-only on AWS.
			argv:       []string{p, "-u", "-B", filepath.Join(m.shimDir, filepath.FromSlash(runtimes.Python))},
			runtimeDir: dir,
			extraPath:  extraPath(p),
			interpRoot: interpRoot(p),
		}, nil
	case strings.HasPrefix(rt, "nodejs"):
		p, err := m.node.resolve()
		if err != nil {
			return launch{}, awserr.New(awserr.InvalidRuntime, "The runtime parameter of %s is not supported on this server: %v.", rt, err)
		}
		return launch{
			argv:       []string{p, filepath.Join(m.shimDir, filepath.FromSlash(runtimes.Node))},
			runtimeDir: filepath.Join(m.shimDir, "node"),
			extraPath:  extraPath(p),
			interpRoot: interpRoot(p),
		}, nil
	}
	return launch{}, awserr.New(awserr.InvalidRuntime, "The runtime parameter of %s is not supported on this server; supported: provided, provided.al2, provided.al2023, python3.x, nodejs*.", rt)
}

// extraPath is the interpreter's directory when basePath does not hold it.
func extraPath(interp string) string {
	dir := filepath.Dir(interp)
	for _, d := range strings.Split(basePath, ":") {
		if d == dir {
			return ""
		}
	}
	return dir
}

// interpRoot is the installation prefix of an interpreter outside the
// system directories (/root/.pyenv/versions/3.11.7 for
// .../bin/python3), which a sandbox shows read-only; "" under /usr.
func interpRoot(interp string) string {
	for _, sys := range []string{"/usr/", "/bin/", "/sbin/", "/lib/", "/lib64/"} {
		if strings.HasPrefix(interp, sys) {
			return ""
		}
	}
	return filepath.Dir(filepath.Dir(interp))
}

// checkBootstrap reports why a provided runtime's bootstrap cannot run, in
// the words AWS uses, or nil.
func checkBootstrap(path string) error {
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &errInvalidEntrypoint{fmt.Sprintf("Couldn't find valid bootstrap(s): [%s]", path)}
	}
	if err != nil {
		return &errInvalidEntrypoint{err.Error()}
	}
	if !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0 {
		return &errInvalidEntrypoint{fmt.Sprintf("fork/exec %s: permission denied", path)}
	}
	return nil
}
