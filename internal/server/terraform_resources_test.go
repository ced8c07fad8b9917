package server_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/lambdad/lambdad/internal/lambdatest"
	"github.com/lambdad/lambdad/internal/server"
)

// The call sequences of aws_lambda_permission, aws_lambda_function_url,
// aws_lambda_layer_version and aws_lambda_layer_version_permission, as the
// provider (internal/service/lambda) makes them. Each response is decoded
// into the shapes the provider decodes into, so that a field missing or of
// another shape shows up here as it would as a diff or an error there.

const tfFunctionARN = "arn:aws:lambda:us-east-1:123456789012:function:"

// isA reports whether err is an API error of type E, as the provider's
// errs.IsA checks.
func isA[E error](err error) bool {
	var e E
	return errors.As(err, &e)
}

// tfStatement is a statement of GetPolicy's Policy as the provider's
// policyStatement decodes it: Condition as operator → key → one string,
// Action one string, Principal "*" or an object.
type tfStatement struct {
	Condition map[string]map[string]string
	Action    string
	Resource  string
	Effect    string
	Principal any
	Sid       string
}

// findStatement is the provider's findPolicyStatementByTwoPartKey:
// GetPolicy (with the qualifier when there is one), the Policy decoded, the
// statement picked by Sid. found is false for both of its "not found"s:
// GetPolicy's ResourceNotFoundException, and no statement with the Sid.
func findStatement(c *lambda.Client, function, qualifier, sid string) (*tfStatement, bool, error) {
	in := &lambda.GetPolicyInput{FunctionName: aws.String(function)}
	if qualifier != "" {
		in.Qualifier = aws.String(qualifier)
	}
	out, err := c.GetPolicy(ctx, in)
	if isA[*types.ResourceNotFoundException](err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	var doc struct {
		Version   string
		Statement []tfStatement
		Id        string
	}
	if err := json.Unmarshal([]byte(aws.ToString(out.Policy)), &doc); err != nil {
		return nil, false, err
	}
	for i := range doc.Statement {
		if doc.Statement[i].Sid == sid {
			return &doc.Statement[i], true, nil
		}
	}
	return nil, false, nil
}

// retryCreate is the provider's retry around a create: it repeats the call
// while the answer is one of the errors it takes for eventual consistency
// (resourcePermissionCreate: ResourceConflictException and
// ResourceNotFoundException), for a few seconds rather than its minutes.
func retryCreate(t *testing.T, what string, call func() error) {
	t.Helper()
	var err error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		err = call()
		if err == nil || !(isA[*types.ResourceConflictException](err) || isA[*types.ResourceNotFoundException](err)) {
			break
		}
	}
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// TestTerraformPermission replays aws_lambda_permission: for each kind of
// grant, resourcePermissionCreate (AddPermission, retried), its read
// (resourcePermissionRead: GetPolicy, the statement by Sid, every field it
// sets in state taken from the statement), and resourcePermissionDelete
// (RemovePermission, then the wait until the statement is not found).
func TestTerraformPermission(t *testing.T) {
	n := start(t, server.Options{})
	c := n.client
	n.createGo(t, "tf-perm")
	pub, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("tf-perm")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String("tf-perm"), Name: aws.String("live"), FunctionVersion: pub.Version}); err != nil {
		t.Fatal(err)
	}

	// Each grant with what the read must find: the provider sets
	// principal, source_arn, source_account, principal_org_id,
	// event_source_token, function_url_auth_type and
	// invoked_via_function_url from these, so any other shape is a diff
	// and a replacement on every plan.
	grants := []struct {
		in        lambda.AddPermissionInput
		principal any
		condition map[string]map[string]string
	}{{
		// function_name given as an ARN: the read keeps it as the
		// statement's Resource.
		in: lambda.AddPermissionInput{FunctionName: aws.String(tfFunctionARN + "tf-perm"), StatementId: aws.String("AllowS3"),
			Action: aws.String("lambda:InvokeFunction"), Principal: aws.String("s3.amazonaws.com"),
			SourceArn: aws.String("arn:aws:s3:::tf-bucket"), SourceAccount: aws.String("123456789012")},
		principal: map[string]any{"Service": "s3.amazonaws.com"},
		condition: map[string]map[string]string{"ArnLike": {"AWS:SourceArn": "arn:aws:s3:::tf-bucket"}, "StringEquals": {"AWS:SourceAccount": "123456789012"}},
	}, {
		in: lambda.AddPermissionInput{FunctionName: aws.String("tf-perm"), Qualifier: aws.String("live"), StatementId: aws.String("AllowAccount"),
			Action: aws.String("lambda:InvokeFunction"), Principal: aws.String("111122223333")},
		principal: map[string]any{"AWS": "arn:aws:iam::111122223333:root"},
	}, {
		in: lambda.AddPermissionInput{FunctionName: aws.String("tf-perm"), StatementId: aws.String("AllowURL"),
			Action: aws.String("lambda:InvokeFunctionUrl"), Principal: aws.String("*"), FunctionUrlAuthType: types.FunctionUrlAuthTypeNone},
		principal: "*",
		condition: map[string]map[string]string{"StringEquals": {"lambda:FunctionUrlAuthType": "NONE"}},
	}, {
		in: lambda.AddPermissionInput{FunctionName: aws.String("tf-perm"), StatementId: aws.String("AllowViaURL"),
			Action: aws.String("lambda:InvokeFunction"), Principal: aws.String("*"), InvokedViaFunctionUrl: aws.Bool(true)},
		principal: "*",
		condition: map[string]map[string]string{"Bool": {"lambda:InvokedViaFunctionUrl": "true"}},
	}, {
		in: lambda.AddPermissionInput{FunctionName: aws.String("tf-perm"), StatementId: aws.String("AllowAlexa"),
			Action: aws.String("lambda:InvokeFunction"), Principal: aws.String("alexa-connectedhome.amazon.com"), EventSourceToken: aws.String("amzn1.ask.skill.tf")},
		principal: map[string]any{"Service": "alexa-connectedhome.amazon.com"},
		condition: map[string]map[string]string{"StringEquals": {"lambda:EventSourceToken": "amzn1.ask.skill.tf"}},
	}, {
		in: lambda.AddPermissionInput{FunctionName: aws.String("tf-perm"), StatementId: aws.String("AllowOrg"),
			Action: aws.String("lambda:InvokeFunction"), Principal: aws.String("*"), PrincipalOrgID: aws.String("o-a1b2c3d4e5")},
		principal: "*",
		condition: map[string]map[string]string{"StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}},
	}}

	for _, g := range grants {
		sid, q := aws.ToString(g.in.StatementId), aws.ToString(g.in.Qualifier)
		in := g.in
		retryCreate(t, "AddPermission "+sid, func() error { _, err := c.AddPermission(ctx, &in); return err })

		// The read right after create retries while not found
		// (RetryWhenNewResourceNotFound); here it must be found at once.
		st, found, err := findStatement(c, aws.ToString(g.in.FunctionName), q, sid)
		if err != nil || !found {
			t.Fatalf("%s: read after create: found %v, %v", sid, found, err)
		}
		wantResource := tfFunctionARN + "tf-perm"
		if q != "" {
			wantResource += ":" + q
		}
		if st.Resource != wantResource || st.Action != aws.ToString(g.in.Action) || st.Effect != "Allow" {
			t.Errorf("%s: Resource %q Action %q Effect %q", sid, st.Resource, st.Action, st.Effect)
		}
		// The provider takes the qualifier and the function name back out
		// of Resource (getQualifierFromAliasOrVersionARN,
		// getFunctionNameFromARN).
		if name, qual, _ := strings.Cut(strings.TrimPrefix(st.Resource, tfFunctionARN), ":"); name != "tf-perm" || qual != q {
			t.Errorf("%s: Resource %q gives function %q qualifier %q", sid, st.Resource, name, qual)
		}
		if !reflect.DeepEqual(st.Principal, g.principal) {
			t.Errorf("%s: Principal = %#v, want %#v", sid, st.Principal, g.principal)
		}
		if !reflect.DeepEqual(st.Condition, g.condition) {
			t.Errorf("%s: Condition = %#v, want %#v", sid, st.Condition, g.condition)
		}
	}

	// The statement is the alias's alone: read without the qualifier, it
	// is not there.
	if _, found, err := findStatement(c, "tf-perm", "", "AllowAccount"); err != nil || found {
		t.Errorf("the alias's statement read without its qualifier: found %v, %v", found, err)
	}

	// A second create of the same Sid (a replacement whose delete has not
	// landed) is ResourceConflictException, which the create retries.
	_, err = c.AddPermission(ctx, &lambda.AddPermissionInput{FunctionName: aws.String("tf-perm"), StatementId: aws.String("AllowURL"),
		Action: aws.String("lambda:InvokeFunctionUrl"), Principal: aws.String("*"), FunctionUrlAuthType: types.FunctionUrlAuthTypeNone})
	if !isA[*types.ResourceConflictException](err) {
		t.Errorf("a Sid added twice: %v, want ResourceConflictException", err)
	}
	// A function that is not there (yet) is ResourceNotFoundException,
	// which the create retries too.
	_, err = c.AddPermission(ctx, &lambda.AddPermissionInput{FunctionName: aws.String("tf-nope"), StatementId: aws.String("x"),
		Action: aws.String("lambda:InvokeFunction"), Principal: aws.String("s3.amazonaws.com")})
	if !isA[*types.ResourceNotFoundException](err) {
		t.Errorf("AddPermission on a missing function: %v, want ResourceNotFoundException", err)
	}

	// Destroy each, then wait until its statement is not found
	// (RetryUntilNotFound); a second delete is ResourceNotFoundException,
	// which resourcePermissionDelete takes for gone.
	for _, g := range grants {
		sid, q := aws.ToString(g.in.StatementId), aws.ToString(g.in.Qualifier)
		in := &lambda.RemovePermissionInput{FunctionName: g.in.FunctionName, StatementId: g.in.StatementId}
		if q != "" {
			in.Qualifier = aws.String(q)
		}
		if _, err := c.RemovePermission(ctx, in); err != nil {
			t.Fatalf("RemovePermission %s: %v", sid, err)
		}
		waitFor(t, sid+" gone", func() (bool, error) {
			_, found, err := findStatement(c, aws.ToString(g.in.FunctionName), q, sid)
			return !found, err
		})
		if _, err := c.RemovePermission(ctx, in); !isA[*types.ResourceNotFoundException](err) {
			t.Errorf("RemovePermission %s again: %v, want ResourceNotFoundException", sid, err)
		}
	}
	// With no statement left, GetPolicy itself is ResourceNotFoundException:
	// a refresh then drops the resource from state.
	if _, err := c.GetPolicy(ctx, &lambda.GetPolicyInput{FunctionName: aws.String("tf-perm")}); !isA[*types.ResourceNotFoundException](err) {
		t.Errorf("GetPolicy with no statements: %v, want ResourceNotFoundException", err)
	}
}

