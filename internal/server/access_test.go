package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/lambdad/lambdad/internal/iam"
	"github.com/lambdad/lambdad/internal/lambdatest"
	"github.com/lambdad/lambdad/internal/sandbox"
	"github.com/lambdad/lambdad/internal/server"
)

const (
	adminKey, adminSecret   = "AKIAADMIN0000000001", "admin-secret"
	readerKey, readerSecret = "AKIAREADER000000001", "reader-secret"
	tenantKey, tenantSecret = "AKIATENANTB00000001", "tenant-b-secret"
)

const credentialsJSON = `{
  "accounts": [{"id": "111111111111"}, {"id": "222222222222", "concurrencyLimit": 20, "minUnreserved": 5}],
  "principals": [
    {"accessKeyId": "AKIAADMIN0000000001", "secretAccessKey": "admin-secret", "account": "111111111111", "user": "admin",
     "policy": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["lambda:*", "lambdad:*"], "Resource": "*"}]}},
    {"accessKeyId": "AKIAREADER000000001", "secretAccessKey": "reader-secret", "account": "111111111111", "user": "reader",
     "policy": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["lambda:Get*", "lambda:List*"], "Resource": "*"}]}},
    {"accessKeyId": "AKIATENANTB00000001", "secretAccessKey": "tenant-b-secret", "account": "222222222222", "user": "tenant",
     "policy": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["lambda:*", "lambdad:GetLogs"], "Resource": "*"}]}}
  ],
  "roles": [{"arn": "arn:aws:iam::111111111111:role/r"}]
}`

func startGuarded(t *testing.T, creds string) *node {
	t.Helper()
	c, err := iam.Parse("credentials.json", []byte(creds))
	if err != nil {
		t.Fatal(err)
	}
	return start(t, server.Options{AccountID: "111111111111", Credentials: c})
}

