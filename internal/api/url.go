package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lambdad/lambdad/internal/account"
	"github.com/lambdad/lambdad/internal/awserr"
	"github.com/lambdad/lambdad/internal/function"
	"github.com/lambdad/lambdad/internal/invoke"
)

// URLAuthorizer decides whether a request may invoke a function URL whose
// AuthType is AWS_IAM: the SigV4 signature of the "lambda" service and the
// caller's permission to lambda:InvokeFunctionUrl on the function. It is
// the hook access control fills; without it such URLs answer 403.
type URLAuthorizer interface {
	AuthorizeURL(r *http.Request, account string, u *function.URLConfig) error
}

// serveURL answers one request to a function URL as AWS's URL front end
// does: CORS preflights from the URL's configuration, then the request as
// a payload format 2.0 event through the same invoke path (and the same
// admission) as Invoke, and the function's answer mapped back to HTTP.
func (s *Server) serveURL(w http.ResponseWriter, r *http.Request, requestID, id, path string) {
	start := time.Now()
	status := s.serveURLRequest(w, r, requestID, id, path)
	s.log.LogAttrs(r.Context(), slog.LevelDebug, "url request", slog.String("request_id", requestID),
		slog.String("url_id", id), slog.String("method", r.Method), slog.Int("status", status), slog.Duration("took", time.Since(start)))
}

// urlError answers as AWS's URL front end does: a small JSON message.
func urlError(w http.ResponseWriter, status int, errType, message string) int {
	body, _ := json.Marshal(map[string]any{"Message": message})
	if message == "" {
		body = []byte(`{"Message":null}`)
	}
	h := w.Header()
	if errType != "" {
		h.Set("X-Amzn-ErrorType", errType)
	}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
	return status
}

func (s *Server) serveURLRequest(w http.ResponseWriter, r *http.Request, requestID, id, path string) int {
	if s.invoker == nil {
		return urlError(w, http.StatusServiceUnavailable, "", "Invocations are not enabled on this server.")
	}
	t, ok, err := s.ctl.ResolveURL(r.Context(), id)
	if err != nil {
		s.log.ErrorContext(r.Context(), "resolve url", "request_id", requestID, "err", err)
		return urlError(w, http.StatusInternalServerError, "", "Internal Server Error")
	}
	if !ok {
		// AWS answers a URL that does not exist with 403 and no message.
		return urlError(w, http.StatusForbidden, "AccessDeniedException", "")
	}
	u := t.Config
	if u.Cors != nil && r.Method == http.MethodOptions && r.Header.Get("Origin") != "" && r.Header.Get("Access-Control-Request-Method") != "" {
		preflight(w.Header(), r, u.Cors)
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
		return http.StatusOK
	}
	if u.AuthType == function.URLAuthIAM {
		if s.urlAuth == nil {
			return urlError(w, http.StatusForbidden, "AccessDeniedException",
				"Forbidden. AuthType AWS_IAM is not enforced by this server: it has no access control yet, so no request is let through.")
		}
		if err := s.urlAuth.AuthorizeURL(r, t.Account, u); err != nil {
			return urlError(w, http.StatusForbidden, "AccessDeniedException", "Forbidden")
		}
	}
	body, err := readBody(r, maxSyncPayload, "InvokeFunction")
	if err != nil {
		if e, ok := awserr.As(err); ok && e.Code == awserr.RequestTooLarge {
			return urlError(w, http.StatusRequestEntityTooLarge, "RequestTooLargeException", e.Message)
		}
		return urlError(w, http.StatusBadRequest, "", "Bad Request")
	}
	event := urlEvent(r, requestID, id, path, s.region, body).appendJSON(make([]byte, 0, 1024+len(body)))
	ctx := account.WithCaller(r.Context(), account.Caller{Account: t.Account, RequestID: requestID})
	if u.InvokeMode == function.InvokeStreaming {
		return s.serveURLStream(ctx, w, r, requestID, u, event)
	}
	res, err := s.invoker.Invoke(ctx, &invoke.Request{
		FunctionName: u.Function, Qualifier: u.Qualifier, Type: invoke.RequestResponse, Payload: event, PayloadIsJSON: true, RequestID: requestID,
	})
	if u.Cors != nil {
		corsHeaders(w.Header(), r, u.Cors)
	}
	if err != nil {
		return s.urlInvokeError(ctx, w, r, requestID, err)
	}
	if res.FunctionError != "" {
		return urlError(w, http.StatusBadGateway, "", "Internal Server Error")
	}
	return writeURLResponse(w, res.Payload, u.Cors != nil)
}

// urlInvokeError answers an invocation that did not run: a throttle as
// AWS's URLs answer one (429, the throttle's message), anything else as a
// gateway error, logged.
func (s *Server) urlInvokeError(ctx context.Context, w http.ResponseWriter, r *http.Request, requestID string, err error) int {
	if errors.Is(err, errClientGone) || ctx.Err() != nil {
		return 499
	}
	e, ok := awserr.As(err)
	if ok && e.Code == awserr.TooManyRequests {
		return urlError(w, http.StatusTooManyRequests, string(e.Code), e.Message)
	}
	s.log.WarnContext(ctx, "url invocation failed", "request_id", requestID, "path", r.URL.Path, "err", err)
	return urlError(w, http.StatusBadGateway, "", "Internal Server Error")
}