// readURL is the provider's resourceFunctionURLRead: GetFunctionUrlConfig
// and the fields it sets in state, url_id being the first label of the
// URL's host.
func readURL(t *testing.T, c *lambda.Client, name, qualifier string) (*lambda.GetFunctionUrlConfigOutput, string) {
	t.Helper()
	in := &lambda.GetFunctionUrlConfigInput{FunctionName: aws.String(name)}
	if qualifier != "" {
		in.Qualifier = aws.String(qualifier)
	}
	out, err := c.GetFunctionUrlConfig(ctx, in)
	if err != nil {
		t.Fatalf("read GetFunctionUrlConfig: %v", err)
	}
	u, err := url.Parse(aws.ToString(out.FunctionUrl))
	if err != nil || u.Host == "" {
		t.Fatalf("FunctionUrl %q does not parse: %v", aws.ToString(out.FunctionUrl), err)
	}
	urlID, _, _ := strings.Cut(u.Host, ".")
	if urlID == "" || !strings.HasSuffix(u.Path, "/") {
		t.Errorf("FunctionUrl %q: url_id %q", aws.ToString(out.FunctionUrl), urlID)
	}
	wantARN := tfFunctionARN + name
	if qualifier != "" {
		wantARN += ":" + qualifier
	}
	if aws.ToString(out.FunctionArn) != wantARN {
		t.Errorf("FunctionArn = %s, want %s", aws.ToString(out.FunctionArn), wantARN)
	}
	// invoke_mode has a default in the schema: an answer without it would
	// be a diff.
	if out.InvokeMode == "" || out.AuthType == "" {
		t.Errorf("read lacks InvokeMode or AuthType: %+v", out)
	}
	// The data source reads these two as they are.
	for _, ts := range []*string{out.CreationTime, out.LastModifiedTime} {
		if _, err := time.Parse(time.RFC3339Nano, aws.ToString(ts)); err != nil {
			t.Errorf("CreationTime/LastModifiedTime %q: %v", aws.ToString(ts), err)
		}
	}
	return out, urlID
}

