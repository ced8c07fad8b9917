// Package sigv4 verifies AWS Signature Version 4 on incoming requests, as
// AWS's front ends do: the Authorization header and presigned query forms,
// AWS's exact canonical request (double-encoded path, sorted query, the
// signed headers trimmed and folded), UNSIGNED-PAYLOAD, and the
// STREAMING-AWS4-HMAC-SHA256-PAYLOAD chunked body with its per-chunk
// signatures. It knows nothing of who holds a key: the caller looks the
// secret up by the access key the request names. Every refusal is an
// AWS-shaped error (package awserr).
package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lambdad/lambdad/internal/awserr"
)

// The algorithm and payload markers of SigV4.
const (
	Algorithm        = "AWS4-HMAC-SHA256"
	UnsignedPayload  = "UNSIGNED-PAYLOAD"
	StreamingPayload = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	timeFormat       = "20060102T150405Z"
	// MaxSkew is how far a request's X-Amz-Date may be from the server's
	// clock, either way, as AWS allows.
	MaxSkew = 5 * time.Minute
	// maxPresignExpiry is the longest X-Amz-Expires AWS accepts (7 days).
	maxPresignExpiry = 7 * 24 * time.Hour
)

// EmptyHash is the hex SHA-256 of an empty payload.
var EmptyHash = hexHash(nil)

// Request is the signature a request carries, parsed but not yet checked.
type Request struct {
	AccessKeyID string
	// Scope parts: the date (YYYYMMDD), region and service signed for.
	Date, Region, Service string
	SignedHeaders         []string
	Signature             string
	// Time is X-Amz-Date (or Date); AmzDate its text as signed.
	Time    time.Time
	AmzDate string
	// SecurityToken is X-Amz-Security-Token, "" when none was sent.
	SecurityToken string
	// Presigned is true for the query form, with its X-Amz-Expires.
	Presigned bool
	Expires   time.Duration
}

// Scope is the credential scope: date/region/service/aws4_request.
func (s *Request) Scope() string {
	return s.Date + "/" + s.Region + "/" + s.Service + "/aws4_request"
}

// Errors of AWS's front end, with AWS's wording.
func missingToken() error {
	return awserr.NoType(awserr.MissingAuthenticationToken, "Missing Authentication Token")
}

func incomplete(format string, args ...any) error {
	return awserr.New(awserr.IncompleteSignature, format, args...)
}

// MismatchMessage is AWS's message for a signature that does not match.
const MismatchMessage = "The request signature we calculated does not match the signature you provided. " +
	"Check your AWS Secret Access Key and signing method. Consult the service documentation for details."

func mismatch() error { return awserr.New(awserr.InvalidSignature, MismatchMessage) }

// Parse reads the signature of r from its Authorization header or, failing
// that, its presigned query. A request with neither is refused as AWS
// refuses an unsigned request (403 MissingAuthenticationTokenException).
func Parse(r *http.Request) (*Request, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		return ParseHeader(h, r.Header.Get("X-Amz-Date"), r.Header.Get("Date"), r.Header.Get("X-Amz-Security-Token"))
	}
	q := r.URL.Query()
	if q.Get("X-Amz-Algorithm") != "" || q.Get("X-Amz-Signature") != "" {
		return parseQuery(q)
	}
	return nil, missingToken()
}

// ParseHeader parses an Authorization header value of the form
//
//	AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/lambda/aws4_request, SignedHeaders=host;x-amz-date, Signature=hex
//
// with the request's X-Amz-Date (or Date) and security token.
func ParseHeader(h, amzDate, date, token string) (*Request, error) {
	alg, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
	if alg != Algorithm {
		return nil, incomplete("Unsupported AWS 'algorithm': '%s'", clip(alg))
	}
	s := &Request{SecurityToken: token}
	var cred, signed string
	for _, part := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, incomplete("Authorization header requires each component to be of the form key=value. Authorization=%s", clip(h))
		}
		switch k {
		case "Credential":
			cred = v
		case "SignedHeaders":
			signed = v
		case "Signature":
			s.Signature = v
		}
	}
	for _, m := range []struct{ name, v string }{{"Credential", cred}, {"Signature", s.Signature}, {"SignedHeaders", signed}} {
		if m.v == "" {
			return nil, incomplete("Authorization header requires '%s' parameter. Authorization=%s", m.name, clip(h))
		}
	}
	if err := s.credential(cred); err != nil {
		return nil, err
	}
	s.SignedHeaders = strings.Split(signed, ";")
	if amzDate == "" {
		amzDate = date
	}
	if amzDate == "" {
		return nil, incomplete("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=%s", clip(h))
	}
	if err := s.setTime(amzDate); err != nil {
		return nil, err
	}
	return s, nil
}

