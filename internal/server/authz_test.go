package server_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/lambdad/lambdad/internal/lambdatest"
)

const (
	operatorKey, operatorSecret = "AKIAOPERATOR0000001", "operator-secret"
)

// denyCredentials have an admin, a tenant of another account, and an
// operator who may do everything but change concurrency (an explicit
// deny).
const denyCredentials = `{
  "accounts": [{"id": "111111111111"}, {"id": "222222222222"}],
  "principals": [
    {"accessKeyId": "AKIAADMIN0000000001", "secretAccessKey": "admin-secret", "account": "111111111111", "user": "admin",
     "policy": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "lambda:*", "Resource": "*"}]}},
    {"accessKeyId": "AKIAOPERATOR0000001", "secretAccessKey": "operator-secret", "account": "111111111111", "user": "operator",
     "policy": {"Version": "2012-10-17", "Statement": [
       {"Effect": "Allow", "Action": "lambda:*", "Resource": "*"},
       {"Effect": "Deny", "Action": ["lambda:PutFunctionConcurrency", "lambda:DeleteFunctionConcurrency"], "Resource": "*"}]}},
    {"accessKeyId": "AKIATENANTB00000001", "secretAccessKey": "tenant-b-secret", "account": "222222222222", "user": "tenant",
     "policy": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "lambda:*", "Resource": "*"}]}}
  ],
  "roles": [{"arn": "arn:aws:iam::111111111111:role/r"}]
}`

// TestExplicitDenyAndVersionGrants checks, with SDK clients on the wire,
// the explicit deny of an identity policy (AWS's message naming it, on
// both of the seed's operations, while the rest of lambda:* stays
// allowed), AddPermission's RevisionId precondition, and a grant to
// another account on one version only.
func TestExplicitDenyAndVersionGrants(t *testing.T) {
	n := startGuarded(t, denyCredentials)
	admin := lambdatest.ClientWith(n.URL(), adminKey, adminSecret, "")
	operator := lambdatest.ClientWith(n.URL(), operatorKey, operatorSecret, "")
	tenant := lambdatest.ClientWith(n.URL(), tenantKey, tenantSecret, "")
	in := goFunctionInput(t, "f")
	in.Role = aws.String("arn:aws:iam::111111111111:role/r")
	in.Publish = true
	if _, err := operator.CreateFunction(ctx, in); err != nil {
		t.Fatalf("the operator's CreateFunction: %v", err)
	}
	arn := "arn:aws:lambda:us-east-1:111111111111:function:f"
	_, err := operator.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("f"), ReservedConcurrentExecutions: aws.Int32(5)})
	wantAPIError(t, "the operator's PutFunctionConcurrency", err, "AccessDeniedException", 403,
		"User: arn:aws:iam::111111111111:user/operator is not authorized to perform: lambda:PutFunctionConcurrency on resource: "+arn+
			" with an explicit deny in an identity-based policy")
	_, err = operator.DeleteFunctionConcurrency(ctx, &lambda.DeleteFunctionConcurrencyInput{FunctionName: aws.String("f")})
	wantAPIError(t, "the operator's DeleteFunctionConcurrency", err, "AccessDeniedException", 403,
		"User: arn:aws:iam::111111111111:user/operator is not authorized to perform: lambda:DeleteFunctionConcurrency on resource: "+arn+
			" with an explicit deny in an identity-based policy")
	if _, err := operator.GetFunctionConcurrency(ctx, &lambda.GetFunctionConcurrencyInput{FunctionName: aws.String("f")}); err != nil {
		t.Errorf("the operator's GetFunctionConcurrency: %v", err)
	}
	if _, err := admin.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("f"), ReservedConcurrentExecutions: aws.Int32(5)}); err != nil {
		t.Errorf("the admin's PutFunctionConcurrency: %v", err)
	}

	// A grant on version 1 lets the other account invoke version 1, and
	// neither the function as a whole nor $LATEST.
	invoke := func(name string) error {
		_, err := tenant.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(name), Payload: []byte(`{}`)})
		return err
	}
	if _, err := admin.AddPermission(ctx, &lambda.AddPermissionInput{FunctionName: aws.String("f"), Qualifier: aws.String("1"),
		StatementId: aws.String("v1"), Action: aws.String("lambda:InvokeFunction"), Principal: aws.String("222222222222"),
		RevisionId: aws.String("stale")}); err == nil {
		t.Errorf("AddPermission with a stale RevisionId was accepted")
	} else {
		wantAPIError(t, "AddPermission with a stale RevisionId", err, "PreconditionFailedException", 412, "")
	}
	if _, err := admin.AddPermission(ctx, &lambda.AddPermissionInput{FunctionName: aws.String("f"), Qualifier: aws.String("1"),
		StatementId: aws.String("v1"), Action: aws.String("lambda:InvokeFunction"), Principal: aws.String("222222222222")}); err != nil {
		t.Fatal(err)
	}
	pol, err := admin.GetPolicy(ctx, &lambda.GetPolicyInput{FunctionName: aws.String("f"), Qualifier: aws.String("1")})
	if err != nil || aws.ToString(pol.RevisionId) == "" {
		t.Fatalf("GetPolicy of version 1: %+v %v", pol, err)
	}
	if _, err := admin.AddPermission(ctx, &lambda.AddPermissionInput{FunctionName: aws.String("f"), Qualifier: aws.String("1"),
		StatementId: aws.String("v1b"), Action: aws.String("lambda:GetFunction"), Principal: aws.String("222222222222"),
		RevisionId: pol.RevisionId}); err != nil {
		t.Errorf("AddPermission with the current RevisionId: %v", err)
	}
	if err := invoke(arn + ":1"); err != nil {
		t.Errorf("the tenant invoking version 1: %v", err)
	}
	for _, q := range []string{"", ":$LATEST"} {
		wantAPIError(t, "the tenant invoking "+arn+q, invoke(arn+q), "AccessDeniedException", 403, "")
	}
	if _, err := admin.GetPolicy(ctx, &lambda.GetPolicyInput{FunctionName: aws.String("f")}); err == nil {
		t.Errorf("the function as a whole has a policy: the grant was on version 1")
	}
	// A principal's own account's function by name is its own: the
	// tenant's "f" does not exist, whatever account 1 granted.
	_, err = tenant.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("f")})
	wantAPIError(t, "the tenant's GetFunction of f", err, "ResourceNotFoundException", 404, "")
	// The deny is of the operator's identity: a function's resource
	// policy cannot undo it.
	if _, err := admin.AddPermission(ctx, &lambda.AddPermissionInput{FunctionName: aws.String("f"), StatementId: aws.String("op"),
		Action: aws.String("lambda:PutFunctionConcurrency"), Principal: aws.String("arn:aws:iam::111111111111:user/operator")}); err != nil {
		// AWS accepts only some actions in a function policy; lambdad
		// may refuse this one, and then there is nothing to undo.
		if code, _ := lambdatest.APIError(t, err); code != "InvalidParameterValueException" {
			t.Errorf("AddPermission for the operator: %v", err)
		}
	}
	_, err = operator.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("f"), ReservedConcurrentExecutions: aws.Int32(3)})
	wantAPIError(t, "the operator's PutFunctionConcurrency after a resource grant", err, "AccessDeniedException", 403, "")
}