// addPublicURLPermission is the AddPermission resourceFunctionURLCreate
// makes for AuthType NONE; a statement of that Sid already there is
// ignored, which it recognises by the message.
func addPublicURLPermission(c *lambda.Client, name, qualifier string) error {
	in := &lambda.AddPermissionInput{FunctionName: aws.String(name), Action: aws.String("lambda:InvokeFunctionUrl"),
		FunctionUrlAuthType: types.FunctionUrlAuthTypeNone, Principal: aws.String("*"), StatementId: aws.String("FunctionURLAllowPublicAccess")}
	if qualifier != "" {
		in.Qualifier = aws.String(qualifier)
	}
	_, err := c.AddPermission(ctx, in)
	if isA[*types.ResourceConflictException](err) && strings.Contains(err.Error(), "The statement id (FunctionURLAllowPublicAccess) provided already exists") {
		return nil
	}
	return err
}

// TestTerraformFunctionURL replays aws_lambda_function_url:
// resourceFunctionURLCreate (CreateFunctionUrlConfig with InvokeMode always
// sent, then for NONE the public AddPermission), resourceFunctionURLRead,
// resourceFunctionURLUpdate (only what changed, Cors whole, and an empty
// Cors when the block is removed), resourceFunctionURLDelete, and a
// replacement, whose create meets the permission the delete left behind.
func TestTerraformFunctionURL(t *testing.T) {
	n := start(t, server.Options{})
	c := n.client
	n.createGo(t, "tf-url")

	cors := &types.Cors{AllowCredentials: aws.Bool(true), AllowHeaders: []string{"x-a", "x-b"}, AllowMethods: []string{"GET", "POST"},
		AllowOrigins: []string{"https://app.example"}, ExposeHeaders: []string{"x-e"}, MaxAge: aws.Int32(300)}
	if _, err := c.CreateFunctionUrlConfig(ctx, &lambda.CreateFunctionUrlConfigInput{FunctionName: aws.String("tf-url"),
		AuthType: types.FunctionUrlAuthTypeNone, InvokeMode: types.InvokeModeBuffered, Cors: cors}); err != nil {
		t.Fatal(err)
	}
	if err := addPublicURLPermission(c, "tf-url", ""); err != nil {
		t.Fatalf("the public URL permission: %v", err)
	}
	out, urlID := readURL(t, c, "tf-url", "")
	if out.AuthType != types.FunctionUrlAuthTypeNone || out.InvokeMode != types.InvokeModeBuffered || !reflect.DeepEqual(out.Cors, cors) {
		t.Errorf("after create: AuthType %s InvokeMode %s Cors %+v", out.AuthType, out.InvokeMode, out.Cors)
	}
	st, found, err := findStatement(c, "tf-url", "", "FunctionURLAllowPublicAccess")
	if err != nil || !found || st.Principal != "*" || st.Condition["StringEquals"]["lambda:FunctionUrlAuthType"] != "NONE" {
		t.Errorf("the public URL permission as read: %+v %v %v", st, found, err)
	}

	// Update: the auth type changed, and a new cors block (sent whole).
	cors2 := &types.Cors{AllowCredentials: aws.Bool(false), AllowOrigins: []string{"*"}, AllowMethods: []string{"*"}, MaxAge: aws.Int32(86400)}
	if _, err := c.UpdateFunctionUrlConfig(ctx, &lambda.UpdateFunctionUrlConfigInput{FunctionName: aws.String("tf-url"),
		AuthType: types.FunctionUrlAuthTypeAwsIam, Cors: cors2}); err != nil {
		t.Fatal(err)
	}
	out, id2 := readURL(t, c, "tf-url", "")
	if out.AuthType != types.FunctionUrlAuthTypeAwsIam || out.InvokeMode != types.InvokeModeBuffered || !reflect.DeepEqual(out.Cors, cors2) || id2 != urlID {
		t.Errorf("after update: AuthType %s InvokeMode %s Cors %+v url_id %s (was %s)", out.AuthType, out.InvokeMode, out.Cors, id2, urlID)
	}
	// Only the cors block changed: the rest stays as it was.
	if _, err := c.UpdateFunctionUrlConfig(ctx, &lambda.UpdateFunctionUrlConfigInput{FunctionName: aws.String("tf-url"), Cors: cors}); err != nil {
		t.Fatal(err)
	}
	if out, _ := readURL(t, c, "tf-url", ""); out.AuthType != types.FunctionUrlAuthTypeAwsIam || out.InvokeMode != types.InvokeModeBuffered || !reflect.DeepEqual(out.Cors, cors) {
		t.Errorf("after a cors-only update: AuthType %s InvokeMode %s Cors %+v", out.AuthType, out.InvokeMode, out.Cors)
	}
	// invoke_mode changed: RESPONSE_STREAM, and back.
	for _, mode := range []types.InvokeMode{types.InvokeModeResponseStream, types.InvokeModeBuffered} {
		if _, err := c.UpdateFunctionUrlConfig(ctx, &lambda.UpdateFunctionUrlConfigInput{FunctionName: aws.String("tf-url"), InvokeMode: mode}); err != nil {
			t.Fatalf("update invoke_mode %s: %v", mode, err)
		}
		if out, _ := readURL(t, c, "tf-url", ""); out.InvokeMode != mode || out.AuthType != types.FunctionUrlAuthTypeAwsIam || !reflect.DeepEqual(out.Cors, cors) {
			t.Errorf("after an invoke_mode update: AuthType %s InvokeMode %s Cors %+v", out.AuthType, out.InvokeMode, out.Cors)
		}
	}
	// The cors block removed: the provider sends an empty Cors.
	if _, err := c.UpdateFunctionUrlConfig(ctx, &lambda.UpdateFunctionUrlConfigInput{FunctionName: aws.String("tf-url"), Cors: &types.Cors{}}); err != nil {
		t.Fatalf("update with an empty Cors: %v", err)
	}
	readURL(t, c, "tf-url", "")

	// An alias's URL: the qualifier is in the id and in every call.
	pub, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("tf-url")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String("tf-url"), Name: aws.String("live"), FunctionVersion: pub.Version}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateFunctionUrlConfig(ctx, &lambda.CreateFunctionUrlConfigInput{FunctionName: aws.String("tf-url"), Qualifier: aws.String("live"),
		AuthType: types.FunctionUrlAuthTypeNone, InvokeMode: types.InvokeModeBuffered}); err != nil {
		t.Fatal(err)
	}
	if err := addPublicURLPermission(c, "tf-url", "live"); err != nil {
		t.Fatalf("the alias URL's public permission: %v", err)
	}
	if out, _ := readURL(t, c, "tf-url", "live"); out.Cors != nil {
		t.Errorf("a URL made without cors reads back Cors %+v; the provider would set a cors block", out.Cors)
	}

	// Delete; a refresh then gets ResourceNotFoundException (gone from
	// state), and a delete of what is gone is taken for success.
	for _, q := range []string{"live", ""} {
		in := &lambda.DeleteFunctionUrlConfigInput{FunctionName: aws.String("tf-url")}
		get := &lambda.GetFunctionUrlConfigInput{FunctionName: aws.String("tf-url")}
		if q != "" {
			in.Qualifier, get.Qualifier = aws.String(q), aws.String(q)
		}
		if _, err := c.DeleteFunctionUrlConfig(ctx, in); err != nil {
			t.Fatalf("DeleteFunctionUrlConfig %q: %v", q, err)
		}
		if _, err := c.GetFunctionUrlConfig(ctx, get); !isA[*types.ResourceNotFoundException](err) {
			t.Errorf("read after delete %q: %v, want ResourceNotFoundException", q, err)
		}
		if _, err := c.DeleteFunctionUrlConfig(ctx, in); !isA[*types.ResourceNotFoundException](err) {
			t.Errorf("delete again %q: %v, want ResourceNotFoundException", q, err)
		}
	}

	// A replacement: the delete does not remove FunctionURLAllowPublicAccess,
	// so the new create's AddPermission meets it and must be recognised.
	if _, err := c.CreateFunctionUrlConfig(ctx, &lambda.CreateFunctionUrlConfigInput{FunctionName: aws.String("tf-url"),
		AuthType: types.FunctionUrlAuthTypeNone, InvokeMode: types.InvokeModeBuffered}); err != nil {
		t.Fatal(err)
	}
	if err := addPublicURLPermission(c, "tf-url", ""); err != nil {
		t.Errorf("the replacement's permission: %v", err)
	}
	if _, newID := readURL(t, c, "tf-url", ""); newID == urlID {
		t.Errorf("the replacement kept url_id %s", newID)
	}
}