// TestAccessControl runs the seed's case end to end with real SDK clients
// signing as three principals: a reader is refused Put and
// DeleteFunctionConcurrency with AWS's AccessDenied while an admin
// succeeds, every decision on them is in the audit trail, and a tenant of
// another account sees none of the first account's functions.
func TestAccessControl(t *testing.T) {
	n := startGuarded(t, credentialsJSON)
	admin := lambdatest.ClientWith(n.URL(), adminKey, adminSecret, "")
	reader := lambdatest.ClientWith(n.URL(), readerKey, readerSecret, "")
	tenant := lambdatest.ClientWith(n.URL(), tenantKey, tenantSecret, "")

	in := goFunctionInput(t, "f")
	in.Role = aws.String("arn:aws:iam::111111111111:role/r")
	if _, err := reader.CreateFunction(ctx, in); err == nil {
		t.Fatal("the reader created a function")
	}
	if _, err := admin.CreateFunction(ctx, in); err != nil {
		t.Fatal(err)
	}
	fn, err := reader.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("f")})
	if err != nil {
		t.Fatalf("reader GetFunction: %v", err)
	}
	// Code.Location is presigned: it works without credentials, and
	// nothing else does.
	loc := aws.ToString(fn.Code.Location)
	if r := lambdatest.Do(t, "GET", loc, nil, nil); r.Status != 200 || r.Header.Get("Content-Type") != "application/zip" {
		t.Errorf("presigned code download: %d", r.Status)
	}
	bare, _, _ := strings.Cut(loc, "?")
	for _, u := range []string{bare, strings.Replace(loc, "Signature=", "Signature=00", 1)} {
		if r := lambdatest.Do(t, "GET", u, nil, nil); r.Status != 403 {
			t.Errorf("code download %s: %d", u, r.Status)
		}
	}
	arn := "arn:aws:lambda:us-east-1:111111111111:function:f"
	_, err = reader.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("f"), ReservedConcurrentExecutions: aws.Int32(10)})
	code, msg := lambdatest.APIError(t, err)
	want := "User: arn:aws:iam::111111111111:user/reader is not authorized to perform: lambda:PutFunctionConcurrency on resource: " + arn +
		" because no identity-based policy allows the lambda:PutFunctionConcurrency action"
	if code != "AccessDeniedException" || msg != want || lambdatest.Status(t, err) != 403 {
		t.Errorf("reader Put: %s %q (%d), want %q", code, msg, lambdatest.Status(t, err), want)
	}
	_, err = reader.DeleteFunctionConcurrency(ctx, &lambda.DeleteFunctionConcurrencyInput{FunctionName: aws.String("f")})
	if code, msg := lambdatest.APIError(t, err); code != "AccessDeniedException" || !strings.Contains(msg, "lambda:DeleteFunctionConcurrency on resource: "+arn+" because") {
		t.Errorf("reader Delete: %s %s", code, msg)
	}
	if _, err := admin.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("f"), ReservedConcurrentExecutions: aws.Int32(10)}); err != nil {
		t.Errorf("admin Put: %v", err)
	}
	if _, err := admin.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("f"), ReservedConcurrentExecutions: aws.Int32(995)}); err == nil {
		t.Errorf("admin Put over the minimum was accepted")
	}
	if _, err := admin.DeleteFunctionConcurrency(ctx, &lambda.DeleteFunctionConcurrencyInput{FunctionName: aws.String("f")}); err != nil {
		t.Errorf("admin Delete: %v", err)
	}
	if _, err := reader.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("f")}); err == nil {
		t.Errorf("the reader invoked (lambda:InvokeFunction is not lambda:Get*)")
	}
	if out, err := admin.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("f"), Payload: []byte(`{}`)}); err != nil || out.FunctionError != nil {
		t.Errorf("admin Invoke: %v", err)
	}

	// The audit trail has every decision, newest first, with who and from
	// where; only the admin may read it.
	auditReq, _ := http.NewRequest("GET", n.URL()+"/lambdad/audit", nil)
	sign(t, auditReq, readerKey, readerSecret, time.Now())
	if r := send(t, auditReq); r.StatusCode != 403 {
		t.Errorf("reader reading the audit trail: %d", r.StatusCode)
	}
	auditReq, _ = http.NewRequest("GET", n.URL()+"/lambdad/audit", nil)
	sign(t, auditReq, adminKey, adminSecret, time.Now())
	r := send(t, auditReq)
	var page struct {
		Records []struct {
			Operation, Principal, SourceIP, Decision, Error string
			New                                             *int
		}
	}
	if err := json.NewDecoder(r.Body).Decode(&page); err != nil {
		t.Fatal(err)
	}
	type rec struct{ op, who, decision, err string }
	var got []rec
	for _, p := range page.Records {
		if p.SourceIP != "127.0.0.1" {
			t.Errorf("record without the source address: %+v", p)
		}
		got = append(got, rec{p.Operation, strings.TrimPrefix(p.Principal, "arn:aws:iam::111111111111:user/"), p.Decision, p.Error})
	}
	wantRecs := []rec{
		{"DeleteFunctionConcurrency", "admin", "Allow", ""},
		{"PutFunctionConcurrency", "admin", "Allow", "InvalidParameterValueException"},
		{"PutFunctionConcurrency", "admin", "Allow", ""},
		{"DeleteFunctionConcurrency", "reader", "Deny", "AccessDeniedException"},
		{"PutFunctionConcurrency", "reader", "Deny", "AccessDeniedException"},
	}
	if len(got) != len(wantRecs) {
		t.Fatalf("audit: %+v, want %+v", got, wantRecs)
	}
	for i := range got {
		if got[i] != wantRecs[i] {
			t.Errorf("audit[%d] = %+v, want %+v", i, got[i], wantRecs[i])
		}
	}

	// lambdad's other endpoints need a signed request allowed their
	// lambdad: action too.
	for _, path := range []string{"/lambdad/metrics", "/lambdad/concurrency", "/lambdad/functions/f/logs"} {
		if r := lambdatest.Do(t, "GET", n.URL()+path, nil, nil); r.Status != 403 {
			t.Errorf("unsigned %s: %d", path, r.Status)
		}
		req, _ := http.NewRequest("GET", n.URL()+path, nil)
		sign(t, req, readerKey, readerSecret, time.Now())
		if r := send(t, req); r.StatusCode != 403 {
			t.Errorf("reader %s: %d", path, r.StatusCode)
		}
		req, _ = http.NewRequest("GET", n.URL()+path, nil)
		sign(t, req, adminKey, adminSecret, time.Now())
		if r := send(t, req); r.StatusCode != 200 {
			t.Errorf("admin %s: %d", path, r.StatusCode)
		}
	}

	// The tenant's logs are its own account's: account 1's f logged, the
	// tenant's f does not exist.
	logsOf := func(key, secret string) string {
		req, _ := http.NewRequest("GET", n.URL()+"/lambdad/functions/f/logs", nil)
		sign(t, req, key, secret, time.Now())
		r := send(t, req)
		b, _ := io.ReadAll(r.Body)
		if r.StatusCode != 200 {
			t.Errorf("logs as %s: %d %s", key, r.StatusCode, b)
		}
		return string(b)
	}
	if !strings.Contains(logsOf(adminKey, adminSecret), "START RequestId") {
		t.Errorf("account 1's f has no log")
	}
	if l := logsOf(tenantKey, tenantSecret); l != "" {
		t.Errorf("the tenant read account 1's log: %q", l)
	}

	// The other account's tenant sees nothing of account 1.
	list, err := tenant.ListFunctions(ctx, &lambda.ListFunctionsInput{})
	if err != nil || len(list.Functions) != 0 {
		t.Errorf("tenant's functions: %+v %v", list, err)
	}
	_, err = tenant.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("f")})
	if code, msg := lambdatest.APIError(t, err); code != "ResourceNotFoundException" || !strings.Contains(msg, "222222222222:function:f") {
		t.Errorf("tenant GetFunction by name: %s %s", code, msg)
	}
	_, err = tenant.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(arn)})
	if code, msg := lambdatest.APIError(t, err); code != "AccessDeniedException" ||
		msg != "User: arn:aws:iam::222222222222:user/tenant is not authorized to perform: lambda:GetFunction on resource: "+arn+" because no resource-based policy allows the lambda:GetFunction action" {
		t.Errorf("tenant GetFunction by account 1's ARN: %s %s", code, msg)
	}
	_, err = tenant.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String(arn), ReservedConcurrentExecutions: aws.Int32(1)})
	if code, _ := lambdatest.APIError(t, err); code != "AccessDeniedException" {
		t.Errorf("tenant Put on account 1's function: %v", err)
	}
	if s := settingsOf(t, tenant); s.AccountLimit.ConcurrentExecutions != 20 {
		t.Errorf("tenant's limit: %d", s.AccountLimit.ConcurrentExecutions)
	}

	// STS answers who each caller is.
	for _, c := range []struct{ key, secret, acct, arn string }{
		{adminKey, adminSecret, "111111111111", "arn:aws:iam::111111111111:user/admin"},
		{tenantKey, tenantSecret, "222222222222", "arn:aws:iam::222222222222:user/tenant"},
	} {
		id, err := lambdatest.STSClient(n.URL(), c.key, c.secret).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if err != nil || aws.ToString(id.Account) != c.acct || aws.ToString(id.Arn) != c.arn || !strings.HasPrefix(aws.ToString(id.UserId), "AIDA") {
			t.Errorf("GetCallerIdentity as %s: %+v %v", c.key, id, err)
		}
	}
	_, err = lambdatest.STSClient(n.URL(), adminKey, "wrong").GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if code, _ := lambdatest.APIError(t, err); code != "SignatureDoesNotMatch" {
		t.Errorf("GetCallerIdentity with a wrong secret: %v", err)
	}
}

