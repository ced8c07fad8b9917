package api

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/lambdad/lambdad/internal/account"
	"github.com/lambdad/lambdad/internal/uuid"
)

// Authorizer decides whether a caller may perform an IAM action on a
// resource ARN. It is asked once per request, after the request is
// decoded (its resource is known only then) and before the handler runs.
// It returns the caller to act as (another account's, when that account's
// resource policy grants the request), or the AccessDeniedException.
type Authorizer interface {
	Authorize(r *http.Request, c account.Caller, action, resource string) (account.Caller, error)
}

// Presigner presigns the code downloads GetFunction points at, when
// access control is on: Code.Location is then a URL that works for a
// while without credentials, as AWS's presigned S3 URL does, and the
// download refuses any other.
type Presigner interface {
	PresignPath(path string) string
	CheckPresigned(path string, query url.Values) bool
}

// iamActions are the operations whose IAM action is not "lambda:" and the
// operation's name (AWS's service authorization reference): Invoke is
// lambda:InvokeFunction, and so is the deprecated InvokeAsync (its API
// reference: "This operation requires permission for the
// 'lambda:InvokeFunction' action").
var iamActions = map[string]string{
	"Invoke":                   "lambda:InvokeFunction",
	"InvokeAsync":              "lambda:InvokeFunction",
	"InvokeWithResponseStream": "lambda:InvokeFunction",
	// The layer version named by its ARN is read with GetLayerVersion's
	// permission (the permissions reference lists no action of its own).
	"GetLayerVersionByArn": "lambda:GetLayerVersion",
}

// iamAction is the IAM action of an operation.
func iamAction(op string) string {
	if a, ok := iamActions[op]; ok {
		return a
	}
	return "lambda:" + op
}

// unqualifiedResource are the operations whose resource is the function as
// a whole even when the request names a qualifier: the alias operations
// (the alias is named by Name, the resource is the function).
var unqualifiedResource = map[string]bool{
	"CreateAlias": true, "GetAlias": true, "UpdateAlias": true, "DeleteAlias": true, "ListAliases": true,
}

// resourceOf is the ARN a request acts on (resourceFor).
func (s *Server) resourceOf(c *call, caller account.Caller) string {
	return resourceFor(c.op.Name, s.ctl.Options().Region, caller.Account, c.in)
}

// resourceFor is the ARN an operation with the decoded input in acts on,
// in IAM's terms: the function (qualified when the request names a
// version or alias) in the account its FunctionName names, else in acct;
// the Resource member for the tag operations; "*" for operations on no
// resource.
func resourceFor(op, region, acct string, in map[string]any) string {
	str := func(k string) string { v, _ := in[k].(string); return v }
	switch op {
	case "TagResource", "UntagResource", "ListTags":
		return str("Resource")
	case "CreateEventSourceMapping", "ListEventSourceMappings", "CreateCodeSigningConfig", "ListCodeSigningConfigs":
		// AWS authorizes these on "*" (a mapping's function is a
		// condition key there, lambda:FunctionArn, which lambdad does not
		// set for them).
		return "*"
	case "GetEventSourceMapping", "UpdateEventSourceMapping", "DeleteEventSourceMapping":
		return "arn:aws:lambda:" + region + ":" + acct + ":event-source-mapping:" + str("UUID")
	case "GetCodeSigningConfig", "UpdateCodeSigningConfig", "DeleteCodeSigningConfig", "ListFunctionsByCodeSigningConfig":
		return str("CodeSigningConfigArn")
	case "PublishLayerVersion", "ListLayerVersions":
		// The layer (Lambda's permissions reference, "Layer actions").
		return layerARN(region, acct, str("LayerName"), "")
	case "GetLayerVersion", "DeleteLayerVersion", "GetLayerVersionPolicy", "AddLayerVersionPermission", "RemoveLayerVersionPermission":
		// The layer version.
		v, _ := in["VersionNumber"].(float64)
		return layerARN(region, acct, str("LayerName"), strconv.FormatInt(int64(v), 10))
	case "GetLayerVersionByArn":
		return str("Arn")
	}
	fn := str("FunctionName")
	if fn == "" {
		return "*"
	}
	qualifier := str("Qualifier")
	if unqualifiedResource[op] {
		qualifier = "-"
	}
	return functionARN(region, acct, fn, qualifier)
}

