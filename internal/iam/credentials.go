package iam

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"github.com/lambdad/lambdad/internal/account"
	"github.com/lambdad/lambdad/internal/policy"
)

// Credentials are a loaded credentials file: the accounts and their
// limits, the principals (one per access key) and the roles functions run
// as. They are never changed once loaded; a reload builds new ones.
type Credentials struct {
	// File is the path the credentials came from, for messages.
	File     string
	accounts map[string]account.Limits
	keys     map[string]*Principal
	roles    map[string]*Role
}

// Principal is an IAM user with its access key.
type Principal struct {
	AccessKeyID string
	secret      string
	Account     string
	User        string
	// ARN is arn:aws:iam::<account>:user/<user>.
	ARN string
	// UserID is the unique id STS reports for the user.
	UserID string
	Policy *policy.Document
}

// Role is a role functions may run as.
type Role struct {
	ARN     string
	Account string
	Name    string
	Policy  *policy.Document
}

// Limits returns the account's L and M, and whether the file names the
// account.
func (c *Credentials) Limits(id string) (account.Limits, bool) {
	l, ok := c.accounts[id]
	return l, ok
}

// Accounts lists the accounts of the file.
func (c *Credentials) Accounts() []string {
	out := make([]string, 0, len(c.accounts))
	for id := range c.accounts {
		out = append(out, id)
	}
	return out
}

// Role returns the role with the ARN, if the file names it.
func (c *Credentials) Role(arn string) (*Role, bool) {
	r, ok := c.roles[arn]
	return r, ok
}

// Principal returns the principal that holds the access key.
func (c *Credentials) Principal(accessKeyID string) (*Principal, bool) {
	p, ok := c.keys[accessKeyID]
	return p, ok
}

// The file's JSON.
type fileAccount struct {
	ID               string `json:"id"`
	ConcurrencyLimit *int   `json:"concurrencyLimit"`
	MinUnreserved    *int   `json:"minUnreserved"`
}

type filePrincipal struct {
	AccessKeyID     string          `json:"accessKeyId"`
	SecretAccessKey string          `json:"secretAccessKey"`
	Account         string          `json:"account"`
	User            string          `json:"user"`
	Policy          json.RawMessage `json:"policy"`
}

type fileRole struct {
	ARN    string          `json:"arn"`
	Policy json.RawMessage `json:"policy"`
}

// Defaults for an account entry that gives no limits: AWS's.
const (
	DefaultConcurrencyLimit = 1000
	DefaultMinUnreserved    = 100
	// maxConcurrency is the largest L admission can count.
	maxConcurrency = 1<<20 - 1
)

var (
	accountID  = regexp.MustCompile(`^[0-9]{12}$`)
	accessKey  = regexp.MustCompile(`^[A-Z0-9]{16,128}$`)
	userName   = regexp.MustCompile(`^[\w+=,.@-]{1,64}$`)
	roleARN    = regexp.MustCompile(`^arn:aws:iam::([0-9]{12}):role/(?:[\x21-\x7e]*/)?([\w+=,.@-]{1,64})$`)
	errNoArray = errors.New("must be a list")
)

// FileError is what is wrong with a credentials file, and where.
type FileError struct {
	File   string
	Line   int
	Reason string
}

func (e *FileError) Error() string {
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Reason)
}

// Load reads and checks a credentials file.
func Load(path string) (*Credentials, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("credentials file: %w", err)
	}
	return Parse(path, data)
}

// Parse checks a credentials file's content; name is the file's name in
// errors, which give the line of the entry at fault.
func Parse(name string, data []byte) (*Credentials, error) {
	p := &parser{name: name, data: data, c: &Credentials{File: name,
		accounts: map[string]account.Limits{}, keys: map[string]*Principal{}, roles: map[string]*Role{}}}
	if err := p.parse(); err != nil {
		return nil, err
	}
	return p.c, nil
}

type parser struct {
	name string
	data []byte
	dec  *json.Decoder
	c    *Credentials
}