// TestAuthentication checks the refusals of requests that are not
// properly signed, each with AWS's status, code and message.
func TestAuthentication(t *testing.T) {
	n := startGuarded(t, credentialsJSON)
	admin := lambdatest.ClientWith(n.URL(), adminKey, adminSecret, "")
	in := goFunctionInput(t, "f")
	in.Role = aws.String("arn:aws:iam::111111111111:role/r")
	if _, err := admin.CreateFunction(ctx, in); err != nil {
		t.Fatal(err)
	}

	_, err := lambdatest.ClientWith(n.URL(), "AKIAUNKNOWN00000001", "x", "").ListFunctions(ctx, &lambda.ListFunctionsInput{})
	if code, msg := lambdatest.APIError(t, err); code != "UnrecognizedClientException" || msg != "The security token included in the request is invalid." || lambdatest.Status(t, err) != 403 {
		t.Errorf("unknown key: %s %s", code, msg)
	}
	_, err = lambdatest.ClientWith(n.URL(), adminKey, "not-the-secret", "").ListFunctions(ctx, &lambda.ListFunctionsInput{})
	if code, msg := lambdatest.APIError(t, err); code != "InvalidSignatureException" || !strings.HasPrefix(msg, "The request signature we calculated does not match the signature you provided.") || lambdatest.Status(t, err) != 403 {
		t.Errorf("wrong secret: %s %s", code, msg)
	}

	url := n.URL() + "/2015-03-31/functions/f/configuration"
	// Unsigned.
	r := lambdatest.Do(t, "GET", url, nil, nil)
	if r.Status != 403 || r.Header.Get("X-Amzn-ErrorType") != "MissingAuthenticationTokenException" || string(r.Body) != `{"message":"Missing Authentication Token"}` {
		t.Errorf("unsigned: %d %s %s", r.Status, r.Header.Get("X-Amzn-ErrorType"), r.Body)
	}
	// Signed ten minutes ago.
	req, _ := http.NewRequest("GET", url, nil)
	sign(t, req, adminKey, adminSecret, time.Now().Add(-10*time.Minute))
	resp := send(t, req)
	var body map[string]string
	json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != 403 || resp.Header.Get("X-Amzn-ErrorType") != "InvalidSignatureException" || !strings.HasPrefix(body["message"], "Signature expired: ") {
		t.Errorf("expired: %d %v", resp.StatusCode, body)
	}
	// Tampered after signing: the body of a Put.
	req, _ = http.NewRequest("PUT", n.URL()+"/2017-10-31/functions/f/concurrency", strings.NewReader(`{"ReservedConcurrentExecutions":1}`))
	sign(t, req, adminKey, adminSecret, time.Now())
	req.Body = http.NoBody
	req.Body = ioNopCloser(`{"ReservedConcurrentExecutions":9}`)
	if resp := send(t, req); resp.StatusCode != 403 || resp.Header.Get("X-Amzn-ErrorType") != "InvalidSignatureException" {
		t.Errorf("tampered body: %d %s", resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"))
	}
	// Presigned by the SDK, fetched with a plain GET.
	req, _ = http.NewRequest("GET", url+"?X-Amz-Expires=60", nil)
	u, _, err := v4.NewSigner().PresignHTTP(context.Background(), aws.Credentials{AccessKeyID: adminKey, SecretAccessKey: adminSecret},
		req, emptyHash, "lambda", "us-east-1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if r := lambdatest.Do(t, "GET", u, nil, nil); r.Status != 200 || !strings.Contains(string(r.Body), `"FunctionName":"f"`) {
		t.Errorf("presigned: %d %s", r.Status, r.Body)
	}
	req, _ = http.NewRequest("GET", url+"?X-Amz-Expires=60", nil)
	u, _, _ = v4.NewSigner().PresignHTTP(context.Background(), aws.Credentials{AccessKeyID: adminKey, SecretAccessKey: adminSecret},
		req, emptyHash, "lambda", "us-east-1", time.Now().Add(-2*time.Minute))
	if r := lambdatest.Do(t, "GET", u, nil, nil); r.Status != 403 || !strings.Contains(string(r.Body), "Signature expired") {
		t.Errorf("presigned, expired: %d %s", r.Status, r.Body)
	}
}

// TestResourcePolicies checks AddPermission, GetPolicy and
// RemovePermission with AWS's answers, and IAM's cross-account rule:
// another account may invoke a function only once its resource policy
// grants that account, and only the function, version or alias granted.
func TestResourcePolicies(t *testing.T) {
	n := startGuarded(t, credentialsJSON)
	admin := lambdatest.ClientWith(n.URL(), adminKey, adminSecret, "")
	tenant := lambdatest.ClientWith(n.URL(), tenantKey, tenantSecret, "")
	in := goFunctionInput(t, "f")
	in.Role = aws.String("arn:aws:iam::111111111111:role/r")
	in.Publish = true
	if _, err := admin.CreateFunction(ctx, in); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String("f"), Name: aws.String("live"), FunctionVersion: aws.String("1")}); err != nil {
		t.Fatal(err)
	}
	arn := "arn:aws:lambda:us-east-1:111111111111:function:f"
	invoke := func(name string) error {
		_, err := tenant.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(name), Payload: []byte(`{}`)})
		return err
	}
	err := invoke(arn)
	if code, msg := lambdatest.APIError(t, err); code != "AccessDeniedException" || !strings.Contains(msg, "lambda:InvokeFunction on resource: "+arn+" because no resource-based policy allows") {
		t.Errorf("before AddPermission: %s %s", code, msg)
	}
	_, err = admin.GetPolicy(ctx, &lambda.GetPolicyInput{FunctionName: aws.String("f")})
	if code, _ := lambdatest.APIError(t, err); code != "ResourceNotFoundException" {
		t.Errorf("GetPolicy with none: %v", err)
	}
	// The tenant may not grant itself access.
	_, err = tenant.AddPermission(ctx, &lambda.AddPermissionInput{FunctionName: aws.String(arn), StatementId: aws.String("b"),
		Action: aws.String("lambda:InvokeFunction"), Principal: aws.String("222222222222")})
	if code, _ := lambdatest.APIError(t, err); code != "AccessDeniedException" {
		t.Errorf("tenant AddPermission on account 1's function: %v", err)
	}
	out, err := admin.AddPermission(ctx, &lambda.AddPermissionInput{FunctionName: aws.String("f"), StatementId: aws.String("b"),
		Action: aws.String("lambda:InvokeFunction"), Principal: aws.String("222222222222")})
	if err != nil {
		t.Fatal(err)
	}
	wantSt := `{"Sid":"b","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::222222222222:root"},"Action":"lambda:InvokeFunction","Resource":"` + arn + `"}`
	if aws.ToString(out.Statement) != wantSt {
		t.Errorf("statement %s, want %s", aws.ToString(out.Statement), wantSt)
	}
	if err := invoke(arn); err != nil {
		t.Errorf("after AddPermission: %v", err)
	}
	// The grant is for invoking the function, nothing else, and not its
	// alias.
	if _, err := tenant.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(arn)}); err == nil {
		t.Errorf("the tenant read the function")
	}
	if code, _ := lambdatest.APIError(t, invoke(arn+":live")); code != "AccessDeniedException" {
		t.Errorf("invoking the alias with the function's grant")
	}
	if _, err := admin.AddPermission(ctx, &lambda.AddPermissionInput{FunctionName: aws.String("f"), Qualifier: aws.String("live"), StatementId: aws.String("b"),
		Action: aws.String("lambda:InvokeFunction"), Principal: aws.String("arn:aws:iam::222222222222:user/tenant")}); err != nil {
		t.Fatal(err)
	}
	if err := invoke(arn + ":live"); err != nil {
		t.Errorf("invoking the alias after its grant: %v", err)
	}

	_, err = admin.AddPermission(ctx, &lambda.AddPermissionInput{FunctionName: aws.String("f"), StatementId: aws.String("b"),
		Action: aws.String("lambda:GetFunction"), Principal: aws.String("222222222222")})
	if code, msg := lambdatest.APIError(t, err); code != "ResourceConflictException" || !strings.Contains(msg, "(b) provided already exists") {
		t.Errorf("duplicate statement id: %s %s", code, msg)
	}
	_, err = admin.AddPermission(ctx, &lambda.AddPermissionInput{FunctionName: aws.String("f:$LATEST"), StatementId: aws.String("x"),
		Action: aws.String("lambda:InvokeFunction"), Principal: aws.String("222222222222")})
	if code, _ := lambdatest.APIError(t, err); code != "InvalidParameterValueException" {
		t.Errorf("AddPermission on $LATEST: %v", err)
	}
	pol, err := admin.GetPolicy(ctx, &lambda.GetPolicyInput{FunctionName: aws.String("f")})
	if err != nil || aws.ToString(pol.Policy) != `{"Version":"2012-10-17","Id":"default","Statement":[`+wantSt+`]}` || aws.ToString(pol.RevisionId) == "" {
		t.Errorf("GetPolicy: %+v %v", pol, err)
	}
	_, err = admin.RemovePermission(ctx, &lambda.RemovePermissionInput{FunctionName: aws.String("f"), StatementId: aws.String("b"), RevisionId: aws.String("stale")})
	if code, _ := lambdatest.APIError(t, err); code != "PreconditionFailedException" {
		t.Errorf("RemovePermission with a stale revision: %v", err)
	}
	if _, err := admin.RemovePermission(ctx, &lambda.RemovePermissionInput{FunctionName: aws.String("f"), StatementId: aws.String("b"), RevisionId: pol.RevisionId}); err != nil {
		t.Fatal(err)
	}
	_, err = admin.RemovePermission(ctx, &lambda.RemovePermissionInput{FunctionName: aws.String("f:live"), StatementId: aws.String("nope")})
	if code, msg := lambdatest.APIError(t, err); code != "ResourceNotFoundException" || msg != "Statement nope is not found in resource policy." {
		t.Errorf("removing an unknown statement: %s %s", code, msg)
	}
	if code, _ := lambdatest.APIError(t, invoke(arn)); code != "AccessDeniedException" {
		t.Errorf("invoking after RemovePermission")
	}
	// Deleting the alias drops its policy; an alias made again under the
	// name starts without one.
	admin.DeleteAlias(ctx, &lambda.DeleteAliasInput{FunctionName: aws.String("f"), Name: aws.String("live")})
	admin.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String("f"), Name: aws.String("live"), FunctionVersion: aws.String("1")})
	if code, _ := lambdatest.APIError(t, invoke(arn+":live")); code != "AccessDeniedException" {
		t.Errorf("the new alias kept the old one's grant")
	}
}

