package api

import (
	"net/http"
	"strings"

	"github.com/lambdad/lambdad/internal/account"
)

// Authenticator establishes who a request is from, before any handler
// runs; the handlers and everything below them know the caller only as the
// account.Caller it returns, never from the request itself. An error is
// the answer to the request (an AWS-shaped 403, say).
type Authenticator interface {
	Authenticate(r *http.Request) (account.Caller, error)
}

// OneAccount is the authenticator of a server without access control:
// every request, signed with any credentials or none, acts in Account.
type OneAccount struct{ Account string }

// Authenticate returns the caller in o.Account, with the access key the
// request names for the audit trail.
func (o OneAccount) Authenticate(r *http.Request) (account.Caller, error) {
	return account.Caller{Account: o.Account, AccessKeyID: AccessKeyID(r)}, nil
}

// AccessKeyID is the access key a SigV4-signed request names; "" for
// unsigned requests.
func AccessKeyID(r *http.Request) string {
	auth := r.Header.Get("Authorization")
	_, cred, ok := strings.Cut(auth, "Credential=")
	if !ok {
		return ""
	}
	key, _, _ := strings.Cut(cred, "/")
	return key
}
