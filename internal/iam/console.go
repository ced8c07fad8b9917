package iam

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/lambdad/lambdad/internal/account"
	"github.com/lambdad/lambdad/internal/awserr"
)

// The web console's sign-ins. A browser cannot sign requests with SigV4
// without holding the secret in the page, so the console trades an access
// key and its secret, checked once, for a session: an HttpOnly,
// SameSite=Strict cookie the page's script cannot read. A request that
// carries the cookie (and no signature) acts as the key's principal, by
// the credentials in force at that moment (a key removed by a reload ends
// its sessions). A request that changes something must also carry the
// session's CSRF token in CSRFHeader, which only the console's own page
// is given: a cookie alone, which the browser would send for another
// site's form too, changes nothing.

// SessionCookie is the console session's cookie.
const SessionCookie = "lambdad_session"

// CSRFHeader carries a console session's CSRF token.
const CSRFHeader = "X-Lambdad-Csrf-Token"

// ConsoleSessionTTL is how long a console sign-in lasts.
const ConsoleSessionTTL = 12 * time.Hour

type consoleSession struct {
	key, csrf string
	expires   time.Time
}

// consoleSessions holds the live sign-ins by cookie value.
type consoleSessions struct{ m sync.Map }

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// SignIn serves POST /lambdad/console/signin with the JSON body
// {"accessKeyId": ..., "secretAccessKey": ...}: a key of the credentials
// in force (not a temporary one) and its secret start a session.
func (g *Guard) SignIn(w http.ResponseWriter, r *http.Request) {
	var in struct{ AccessKeyID, SecretAccessKey string }
	if r.Header.Get("Content-Type") != "application/json" {
		// A cross-site form cannot send JSON without asking first, which
		// this server never allows.
		writeError(w, awserr.New(awserr.InvalidRequestContent, "Sign in with a JSON body: {\"accessKeyId\": ..., \"secretAccessKey\": ...}"))
		return
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&in); err != nil {
		writeError(w, awserr.New(awserr.InvalidRequestContent, "Sign in with a JSON body: {\"accessKeyId\": ..., \"secretAccessKey\": ...}"))
		return
	}
	id, err := g.lookup(in.AccessKeyID)
	if err != nil || id.token != "" || !constantEqual(in.SecretAccessKey, id.secret) {
		g.opts.Logger.Warn("console sign-in refused", "access_key_id", in.AccessKeyID, "source_ip", sourceIP(r).String())
		writeError(w, errUnrecognized)
		return
	}
	token := randomHex(32)
	s := &consoleSession{key: in.AccessKeyID, csrf: randomHex(16), expires: g.opts.Now().Add(ConsoleSessionTTL)}
	g.console.m.Store(token, s)
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: token, Path: "/", HttpOnly: true, Secure: r.TLS != nil,
		SameSite: http.SameSiteStrictMode, Expires: s.expires})
	g.opts.Logger.Info("console sign-in", "principal", id.arn, "source_ip", sourceIP(r).String())
	writeJSON(w, http.StatusOK, map[string]string{"principal": id.arn, "account": id.account})
}

// SignOut serves POST /lambdad/console/signout: the session ends.
func (g *Guard) SignOut(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(SessionCookie); err == nil {
		if s, ok := g.session(c.Value); ok && constantEqual(r.Header.Get(CSRFHeader), s.csrf) {
			g.console.m.Delete(c.Value)
		}
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	w.WriteHeader(http.StatusNoContent)
}

// session is the live session of a cookie value.
func (g *Guard) session(token string) (*consoleSession, bool) {
	v, ok := g.console.m.Load(token)
	if !ok {
		return nil, false
	}
	s := v.(*consoleSession)
	if g.opts.Now().After(s.expires) {
		g.console.m.Delete(token)
		return nil, false
	}
	return s, true
}

// fromSession authenticates a request by its console session.
func (g *Guard) fromSession(r *http.Request, token string) (account.Caller, error) {
	s, ok := g.session(token)
	if !ok {
		return account.Caller{}, awserr.New(awserr.AccessDenied, "The console session has ended; sign in again.")
	}
	id, err := g.lookup(s.key)
	if err != nil {
		g.console.m.Delete(token)
		return account.Caller{}, err
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
	default:
		if !constantEqual(r.Header.Get(CSRFHeader), s.csrf) {
			return account.Caller{}, awserr.New(awserr.AccessDenied, "The request lacks the console session's CSRF token (%s).", CSRFHeader)
		}
	}
	return account.Caller{Account: id.account, AccessKeyID: s.key, Principal: id.arn, UserID: id.userID, SourceIP: sourceIP(r).String()}, nil
}

// ConsolePrincipal is who r's console session is signed in as.
func (g *Guard) ConsolePrincipal(r *http.Request) (acct, principal string, ok bool) {
	c, err := r.Cookie(SessionCookie)
	if err != nil {
		return "", "", false
	}
	s, ok := g.session(c.Value)
	if !ok {
		return "", "", false
	}
	id, err := g.lookup(s.key)
	if err != nil {
		return "", "", false
	}
	return id.account, id.arn, true
}

// ConsoleCSRF is the CSRF token of r's console session, "" without one.
func (g *Guard) ConsoleCSRF(r *http.Request) string {
	c, err := r.Cookie(SessionCookie)
	if err != nil {
		return ""
	}
	if s, ok := g.session(c.Value); ok {
		return s.csrf
	}
	return ""
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

// writeError answers with an AWS-shaped error.
func writeError(w http.ResponseWriter, err error) {
	e, _ := awserr.As(err)
	w.Header().Set("X-Amzn-ErrorType", string(e.Code))
	writeJSON(w, e.Status(), map[string]string{"message": e.Message})
}