// readLayerVersion is the provider's resourceLayerVersionRead: the name and
// number taken out of the id (the version's ARN), GetLayerVersion, and the
// fields flattenLayerVersion sets. It returns nil when the read finds the
// version gone.
func readLayerVersion(t *testing.T, c *lambda.Client, id string) *lambda.GetLayerVersionOutput {
	t.Helper()
	a, err := arn.Parse(id)
	if err != nil {
		t.Fatalf("layer version id %q: %v", id, err)
	}
	parts := strings.Split(a.Resource, ":")
	if len(parts) != 3 || parts[0] != "layer" {
		t.Fatalf("layer version id %q is not a layer version ARN", id)
	}
	number, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil {
		t.Fatalf("layer version id %q: %v", id, err)
	}
	out, err := c.GetLayerVersion(ctx, &lambda.GetLayerVersionInput{LayerName: aws.String(parts[1]), VersionNumber: aws.Int64(number)})
	if isA[*types.ResourceNotFoundException](err) {
		return nil
	}
	if err != nil {
		t.Fatalf("read GetLayerVersion: %v", err)
	}
	// The id is set again from LayerVersionArn: it must not move.
	if aws.ToString(out.LayerVersionArn) != id || out.Version != number {
		t.Errorf("read LayerVersionArn %s Version %d, id %s", aws.ToString(out.LayerVersionArn), out.Version, id)
	}
	if aws.ToString(out.LayerArn) != "arn:aws:lambda:us-east-1:123456789012:layer:"+parts[1] {
		t.Errorf("read LayerArn = %s", aws.ToString(out.LayerArn))
	}
	if out.Content == nil || aws.ToString(out.Content.CodeSha256) == "" || out.Content.CodeSize == 0 || aws.ToString(out.CreatedDate) == "" {
		t.Errorf("read lacks Content.CodeSha256, Content.CodeSize or CreatedDate: %+v", out)
	}
	return out
}

