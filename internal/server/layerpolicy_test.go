package server_test

import (
	"encoding/json"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/lambdad/lambdad/internal/lambdatest"
	"github.com/lambdad/lambdad/internal/server"
)

// wantAPIError fails t unless err is the AWS error code with HTTP status
// status and, when msg is not "", that message.
func wantAPIError(t *testing.T, what string, err error, code string, status int, msg string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error, want %s", what, code)
		return
	}
	gotCode, gotMsg := lambdatest.APIError(t, err)
	if gotCode != code || lambdatest.Status(t, err) != status || (msg != "" && gotMsg != msg) {
		t.Errorf("%s: %d %s %q, want %d %s %q", what, lambdatest.Status(t, err), gotCode, gotMsg, status, code, msg)
	}
}

// TestLayerVersionPolicy: AddLayerVersionPermission writes AWS's
// statements (an account as its root ARN, "*" with an organization as a
// PrincipalOrgID condition) and answers the statement with the policy's
// revision; GetLayerVersionPolicy returns the document; duplicate ids,
// stale revisions, missing versions, policies and statements get AWS's
// errors; the policy survives a restart and goes with its version.
func TestLayerVersionPolicy(t *testing.T) {
	dir := t.TempDir()
	n := start(t, server.Options{DataDir: dir})
	c := n.client
	n.publishLayer(t, "lib", map[string]string{"f": "1"})
	n.publishLayer(t, "lib", map[string]string{"f": "2"})
	const arn1 = "arn:aws:lambda:us-east-1:123456789012:layer:lib:1"

	_, err := c.GetLayerVersionPolicy(ctx, &lambda.GetLayerVersionPolicyInput{LayerName: aws.String("lib"), VersionNumber: aws.Int64(1)})
	wantAPIError(t, "policy of a version without one", err, "ResourceNotFoundException", 404, "No policy is associated with the given resource.")

	add := func(v int64, sid, principal, org, rev string) (*lambda.AddLayerVersionPermissionOutput, error) {
		in := &lambda.AddLayerVersionPermissionInput{LayerName: aws.String("lib"), VersionNumber: aws.Int64(v), StatementId: aws.String(sid),
			Action: aws.String("lambda:GetLayerVersion"), Principal: aws.String(principal)}
		if org != "" {
			in.OrganizationId = aws.String(org)
		}
		if rev != "" {
			in.RevisionId = aws.String(rev)
		}
		return c.AddLayerVersionPermission(ctx, in)
	}
	out, err := add(1, "xaccount", "210987654321", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := aws.ToString(out.Statement), `{"Sid":"xaccount","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::210987654321:root"},"Action":"lambda:GetLayerVersion","Resource":"`+arn1+`"}`; got != want {
		t.Errorf("Statement = %s\nwant        %s", got, want)
	}
	rev1 := aws.ToString(out.RevisionId)
	if rev1 == "" {
		t.Fatal("no RevisionId")
	}
	_, err = add(1, "xaccount", "*", "", "")
	wantAPIError(t, "a statement id again", err, "ResourceConflictException", 409,
		"The statement id (xaccount) provided already exists. Please provide a new statement id, or remove the existing statement.")
	_, err = add(1, "org", "*", "o-abcdefghij", "not-the-revision")
	wantAPIError(t, "a stale revision", err, "PreconditionFailedException", 412, "")
	_, err = add(1, "org", "210987654321", "o-abcdefghij", "")
	wantAPIError(t, "an organization with an account principal", err, "InvalidParameterValueException", 400, "")
	_, err = add(9, "x", "*", "", "")
	wantAPIError(t, "a version that does not exist", err, "ResourceNotFoundException", 404, "The resource you requested does not exist.")
	_, err = c.AddLayerVersionPermission(ctx, &lambda.AddLayerVersionPermissionInput{LayerName: aws.String("lib"), VersionNumber: aws.Int64(1),
		StatementId: aws.String("bad"), Action: aws.String("lambda:InvokeFunction"), Principal: aws.String("*")})
	wantAPIError(t, "another action", err, "ValidationException", 400, "")

	out, err = add(1, "org", "*", "o-abcdefghij", rev1)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := aws.ToString(out.Statement), `{"Sid":"org","Effect":"Allow","Principal":"*","Action":"lambda:GetLayerVersion","Resource":"`+arn1+`","Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-abcdefghij"}}}`; got != want {
		t.Errorf("Statement = %s\nwant        %s", got, want)
	}
	rev2 := aws.ToString(out.RevisionId)
	if rev2 == rev1 {
		t.Error("the revision did not change")
	}

	// Version 2 has a policy of its own.
	if _, err := c.GetLayerVersionPolicy(ctx, &lambda.GetLayerVersionPolicyInput{LayerName: aws.String("lib"), VersionNumber: aws.Int64(2)}); err == nil {
		t.Error("version 2 has version 1's policy")
	}

	// After a restart the policy is where it was.
	closeNode(t, n)
	n = start(t, server.Options{DataDir: dir})
	c = n.client
	pol, err := c.GetLayerVersionPolicy(ctx, &lambda.GetLayerVersionPolicyInput{LayerName: aws.String(arn1[:len(arn1)-2]), VersionNumber: aws.Int64(1)})
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Version   string
		Id        string
		Statement []struct{ Sid string }
	}
	if err := json.Unmarshal([]byte(aws.ToString(pol.Policy)), &doc); err != nil {
		t.Fatalf("Policy %s: %v", aws.ToString(pol.Policy), err)
	}
	if doc.Version != "2012-10-17" || doc.Id != "default" || len(doc.Statement) != 2 || doc.Statement[0].Sid != "xaccount" || doc.Statement[1].Sid != "org" ||
		aws.ToString(pol.RevisionId) != rev2 {
		t.Errorf("GetLayerVersionPolicy = %s %s, want revision %s", aws.ToString(pol.Policy), aws.ToString(pol.RevisionId), rev2)
	}

	remove := func(sid, rev string) error {
		in := &lambda.RemoveLayerVersionPermissionInput{LayerName: aws.String("lib"), VersionNumber: aws.Int64(1), StatementId: aws.String(sid)}
		if rev != "" {
			in.RevisionId = aws.String(rev)
		}
		_, err := c.RemoveLayerVersionPermission(ctx, in)
		return err
	}
	wantAPIError(t, "removing with a stale revision", remove("org", rev1), "PreconditionFailedException", 412, "")
	wantAPIError(t, "removing a statement that is not there", remove("nope", ""), "ResourceNotFoundException", 404, "Statement nope is not found in resource policy.")
	if err := remove("org", rev2); err != nil {
		t.Fatal(err)
	}
	if err := remove("xaccount", ""); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetLayerVersionPolicy(ctx, &lambda.GetLayerVersionPolicyInput{LayerName: aws.String("lib"), VersionNumber: aws.Int64(1)})
	wantAPIError(t, "the policy after its last statement went", err, "ResourceNotFoundException", 404, "No policy is associated with the given resource.")
	wantAPIError(t, "removing from no policy", remove("xaccount", ""), "ResourceNotFoundException", 404, "No policy is associated with the given resource.")

	// The policy goes with its version.
	if _, err := add(2, "all", "*", "", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteLayerVersion(ctx, &lambda.DeleteLayerVersionInput{LayerName: aws.String("lib"), VersionNumber: aws.Int64(2)}); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetLayerVersionPolicy(ctx, &lambda.GetLayerVersionPolicyInput{LayerName: aws.String("lib"), VersionNumber: aws.Int64(2)})
	wantAPIError(t, "the policy of a deleted version", err, "ResourceNotFoundException", 404, "The resource you requested does not exist.")
	if v := n.publishLayer(t, "lib", map[string]string{"f": "3"}); v.Version != 3 {
		t.Fatalf("published %d", v.Version)
	}
	_, err = c.GetLayerVersionPolicy(ctx, &lambda.GetLayerVersionPolicyInput{LayerName: aws.String("lib"), VersionNumber: aws.Int64(3)})
	wantAPIError(t, "a new version's policy", err, "ResourceNotFoundException", 404, "No policy is associated with the given resource.")
}

// TestLayerVersionPolicyGrantsOtherAccounts: another account may read a
// layer version and use it in its functions exactly while the version's
// policy grants it, to that account or to "*"; an organization's
// statement grants nothing here (lambdad knows no organizations), nor
// does a grant on one version reach another; the owner's policy
// operations stay the owner's.
func TestLayerVersionPolicyGrantsOtherAccounts(t *testing.T) {
	_, a, b := startAccounts(t, t.TempDir())
	var arns []string
	for i := range 2 {
		out, err := a.PublishLayerVersion(ctx, &lambda.PublishLayerVersionInput{LayerName: aws.String("shared"),
			Content: &types.LayerVersionContentInput{ZipFile: lambdatest.Zip(t, map[string]string{"f": string(rune('1' + i))})}})
		if err != nil {
			t.Fatal(err)
		}
		arns = append(arns, aws.ToString(out.LayerVersionArn))
	}
	create := func(name, layer string) error {
		in := goFunctionInput(t, name)
		in.Code.ZipFile = lambdatest.Zip(t, map[string]string{"bootstrap": "#!/bin/sh\n"}) // never runs
		in.Role = aws.String("arn:aws:iam::" + accountB + ":role/r")
		in.Layers = []string{layer}
		_, err := b.CreateFunction(ctx, in)
		return err
	}
	denied := func(what string) {
		t.Helper()
		_, err := b.GetLayerVersionByArn(ctx, &lambda.GetLayerVersionByArnInput{Arn: aws.String(arns[0])})
		wantAPIError(t, what+": GetLayerVersionByArn", err, "AccessDeniedException", 403, "")
		_, err = b.GetLayerVersion(ctx, &lambda.GetLayerVersionInput{LayerName: aws.String("arn:aws:lambda:us-east-1:" + accountA + ":layer:shared"), VersionNumber: aws.Int64(1)})
		wantAPIError(t, what+": GetLayerVersion", err, "AccessDeniedException", 403, "")
		wantAPIError(t, what+": CreateFunction", create("denied", arns[0]), "AccessDeniedException", 403, "")
	}
	grant := func(sid, principal, org string) string {
		t.Helper()
		in := &lambda.AddLayerVersionPermissionInput{LayerName: aws.String("shared"), VersionNumber: aws.Int64(1), StatementId: aws.String(sid),
			Action: aws.String("lambda:GetLayerVersion"), Principal: aws.String(principal)}
		if org != "" {
			in.OrganizationId = aws.String(org)
		}
		if _, err := a.AddLayerVersionPermission(ctx, in); err != nil {
			t.Fatal(err)
		}
		return sid
	}
	revoke := func(sid string) {
		t.Helper()
		if _, err := a.RemoveLayerVersionPermission(ctx, &lambda.RemoveLayerVersionPermissionInput{LayerName: aws.String("shared"),
			VersionNumber: aws.Int64(1), StatementId: aws.String(sid)}); err != nil {
			t.Fatal(err)
		}
	}

	denied("without a policy")
	revoke(grant("other", "333333333333", ""))
	grant("org", "*", "o-abcdefghij")
	denied("granted to another account and to an organization")

	for i, principal := range []string{accountB, "arn:aws:iam::" + accountB + ":root", "*"} {
		sid := grant("b", principal, "")
		lv, err := b.GetLayerVersionByArn(ctx, &lambda.GetLayerVersionByArnInput{Arn: aws.String(arns[0])})
		if err != nil || lv.Version != 1 || aws.ToString(lv.LayerVersionArn) != arns[0] || lv.Content == nil {
			t.Errorf("granted to %s: GetLayerVersionByArn = %+v %v", principal, lv, err)
		}
		if _, err := b.GetLayerVersion(ctx, &lambda.GetLayerVersionInput{LayerName: aws.String("arn:aws:lambda:us-east-1:" + accountA + ":layer:shared"), VersionNumber: aws.Int64(1)}); err != nil {
			t.Errorf("granted to %s: GetLayerVersion: %v", principal, err)
		}
		name := "uses-a-" + string(rune('0'+i))
		if err := create(name, arns[0]); err != nil {
			t.Errorf("granted to %s: CreateFunction: %v", principal, err)
		} else if f, err := b.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(name)}); err != nil ||
			len(f.Configuration.Layers) != 1 || aws.ToString(f.Configuration.Layers[0].Arn) != arns[0] {
			t.Errorf("granted to %s: GetFunction = %v %+v", principal, err, f)
		}
		// The grant is version 1's alone.
		wantAPIError(t, "granted to "+principal+": version 2", create("v2", arns[1]), "AccessDeniedException", 403, "")
		// B may not read or change A's policy.
		_, err = b.GetLayerVersionPolicy(ctx, &lambda.GetLayerVersionPolicyInput{LayerName: aws.String("arn:aws:lambda:us-east-1:" + accountA + ":layer:shared"), VersionNumber: aws.Int64(1)})
		wantAPIError(t, "B reads A's policy", err, "AccessDeniedException", 403, "")
		revoke(sid)
	}
	denied("after the grant is revoked")
	// A function made while it was granted keeps the layer, as on AWS.
	if f, err := b.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("uses-a-0")}); err != nil || len(f.Configuration.Layers) != 1 {
		t.Errorf("a function made while granted: %v %+v", err, f)
	}
	// UpdateFunctionConfiguration follows the policy too.
	_, err := b.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("uses-a-0"), Layers: []string{arns[1]}})
	wantAPIError(t, "UpdateFunctionConfiguration to an ungranted version", err, "AccessDeniedException", 403, "")
}