// at is an error at a byte offset of the file.
func (p *parser) at(off int64, format string, args ...any) error {
	off = max(0, min(off, int64(len(p.data))))
	// Start at the first significant byte of the entry, past commas and
	// blank space, so that the line is the entry's own.
	for off < int64(len(p.data)) && strings.IndexByte(", \t\r\n", p.data[off]) >= 0 {
		off++
	}
	return &FileError{File: p.name, Line: 1 + bytes.Count(p.data[:off], []byte("\n")), Reason: fmt.Sprintf(format, args...)}
}

// syntax turns a decoding error into one with its line.
func (p *parser) syntax(err error, base int64) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		// A decoder reports offsets from the start of the file.
		return p.at(se.Offset-1, "%v", se)
	case errors.As(err, &te):
		return p.at(base+te.Offset-1, "%s: a JSON %s cannot go here", fieldName(te), te.Value)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return p.at(int64(len(p.data)), "unexpected end of file")
	}
	return p.at(base, "%v", err)
}

func fieldName(te *json.UnmarshalTypeError) string {
	if te.Field != "" {
		return te.Field
	}
	return "value"
}

func (p *parser) parse() error {
	p.dec = json.NewDecoder(bytes.NewReader(p.data))
	tok, err := p.dec.Token()
	if err != nil {
		return p.syntax(err, 0)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return p.at(0, "the credentials file must be a JSON object")
	}
	seen := map[string]bool{}
	for p.dec.More() {
		off := p.dec.InputOffset()
		tok, err := p.dec.Token()
		if err != nil {
			return p.syntax(err, off)
		}
		key, _ := tok.(string)
		if seen[key] {
			return p.at(off, "%q appears twice", key)
		}
		seen[key] = true
		switch key {
		case "accounts":
			err = p.array(key, p.account)
		case "principals":
			err = p.array(key, p.principal)
		case "roles":
			err = p.array(key, p.role)
		default:
			return p.at(off, "unknown key %q (want accounts, principals, roles)", key)
		}
		if err != nil {
			return err
		}
	}
	if _, err := p.dec.Token(); err != nil {
		return p.syntax(err, p.dec.InputOffset())
	}
	if _, err := p.dec.Token(); err != io.EOF {
		return p.at(p.dec.InputOffset(), "unexpected content after the credentials object")
	}
	if len(p.c.accounts) == 0 {
		return p.at(0, "the credentials file names no account")
	}
	return nil
}

// array decodes a list, handing each element (strictly decoded) to f with
// its offset.
func (p *parser) array(key string, f func(off int64, raw json.RawMessage) error) error {
	off := p.dec.InputOffset()
	tok, err := p.dec.Token()
	if err != nil {
		return p.syntax(err, off)
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return p.at(off, "%s %v", key, errNoArray)
	}
	for p.dec.More() {
		off := p.dec.InputOffset()
		var raw json.RawMessage
		if err := p.dec.Decode(&raw); err != nil {
			return p.syntax(err, off)
		}
		// The element starts after any separator the offset still covers.
		start := off
		for start < int64(len(p.data)) && strings.IndexByte(", \t\r\n", p.data[start]) >= 0 {
			start++
		}
		if err := f(start, raw); err != nil {
			return err
		}
	}
	_, err = p.dec.Token()
	if err != nil {
		return p.syntax(err, p.dec.InputOffset())
	}
	return nil
}

func (p *parser) strict(off int64, raw json.RawMessage, v any, what string) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return p.at(off+te.Offset-1, "%s: %s: a JSON %s cannot go here", what, fieldName(te), te.Value)
		}
		return p.at(off, "%s: %v", what, strings.TrimPrefix(err.Error(), "json: "))
	}
	return nil
}