// roleCredentials has two roles: "caller" may invoke the functions named
// callee*, "none" may do nothing.
const roleCredentials = `{
  "accounts": [{"id": "111111111111"}],
  "principals": [
    {"accessKeyId": "AKIAADMIN0000000001", "secretAccessKey": "admin-secret", "account": "111111111111", "user": "admin",
     "policy": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["lambda:*", "lambdad:*"], "Resource": "*"}]}}],
  "roles": [
    {"arn": "arn:aws:iam::111111111111:role/caller",
     "policy": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": "arn:aws:lambda:*:111111111111:function:callee*"}]}},
    {"arn": "arn:aws:iam::111111111111:role/none"}]
}`

// callerPy invokes event["target"] with boto3 and the credentials and
// endpoint its environment gives it, and reports the outcome.
const callerPy = `import os, boto3
from botocore.config import Config

def handler(event, context):
    client = boto3.client("lambda", config=Config(retries={"max_attempts": 1}))
    who = boto3.client("sts", endpoint_url=os.environ["AWS_ENDPOINT_URL_LAMBDA"]).get_caller_identity()["Arn"]
    try:
        r = client.invoke(FunctionName=event["target"], Payload=b'{"echo": "from python"}')
        return {"ok": True, "payload": r["Payload"].read().decode(), "who": who}
    except client.exceptions.ClientError as e:
        return {"ok": False, "code": e.response["Error"]["Code"], "message": e.response["Error"]["Message"], "who": who}
`

