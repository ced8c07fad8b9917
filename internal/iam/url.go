package iam

import (
	"net/http"

	"github.com/lambdad/lambdad/internal/function"
)

// AuthorizeURL decides a request to a function URL whose AuthType is
// AWS_IAM, as AWS's URL front end does: its SigV4 signature, then
// lambda:InvokeFunctionUrl on the function (the alias, for an alias's URL)
// by IAM's rules, so that another account also needs the function's
// resource policy. region is the server's.
func (g *Guard) AuthorizeURL(r *http.Request, region, account string, u *function.URLConfig) error {
	caller, err := g.Authenticate(r)
	if err != nil {
		return err
	}
	arn := "arn:aws:lambda:" + region + ":" + account + ":function:" + u.Function
	if u.Qualifier != "" {
		arn += ":" + u.Qualifier
	}
	// lambda:FunctionUrlAuthType is what AddPermission's FunctionUrlAuthType
	// conditions a statement on.
	keys := map[string]string{"lambda:functionurlauthtype": u.AuthType}
	return g.decide(r.Context(), r, caller, "lambda:InvokeFunctionUrl", arn, keys).Err
}
