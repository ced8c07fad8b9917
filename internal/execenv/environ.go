package execenv

import (
	"sort"
	"strconv"
	"strings"
	"time"
)

// reserved are the variables lambdad sets that a function's own
// Environment.Variables cannot replace: AWS's reserved keys, plus TMPDIR,
// which keeps each environment's scratch space private and is removed with
// it. LANG, TZ, PATH and LD_LIBRARY_PATH are defaults the function may
// override, as AWS allows.
var reserved = map[string]bool{
	"_HANDLER":                        true,
	"_X_AMZN_TRACE_ID":                true,
	"AWS_REGION":                      true,
	"AWS_DEFAULT_REGION":              true,
	"AWS_EXECUTION_ENV":               true,
	"AWS_LAMBDA_FUNCTION_NAME":        true,
	"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": true,
	"AWS_LAMBDA_FUNCTION_VERSION":     true,
	"AWS_LAMBDA_INITIALIZATION_TYPE":  true,
	"AWS_LAMBDA_LOG_GROUP_NAME":       true,
	"AWS_LAMBDA_LOG_STREAM_NAME":      true,
	"AWS_LAMBDA_RUNTIME_API":          true,
	"AWS_ACCESS_KEY":                  true,
	"AWS_ACCESS_KEY_ID":               true,
	"AWS_SECRET_ACCESS_KEY":           true,
	"AWS_SESSION_TOKEN":               true,
	"LAMBDA_TASK_ROOT":                true,
	"LAMBDA_RUNTIME_DIR":              true,
	"TMPDIR":                          true,
}

// envParams is what the function's environment is built from.
type envParams struct {
	spec       *Spec
	launch     launch
	runtimeAPI string
	lambdaAPI  string // where the server's API answers, when not its own address
	tmpDir     string
	logStream  string
}

// buildEnviron returns the complete environment of a function process:
// nothing of the server's own environment is inherited. Sorted, so a
// process's environment is reproducible.
func buildEnviron(p envParams) []string {
	s := p.spec
	defaults := map[string]string{
		"TZ":              ":UTC",
		"LANG":            "en_US.UTF-8",
		"PATH":            basePath,
		"LD_LIBRARY_PATH": p.launch.runtimeDir + ":" + s.CodeDir + ":" + s.CodeDir + "/lib",
	}
	if p.launch.extraPath != "" {
		defaults["PATH"] = p.launch.extraPath + ":" + basePath
	}
	layerPaths(s, defaults)
	fixed := map[string]string{
		"AWS_LAMBDA_RUNTIME_API":          p.runtimeAPI,
		"_HANDLER":                        s.Handler,
		"AWS_LAMBDA_FUNCTION_NAME":        s.Function,
		"AWS_LAMBDA_FUNCTION_VERSION":     s.Version,
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": strconv.Itoa(s.MemoryMB),
		"AWS_LAMBDA_LOG_GROUP_NAME":       "/aws/lambda/" + s.Function,
		"AWS_LAMBDA_LOG_STREAM_NAME":      p.logStream,
		"AWS_REGION":                      s.Region,
		"AWS_DEFAULT_REGION":              s.Region,
		"AWS_LAMBDA_INITIALIZATION_TYPE":  s.InitType,
		"LAMBDA_TASK_ROOT":                s.CodeDir,
		"LAMBDA_RUNTIME_DIR":              p.launch.runtimeDir,
		"TMPDIR":                          p.tmpDir,
	}
	if s.Credentials != nil {
		f, d := s.Credentials.Environ(s.Account, s.Role, s.Function)
		for k, v := range f {
			fixed[k] = v
		}
		for k, v := range d {
			defaults[k] = v
		}
	}
	if p.lambdaAPI != "" {
		defaults["AWS_ENDPOINT_URL_LAMBDA"] = p.lambdaAPI
	}
	// AWS defines AWS_EXECUTION_ENV for managed runtimes only, not for the
	// OS-only provided family.
	if !p.launch.provided {
		fixed["AWS_EXECUTION_ENV"] = "AWS_Lambda_" + s.Runtime
	}
	out := make([]string, 0, len(defaults)+len(fixed)+len(s.Env))
	for k, v := range s.Env {
		if reserved[k] || !validEnvName(k) || strings.IndexByte(v, 0) >= 0 {
			continue
		}
		if _, isDefault := defaults[k]; isDefault {
			defaults[k] = v
			continue
		}
		out = append(out, k+"="+v)
	}
	for k, v := range defaults {
		out = append(out, k+"="+v)
	}
	for k, v := range fixed {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// validEnvName accepts what AWS accepts for a variable name:
// [a-zA-Z]([a-zA-Z0-9_])+.
func validEnvName(k string) bool {
	if len(k) < 2 {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '_'):
		default:
			return false
		}
	}
	return true
}

// logStreamName is AWS's stream name for an environment:
// YYYY/MM/DD/[version]<32 hex digits>.
func logStreamName(now time.Time, version, id string) string {
	return now.UTC().Format("2006/01/02") + "/[" + version + "]" + id
}