// urlRequestContext is the requestContext of a payload format 2.0 event.
type urlRequestContext struct {
	AccountID    string         `json:"accountId"`
	APIID        string         `json:"apiId"`
	DomainName   string         `json:"domainName"`
	DomainPrefix string         `json:"domainPrefix"`
	HTTP         urlHTTPContext `json:"http"`
	RequestID    string         `json:"requestId"`
	RouteKey     string         `json:"routeKey"`
	Stage        string         `json:"stage"`
	Time         string         `json:"time"`
	TimeEpoch    int64          `json:"timeEpoch"`
}

type urlHTTPContext struct {
	Method    string `json:"method"`
	Path      string `json:"path"`
	Protocol  string `json:"protocol"`
	SourceIP  string `json:"sourceIp"`
	UserAgent string `json:"userAgent"`
}

// urlEventBody is the event a function URL sends (payload format 2.0).
type urlEventBody struct {
	Version               string            `json:"version"`
	RouteKey              string            `json:"routeKey"`
	RawPath               string            `json:"rawPath"`
	RawQueryString        string            `json:"rawQueryString"`
	Cookies               []string          `json:"cookies,omitempty"`
	Headers               map[string]string `json:"headers"`
	QueryStringParameters map[string]string `json:"queryStringParameters,omitempty"`
	RequestContext        urlRequestContext `json:"requestContext"`
	Body                  *string           `json:"body,omitempty"`
	IsBase64Encoded       bool              `json:"isBase64Encoded"`
}

func urlEvent(r *http.Request, requestID, id, path, region string, body []byte) *urlEventBody {
	now := time.Now().UTC()
	ip, port := r.RemoteAddr, ""
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		ip = h
	}
	if _, p, err := net.SplitHostPort(r.Host); err == nil {
		port = p
	}
	domain := id + ".lambda-url." + region + ".localhost"
	ev := &urlEventBody{
		Version: "2.0", RouteKey: "$default", RawPath: path, RawQueryString: r.URL.RawQuery,
		Headers: map[string]string{},
		RequestContext: urlRequestContext{
			AccountID: "anonymous", APIID: id, DomainName: domain, DomainPrefix: id,
			HTTP:      urlHTTPContext{Method: r.Method, Path: path, Protocol: r.Proto, SourceIP: ip, UserAgent: r.UserAgent()},
			RequestID: requestID, RouteKey: "$default", Stage: "$default",
			Time: now.Format("02/Jan/2006:15:04:05 -0700"), TimeEpoch: now.UnixMilli(),
		},
	}
	for k, vs := range r.Header {
		k = strings.ToLower(k)
		if k == "cookie" {
			for _, v := range vs {
				for _, c := range strings.Split(v, ";") {
					if c = strings.TrimSpace(c); c != "" {
						ev.Cookies = append(ev.Cookies, c)
					}
				}
			}
			continue
		}
		ev.Headers[k] = strings.Join(vs, ",")
	}
	ev.Headers["host"] = domain
	ev.Headers["x-forwarded-for"] = ip
	ev.Headers["x-forwarded-proto"] = "http"
	if port != "" {
		ev.Headers["x-forwarded-port"] = port
	}
	if q := r.URL.Query(); len(q) > 0 {
		ev.QueryStringParameters = make(map[string]string, len(q))
		for k, vs := range q {
			ev.QueryStringParameters[k] = strings.Join(vs, ",")
		}
	}
	if len(body) > 0 {
		text := string(body)
		if !textual(r.Header.Get("Content-Type")) || !utf8.Valid(body) {
			text, ev.IsBase64Encoded = base64.StdEncoding.EncodeToString(body), true
		}
		ev.Body = &text
	}
	return ev
}

// textual reports whether a body of this content type is passed as text;
// others are base64, as AWS passes binary bodies. A body without a type
// is text when it is valid UTF-8.
func textual(contentType string) bool {
	ct := strings.ToLower(contentType)
	if ct == "" || strings.HasPrefix(ct, "text/") {
		return true
	}
	for _, t := range []string{"json", "xml", "javascript", "x-www-form-urlencoded", "yaml", "csv"} {
		if strings.Contains(ct, t) {
			return true
		}
	}
	return false
}

// urlResult is a function's structured answer to a URL request.
type urlResult struct {
	StatusCode      *int              `json:"statusCode"`
	Headers         map[string]string `json:"headers"`
	Cookies         []string          `json:"cookies"`
	Body            *string           `json:"body"`
	IsBase64Encoded bool              `json:"isBase64Encoded"`
}