// TestFunctionCredentials runs a Python function that uses boto3 inside
// itself to invoke other functions on this server with the temporary
// credentials of its execution role: allowed where the role's policy
// allows, refused with AWS's AccessDenied where it does not.
func TestFunctionCredentials(t *testing.T) {
	requireTool(t, "python3")
	if err := exec.Command("python3", "-c", "import boto3").Run(); err != nil {
		if os.Getenv("LAMBDAD_REQUIRE_E2E") != "" {
			t.Fatal("boto3 is not installed for python3 and LAMBDAD_REQUIRE_E2E is set")
		}
		t.Skip("boto3 is not installed for python3")
	}
	creds, err := iam.Parse("credentials.json", []byte(roleCredentials))
	if err != nil {
		t.Fatal(err)
	}
	t.Run("unsandboxed", func(t *testing.T) {
		n := start(t, server.Options{AccountID: "111111111111", Credentials: creds})
		functionCredentials(t, n, n.URL())
	})
	// In a sandbox the server's own address is not reachable: the
	// environment has the server's API on an address of its own.
	t.Run("sandboxed", func(t *testing.T) {
		if missing := sandbox.Check(sandbox.Full); len(missing) > 0 {
			lambdatest.RequireE2E(t, sandbox.Report(sandbox.Full, missing))
		}
		n := start(t, server.Options{AccountID: "111111111111", Credentials: creds, Sandbox: sandbox.Full})
		functionCredentials(t, n, "http://"+sandbox.LambdaAPIAddr)
	})
}

