// Package api is lambdad's HTTP edge: the AWS Lambda rest-json API and
// lambdad's own endpoints. Routes, member locations and constraints come
// from the embedded API model (package apimodel); each handler decodes, calls
// the control plane or the invoker, and returns a result or an error to one
// renderer, so every answer has AWS's shape and every response carries an
// x-amzn-RequestId.
package api

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/lambdad/lambdad/internal/account"
	"github.com/lambdad/lambdad/internal/apimodel"
	"github.com/lambdad/lambdad/internal/awserr"
	"github.com/lambdad/lambdad/internal/control"
	"github.com/lambdad/lambdad/internal/uuid"
)

// Server serves the API.
type Server struct {
	model *apimodel.Model
	auth  Authenticator
	// authz is nil without access control: the open server does no
	// authorization work at all.
	authz   Authorizer
	presign Presigner
	ctl     *control.Service
	invoker Invoker
	queue   Queue
	obs     RequestObserver
	urlAuth URLAuthorizer
	region  string
	log     *slog.Logger
	mux     *http.ServeMux
	bodies  bodyBudget // request body bytes held now, and the cap
}

// call is one request to one operation.
type call struct {
	op        *apimodel.Operation
	r         *http.Request
	w         http.ResponseWriter
	in        map[string]any
	deferred  error
	body      []byte
	requestID string
	// withCaller is the request's context carrying its caller.
	withCaller context.Context
}

// ctx is the request's context carrying its caller (account.CallerOf):
// the account every operation acts in, and who to name in the audit trail.
func (c *call) ctx() context.Context { return c.withCaller }

// str is a decoded string member, "" when absent.
func (c *call) str(name string) string {
	s, _ := c.in[name].(string)
	return s
}

// intp is a decoded integer member, nil when absent.
func (c *call) intp(name string) *int {
	f, ok := c.in[name].(float64)
	if !ok {
		return nil
	}
	n := int(f)
	return &n
}

type handler func(c *call) (any, error)

// noContent answers 204 with no body, whatever status the model gives.
type noContent struct{}

// route binds an operation of the model to its handler.
type route struct {
	op string
	// operation is op's entry in the model, set when routes are built.
	operation *apimodel.Operation
	h         handler
	// deferBody lets the handler report body violations itself, at the
	// point in its checks where AWS reports them.
	deferBody bool
	// bodyLimit bounds the request body; 0 means maxBody.
	bodyLimit int64
	// notServed marks an operation this server does not run: it is
	// answered so before its input is read.
	notServed bool
}

// Backends are what the server hands work to beyond the control plane;
// either may be nil, and the operations that need it then answer that they
// are not enabled.
type Backends struct {
	Invoker Invoker
	Queue   Queue
	// Auth establishes each request's caller; nil is OneAccount in the
	// control plane's account.
	Auth Authenticator
	// Authz authorizes each operation on its resource; nil allows
	// everything (a server without access control).
	Authz Authorizer
	// Presign presigns code downloads; nil serves them to anyone.
	Presign Presigner
	// Requests hears of every operation served; nil for none.
	Requests RequestObserver
	// URLAuth authorizes requests to function URLs whose AuthType is
	// AWS_IAM; nil refuses them all (see serveURL).
	URLAuth URLAuthorizer
}

