package iam

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"sync"
	"time"
)

// Session is a set of temporary credentials for a role, as lambdad hands
// them to function code (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
// AWS_SESSION_TOKEN).
type Session struct {
	AccessKeyID, SecretAccessKey, SessionToken string
	Expires                                    time.Time
}

type session struct {
	role, account, arn, userID string
	secret, token              string
	expires                    time.Time
}

// sessions are the temporary credentials issued and not yet expired.
type sessions struct {
	mu sync.Mutex // guards m
	m  map[string]*session
}

func newSessions() *sessions { return &sessions{m: map[string]*session{}} }

func (s *sessions) get(key string) (*session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[key]
	return v, ok
}

// Issue returns new temporary credentials for the role with the ARN, for
// the session name (AWS names a function's session after the function).
// It fails only when the role is not in the credentials in force.
func (g *Guard) Issue(roleARN, sessionName string) (Session, bool) {
	role, ok := g.creds.Load().roles[roleARN]
	if !ok {
		return Session{}, false
	}
	now := g.opts.Now()
	s := &session{role: role.ARN, account: role.Account,
		arn:    "arn:aws:sts::" + role.Account + ":assumed-role/" + role.Name + "/" + sessionName,
		userID: "AROA" + strings.ToUpper(hexDigest(role.ARN)[:17]) + ":" + sessionName,
		secret: random(30), token: random(96), expires: now.Add(g.opts.SessionTTL)}
	key := "ASIA" + strings.ToUpper(hex.EncodeToString([]byte(random(8))))[:16]
	g.sessions.mu.Lock()
	for k, old := range g.sessions.m {
		if now.After(old.expires) {
			delete(g.sessions.m, k)
		}
	}
	g.sessions.m[key] = s
	g.sessions.mu.Unlock()
	return Session{AccessKeyID: key, SecretAccessKey: s.secret, SessionToken: s.token, Expires: s.expires}, true
}

func random(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawStdEncoding.EncodeToString(b)[:n]
}
