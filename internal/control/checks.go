package control

import (
	"context"
	"strings"

	"github.com/lambdad/lambdad/internal/awserr"
	"github.com/lambdad/lambdad/internal/function"
)

// checkRuntime refuses a runtime AWS no longer accepts, one outside AWS's
// list, one lambdad does not run, and one whose interpreter this machine
// lacks: a function stored with any of them would fail every invocation.
func (s *Service) checkRuntime(runtime string) error {
	return function.CheckRuntime(runtime, s.opts.LookPath)
}

// checkRole refuses an execution role of another account than the
// caller's. AWS answers this with 403 AccessDeniedException "Cross-account
// pass role is not allowed." (seen from the AWS SDKs for Java, JavaScript
// and others on CreateFunction); the body key follows Lambda's other
// AccessDeniedException answers, {"Message": ...}, with no Type.
func (s *Service) checkRole(ctx context.Context, role string) error {
	if account, ok := roleAccount(role); ok && account != s.account(ctx) {
		return awserr.NoType(awserr.AccessDenied, "Cross-account pass role is not allowed.")
	}
	return nil
}

// roleAccount is the account of a role ARN of the model's form,
// arn:<partition>:iam::<12 digits>:role/<name>.
func roleAccount(role string) (string, bool) {
	_, rest, ok := strings.Cut(role, ":iam::")
	if !ok || len(rest) < 13 || rest[12] != ':' {
		return "", false
	}
	return rest[:12], true
}