// TestTerraformLayerVersion replays aws_lambda_layer_version:
// resourceLayerVersionCreate (PublishLayerVersion, Description and
// LicenseInfo always sent), resourceLayerVersionRead, a replacement (a new
// version: there is no update), resourceLayerVersionDelete with and
// without skip_destroy, and the read that finds a deleted version gone; and
// the data source's two ways to a version (by ARN, and the newest from
// ListLayerVersions).
func TestTerraformLayerVersion(t *testing.T) {
	n := start(t, server.Options{})
	c := n.client
	zip := lambdatest.Zip(t, map[string]string{"python/lib.py": "X = 1\n"})
	sum := sha256.Sum256(zip)

	pub, err := c.PublishLayerVersion(ctx, &lambda.PublishLayerVersionInput{LayerName: aws.String("tf-layer"),
		Content: &types.LayerVersionContentInput{ZipFile: zip}, Description: aws.String("shared code"), LicenseInfo: aws.String("MIT"),
		CompatibleArchitectures: []types.Architecture{types.ArchitectureArm64, types.ArchitectureX8664},
		CompatibleRuntimes:      []types.Runtime{types.RuntimePython312, types.RuntimeNodejs20x}})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(pub.LayerVersionArn)
	if id != "arn:aws:lambda:us-east-1:123456789012:layer:tf-layer:1" {
		t.Fatalf("LayerVersionArn = %s", id)
	}
	v1 := readLayerVersion(t, c, id)
	if v1 == nil {
		t.Fatal("the version just published is not found")
	}
	if aws.ToString(v1.Content.CodeSha256) != base64.StdEncoding.EncodeToString(sum[:]) || v1.Content.CodeSize != int64(len(zip)) {
		t.Errorf("Content: CodeSha256 %s CodeSize %d", aws.ToString(v1.Content.CodeSha256), v1.Content.CodeSize)
	}
	if aws.ToString(v1.Description) != "shared code" || aws.ToString(v1.LicenseInfo) != "MIT" {
		t.Errorf("Description %q LicenseInfo %q", aws.ToString(v1.Description), aws.ToString(v1.LicenseInfo))
	}
	// Sets in the schema: the members matter, not their order.
	archs, runtimes := slices.Clone(v1.CompatibleArchitectures), slices.Clone(v1.CompatibleRuntimes)
	slices.Sort(archs)
	slices.Sort(runtimes)
	if !slices.Equal(archs, []types.Architecture{types.ArchitectureArm64, types.ArchitectureX8664}) ||
		!slices.Equal(runtimes, []types.Runtime{types.RuntimeNodejs20x, types.RuntimePython312}) {
		t.Errorf("CompatibleArchitectures %v CompatibleRuntimes %v", v1.CompatibleArchitectures, v1.CompatibleRuntimes)
	}

	// A replacement publishes the next version, with the empty
	// description and license the provider sends when they are unset.
	pub2, err := c.PublishLayerVersion(ctx, &lambda.PublishLayerVersionInput{LayerName: aws.String("tf-layer"),
		Content: &types.LayerVersionContentInput{ZipFile: zip}, Description: aws.String(""), LicenseInfo: aws.String("")})
	if err != nil {
		t.Fatal(err)
	}
	id2 := aws.ToString(pub2.LayerVersionArn)
	v2 := readLayerVersion(t, c, id2)
	if v2 == nil || v2.Version != 2 || aws.ToString(v2.Description) != "" || aws.ToString(v2.LicenseInfo) != "" ||
		len(v2.CompatibleRuntimes) != 0 || len(v2.CompatibleArchitectures) != 0 {
		t.Fatalf("version 2: %+v", v2)
	}

	// The data source: by ARN, and without a version the first of
	// ListLayerVersions, which must be the newest.
	byARN, err := c.GetLayerVersionByArn(ctx, &lambda.GetLayerVersionByArnInput{Arn: aws.String(id)})
	if err != nil || aws.ToString(byARN.LayerVersionArn) != id || byARN.Content == nil || aws.ToString(byARN.Content.CodeSha256) != aws.ToString(v1.Content.CodeSha256) {
		t.Errorf("GetLayerVersionByArn: %+v %v", byARN, err)
	}
	list, err := c.ListLayerVersions(ctx, &lambda.ListLayerVersionsInput{LayerName: aws.String("tf-layer")})
	if err != nil || len(list.LayerVersions) != 2 || list.LayerVersions[0].Version != 2 {
		t.Errorf("ListLayerVersions: %+v %v", list, err)
	}
	list, err = c.ListLayerVersions(ctx, &lambda.ListLayerVersionsInput{LayerName: aws.String("tf-layer"), CompatibleRuntime: types.RuntimePython312})
	if err != nil || len(list.LayerVersions) != 1 || list.LayerVersions[0].Version != 1 {
		t.Errorf("ListLayerVersions CompatibleRuntime python3.12: %+v %v", list, err)
	}

	// Destroy version 1; the refresh then finds it gone. The provider
	// does not look at the error of a second delete: it must succeed.
	if _, err := c.DeleteLayerVersion(ctx, &lambda.DeleteLayerVersionInput{LayerName: aws.String("tf-layer"), VersionNumber: aws.Int64(1)}); err != nil {
		t.Fatal(err)
	}
	if readLayerVersion(t, c, id) != nil {
		t.Error("version 1 is still read after its delete")
	}
	if _, err := c.DeleteLayerVersion(ctx, &lambda.DeleteLayerVersionInput{LayerName: aws.String("tf-layer"), VersionNumber: aws.Int64(1)}); err != nil {
		t.Errorf("deleting a deleted version: %v", err)
	}
	// skip_destroy: version 2 is left alone and stays readable; the next
	// publish does not reuse a number.
	if readLayerVersion(t, c, id2) == nil {
		t.Error("the retained version 2 is gone")
	}
	pub3, err := c.PublishLayerVersion(ctx, &lambda.PublishLayerVersionInput{LayerName: aws.String("tf-layer"),
		Content: &types.LayerVersionContentInput{ZipFile: zip}, Description: aws.String(""), LicenseInfo: aws.String("")})
	if err != nil || pub3.Version != 3 {
		t.Errorf("the next publish: %+v %v", pub3, err)
	}
}