// TestFunctionSetsItsEndpoint checks that a function which sets
// AWS_ENDPOINT_URL_LAMBDA itself keeps its value, and that a function's
// environment holds none of the server's own.
func TestFunctionSetsItsEndpoint(t *testing.T) {
	t.Setenv("LAMBDAD_TEST_SERVER_ONLY", "server-secret-value")
	n := startGuarded(t, denyCredentials)
	admin := lambdatest.ClientWith(n.URL(), adminKey, adminSecret, "")
	in := goFunctionInput(t, "f")
	in.Role = aws.String("arn:aws:iam::111111111111:role/r")
	in.Environment = &types.Environment{Variables: map[string]string{"AWS_ENDPOINT_URL_LAMBDA": "http://127.0.0.1:1"}}
	if _, err := admin.CreateFunction(ctx, in); err != nil {
		t.Fatal(err)
	}
	out, err := admin.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("f"), Payload: []byte(`{"env":true}`)})
	if err != nil {
		t.Fatal(err)
	}
	env := decode(t, out).Env
	if env["AWS_ENDPOINT_URL_LAMBDA"] != "http://127.0.0.1:1" {
		t.Errorf("AWS_ENDPOINT_URL_LAMBDA = %q, want the function's own", env["AWS_ENDPOINT_URL_LAMBDA"])
	}
	for k, v := range env {
		if k == "LAMBDAD_TEST_SERVER_ONLY" || v == "server-secret-value" || v == adminSecret {
			t.Errorf("the function sees %s=%s", k, v)
		}
	}
	if env["AWS_ACCESS_KEY_ID"] == adminKey || env["AWS_ACCESS_KEY_ID"] == "" {
		t.Errorf("the function's key: %q", env["AWS_ACCESS_KEY_ID"])
	}
}