func parseQuery(q url.Values) (*Request, error) {
	if q.Get("X-Amz-Algorithm") != Algorithm {
		return nil, incomplete("Unsupported AWS 'algorithm': '%s'", clip(q.Get("X-Amz-Algorithm")))
	}
	for _, k := range []string{"X-Amz-Credential", "X-Amz-Date", "X-Amz-SignedHeaders", "X-Amz-Signature", "X-Amz-Expires"} {
		if q.Get(k) == "" {
			return nil, incomplete("AWS query-string parameters must include '%s'. Re-examine the query-string parameters.", k)
		}
	}
	s := &Request{Presigned: true, Signature: q.Get("X-Amz-Signature"), SecurityToken: q.Get("X-Amz-Security-Token"),
		SignedHeaders: strings.Split(q.Get("X-Amz-SignedHeaders"), ";")}
	if err := s.credential(q.Get("X-Amz-Credential")); err != nil {
		return nil, err
	}
	if err := s.setTime(q.Get("X-Amz-Date")); err != nil {
		return nil, err
	}
	secs, err := strconv.Atoi(q.Get("X-Amz-Expires"))
	if err != nil || secs < 0 || time.Duration(secs)*time.Second > maxPresignExpiry {
		return nil, incomplete("X-Amz-Expires must be a whole number of seconds from 0 to 604800")
	}
	s.Expires = time.Duration(secs) * time.Second
	return s, nil
}

// credential splits AKID/date/region/service/aws4_request.
func (s *Request) credential(c string) error {
	p := strings.Split(c, "/")
	if len(p) != 5 || p[0] == "" || p[4] != "aws4_request" || len(p[1]) != 8 || p[2] == "" || p[3] == "" {
		return incomplete("Credential should be scoped to a valid region, not '%s'. ", clip(c))
	}
	s.AccessKeyID, s.Date, s.Region, s.Service = p[0], p[1], p[2], p[3]
	return nil
}

func (s *Request) setTime(v string) error {
	t, err := time.Parse(timeFormat, v)
	if err != nil {
		// AWS also accepts an RFC 1123 Date header; it is then what was signed.
		if t, err = http.ParseTime(v); err != nil {
			return incomplete("Date must be in ISO-8601 'basic format'. Got '%s'. See http://en.wikipedia.org/wiki/ISO_8601", clip(v))
		}
	}
	s.Time, s.AmzDate = t.UTC(), v
	return nil
}

// CheckTime refuses a request signed too far from now (beyond MaxSkew) or,
// presigned, past its expiry, with AWS's messages.
func (s *Request) CheckTime(now time.Time) error {
	now = now.UTC()
	f := func(t time.Time) string { return t.Format(timeFormat) }
	if s.Presigned {
		if now.After(s.Time.Add(s.Expires)) {
			return awserr.New(awserr.InvalidSignature, "Signature expired: %s is now earlier than %s",
				f(s.Time.Add(s.Expires)), f(now))
		}
		if s.Time.After(now.Add(MaxSkew)) {
			return awserr.New(awserr.InvalidSignature, "Signature not yet current: %s is still later than %s (%s + 5 min.)",
				f(s.Time), f(now.Add(MaxSkew)), f(now))
		}
		return nil
	}
	if s.Time.Before(now.Add(-MaxSkew)) {
		return awserr.New(awserr.InvalidSignature, "Signature expired: %s is now earlier than %s (%s - 5 min.)",
			f(s.Time), f(now.Add(-MaxSkew)), f(now))
	}
	if s.Time.After(now.Add(MaxSkew)) {
		return awserr.New(awserr.InvalidSignature, "Signature not yet current: %s is still later than %s (%s + 5 min.)",
			f(s.Time), f(now.Add(MaxSkew)), f(now))
	}
	return nil
}

// Verify checks the signature against secret for r, whose payload hashes
// to payloadHash (hex SHA-256, UNSIGNED-PAYLOAD or StreamingPayload, as
// the request declared it). The comparison takes constant time.
func (s *Request) Verify(r *http.Request, secret, payloadHash string) error {
	want := s.sign(secret, s.stringToSign(CanonicalRequest(r, s.SignedHeaders, payloadHash, s.Presigned)))
	got, err := hex.DecodeString(s.Signature)
	if err != nil || !hmac.Equal(got, want) {
		return mismatch()
	}
	return nil
}