func functionCredentials(t *testing.T, n *node, endpoint string) {
	admin := lambdatest.ClientWith(n.URL(), adminKey, adminSecret, "")
	for _, f := range []struct{ name, role string }{{"callee", ""}, {"other", ""}} {
		in := goFunctionInput(t, f.name)
		in.Role = aws.String("arn:aws:iam::111111111111:role/none")
		if _, err := admin.CreateFunction(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []struct{ name, role string }{{"caller", "caller"}, {"powerless", "none"}} {
		_, err := admin.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String(f.name),
			Runtime: types.RuntimePython312, Handler: aws.String("app.handler"), Timeout: aws.Int32(30),
			Role: aws.String("arn:aws:iam::111111111111:role/" + f.role),
			Code: &types.FunctionCode{ZipFile: lambdatest.Zip(t, map[string]string{"app.py": callerPy})}})
		if err != nil {
			t.Fatal(err)
		}
	}
	call := func(fn, target string) map[string]any {
		t.Helper()
		out, err := admin.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(fn), Payload: []byte(`{"target":"` + target + `"}`)})
		if err != nil || out.FunctionError != nil {
			t.Fatalf("%s → %s: %v %s", fn, target, err, out.Payload)
		}
		var m map[string]any
		json.Unmarshal(out.Payload, &m)
		return m
	}
	if r := call("caller", "callee"); r["ok"] != true || !strings.Contains(r["payload"].(string), "from python") ||
		!strings.HasPrefix(r["who"].(string), "arn:aws:sts::111111111111:assumed-role/caller/caller") {
		t.Errorf("caller → callee: %v", r)
	}
	r := call("caller", "other")
	if want := "User: arn:aws:sts::111111111111:assumed-role/caller/caller is not authorized to perform: lambda:InvokeFunction on resource: arn:aws:lambda:us-east-1:111111111111:function:other because no identity-based policy allows the lambda:InvokeFunction action"; r["ok"] != false || r["code"] != "AccessDeniedException" || r["message"] != want {
		t.Errorf("caller → other: %v", r)
	}
	if r := call("powerless", "callee"); r["ok"] != false || r["code"] != "AccessDeniedException" {
		t.Errorf("powerless → callee: %v", r)
	}
	// The function's credentials are temporary ones of its role, not the
	// server's or a user's.
	out, err := admin.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("callee"), Payload: []byte(`{"env":true}`)})
	if err != nil {
		t.Fatal(err)
	}
	env := decode(t, out).Env
	if !strings.HasPrefix(env["AWS_ACCESS_KEY_ID"], "ASIA") || env["AWS_SECRET_ACCESS_KEY"] == "" || env["AWS_SESSION_TOKEN"] == "" || env["AWS_ENDPOINT_URL_LAMBDA"] != endpoint {
		t.Errorf("callee's environment: %v", env)
	}
}

