// Package console is lambdad's web console: plain HTML, CSS and JavaScript
// embedded in the binary, with no build step and nothing loaded from
// anywhere but the server itself. It is a client of lambdad's HTTP APIs
// like any other (the Lambda API and lambdad's own /lambdad/ endpoints),
// and imports nothing of lambdad: what it shows is what those APIs answer.
//
// The page is served at / to browsers (a GET whose Accept names
// text/html; no AWS route is /, and API clients do not ask for HTML), its
// assets under AssetPrefix. Together they stay under PageBudget bytes.
//
// Access control plugs in through Session: it names the signed-in
// principal and the CSRF token the page must send back, in the CSRFHeader
// header, on every request that changes something. With a Session and
// nobody signed in, the page asks for an access key and its secret and
// posts them to SignInPath (whoever provides the Session serves it; the
// session is an HttpOnly cookie the page never sees). Without a Session
// the console runs as the API does, unauthenticated.
package console

import (
	"bytes"
	"embed"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed assets
var assets embed.FS

// AssetPrefix is where the console's scripts and styles are served.
const AssetPrefix = "/lambdad/console/"

// PageBudget bounds the bytes a browser loads for the console: the page,
// its script and its style sheet, uncompressed.
const PageBudget = 64 << 10

// SignInPath and SignOutPath are where the page signs in (POST of JSON
// {"accessKeyId", "secretAccessKey"}) and out.
const (
	SignInPath  = "/lambdad/console/signin"
	SignOutPath = "/lambdad/console/signout"
)

// CSRFHeader carries the session's CSRF token on the console's requests
// that change something (PUT, POST, DELETE).
const CSRFHeader = "X-Lambdad-Csrf-Token"

// Principal is who a session is signed in as.
type Principal struct {
	Account string
	Name    string
}

// Session is the hook access control provides. Principal returns the
// principal signed in for r, or false when nobody is (the console then
// still loads; the API calls it makes are refused and it says so).
// CSRFToken returns the token bound to r's session, which the page echoes
// in CSRFHeader; whoever checks sessions on the API side checks it there.
type Session interface {
	Principal(r *http.Request) (Principal, bool)
	CSRFToken(r *http.Request) string
}

// Options configure a Console.
type Options struct {
	// Session is nil while lambdad has no access control.
	Session Session
}

// Console serves the page and its assets.
type Console struct {
	session Session
	page    *template.Template
	static  http.Handler
}

// New returns the console.
func New(o Options) (*Console, error) {
	page, err := template.ParseFS(assets, "assets/index.html")
	if err != nil {
		return nil, err
	}
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		return nil, err
	}
	return &Console{session: o.Session, page: page, static: http.StripPrefix(AssetPrefix, http.FileServerFS(sub))}, nil
}

// WantsPage reports whether r asks for the console's page: a GET or HEAD
// of / from a browser. Other requests of / belong to the API.
func WantsPage(r *http.Request) bool {
	return (r.Method == http.MethodGet || r.Method == http.MethodHead) && r.URL.Path == "/" &&
		strings.Contains(r.Header.Get("Accept"), "text/html")
}

// securityHeaders keep the page to its own origin: no script, style or
// connection elsewhere, no framing.
func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
}

// ServePage serves the console's page.
func (c *Console) ServePage(w http.ResponseWriter, r *http.Request) {
	data := struct {
		CSRF, Principal, Account string
		Auth                     bool
	}{}
	if c.session != nil {
		data.Auth = true
		data.CSRF = c.session.CSRFToken(r)
		if p, ok := c.session.Principal(r); ok {
			data.Principal, data.Account = p.Name, p.Account
		}
	}
	var buf bytes.Buffer
	if err := c.page.Execute(&buf, data); err != nil {
		http.Error(w, "the console's page failed to render", http.StatusInternalServerError)
		return
	}
	securityHeaders(w.Header())
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(buf.Bytes())
}

// ServeAsset serves the console's scripts and styles under AssetPrefix.
func (c *Console) ServeAsset(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w.Header())
	w.Header().Set("Cache-Control", "no-cache")
	c.static.ServeHTTP(w, r)
}
