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
	"hash"
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
	return string(s.appendScope(make([]byte, 0, 64)))
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
	for more := true; more; {
		var part string
		part, rest, more = strings.Cut(rest, ",")
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
	var p [5]string
	rest, n := c, 0
	for ; n < len(p) && rest != ""; n++ {
		p[n], rest, _ = strings.Cut(rest, "/")
	}
	if n != 5 || rest != "" || strings.HasSuffix(c, "/") || p[0] == "" || p[4] != "aws4_request" || len(p[1]) != 8 || p[2] == "" || p[3] == "" {
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
//
// The canonical request and the string to sign are built in one pooled
// buffer and the HMAC reuses the keyed state of the signing key, so a
// verification allocates nothing once the key is known.
func (s *Request) Verify(r *http.Request, secret, payloadHash string) error {
	got, ok := decodeSignature(s.Signature)
	if !ok {
		return mismatch()
	}
	bp := bufs.Get().(*[]byte)
	b := appendCanonical((*bp)[:0], r, s.SignedHeaders, payloadHash, s.Presigned)
	var want [sha256.Size]byte
	sum := sha256.Sum256(b)
	b = s.appendStringToSign(b[:0], sum[:])
	key := signingKey(secret, s.Date, s.Region, s.Service)
	key.mac(want[:0], b)
	*bp = b
	bufs.Put(bp)
	if !hmac.Equal(got[:], want[:]) {
		return mismatch()
	}
	return nil
}

// decodeSignature reads a hex HMAC-SHA256.
func decodeSignature(sig string) (out [sha256.Size]byte, ok bool) {
	if len(sig) != 2*sha256.Size {
		return out, false
	}
	for i := range out {
		hi, ok1 := fromHex(sig[2*i])
		lo, ok2 := fromHex(sig[2*i+1])
		if !ok1 || !ok2 {
			return out, false
		}
		out[i] = hi<<4 | lo
	}
	return out, true
}

func fromHex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// bufs are the buffers canonical requests are built in.
var bufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// appendStringToSign appends the string to sign of a canonical request
// whose SHA-256 is sum.
func (s *Request) appendStringToSign(b, sum []byte) []byte {
	b = append(b, Algorithm+"\n"...)
	b = append(b, s.AmzDate...)
	b = append(b, '\n')
	b = s.appendScope(b)
	b = append(b, '\n')
	return hex.AppendEncode(b, sum)
}

func (s *Request) appendScope(b []byte) []byte {
	b = append(b, s.Date...)
	b = append(b, '/')
	b = append(b, s.Region...)
	b = append(b, '/')
	b = append(b, s.Service...)
	return append(b, "/aws4_request"...)
}

func (s *Request) stringToSign(canonical string) string {
	sum := sha256.Sum256([]byte(canonical))
	return string(s.appendStringToSign(nil, sum[:]))
}

func (s *Request) sign(secret, stringToSign string) []byte {
	return signingKey(secret, s.Date, s.Region, s.Service).mac(nil, []byte(stringToSign))
}

// CanonicalRequest is AWS's canonical form of r: method, URI (each segment
// encoded again, as every service but S3 signs it), query (sorted, without
// X-Amz-Signature when presigned), the signed headers and the payload hash.
func CanonicalRequest(r *http.Request, signedHeaders []string, payloadHash string, presigned bool) string {
	return string(appendCanonical(make([]byte, 0, 512), r, signedHeaders, payloadHash, presigned))
}

func appendCanonical(b []byte, r *http.Request, signedHeaders []string, payloadHash string, presigned bool) []byte {
	b = append(b, r.Method...)
	b = append(b, '\n')
	path := r.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	b = appendEscaped(b, path, false)
	b = append(b, '\n')
	b = appendCanonicalQuery(b, r.URL.RawQuery, presigned)
	b = append(b, '\n')
	for _, h := range signedHeaders {
		b = append(b, h...)
		b = append(b, ':')
		b = appendHeaderValue(b, r, h)
		b = append(b, '\n')
	}
	b = append(b, '\n')
	for i, h := range signedHeaders {
		if i > 0 {
			b = append(b, ';')
		}
		b = append(b, h...)
	}
	b = append(b, '\n')
	return append(b, payloadHash...)
}

// canonicalKeys are the header names the SDKs sign, in net/http's
// canonical form, so that looking them up does not allocate.
var canonicalKeys = map[string]string{
	"content-type": "Content-Type", "content-encoding": "Content-Encoding", "content-md5": "Content-Md5",
	"x-amz-date": "X-Amz-Date", "x-amz-content-sha256": "X-Amz-Content-Sha256",
	"x-amz-security-token": "X-Amz-Security-Token", "x-amz-invocation-type": "X-Amz-Invocation-Type",
	"x-amz-log-type": "X-Amz-Log-Type", "x-amz-client-context": "X-Amz-Client-Context",
	"x-amz-user-agent": "X-Amz-User-Agent", "x-amz-target": "X-Amz-Target",
	"x-amz-decoded-content-length": "X-Amz-Decoded-Content-Length", "amz-sdk-invocation-id": "Amz-Sdk-Invocation-Id",
	"amz-sdk-request": "Amz-Sdk-Request", "user-agent": "User-Agent", "accept": "Accept", "date": "Date",
}

// appendHeaderValue appends a signed header's canonical value: its values
// joined by commas, each trimmed with inner runs of spaces folded to one.
func appendHeaderValue(b []byte, r *http.Request, name string) []byte {
	var vals []string
	switch name {
	case "host":
		return appendFolded(b, r.Host)
	case "content-length":
		// net/http keeps the header; a request built in-process may
		// carry only the field.
		vals = r.Header["Content-Length"]
		if len(vals) == 0 && r.ContentLength >= 0 {
			return strconv.AppendInt(b, r.ContentLength, 10)
		}
	default:
		if k, ok := canonicalKeys[name]; ok {
			vals = r.Header[k]
		} else {
			vals = r.Header.Values(name)
		}
	}
	for i, v := range vals {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendFolded(b, v)
	}
	return b
}

// appendFolded appends v trimmed, with inner runs of white space folded
// to one space.
func appendFolded(b []byte, v string) []byte {
	if !needsFolding(v) {
		return append(b, v...)
	}
	for i, f := range strings.Fields(v) {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, f...)
	}
	return b
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

func appendCanonicalQuery(b []byte, raw string, presigned bool) []byte {
	if raw == "" {
		return b
	}
	type kv struct{ k, v string }
	var pairs []kv
	for part := range strings.SplitSeq(raw, "&") {
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
	for i, p := range pairs {
		if i > 0 {
			b = append(b, '&')
		}
		b = append(b, p.k...)
		b = append(b, '=')
		b = append(b, p.v...)
	}
	return b
}

// escape is AWS's URI encoding: everything but unreserved characters
// (and '/' in a path) as %XX with upper-case hex.
func escape(s string, encodeSlash bool) string {
	for i := 0; i < len(s); i++ {
		if !unreserved(s[i], encodeSlash) {
			return string(appendEscaped(make([]byte, 0, len(s)+16), s, encodeSlash))
		}
	}
	return s
}

func unreserved(c byte, encodeSlash bool) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' || c == '/' && !encodeSlash
}

func appendEscaped(b []byte, s string, encodeSlash bool) []byte {
	const hexDigits = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c, encodeSlash) {
			b = append(b, c)
			continue
		}
		b = append(b, '%', hexDigits[c>>4], hexDigits[c&15])
	}
	return b
}