// New builds the server.
func New(ctl *control.Service, b Backends, log *slog.Logger) (*Server, error) {
	model, err := apimodel.Load()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if b.Auth == nil {
		b.Auth = OneAccount{Account: ctl.Options().AccountID}
	}
	if b.Requests == nil {
		b.Requests = noRequestObserver{}
	}
	s := &Server{model: model, auth: b.Auth, authz: b.Authz, presign: b.Presign, ctl: ctl, invoker: b.Invoker, queue: b.Queue, obs: b.Requests,
		urlAuth: b.URLAuth, region: ctl.Options().Region, log: log, mux: http.NewServeMux()}
	s.bodies.max.Store(DefaultBodyMemory)
	routes := []route{
		{op: "CreateFunction", h: s.createFunction},
		{op: "GetFunction", h: s.getFunction},
		{op: "GetFunctionConfiguration", h: s.getFunctionConfiguration},
		{op: "ListFunctions", h: s.listFunctions},
		{op: "UpdateFunctionCode", h: s.updateFunctionCode},
		{op: "UpdateFunctionConfiguration", h: s.updateFunctionConfiguration},
		{op: "DeleteFunction", h: s.deleteFunction},
		{op: "PublishVersion", h: s.publishVersion},
		{op: "ListVersionsByFunction", h: s.listVersions},
		{op: "CreateAlias", h: s.createAlias},
		{op: "GetAlias", h: s.getAlias},
		{op: "UpdateAlias", h: s.updateAlias},
		{op: "DeleteAlias", h: s.deleteAlias},
		{op: "ListAliases", h: s.listAliases},
		{op: "PutFunctionConcurrency", h: s.putFunctionConcurrency, deferBody: true},
		{op: "GetFunctionConcurrency", h: s.getFunctionConcurrency},
		{op: "DeleteFunctionConcurrency", h: s.deleteFunctionConcurrency},
		{op: "GetAccountSettings", h: s.getAccountSettings},
		{op: "Invoke", h: s.invoke, bodyLimit: maxSyncPayload},
		{op: "InvokeAsync", h: s.invokeAsync, bodyLimit: maxAsyncLegacyPayload},
		{op: "InvokeWithResponseStream", h: s.invokeStream, bodyLimit: maxSyncPayload},
		{op: "PutFunctionEventInvokeConfig", h: s.putEventInvokeConfig(true)},
		{op: "UpdateFunctionEventInvokeConfig", h: s.putEventInvokeConfig(false)},
		{op: "GetFunctionEventInvokeConfig", h: s.getEventInvokeConfig},
		{op: "DeleteFunctionEventInvokeConfig", h: s.deleteEventInvokeConfig},
		{op: "ListFunctionEventInvokeConfigs", h: s.listEventInvokeConfigs},
		{op: "TagResource", h: s.tagResource},
		{op: "UntagResource", h: s.untagResource},
		{op: "ListTags", h: s.listTags},
		{op: "PutProvisionedConcurrencyConfig", h: s.putProvisioned},
		{op: "GetProvisionedConcurrencyConfig", h: s.getProvisioned},
		{op: "DeleteProvisionedConcurrencyConfig", h: s.deleteProvisioned},
		{op: "ListProvisionedConcurrencyConfigs", h: s.listProvisioned},
		{op: "AddPermission", h: s.addPermission},
		{op: "RemovePermission", h: s.removePermission},
		{op: "GetPolicy", h: s.getPolicy},
		{op: "CreateCodeSigningConfig", h: s.createCodeSigningConfig},
		{op: "GetCodeSigningConfig", h: s.getCodeSigningConfig},
		{op: "UpdateCodeSigningConfig", h: s.updateCodeSigningConfig},
		{op: "DeleteCodeSigningConfig", h: s.deleteCodeSigningConfig},
		{op: "ListCodeSigningConfigs", h: s.listCodeSigningConfigs},
		{op: "ListFunctionsByCodeSigningConfig", h: s.listFunctionsByCodeSigningConfig},
		{op: "PutFunctionCodeSigningConfig", h: s.putFunctionCodeSigningConfig},
		{op: "GetFunctionCodeSigningConfig", h: s.getFunctionCodeSigningConfig},
		{op: "DeleteFunctionCodeSigningConfig", h: s.deleteFunctionCodeSigningConfig},
		{op: "GetFunctionRecursionConfig", h: s.getRecursionConfig},
		{op: "PutFunctionRecursionConfig", h: s.putRecursionConfig},
		{op: "GetRuntimeManagementConfig", h: s.getRuntimeManagement},
		{op: "PutRuntimeManagementConfig", h: s.putRuntimeManagement},
		{op: "CreateEventSourceMapping", h: s.createMapping},
		{op: "GetEventSourceMapping", h: s.getMapping},
		{op: "UpdateEventSourceMapping", h: s.updateMapping},
		{op: "DeleteEventSourceMapping", h: s.deleteMapping},
		{op: "ListEventSourceMappings", h: s.listMappings},
		{op: "PublishLayerVersion", h: s.publishLayerVersion},
		{op: "GetLayerVersion", h: s.getLayerVersion},
		{op: "GetLayerVersionByArn", h: s.getLayerVersionByArn},
		{op: "ListLayers", h: s.listLayers},
		{op: "ListLayerVersions", h: s.listLayerVersions},
		{op: "DeleteLayerVersion", h: s.deleteLayerVersion},
		{op: "AddLayerVersionPermission", h: s.addLayerVersionPermission},
		{op: "RemoveLayerVersionPermission", h: s.removeLayerVersionPermission},
		{op: "GetLayerVersionPolicy", h: s.getLayerVersionPolicy},
		{op: "CreateFunctionUrlConfig", h: s.createURLConfig},
		{op: "GetFunctionUrlConfig", h: s.getURLConfig},
		{op: "UpdateFunctionUrlConfig", h: s.updateURLConfig},
		{op: "DeleteFunctionUrlConfig", h: s.deleteURLConfig},
		{op: "ListFunctionUrlConfigs", h: s.listURLConfigs},
	}
	// Every other operation of the model answers too, AWS-shaped: that
	// this server does not run it, never an unknown operation.
	served := map[string]bool{}
	for _, rt := range routes {
		served[rt.op] = true
	}
	var others []string
	for name := range model.Operations {
		if !served[name] {
			others = append(others, name)
		}
	}
	sort.Strings(others)
	for _, name := range others {
		routes = append(routes, route{op: name, h: notServed(name), notServed: true})
	}
	// Operations that share a method and path differ by a fixed query part
	// (GetProvisionedConcurrencyConfig and its List=ALL form).
	byPattern := map[string][]route{}
	var order []string
	for _, rt := range routes {
		op := model.Operations[rt.op]
		if op == nil {
			panic("api: operation missing from the model: " + rt.op)
		}
		rt.operation = op
		p := op.Method + " " + op.Path
		if _, seen := byPattern[p]; !seen {
			order = append(order, p)
		}
		byPattern[p] = append(byPattern[p], rt)
	}
	for _, p := range order {
		h := s.dispatch(byPattern[p])
		s.mux.Handle(p, h)
		// AWS answers a collection's path with a trailing slash too, which
		// older SDKs' models send (/2015-03-31/functions/).
		if !strings.HasSuffix(p, "}") {
			s.mux.Handle(p+"/{$}", h)
		}
	}
	s.lambdadRoutes()
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		// Requests that match no route, or a route with another method,
		// are logged at info: a client calling an operation lambdad does
		// not serve must be visible in the log without turning on debug.
		id := w.Header().Get(requestIDHeader)
		e := awserr.New(awserr.UnknownOperation, "Unknown operation %s %s", r.Method, r.URL.Path)
		renderError(w, r, s.log, id, e)
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "unknown operation", slog.String("request_id", id),
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", e.Status()), slog.String("code", string(e.Code)))
	})
	return s, nil
}

