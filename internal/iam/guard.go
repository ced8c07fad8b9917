// Package iam is lambdad's access control: the credentials file (accounts
// with their limits, principals with their access keys and identity
// policies, roles), authentication of every request by its SigV4
// signature (package sigv4), authorization of each operation on its
// resource ARN by IAM's rules (package policy) including resource-based
// policies across accounts, and the temporary credentials issued to
// function code for its execution role.
//
// A Guard holds the credentials in force; Replace swaps them whole (the
// SIGHUP reload), so a request sees one file or the other, never a mix.
// Secrets never leave this package except to sign or verify.
package iam

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/lambdad/lambdad/internal/account"
	"github.com/lambdad/lambdad/internal/awserr"
	"github.com/lambdad/lambdad/internal/policy"
	"github.com/lambdad/lambdad/internal/sigv4"
)

// ResourcePolicies gives the resource-based policy attached to a function
// (or one of its versions or aliases): nil when it has none.
type ResourcePolicies interface {
	ResourcePolicy(ctx context.Context, account, name, qualifier string) (*policy.Document, error)
}

// Options configure a Guard.
type Options struct {
	// Now is the clock signatures and sessions are checked against.
	Now func() time.Time
	// MaxBody bounds the body read to check a signature's payload hash;
	// it must be at least the largest body the API accepts.
	MaxBody int64
	Logger  *slog.Logger
	// SessionTTL is how long issued temporary credentials stay valid.
	SessionTTL time.Duration
}

// Guard authenticates and authorizes requests against the credentials in
// force.
type Guard struct {
	creds    atomic.Pointer[Credentials]
	opts     Options
	sessions *sessions
	console  consoleSessions
	// policies is set once, before serving (SetResourcePolicies).
	policies ResourcePolicies
}