// TestPlaceholderCredentials checks that without access control functions
// get placeholder credentials that the server accepts, and the endpoint.
func TestPlaceholderCredentials(t *testing.T) {
	n := start(t, server.Options{})
	n.createGo(t, "f")
	out, err := n.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("f"), Payload: []byte(`{"env":true}`)})
	if err != nil {
		t.Fatal(err)
	}
	env := decode(t, out).Env
	if env["AWS_ACCESS_KEY_ID"] != iam.PlaceholderAccessKeyID || env["AWS_ENDPOINT_URL_LAMBDA"] != n.URL() {
		t.Errorf("environment: %v", env)
	}
	c := lambdatest.ClientWith(n.URL(), env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], env["AWS_SESSION_TOKEN"])
	if _, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("f")}); err != nil {
		t.Errorf("the placeholder credentials are refused: %v", err)
	}
}

// TestIAMFunctionURL calls a function URL whose AuthType is AWS_IAM: an
// unsigned request and a principal without lambda:InvokeFunctionUrl are
// refused with AWS's 403, a principal allowed it gets the function's
// answer, and another account's principal needs the function's resource
// policy too.
func TestIAMFunctionURL(t *testing.T) {
	n := startGuarded(t, credentialsJSON)
	admin := lambdatest.ClientWith(n.URL(), adminKey, adminSecret, "")
	in := goFunctionInput(t, "urlfn")
	in.Role = aws.String("arn:aws:iam::111111111111:role/r")
	if _, err := admin.CreateFunction(ctx, in); err != nil {
		t.Fatal(err)
	}
	u, err := admin.CreateFunctionUrlConfig(ctx, &lambda.CreateFunctionUrlConfigInput{FunctionName: aws.String("urlfn"), AuthType: types.FunctionUrlAuthTypeAwsIam})
	if err != nil {
		t.Fatal(err)
	}
	_, host, _ := strings.Cut(aws.ToString(u.FunctionUrl), "://")
	id, _, _ := strings.Cut(host, ".")
	call := func(key, secret string) *http.Response {
		req, err := http.NewRequest("POST", n.URL()+"/lambda-url/"+id+"/", strings.NewReader(`{"echo":"hi"}`))
		if err != nil {
			t.Fatal(err)
		}
		if key != "" {
			sign(t, req, key, secret, time.Now())
		}
		return send(t, req)
	}
	for _, c := range []struct {
		who, key, secret string
		want             int
	}{
		{"unsigned", "", "", 403},
		{"the reader (no lambda:InvokeFunctionUrl)", readerKey, readerSecret, 403},
		{"the tenant of another account, without a resource policy", tenantKey, tenantSecret, 403},
		{"a wrong secret", adminKey, "wrong", 403},
		{"the admin", adminKey, adminSecret, 200},
	} {
		r := call(c.key, c.secret)
		body, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode != c.want {
			t.Errorf("%s: %d %s, want %d", c.who, r.StatusCode, body, c.want)
		}
		if c.want == 200 && !strings.Contains(string(body), `"request_id"`) {
			t.Errorf("%s: %s", c.who, body)
		}
	}
	// With the function's resource policy granting the other account, its
	// principal gets through.
	if _, err := admin.AddPermission(ctx, &lambda.AddPermissionInput{FunctionName: aws.String("urlfn"), StatementId: aws.String("b"),
		Action: aws.String("lambda:InvokeFunctionUrl"), Principal: aws.String("222222222222"), FunctionUrlAuthType: types.FunctionUrlAuthTypeAwsIam}); err != nil {
		t.Fatal(err)
	}
	if r := call(tenantKey, tenantSecret); r.StatusCode != 200 {
		body, _ := io.ReadAll(r.Body)
		t.Errorf("the tenant after AddPermission: %d %s", r.StatusCode, body)
	}
}