// TestTerraformLayerVersionPermission replays
// aws_lambda_layer_version_permission: resourceLayerVersionPermissionCreate
// (AddLayerVersionPermission), resourceLayerVersionPermissionRead
// (GetLayerVersionPolicy: Policy and RevisionId kept whole, and the first
// statement's Sid, Action, organization id and principal), and
// resourceLayerVersionPermissionDelete (RemoveLayerVersionPermission,
// ResourceNotFoundException taken for gone).
func TestTerraformLayerVersionPermission(t *testing.T) {
	n := start(t, server.Options{})
	c := n.client
	if _, err := c.PublishLayerVersion(ctx, &lambda.PublishLayerVersionInput{LayerName: aws.String("tf-shared"),
		Content: &types.LayerVersionContentInput{ZipFile: lambdatest.Zip(t, map[string]string{"lib.txt": "x"})}}); err != nil {
		t.Fatal(err)
	}

	for _, g := range []struct {
		principal, org string
		want           any    // the statement's Principal
		readPrincipal  string // what the read sets principal to
	}{
		{"*", "o-a1b2c3d4e5", "*", "*"},
		{"111122223333", "", map[string]any{"AWS": "arn:aws:iam::111122223333:root"}, "111122223333"},
	} {
		in := &lambda.AddLayerVersionPermissionInput{LayerName: aws.String("tf-shared"), VersionNumber: aws.Int64(1),
			Action: aws.String("lambda:GetLayerVersion"), Principal: aws.String(g.principal), StatementId: aws.String("share")}
		if g.org != "" {
			in.OrganizationId = aws.String(g.org)
		}
		if _, err := c.AddLayerVersionPermission(ctx, in); err != nil {
			t.Fatalf("AddLayerVersionPermission %s: %v", g.principal, err)
		}
		pol, err := c.GetLayerVersionPolicy(ctx, &lambda.GetLayerVersionPolicyInput{LayerName: aws.String("tf-shared"), VersionNumber: aws.Int64(1)})
		if err != nil || aws.ToString(pol.RevisionId) == "" {
			t.Fatalf("read GetLayerVersionPolicy: %+v %v", pol, err)
		}
		var doc struct {
			Statement []struct {
				Sid       string
				Action    any
				Principal any
				Condition map[string]map[string]any
			}
		}
		if err := json.Unmarshal([]byte(aws.ToString(pol.Policy)), &doc); err != nil || len(doc.Statement) != 1 {
			t.Fatalf("Policy %s: %v", aws.ToString(pol.Policy), err)
		}
		st := doc.Statement[0]
		if st.Sid != "share" || st.Action != "lambda:GetLayerVersion" || !reflect.DeepEqual(st.Principal, g.want) {
			t.Errorf("statement %+v", st)
		}
		// The read takes the account back out of an AWS principal's ARN.
		read := "*"
		if m, ok := st.Principal.(map[string]any); ok {
			a, err := arn.Parse(m["AWS"].(string))
			if err != nil {
				t.Fatalf("principal %v: %v", m["AWS"], err)
			}
			read = a.AccountID
		}
		if read != g.readPrincipal {
			t.Errorf("the read's principal = %s, want %s", read, g.readPrincipal)
		}
		if got, _ := st.Condition["StringEquals"]["aws:PrincipalOrgID"].(string); got != g.org {
			t.Errorf("organization_id = %q, want %q", got, g.org)
		}

		rm := &lambda.RemoveLayerVersionPermissionInput{LayerName: aws.String("tf-shared"), VersionNumber: aws.Int64(1), StatementId: aws.String("share")}
		if _, err := c.RemoveLayerVersionPermission(ctx, rm); err != nil {
			t.Fatal(err)
		}
		if _, err := c.GetLayerVersionPolicy(ctx, &lambda.GetLayerVersionPolicyInput{LayerName: aws.String("tf-shared"), VersionNumber: aws.Int64(1)}); !isA[*types.ResourceNotFoundException](err) {
			t.Errorf("read after delete: %v, want ResourceNotFoundException", err)
		}
		if _, err := c.RemoveLayerVersionPermission(ctx, rm); !isA[*types.ResourceNotFoundException](err) {
			t.Errorf("delete again: %v, want ResourceNotFoundException", err)
		}
	}
}