// New returns a guard enforcing c.
func New(c *Credentials, o Options) *Guard {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxBody == 0 {
		o.MaxBody = 70 << 20
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.SessionTTL == 0 {
		o.SessionTTL = SessionTTL
	}
	g := &Guard{opts: o, sessions: newSessions()}
	g.creds.Store(c)
	return g
}

// SetResourcePolicies tells the guard where functions' resource-based
// policies are; it must be called before the guard serves.
func (g *Guard) SetResourcePolicies(p ResourcePolicies) { g.policies = p }

// Replace puts new credentials in force for every request from now on.
func (g *Guard) Replace(c *Credentials) { g.creds.Store(c) }

// Credentials are the credentials in force.
func (g *Guard) Credentials() *Credentials { return g.creds.Load() }

// Limits gives each account of the credentials in force its L and M; an
// account the file does not name has AWS's defaults.
func (g *Guard) Limits(id string) account.Limits {
	if l, ok := g.creds.Load().Limits(id); ok {
		return l
	}
	return account.Limits{Concurrency: DefaultConcurrencyLimit, MinUnreserved: DefaultMinUnreserved}
}

var errUnrecognized = awserr.New(awserr.UnrecognizedClient, "The security token included in the request is invalid.")

// identity is who holds a key: a principal of the file or a session of a
// role.
type identity struct {
	account, arn, userID, secret string
	// token is the session token a temporary key must come with.
	token string
	// policy is looked up again at authorization from the credentials in
	// force (a reload may have changed it); role is set for sessions.
	role string
}

func (g *Guard) lookup(key string) (identity, error) {
	c := g.creds.Load()
	if p, ok := c.keys[key]; ok {
		return identity{account: p.Account, arn: p.ARN, userID: p.UserID, secret: p.secret}, nil
	}
	if s, ok := g.sessions.get(key); ok {
		if g.opts.Now().After(s.expires) {
			return identity{}, awserr.New(awserr.ExpiredToken, "The security token included in the request is expired")
		}
		if _, ok := c.roles[s.role]; !ok {
			return identity{}, errUnrecognized
		}
		return identity{account: s.account, arn: s.arn, userID: s.userID, secret: s.secret, token: s.token, role: s.role}, nil
	}
	return identity{}, errUnrecognized
}

// Authenticate checks r's SigV4 signature and returns its caller. The
// cheap checks (form, key, clock) come before the body is read; the body
// is read at most once, bounded, and handed on unchanged (decoded, for an
// aws-chunked body).
func (g *Guard) Authenticate(r *http.Request) (account.Caller, error) {
	// The web console's requests carry its session's cookie instead of a
	// signature (see console.go).
	if r.Header.Get("Authorization") == "" && !r.URL.Query().Has("X-Amz-Signature") {
		if c, err := r.Cookie(SessionCookie); err == nil {
			return g.fromSession(r, c.Value)
		}
	}
	sig, err := sigv4.Parse(r)
	if err != nil {
		return account.Caller{}, err
	}
	id, err := g.lookup(sig.AccessKeyID)
	if err != nil {
		return account.Caller{}, err
	}
	if err := sig.CheckTime(g.opts.Now()); err != nil {
		return account.Caller{}, err
	}
	if id.token != "" && !constantEqual(sig.SecurityToken, id.token) {
		return account.Caller{}, errUnrecognized
	}
	if err := g.verify(r, sig, id.secret); err != nil {
		return account.Caller{}, err
	}
	return account.Caller{Account: id.account, AccessKeyID: sig.AccessKeyID, Principal: id.arn, UserID: id.userID,
		SourceIP: sourceIP(r).String()}, nil
}

func (g *Guard) verify(r *http.Request, sig *sigv4.Request, secret string) error {
	declared := r.Header.Get("X-Amz-Content-Sha256")
	if declared == "" && sig.Presigned {
		declared = r.URL.Query().Get("X-Amz-Content-Sha256")
	}
	switch declared {
	case sigv4.UnsignedPayload:
		return sig.Verify(r, secret, declared)
	case sigv4.StreamingPayload:
		if err := sig.Verify(r, secret, declared); err != nil {
			return err
		}
		body, err := sig.DecodeStreaming(r.Body, secret, g.opts.MaxBody)
		if err != nil {
			return err
		}
		r.Body, r.ContentLength = newPayload(body), int64(len(body))
		r.Header.Del("Content-Length")
		return nil
	}
	body, err := g.readBody(r)
	if err != nil {
		return err
	}
	hash := sigv4.HashPayload(body)
	if declared != "" && !strings.EqualFold(declared, hash) {
		return awserr.New(awserr.InvalidSignature, sigv4.MismatchMessage)
	}
	err = sig.Verify(r, secret, hash)
	if err != nil && sig.Presigned && declared == "" {
		// A presigned URL is usually signed without its body.
		err = sig.Verify(r, secret, sigv4.UnsignedPayload)
	}
	return err
}

// readBody reads the whole body (bounded) and puts it back for the
// handler.
func (g *Guard) readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	if r.ContentLength > g.opts.MaxBody {
		return nil, awserr.New(awserr.RequestTooLarge, "Request must be smaller than %d bytes", g.opts.MaxBody)
	}
	var body []byte
	var err error
	if r.ContentLength > 0 {
		body = make([]byte, r.ContentLength)
		_, err = io.ReadFull(r.Body, body)
	} else {
		body, err = io.ReadAll(io.LimitReader(r.Body, g.opts.MaxBody+1))
	}
	if err != nil {
		return nil, awserr.New(awserr.InvalidSignature, sigv4.MismatchMessage)
	}
	if int64(len(body)) > g.opts.MaxBody {
		return nil, awserr.New(awserr.RequestTooLarge, "Request must be smaller than %d bytes", g.opts.MaxBody)
	}
	r.Body = newPayload(body)
	return body, nil
}

// payload is a body read already, put back for the handler; the API takes
// it as it is (Payload) rather than reading a copy.
type payload struct {
	*bytes.Reader
	b []byte
}

func newPayload(b []byte) *payload { return &payload{bytes.NewReader(b), b} }

func (*payload) Close() error { return nil }

// Payload is what is left to read of the body.
func (p *payload) Payload() []byte { return p.b[len(p.b)-p.Len():] }

func sourceIP(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// constantEqual compares secrets in time independent of where they differ.
func constantEqual(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return hmac.Equal(ha[:], hb[:])
}

func hexDigest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
