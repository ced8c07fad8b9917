package iam

import (
	"log/slog"
	"time"
)

// FunctionCredentials gives each new execution environment the
// credentials of its function's execution role, as AWS does: temporary
// credentials the guard issues (and then accepts, scoped to the role's
// policy), or, on a server without access control (Guard nil),
// placeholders that server accepts like any others. Every environment
// also learns where this server is (AWS_ENDPOINT_URL_LAMBDA, which the
// SDKs read), unless the function sets it itself.
type FunctionCredentials struct {
	Guard    *Guard
	Endpoint string
	Logger   *slog.Logger
}

// Placeholder credentials of a server without access control.
const (
	PlaceholderAccessKeyID = "ASIALAMBDADLOCAL0000"
	PlaceholderSecret      = "lambdad-placeholder-secret"
	PlaceholderToken       = "lambdad-placeholder-session-token"
)

// Environ implements execenv.CredentialSource.
func (f *FunctionCredentials) Environ(account, role, function string) (fixed, defaults map[string]string) {
	defaults = map[string]string{"AWS_ENDPOINT_URL_LAMBDA": f.Endpoint}
	if f.Guard == nil {
		return map[string]string{"AWS_ACCESS_KEY_ID": PlaceholderAccessKeyID,
			"AWS_SECRET_ACCESS_KEY": PlaceholderSecret, "AWS_SESSION_TOKEN": PlaceholderToken}, defaults
	}
	s, ok := f.Guard.Issue(role, function)
	if !ok {
		// AWS would not run a function whose role it cannot assume; here
		// the function runs without credentials and its calls are refused.
		if f.Logger != nil {
			f.Logger.Warn("the function's role is not in the credentials file; it runs without credentials",
				"account", account, "function", function, "role", role)
		}
		return nil, defaults
	}
	return map[string]string{"AWS_ACCESS_KEY_ID": s.AccessKeyID, "AWS_SECRET_ACCESS_KEY": s.SecretAccessKey,
		"AWS_SESSION_TOKEN": s.SessionToken}, defaults
}

// SessionTTL is how long the temporary credentials of an environment last
// by default: the longest session AWS allows a role (12 hours); an
// environment that lives longer must be replaced (see README).
const SessionTTL = 12 * time.Hour