// TestConsoleSessions checks the console's sessions on the wire: a sign-in
// with a wrong secret is refused; a good one sets an HttpOnly,
// SameSite=Strict cookie; with the cookie a read acts as the principal; a
// change needs the page's CSRF token besides the cookie; after sign-out
// the cookie is worth nothing.
func TestConsoleSessions(t *testing.T) {
	n := startGuarded(t, credentialsJSON)
	admin := lambdatest.ClientWith(n.URL(), adminKey, adminSecret, "")
	in := goFunctionInput(t, "f")
	in.Role = aws.String("arn:aws:iam::111111111111:role/r")
	if _, err := admin.CreateFunction(ctx, in); err != nil {
		t.Fatal(err)
	}
	signIn := func(secret string) *http.Response {
		req, _ := http.NewRequest("POST", n.URL()+"/lambdad/console/signin", strings.NewReader(`{"accessKeyId":"`+adminKey+`","secretAccessKey":"`+secret+`"}`))
		req.Header.Set("Content-Type", "application/json")
		return send(t, req)
	}
	if r := signIn("wrong"); r.StatusCode != 403 || len(r.Cookies()) != 0 {
		t.Fatalf("a wrong secret: %d, cookies %v", r.StatusCode, r.Cookies())
	}
	r := signIn(adminSecret)
	if r.StatusCode != 200 || len(r.Cookies()) != 1 {
		t.Fatalf("sign-in: %d %v", r.StatusCode, r.Cookies())
	}
	cookie := r.Cookies()[0]
	if cookie.Name != iam.SessionCookie || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode {
		t.Errorf("the session cookie: %+v", cookie)
	}
	do := func(method, path, body string, headers map[string]string) *http.Response {
		req, _ := http.NewRequest(method, n.URL()+path, strings.NewReader(body))
		req.AddCookie(cookie)
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		return send(t, req)
	}
	if r := do("GET", "/2015-03-31/functions/f", "", nil); r.StatusCode != 200 {
		t.Errorf("a read with the session: %d", r.StatusCode)
	}
	page := do("GET", "/", "", map[string]string{"Accept": "text/html"})
	b, _ := io.ReadAll(page.Body)
	_, rest, _ := strings.Cut(string(b), `name="lambdad-csrf" content="`)
	csrf, _, _ := strings.Cut(rest, `"`)
	if len(csrf) != 32 || !strings.Contains(string(b), "user/admin") {
		t.Fatalf("the page's CSRF token %q; page names the principal: %v", csrf, strings.Contains(string(b), "user/admin"))
	}
	put := func(headers map[string]string) int {
		return do("PUT", "/2017-10-31/functions/f/concurrency", `{"ReservedConcurrentExecutions":3}`, headers).StatusCode
	}
	if s := put(nil); s != 403 {
		t.Errorf("a change with the cookie alone: %d, want 403", s)
	}
	if s := put(map[string]string{iam.CSRFHeader: "0123456789abcdef0123456789abcdef"}); s != 403 {
		t.Errorf("a change with a wrong CSRF token: %d, want 403", s)
	}
	if s := put(map[string]string{iam.CSRFHeader: csrf}); s != 200 {
		t.Errorf("a change with the cookie and the page's token: %d, want 200", s)
	}
	if r := do("POST", "/lambdad/console/signout", "", map[string]string{iam.CSRFHeader: csrf}); r.StatusCode != 204 {
		t.Errorf("sign-out: %d", r.StatusCode)
	}
	if r := do("GET", "/2015-03-31/functions/f", "", nil); r.StatusCode != 403 {
		t.Errorf("a read after sign-out: %d, want 403", r.StatusCode)
	}
}

// TestMetricsAreOfTheServersAccount: a function of another account that
// has the same name as one of the server's account is another function;
// its invocations do not add to the server's account's series.
func TestMetricsAreOfTheServersAccount(t *testing.T) {
	n := startGuarded(t, credentialsJSON)
	admin := lambdatest.ClientWith(n.URL(), adminKey, adminSecret, "")
	tenant := lambdatest.ClientWith(n.URL(), tenantKey, tenantSecret, "")
	in := goFunctionInput(t, "f")
	in.Role = aws.String("arn:aws:iam::111111111111:role/r")
	if _, err := admin.CreateFunction(ctx, in); err != nil {
		t.Fatal(err)
	}
	in = goFunctionInput(t, "f")
	in.Role = aws.String("arn:aws:iam::222222222222:role/r")
	if _, err := tenant.CreateFunction(ctx, in); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("f"), Payload: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := tenant.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("f"), Payload: []byte(`{"fail":"tenant"}`)}); err != nil {
			t.Fatal(err)
		}
	}
	req, _ := http.NewRequest("GET", n.URL()+"/lambdad/metrics", nil)
	sign(t, req, adminKey, adminSecret, time.Now())
	r := send(t, req)
	defer r.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	if got := value(fams, "lambdad_invocations_total", "function", "f"); got != 1 {
		t.Errorf("the server's account's f: %v invocations, want 1 (the tenant's f ran 3 times)", got)
	}
	if got := value(fams, "lambdad_errors_total", "function", "f"); got != 0 {
		t.Errorf("the server's account's f: %v errors, want 0", got)
	}
}