const requestIDHeader = "X-Amzn-Requestid"

// ServeHTTP gives every request an id, echoed in x-amzn-RequestId on every
// response, and routes it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := uuid.New()
	w.Header()["X-Amzn-Requestid"] = []string{id}
	if urlID, path, ok := urlID(r.Host, r.URL.Path, s.region); ok {
		s.serveURL(w, r, id, urlID, path)
		return
	}
	s.mux.ServeHTTP(w, r)
}

func (s *Server) dispatch(routes []route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rt := routes[0]
		for _, cand := range routes {
			op := cand.operation
			if len(op.Query) == 0 {
				rt = cand
				continue
			}
			match := true
			for k, v := range op.Query {
				if r.URL.Query().Get(k) != v {
					match = false
				}
			}
			if match {
				rt = cand
				break
			}
		}
		s.serve(w, r, rt)
	})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, rt route) {
	start := time.Now()
	op := rt.operation
	c := &call{op: op, r: r, w: w, requestID: w.Header().Get(requestIDHeader)}
	result, err := s.run(c, rt)
	status := op.Status
	switch {
	case err != nil:
		renderError(w, c.r, s.log, c.requestID, err)
		if e, ok := awserr.As(err); ok {
			status = e.Status()
		} else {
			status = 500
		}
	case result == nil:
		w.WriteHeader(status)
	default:
		status = writeResult(w, status, result)
	}
	took := time.Since(start)
	s.obs.ObserveRequest(op.Name, status, took)
	s.log.LogAttrs(r.Context(), slog.LevelDebug, "request", slog.String("request_id", c.requestID),
		slog.String("op", op.Name), slog.Int("status", status), slog.Duration("took", took))
}