// writeURLResponse maps a function's answer to HTTP as AWS does: an object
// with a statusCode is the response (status, headers, cookies as
// Set-Cookie, body, base64 when isBase64Encoded); a JSON string is the body
// as text; any other JSON is the body as it is, with status 200 and
// content type application/json.
func writeURLResponse(w http.ResponseWriter, payload []byte, cors bool) int {
	h := w.Header()
	status, body := http.StatusOK, payload
	contentType := "application/json"
	var res urlResult
	var str string
	switch first := firstByte(payload); {
	case first == '"' && json.Unmarshal(payload, &str) == nil:
		body = []byte(str)
	case first == '{' && mayHaveStatusCode(payload) && json.Unmarshal(payload, &res) == nil && res.StatusCode != nil:
		status = *res.StatusCode
		if status < 100 || status > 599 {
			return urlError(w, http.StatusBadGateway, "", "Internal Server Error")
		}
		body = nil
		if res.Body != nil {
			body = []byte(*res.Body)
			if res.IsBase64Encoded {
				b, err := base64.StdEncoding.DecodeString(*res.Body)
				if err != nil {
					return urlError(w, http.StatusBadGateway, "", "Internal Server Error")
				}
				body = b
			}
		}
		for k, v := range res.Headers {
			// The URL's CORS configuration, when there is one, decides the
			// CORS headers, not the function.
			if cors && strings.HasPrefix(strings.ToLower(k), "access-control-") {
				continue
			}
			if strings.EqualFold(k, "content-type") {
				contentType = v
				continue
			}
			h.Set(k, v)
		}
		for _, c := range res.Cookies {
			h.Add("Set-Cookie", c)
		}
	}
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
	return status
}

// allowedOrigin is the Access-Control-Allow-Origin for the request's
// origin, or "" when the configuration does not allow it.
func allowedOrigin(r *http.Request, c *function.Cors) string {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return ""
	}
	if slices.Contains(c.AllowOrigins, origin) {
		return origin
	}
	if slices.Contains(c.AllowOrigins, "*") {
		if c.AllowCredentials != nil && *c.AllowCredentials {
			return origin // a wildcard cannot go with credentials
		}
		return "*"
	}
	return ""
}

// corsHeaders adds the CORS headers of an actual (not preflight) request.
func corsHeaders(h http.Header, r *http.Request, c *function.Cors) {
	origin := allowedOrigin(r, c)
	if origin == "" {
		return
	}
	h.Set("Access-Control-Allow-Origin", origin)
	if origin != "*" {
		h.Add("Vary", "Origin")
	}
	if len(c.ExposeHeaders) > 0 {
		h.Set("Access-Control-Expose-Headers", strings.Join(c.ExposeHeaders, ","))
	}
	if c.AllowCredentials != nil && *c.AllowCredentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
}

// preflight answers a CORS preflight from the configuration; a request it
// does not allow gets no CORS headers, which the browser refuses.
func preflight(h http.Header, r *http.Request, c *function.Cors) {
	origin := allowedOrigin(r, c)
	method := r.Header.Get("Access-Control-Request-Method")
	if origin == "" || !(slices.Contains(c.AllowMethods, "*") || slices.Contains(c.AllowMethods, strings.ToUpper(method))) {
		return
	}
	h.Set("Access-Control-Allow-Origin", origin)
	if origin != "*" {
		h.Add("Vary", "Origin")
	}
	h.Set("Access-Control-Allow-Methods", method)
	if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
		if slices.Contains(c.AllowHeaders, "*") {
			h.Set("Access-Control-Allow-Headers", req)
		} else {
			var allowed []string
			for _, name := range strings.Split(req, ",") {
				name = strings.TrimSpace(name)
				if slices.ContainsFunc(c.AllowHeaders, func(a string) bool { return strings.EqualFold(a, name) }) {
					allowed = append(allowed, name)
				}
			}
			if len(allowed) > 0 {
				h.Set("Access-Control-Allow-Headers", strings.Join(allowed, ","))
			}
		}
	}
	if c.MaxAge != nil {
		h.Set("Access-Control-Max-Age", strconv.Itoa(*c.MaxAge))
	}
	if c.AllowCredentials != nil && *c.AllowCredentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
}

// firstByte is the first byte of b that is not JSON white space, 0 if none.
// mayHaveStatusCode reports whether an object's JSON could hold a
// statusCode member as encoding/json reads one: keys match
// case-insensitively, with the Kelvin sign and the long s among the folds,
// and may be written with escapes. Only an answer of plain ASCII without
// a backslash and without those letters in a row is known not to; most
// answers that are not a structured response are then passed on without
// being decoded.
func mayHaveStatusCode(b []byte) bool {
	const key = "statuscode"
	for i, c := range b {
		if c == '\\' || c >= 0x80 {
			return true
		}
		if c|0x20 == 's' && i+len(key) <= len(b) && asciiEqualFold(b[i:i+len(key)], key) {
			return true
		}
	}
	return false
}

func asciiEqualFold(b []byte, lower string) bool {
	for i := range b {
		if b[i]|0x20 != lower[i] {
			return false
		}
	}
	return true
}

func firstByte(b []byte) byte {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return c
		}
	}
	return 0
}