// TestTerraformRecursionConfig replays aws_lambda_function_recursion_config:
// Create and Update put RecursiveLoop and keep what the answer says, Read
// is GetFunctionRecursionConfig, and Delete puts the default, Terminate,
// taking ResourceNotFoundException (the function gone) for done.
func TestTerraformRecursionConfig(t *testing.T) {
	n := start(t, server.Options{})
	c := n.client
	n.createGo(t, "tf-loop")
	for _, loop := range []types.RecursiveLoop{types.RecursiveLoopAllow, types.RecursiveLoopTerminate, types.RecursiveLoopAllow} {
		put, err := c.PutFunctionRecursionConfig(ctx, &lambda.PutFunctionRecursionConfigInput{FunctionName: aws.String("tf-loop"), RecursiveLoop: loop})
		if err != nil || put.RecursiveLoop != loop {
			t.Fatalf("put %s: %+v %v", loop, put, err)
		}
		got, err := c.GetFunctionRecursionConfig(ctx, &lambda.GetFunctionRecursionConfigInput{FunctionName: aws.String("tf-loop")})
		if err != nil || got.RecursiveLoop != loop {
			t.Fatalf("read after %s: %+v %v", loop, got, err)
		}
	}
	if _, err := c.PutFunctionRecursionConfig(ctx, &lambda.PutFunctionRecursionConfigInput{FunctionName: aws.String("tf-loop"), RecursiveLoop: types.RecursiveLoopTerminate}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("tf-loop")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetFunctionRecursionConfig(ctx, &lambda.GetFunctionRecursionConfigInput{FunctionName: aws.String("tf-loop")}); !isA[*types.ResourceNotFoundException](err) {
		t.Errorf("read of a deleted function: %v, want ResourceNotFoundException", err)
	}
	if _, err := c.PutFunctionRecursionConfig(ctx, &lambda.PutFunctionRecursionConfigInput{FunctionName: aws.String("tf-loop"), RecursiveLoop: types.RecursiveLoopTerminate}); !isA[*types.ResourceNotFoundException](err) {
		t.Errorf("delete with the function gone: %v, want ResourceNotFoundException", err)
	}
}

// TestTerraformRuntimeManagementConfig replays
// aws_lambda_runtime_management_config: Create and Update put
// UpdateRuntimeOn and keep FunctionArn, RuntimeVersionArn and
// UpdateRuntimeOn from the answer, Read is GetRuntimeManagementConfig (by
// function and qualifier), and Delete puts Auto back, ResourceNotFoundException
// taken for done.
func TestTerraformRuntimeManagementConfig(t *testing.T) {
	n := start(t, server.Options{})
	c := n.client
	n.createGo(t, "tf-rt")
	for _, mode := range []types.UpdateRuntimeOn{types.UpdateRuntimeOnFunctionUpdate, types.UpdateRuntimeOnAuto} {
		put, err := c.PutRuntimeManagementConfig(ctx, &lambda.PutRuntimeManagementConfigInput{FunctionName: aws.String("tf-rt"), UpdateRuntimeOn: mode})
		if err != nil || put.UpdateRuntimeOn != mode || aws.ToString(put.FunctionArn) != tfFunctionARN+"tf-rt" {
			t.Fatalf("put %s: %+v %v", mode, put, err)
		}
		got, err := c.GetRuntimeManagementConfig(ctx, &lambda.GetRuntimeManagementConfigInput{FunctionName: aws.String("tf-rt")})
		if err != nil || got.UpdateRuntimeOn != mode || aws.ToString(got.FunctionArn) != tfFunctionARN+"tf-rt" {
			t.Fatalf("read after %s: %+v %v", mode, got, err)
		}
		// runtime_version_arn is set only in Manual mode: an ARN read back
		// in another mode would not match the plan.
		if put.RuntimeVersionArn != nil || got.RuntimeVersionArn != nil {
			t.Errorf("%s: RuntimeVersionArn %v / %v, want none", mode, aws.ToString(put.RuntimeVersionArn), aws.ToString(got.RuntimeVersionArn))
		}
	}
	if _, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("tf-rt")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetRuntimeManagementConfig(ctx, &lambda.GetRuntimeManagementConfigInput{FunctionName: aws.String("tf-rt")}); !isA[*types.ResourceNotFoundException](err) {
		t.Errorf("read of a deleted function: %v, want ResourceNotFoundException", err)
	}
	if _, err := c.PutRuntimeManagementConfig(ctx, &lambda.PutRuntimeManagementConfigInput{FunctionName: aws.String("tf-rt"), UpdateRuntimeOn: types.UpdateRuntimeOnAuto}); !isA[*types.ResourceNotFoundException](err) {
		t.Errorf("delete with the function gone: %v, want ResourceNotFoundException", err)
	}
}

// TestTerraformCodeSigningConfig is aws_lambda_code_signing_config and a
// function's code_signing_config_arn: resourceCodeSigningConfigCreate,
// its Read (GetCodeSigningConfig), Update (UpdateCodeSigningConfig) and
// Delete; the function created with the config's ARN, read with
// GetFunctionCodeSigningConfig, changed with Put and removed with
// DeleteFunctionCodeSigningConfig, as resourceFunctionUpdate does.
func TestTerraformCodeSigningConfig(t *testing.T) {
	n := start(t, server.Options{})
	c := n.client
	profile := "arn:aws:signer:us-east-1:123456789012:/signing-profiles/tf/v1"
	created, err := c.CreateCodeSigningConfig(ctx, &lambda.CreateCodeSigningConfigInput{
		AllowedPublishers:   &types.AllowedPublishers{SigningProfileVersionArns: []string{profile}},
		CodeSigningPolicies: &types.CodeSigningPolicies{UntrustedArtifactOnDeployment: types.CodeSigningPolicyWarn},
		Description:         aws.String("terraform"),
	})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(created.CodeSigningConfig.CodeSigningConfigArn)
	read := func(wantPolicy types.CodeSigningPolicy, wantDesc string) {
		t.Helper()
		got, err := c.GetCodeSigningConfig(ctx, &lambda.GetCodeSigningConfigInput{CodeSigningConfigArn: aws.String(arn)})
		if err != nil {
			t.Fatalf("read GetCodeSigningConfig: %v", err)
		}
		csc := got.CodeSigningConfig
		if aws.ToString(csc.CodeSigningConfigArn) != arn || aws.ToString(csc.CodeSigningConfigId) == "" || aws.ToString(csc.LastModified) == "" ||
			csc.AllowedPublishers == nil || len(csc.AllowedPublishers.SigningProfileVersionArns) != 1 || csc.AllowedPublishers.SigningProfileVersionArns[0] != profile ||
			csc.CodeSigningPolicies == nil || csc.CodeSigningPolicies.UntrustedArtifactOnDeployment != wantPolicy || aws.ToString(csc.Description) != wantDesc {
			t.Errorf("read: %+v", csc)
		}
	}
	read(types.CodeSigningPolicyWarn, "terraform")
	if _, err := c.UpdateCodeSigningConfig(ctx, &lambda.UpdateCodeSigningConfigInput{CodeSigningConfigArn: aws.String(arn),
		CodeSigningPolicies: &types.CodeSigningPolicies{UntrustedArtifactOnDeployment: types.CodeSigningPolicyEnforce}, Description: aws.String("changed")}); err != nil {
		t.Fatal(err)
	}
	read(types.CodeSigningPolicyEnforce, "changed")

	in := goFunctionInput(t, "signed")
	in.CodeSigningConfigArn = aws.String(arn)
	if _, err := c.CreateFunction(ctx, in); err != nil {
		t.Fatal(err)
	}
	fcsc, err := c.GetFunctionCodeSigningConfig(ctx, &lambda.GetFunctionCodeSigningConfigInput{FunctionName: aws.String("signed")})
	if err != nil || aws.ToString(fcsc.CodeSigningConfigArn) != arn || aws.ToString(fcsc.FunctionName) != "signed" {
		t.Fatalf("read the function's config: %+v %v", fcsc, err)
	}
	// While a function uses it, the config cannot go (AWS: 409).
	_, err = c.DeleteCodeSigningConfig(ctx, &lambda.DeleteCodeSigningConfigInput{CodeSigningConfigArn: aws.String(arn)})
	var conflict *types.ResourceConflictException
	if !errors.As(err, &conflict) {
		t.Errorf("deleting a config a function uses: %v, want ResourceConflictException", err)
	}
	// code_signing_config_arn removed from the function.
	if _, err := c.DeleteFunctionCodeSigningConfig(ctx, &lambda.DeleteFunctionCodeSigningConfigInput{FunctionName: aws.String("signed")}); err != nil {
		t.Fatal(err)
	}
	fcsc, err = c.GetFunctionCodeSigningConfig(ctx, &lambda.GetFunctionCodeSigningConfigInput{FunctionName: aws.String("signed")})
	if err != nil || aws.ToString(fcsc.CodeSigningConfigArn) != "" {
		t.Errorf("after the function's config was removed: %+v %v (want an empty answer, as AWS gives)", fcsc, err)
	}
	if _, err := c.DeleteCodeSigningConfig(ctx, &lambda.DeleteCodeSigningConfigInput{CodeSigningConfigArn: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetCodeSigningConfig(ctx, &lambda.GetCodeSigningConfigInput{CodeSigningConfigArn: aws.String(arn)})
	var notFound *types.ResourceNotFoundException
	if !errors.As(err, &notFound) {
		t.Errorf("read after delete: %v, want ResourceNotFoundException (the provider's sign of gone)", err)
	}
}