func (p *parser) account(off int64, raw json.RawMessage) error {
	var a fileAccount
	if err := p.strict(off, raw, &a, "account"); err != nil {
		return err
	}
	if !accountID.MatchString(a.ID) {
		return p.at(off, "account id %q must be twelve digits", a.ID)
	}
	if _, dup := p.c.accounts[a.ID]; dup {
		return p.at(off, "account %s appears twice", a.ID)
	}
	l := account.Limits{Concurrency: DefaultConcurrencyLimit, MinUnreserved: DefaultMinUnreserved}
	if a.ConcurrencyLimit != nil {
		l.Concurrency = *a.ConcurrencyLimit
	}
	if a.MinUnreserved != nil {
		l.MinUnreserved = *a.MinUnreserved
	}
	if l.Concurrency < 1 || l.Concurrency > maxConcurrency {
		return p.at(off, "account %s: concurrencyLimit must be from 1 to %d", a.ID, maxConcurrency)
	}
	if l.MinUnreserved < 0 {
		return p.at(off, "account %s: minUnreserved must be at least 0", a.ID)
	}
	p.c.accounts[a.ID] = l
	return nil
}

func (p *parser) principal(off int64, raw json.RawMessage) error {
	var fp filePrincipal
	if err := p.strict(off, raw, &fp, "principal"); err != nil {
		return err
	}
	switch {
	case !accessKey.MatchString(fp.AccessKeyID):
		// The key is named, never the secret.
		return p.at(off, "principal %q: accessKeyId must be 16 to 128 upper-case letters and digits", clip(fp.AccessKeyID))
	case fp.SecretAccessKey == "":
		return p.at(off, "principal %s: secretAccessKey is missing", fp.AccessKeyID)
	case !userName.MatchString(fp.User):
		return p.at(off, "principal %s: user %q is not an IAM user name", fp.AccessKeyID, clip(fp.User))
	}
	if _, ok := p.c.accounts[fp.Account]; !ok {
		return p.at(off, "principal %s: account %q is not in accounts (list accounts before principals)", fp.AccessKeyID, clip(fp.Account))
	}
	if _, dup := p.c.keys[fp.AccessKeyID]; dup {
		return p.at(off, "access key %s appears twice", fp.AccessKeyID)
	}
	pr := &Principal{AccessKeyID: fp.AccessKeyID, secret: fp.SecretAccessKey, Account: fp.Account, User: fp.User,
		ARN: "arn:aws:iam::" + fp.Account + ":user/" + fp.User, UserID: userID(fp.Account, fp.User)}
	for _, other := range p.c.keys {
		if other.ARN == pr.ARN {
			return p.at(off, "user %s appears twice (one access key per user)", pr.ARN)
		}
	}
	if len(fp.Policy) > 0 {
		d, err := policy.Parse(fp.Policy)
		if err != nil {
			return p.at(off, "principal %s: policy: %v", fp.AccessKeyID, err)
		}
		pr.Policy = d
	}
	p.c.keys[pr.AccessKeyID] = pr
	return nil
}

func (p *parser) role(off int64, raw json.RawMessage) error {
	var fr fileRole
	if err := p.strict(off, raw, &fr, "role"); err != nil {
		return err
	}
	m := roleARN.FindStringSubmatch(fr.ARN)
	if m == nil {
		return p.at(off, "role %q: arn must be arn:aws:iam::<account>:role/<name>", clip(fr.ARN))
	}
	if _, ok := p.c.accounts[m[1]]; !ok {
		return p.at(off, "role %s: account %s is not in accounts", fr.ARN, m[1])
	}
	if _, dup := p.c.roles[fr.ARN]; dup {
		return p.at(off, "role %s appears twice", fr.ARN)
	}
	r := &Role{ARN: fr.ARN, Account: m[1], Name: m[2]}
	if len(fr.Policy) > 0 {
		d, err := policy.Parse(fr.Policy)
		if err != nil {
			return p.at(off, "role %s: policy: %v", fr.ARN, err)
		}
		r.Policy = d
	}
	p.c.roles[r.ARN] = r
	return nil
}

// userID is a stable unique id of the form IAM gives users (AIDA...).
func userID(acct, user string) string {
	return "AIDA" + strings.ToUpper(hexDigest(acct + "/" + user)[:17])
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