type keyID struct{ secret, date, region, service string }

// key is a derived signing key with a pool of HMAC states keyed by it, so
// that signing with it again neither derives the key nor allocates.
type key struct {
	k    []byte
	macs sync.Pool
}

// mac appends HMAC-SHA256(k, data) to b.
func (k *key) mac(b, data []byte) []byte {
	h := k.macs.Get().(hash.Hash)
	h.Reset()
	h.Write(data)
	b = h.Sum(b)
	k.macs.Put(h)
	return b
}

// keys caches derived signing keys: one per secret, day, region and
// service, so a request costs one HMAC, not five. Bounded by clearing it
// when it grows large.
var keys struct {
	sync.RWMutex
	m map[keyID]*key
}

// SigningKey derives the key for secret and the scope's date, region and
// service.
func SigningKey(secret, date, region, service string) []byte {
	return signingKey(secret, date, region, service).k
}

func signingKey(secret, date, region, service string) *key {
	id := keyID{secret, date, region, service}
	keys.RLock()
	k, ok := keys.m[id]
	keys.RUnlock()
	if ok {
		return k
	}
	d := hmacSHA256([]byte("AWS4"+secret), date)
	d = hmacSHA256(d, region)
	d = hmacSHA256(d, service)
	d = hmacSHA256(d, "aws4_request")
	k = &key{k: d}
	k.macs.New = func() any { return hmac.New(sha256.New, d) }
	keys.Lock()
	if keys.m == nil || len(keys.m) > 4096 {
		keys.m = make(map[keyID]*key)
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