func (s *Server) run(c *call, rt route) (any, error) {
	limit := rt.bodyLimit
	if limit == 0 {
		limit = maxBody
	}
	// The body counts against the memory of bodies from before it is
	// read (by the authenticator, which hashes it, or below) until the
	// operation is done with it. A chunked body's size is unknown: it
	// counts as the largest it may be.
	if n := c.r.ContentLength; n != 0 && !rt.notServed {
		if n < 0 || n > limit {
			n = limit
		}
		if n > smallBody {
			if !s.bodies.take(n) {
				return nil, errBodyBudget()
			}
			defer s.bodies.give(n)
		}
	}
	ctx, err := s.authenticate(c.r, c.requestID)
	if err != nil {
		return nil, err
	}
	c.withCaller = ctx
	if rt.notServed {
		return rt.h(c)
	}
	body, err := readBody(c.r, limit, opDisplayName(c.op.Name))
	if err != nil {
		return nil, err
	}
	c.body = body
	in, deferred, err := decode(c.op, c.r, body)
	if err != nil {
		return nil, err
	}
	if deferred != nil && !rt.deferBody {
		return nil, deferred
	}
	c.in, c.deferred = in, deferred
	if s.authz == nil {
		return rt.h(c)
	}
	if err := s.authorize(c); err != nil {
		return nil, err
	}
	res, err := rt.h(c)
	if err != nil && auditedOps[c.op.Name] {
		s.ctl.AuditDecision(c.ctx(), c.op.Name, c.str("FunctionName"), "Allow", err)
	}
	return res, err
}

// authenticate returns the request's context carrying its caller.
func (s *Server) authenticate(r *http.Request, requestID string) (context.Context, error) {
	caller, err := s.auth.Authenticate(r)
	if err != nil {
		return nil, err
	}
	caller.RequestID = requestID
	return account.WithCaller(r.Context(), caller), nil
}

// opDisplayName is the operation name AWS uses in size-limit messages.
func opDisplayName(op string) string {
	if op == "Invoke" {
		return "InvokeFunction"
	}
	return op
}

// rawResult is a response that is not JSON from a struct: Invoke's payload
// with its headers.
type rawResult struct {
	status int
	header http.Header
	body   []byte
}

func writeResult(w http.ResponseWriter, status int, result any) int {
	switch res := result.(type) {
	case noContent:
		w.WriteHeader(http.StatusNoContent)
		return http.StatusNoContent
	case streamed:
		return http.StatusOK
	case *rawResult:
		for k, v := range res.header {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(res.body)))
		w.WriteHeader(res.status)
		w.Write(res.body)
		return res.status
	}
	body, err := json.Marshal(result)
	if err != nil {
		body = []byte("{}")
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
	return status
}