func (s *Request) stringToSign(canonical string) string {
	return Algorithm + "\n" + s.AmzDate + "\n" + s.Scope() + "\n" + hexHash([]byte(canonical))
}

func (s *Request) sign(secret, stringToSign string) []byte {
	return hmacSHA256(SigningKey(secret, s.Date, s.Region, s.Service), stringToSign)
}

// CanonicalRequest is AWS's canonical form of r: method, URI (each segment
// encoded again, as every service but S3 signs it), query (sorted, without
// X-Amz-Signature when presigned), the signed headers and the payload hash.
func CanonicalRequest(r *http.Request, signedHeaders []string, payloadHash string, presigned bool) string {
	var b strings.Builder
	b.Grow(512)
	b.WriteString(r.Method)
	b.WriteByte('\n')
	path := r.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	b.WriteString(escape(path, false))
	b.WriteByte('\n')
	b.WriteString(canonicalQuery(r.URL.RawQuery, presigned))
	b.WriteByte('\n')
	for _, h := range signedHeaders {
		b.WriteString(h)
		b.WriteByte(':')
		b.WriteString(headerValue(r, h))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(signedHeaders, ";"))
	b.WriteByte('\n')
	b.WriteString(payloadHash)
	return b.String()
}

// headerValue is a signed header's canonical value: its values joined by
// commas, each trimmed with inner runs of spaces folded to one.
func headerValue(r *http.Request, name string) string {
	var vals []string
	switch name {
	case "host":
		vals = []string{r.Host}
	case "content-length":
		// net/http keeps the header; a request built in-process may
		// carry only the field.
		vals = r.Header.Values("Content-Length")
		if len(vals) == 0 && r.ContentLength >= 0 {
			vals = []string{strconv.FormatInt(r.ContentLength, 10)}
		}
	default:
		vals = r.Header.Values(name)
	}
	if len(vals) == 1 && !needsFolding(vals[0]) {
		return vals[0]
	}
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = strings.Join(strings.Fields(v), " ")
	}
	return strings.Join(out, ",")
}

// needsFolding reports whether a header value has space to trim or fold.
func needsFolding(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c == '\t' || c == '\n' || c == '\r' || c == ' ' && (i == 0 || i == len(v)-1 || v[i+1] == ' ') {
			return true
		}
	}
	return false
}

func canonicalQuery(raw string, presigned bool) string {
	if raw == "" {
		return ""
	}
	type kv struct{ k, v string }
	var pairs []kv
	for _, part := range strings.Split(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		uk, err1 := url.QueryUnescape(k)
		uv, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			uk, uv = k, v
		}
		if presigned && uk == "X-Amz-Signature" {
			continue
		}
		pairs = append(pairs, kv{escape(uk, true), escape(uv, true)})
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].k != pairs[j].k {
			return pairs[i].k < pairs[j].k
		}
		return pairs[i].v < pairs[j].v
	})
	var b strings.Builder
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.k)
		b.WriteByte('=')
		b.WriteString(p.v)
	}
	return b.String()
}

// escape is AWS's URI encoding: everything but unreserved characters
// (and '/' in a path) as %XX with upper-case hex.
func escape(s string, encodeSlash bool) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' || c == '/' && !encodeSlash {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

type keyID struct{ secret, date, region, service string }

// keys caches derived signing keys: one per secret and day, so a request
// costs two HMACs, not six. Bounded by clearing it when it grows large.
var keys struct {
	sync.Mutex
	m map[keyID][]byte
}

// SigningKey derives the key for secret and the scope's date, region and
// service.
func SigningKey(secret, date, region, service string) []byte {
	id := keyID{secret, date, region, service}
	keys.Lock()
	k, ok := keys.m[id]
	keys.Unlock()
	if ok {
		return k
	}
	k = hmacSHA256([]byte("AWS4"+secret), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, service)
	k = hmacSHA256(k, "aws4_request")
	keys.Lock()
	if keys.m == nil || len(keys.m) > 4096 {
		keys.m = make(map[keyID][]byte)
	}
	keys.m[id] = k
	keys.Unlock()
	return k
}

func hmacSHA256(key []byte, data string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(data))
	return h.Sum(nil)
}

func hexHash(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// HashPayload is the hex SHA-256 of a body.
func HashPayload(b []byte) string { return hexHash(b) }

// clip keeps echoed input short in messages.
func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}

func hexString(b []byte) string { return hex.EncodeToString(b) }

func sortStrings(s []string) { sort.Strings(s) }