// functionARN reads a FunctionName in any of its forms (name, partial or
// full ARN, each with an optional :qualifier) loosely: what it builds is
// only matched against policies, and the handler refuses a bad name with
// AWS's error afterwards. A qualifier of "-" drops any qualifier.
func functionARN(region, acct, fn, qualifier string) string {
	p := strings.Split(fn, ":")
	var name, q string
	switch {
	case len(p) >= 7 && p[0] == "arn" && p[5] == "function":
		region, acct, name = p[3], p[4], p[6]
		if len(p) > 7 {
			q = p[7]
		}
	case len(p) >= 3 && p[1] == "function":
		acct, name = p[0], p[2]
		if len(p) > 3 {
			q = p[3]
		}
	default:
		name = p[0]
		if len(p) > 1 {
			q = p[1]
		}
	}
	if q == "" {
		q = qualifier
	}
	arn := "arn:aws:lambda:" + region + ":" + acct + ":function:" + name
	if q != "" && q != "-" {
		arn += ":" + q
	}
	return arn
}

// layerARN reads a LayerName (a name or a layer's ARN) loosely, as
// functionARN reads a function's, and names the layer, or its version v
// when v is not "".
func layerARN(region, acct, layer, v string) string {
	name := layer
	if p := strings.Split(layer, ":"); len(p) >= 7 && p[0] == "arn" && p[5] == "layer" {
		region, acct, name = p[3], p[4], p[6]
	}
	arn := "arn:aws:lambda:" + region + ":" + acct + ":layer:" + name
	if v != "" {
		arn += ":" + v
	}
	return arn
}

// authorize asks the authorizer about c and returns the context to act
// in. Put/DeleteFunctionConcurrency decisions go to the audit trail when
// they refuse (an allowed one is recorded with the change it makes, or
// with the error that stopped it).
func (s *Server) authorize(c *call) error {
	caller, _ := account.CallerOf(c.withCaller)
	acting, err := s.authz.Authorize(c.r, caller, iamAction(c.op.Name), s.resourceOf(c, caller))
	if err != nil {
		if auditedOps[c.op.Name] {
			s.ctl.AuditDecision(c.withCaller, c.op.Name, c.str("FunctionName"), "Deny", err)
		}
		return err
	}
	if acting != caller {
		c.withCaller = account.WithCaller(c.r.Context(), acting)
	}
	return nil
}

// auditedOps are the operations whose every decision is audited: the
// ones that move concurrency between a function and the account's pool.
var auditedOps = map[string]bool{"PutFunctionConcurrency": true, "DeleteFunctionConcurrency": true}

// ownAction is the action lambdad's own endpoints require when access
// control is on; the resource is "*".
func (s *Server) authorizeOwn(ctx context.Context, r *http.Request, action string) (context.Context, error) {
	if s.authz == nil {
		return ctx, nil
	}
	caller, _ := account.CallerOf(ctx)
	if _, err := s.authz.Authorize(r, caller, action, "*"); err != nil {
		return nil, err
	}
	return ctx, nil
}

// Own guards a handler of lambdad's own endpoints that is served outside
// this package (the metrics, the live picture, logs, profiles): with
// access control on, the request must be signed by a principal allowed
// action on "*", and a refusal is answered AWS-shaped; without, h is
// returned as it is.
func (s *Server) Own(action string, h http.Handler) http.Handler {
	if s.authz == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := w.Header().Get(requestIDHeader)
		if id == "" {
			id = uuid.New()
			w.Header()[requestIDHeader] = []string{id}
		}
		ctx, err := s.authenticate(r, id)
		if err == nil {
			ctx, err = s.authorizeOwn(ctx, r, action)
		}
		if err != nil {
			renderError(w, r, s.log, id, err)
			return
		}
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}
