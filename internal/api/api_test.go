package api_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/lambdad/lambdad/internal/api"
	"github.com/lambdad/lambdad/internal/control"
	"github.com/lambdad/lambdad/internal/lambdatest"
	"github.com/lambdad/lambdad/internal/store"
)

const (
	region  = "us-east-1"
	account = "123456789012"
	arnBase = "arn:aws:lambda:us-east-1:123456789012:function:"
	role    = "arn:aws:iam::123456789012:role/lambda-role"
)

type harness struct {
	client *lambda.Client
	url    string
	ctl    *control.Service
	db     *store.DB
}

// newHarness serves the API over a real store in a temporary directory,
// with account limit l and unreserved minimum m; tune changes the control
// plane's options further.
func newHarness(t *testing.T, l, m int, tune ...func(*control.Options)) *harness {
	t.Helper()
	e := newEdge(t, l, m, lambdatest.Logger(t), tune...)
	ts := httptest.NewServer(e.srv)
	t.Cleanup(ts.Close)
	return &harness{client: lambdatest.Client(ts.URL), url: ts.URL, ctl: e.ctl, db: e.db}
}

// edge is the API over a real store in a temporary directory, with no
// invoker or queue behind it: every test of the edge starts from one.
type edge struct {
	srv *api.Server
	ctl *control.Service
	db  *store.DB
}

// newEdge builds an edge with account limit l and unreserved minimum m,
// logging to log (nil for nowhere); tune changes the control plane's
// options further. Everything is closed when tb ends.
func newEdge(tb testing.TB, l, m int, log *slog.Logger, tune ...func(*control.Options)) *edge {
	tb.Helper()
	db, err := store.Open(tb.TempDir(), store.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	opts := control.Options{Region: region, AccountID: account, AccountConcurrency: l, MinUnreserved: m, Logger: log}
	for _, f := range tune {
		f(&opts)
	}
	ctl, err := control.New(control.Bolt(db), opts, nil)
	if err != nil {
		tb.Fatal(err)
	}
	srv, err := api.New(ctl, api.Backends{}, log)
	if err != nil {
		tb.Fatal(err)
	}
	return &edge{srv: srv, ctl: ctl, db: db}
}

var ctx = context.Background()

func (h *harness) create(t *testing.T, name string, mutate ...func(*lambda.CreateFunctionInput)) *lambda.CreateFunctionOutput {
	t.Helper()
	in := &lambda.CreateFunctionInput{
		FunctionName: aws.String(name),
		Runtime:      types.RuntimeProvidedal2023,
		Handler:      aws.String("bootstrap"),
		Role:         aws.String(role),
		Code:         &types.FunctionCode{ZipFile: lambdatest.Zip(t, map[string]string{"bootstrap": "#!/bin/sh\necho " + name + "\n"})},
	}
	for _, m := range mutate {
		m(in)
	}
	out, err := h.client.CreateFunction(ctx, in)
	if err != nil {
		t.Fatalf("CreateFunction(%s): %v", name, err)
	}
	return out
}

// wantErr checks an SDK error's status, code and message.
func wantErr(t *testing.T, err error, status int, code, message string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want %d %s %q, got success", status, code, message)
	}
	gotCode, gotMsg := lambdatest.APIError(t, err)
	if got := lambdatest.Status(t, err); got != status || gotCode != code || gotMsg != message {
		t.Fatalf("got %d %s %q\nwant %d %s %q", got, gotCode, gotMsg, status, code, message)
	}
}

func TestCreateAndGetFunction(t *testing.T) {
	h := newHarness(t, 1000, 100)
	zip := lambdatest.Zip(t, map[string]string{"bootstrap": "#!/bin/sh\n"})
	sum := sha256.Sum256(zip)
	out, err := h.client.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String("my-function"),
		Runtime:      types.RuntimeProvidedal2023,
		Handler:      aws.String("bootstrap"),
		Role:         aws.String(role),
		Code:         &types.FunctionCode{ZipFile: zip},
		Environment:  &types.Environment{Variables: map[string]string{"GREETING": "1"}},
		Description:  aws.String("desc"),
		Timeout:      aws.Int32(7),
		MemorySize:   aws.Int32(256),
		Tags:         map[string]string{"team": "x"},
	})
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		what      string
		got, want any
	}{
		{"FunctionArn", aws.ToString(out.FunctionArn), arnBase + "my-function"},
		{"CodeSha256", aws.ToString(out.CodeSha256), base64.StdEncoding.EncodeToString(sum[:])},
		{"CodeSize", out.CodeSize, int64(len(zip))},
		{"Version", aws.ToString(out.Version), "$LATEST"},
		{"State", out.State, types.StateActive},
		{"LastUpdateStatus", out.LastUpdateStatus, types.LastUpdateStatusSuccessful},
		{"Timeout", aws.ToInt32(out.Timeout), int32(7)},
		{"MemorySize", aws.ToInt32(out.MemorySize), int32(256)},
		{"Env", out.Environment.Variables["GREETING"], "1"},
		{"Description", aws.ToString(out.Description), "desc"},
		{"PackageType", out.PackageType, types.PackageTypeZip},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
	if out.RevisionId == nil || len(*out.RevisionId) != 36 {
		t.Errorf("RevisionId = %v, want a UUID", out.RevisionId)
	}
	if lm := aws.ToString(out.LastModified); !strings.HasSuffix(lm, "+0000") || len(lm) != len("2019-08-14T22:26:11.234+0000") {
		t.Errorf("LastModified = %q, want AWS's format", lm)
	}

	for _, name := range []string{"my-function", arnBase + "my-function", account + ":function:my-function"} {
		got, err := h.client.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(name)})
		if err != nil {
			t.Fatalf("GetFunction(%s): %v", name, err)
		}
		if aws.ToString(got.Configuration.CodeSha256) != aws.ToString(out.CodeSha256) || got.Tags["team"] != "x" {
			t.Errorf("GetFunction(%s) = %+v", name, got.Configuration)
		}
		if got.Concurrency != nil {
			t.Errorf("Concurrency = %+v, want absent", got.Concurrency)
		}
		if aws.ToString(got.Code.RepositoryType) != "S3" || !strings.Contains(aws.ToString(got.Code.Location), "/lambdad/code/") {
			t.Errorf("Code = %+v", got.Code)
		}
		res := lambdatest.Do(t, "GET", aws.ToString(got.Code.Location), nil, nil)
		if res.Status != 200 || string(res.Body) != string(zip) {
			t.Errorf("code download: %d, %d bytes", res.Status, len(res.Body))
		}
	}
	cfg, err := h.client.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("my-function")})
	if err != nil || aws.ToString(cfg.FunctionName) != "my-function" {
		t.Fatalf("GetFunctionConfiguration: %v %v", cfg, err)
	}

	_, err = h.client.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String("my-function"), Runtime: types.RuntimeProvidedal2023, Handler: aws.String("bootstrap"),
		Role: aws.String(role), Code: &types.FunctionCode{ZipFile: zip},
	})
	wantErr(t, err, 409, "ResourceConflictException", "Function already exist: my-function")
}

func TestNotFoundAndNames(t *testing.T) {
	h := newHarness(t, 1000, 100)
	h.create(t, "f")
	long := strings.Repeat("a", 65)
	cases := []struct {
		name, qualifier string
		status          int
		code, message   string
	}{
		{"nope", "", 404, "ResourceNotFoundException", "Function not found: " + arnBase + "nope"},
		{"f", "7", 404, "ResourceNotFoundException", "Function not found: " + arnBase + "f:7"},
		{"f:live", "", 404, "ResourceNotFoundException", "Function not found: " + arnBase + "f:live"},
		{long, "", 404, "ResourceNotFoundException", "Function not found: " + arnBase + long},
		{"arn:aws:lambda:eu-west-1:123456789012:function:f", "", 404, "ResourceNotFoundException", "Functions from 'eu-west-1' are not reachable in this region ('us-east-1')"},
		{"f:1", "2", 400, "InvalidParameterValueException", "The derived qualifier from the function name does not match the specified qualifier."},
	}
	for _, c := range cases {
		in := &lambda.GetFunctionInput{FunctionName: aws.String(c.name)}
		if c.qualifier != "" {
			in.Qualifier = aws.String(c.qualifier)
		}
		_, err := h.client.GetFunction(ctx, in)
		wantErr(t, err, c.status, c.code, c.message)
	}
}

func TestValidationAndWireErrors(t *testing.T) {
	h := newHarness(t, 1000, 100)
	res := lambdatest.Do(t, "GET", h.url+"/2015-03-31/functions/my-function!", nil, nil)
	body := res.JSON(t)
	wantMsg := "1 validation error detected: Value 'my-function!' at 'functionName' failed to satisfy constraint: Member must satisfy regular expression pattern: (arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{1}:)?(\\d{12}:)?(function:)?([a-zA-Z0-9-_\\.]+)(:(\\$LATEST(\\.PUBLISHED)?|[a-zA-Z0-9-_]+))?"
	if res.Status != 400 || res.Header.Get("X-Amzn-ErrorType") != "ValidationException" || body["message"] != wantMsg || len(body) != 1 {
		t.Errorf("pattern violation: %d %s %v", res.Status, res.Header.Get("X-Amzn-ErrorType"), body)
	}
	if res.Header.Get("x-amzn-RequestId") == "" {
		t.Error("no x-amzn-RequestId on an error")
	}

	for _, c := range []struct{ method, path string }{
		{"GET", "/nothing/here"},
		{"PATCH", "/2015-03-31/functions/f"},
		{"POST", "/2016-08-19/account-settings"},
	} {
		res := lambdatest.Do(t, c.method, h.url+c.path, nil, nil)
		if res.Status != 404 || res.Header.Get("X-Amzn-ErrorType") != "UnknownOperationException" || res.JSON(t)["message"] == nil {
			t.Errorf("%s %s: %d %s %s", c.method, c.path, res.Status, res.Header.Get("X-Amzn-ErrorType"), res.Body)
		}
	}

	res = lambdatest.Do(t, "POST", h.url+"/2015-03-31/functions", []byte("{not json"), nil)
	if res.Status != 400 || res.Header.Get("X-Amzn-ErrorType") != "InvalidRequestContentException" {
		t.Errorf("bad JSON: %d %s", res.Status, res.Body)
	}
	res = lambdatest.Do(t, "POST", h.url+"/2015-03-31/functions", []byte(`{"FunctionName":"x","Role":"`+role+`","Code":{"ZipFile":"bm90IGEgemlw"},"Runtime":"provided.al2023","Handler":"h"}`), nil)
	if res.Status != 400 || res.JSON(t)["message"] != "Could not unzip uploaded file. Please check your file, then try to upload again." {
		t.Errorf("bad zip: %d %s", res.Status, res.Body)
	}
	res = lambdatest.Do(t, "POST", h.url+"/2015-03-31/functions", []byte(`{"FunctionName":"x","Role":"nope","MemorySize":64,"Code":{}}`), nil)
	want := "2 validation errors detected: Value '64' at 'memorySize' failed to satisfy constraint: Member must have value greater than or equal to 128; Value 'nope' at 'role' failed to satisfy constraint: Member must satisfy regular expression pattern: arn:(aws[a-zA-Z-]*)?:iam::\\d{12}:role/?[a-zA-Z_0-9+=,.@\\-_/]+"
	if res.Status != 400 || res.JSON(t)["message"] != want {
		t.Errorf("two violations: %d %s\nwant %s", res.Status, res.Body, want)
	}
	res = lambdatest.Do(t, "GET", h.url+"/2015-03-31/functions?MaxItems=0", nil, nil)
	if res.Status != 400 || res.JSON(t)["message"] != "1 validation error detected: Value '0' at 'maxItems' failed to satisfy constraint: Member must have value greater than or equal to 1" {
		t.Errorf("MaxItems=0: %d %s", res.Status, res.Body)
	}
}

func TestVersionsAndAliases(t *testing.T) {
	h := newHarness(t, 1000, 100)
	created := h.create(t, "f")
	_, err := h.client.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("f"), CodeSha256: aws.String("wrong")})
	wantErr(t, err, 400, "InvalidParameterValueException", "CodeSHA256 (wrong) is different from current CodeSHA256 in $LATEST ("+aws.ToString(created.CodeSha256)+"). Please try again with the current CodeSHA256.")
	_, err = h.client.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("f"), RevisionId: aws.String("stale")})
	wantErr(t, err, 412, "PreconditionFailedException", "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id")

	v1, err := h.client.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("f"), CodeSha256: created.CodeSha256, RevisionId: created.RevisionId})
	if err != nil || aws.ToString(v1.Version) != "1" || aws.ToString(v1.FunctionArn) != arnBase+"f:1" {
		t.Fatalf("PublishVersion: %v %v", v1, err)
	}
	again, err := h.client.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("f")})
	if err != nil || aws.ToString(again.Version) != "1" {
		t.Fatalf("publishing an unchanged $LATEST made version %v (%v), want 1 again", aws.ToString(again.Version), err)
	}
	if _, err := h.client.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("f"), ZipFile: lambdatest.Zip(t, map[string]string{"bootstrap": "v2"}), Publish: true}); err != nil {
		t.Fatal(err)
	}
	upd, err := h.client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("f"), Timeout: aws.Int32(9)})
	if err != nil || aws.ToInt32(upd.Timeout) != 9 {
		t.Fatalf("UpdateFunctionConfiguration: %v %v", upd, err)
	}
	_, err = h.client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("f"), Timeout: aws.Int32(10), RevisionId: created.RevisionId})
	wantErr(t, err, 412, "PreconditionFailedException", "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id")

	vs, err := h.client.ListVersionsByFunction(ctx, &lambda.ListVersionsByFunctionInput{FunctionName: aws.String("f")})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range vs.Versions {
		got = append(got, aws.ToString(v.Version))
	}
	if strings.Join(got, ",") != "$LATEST,1,2" {
		t.Fatalf("versions = %v", got)
	}

	alias, err := h.client.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String("f"), Name: aws.String("live"), FunctionVersion: aws.String("1"),
		RoutingConfig: &types.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{"2": 0.25}}})
	if err != nil || aws.ToString(alias.AliasArn) != arnBase+"f:live" || alias.RoutingConfig.AdditionalVersionWeights["2"] != 0.25 {
		t.Fatalf("CreateAlias: %+v %v", alias, err)
	}
	_, err = h.client.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String("f"), Name: aws.String("live"), FunctionVersion: aws.String("1")})
	wantErr(t, err, 409, "ResourceConflictException", "Alias already exists: "+arnBase+"f:live")
	_, err = h.client.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String("f"), Name: aws.String("x"), FunctionVersion: aws.String("9")})
	wantErr(t, err, 404, "ResourceNotFoundException", "Function not found: "+arnBase+"f:9")
	_, err = h.client.GetAlias(ctx, &lambda.GetAliasInput{FunctionName: aws.String("f"), Name: aws.String("nope")})
	wantErr(t, err, 404, "ResourceNotFoundException", "Cannot find alias arn: "+arnBase+"f:nope")

	viaAlias, err := h.client.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("f"), Qualifier: aws.String("live")})
	if err != nil || aws.ToString(viaAlias.Configuration.Version) != "1" || aws.ToString(viaAlias.Configuration.FunctionArn) != arnBase+"f:live" {
		t.Fatalf("GetFunction via alias: %+v %v", viaAlias, err)
	}
	_, err = h.client.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("f"), Qualifier: aws.String("1")})
	wantErr(t, err, 409, "ResourceConflictException", "Unable to delete version because the following aliases reference it: [live]")
	_, err = h.client.UpdateAlias(ctx, &lambda.UpdateAliasInput{FunctionName: aws.String("f"), Name: aws.String("live"), FunctionVersion: aws.String("2"), RevisionId: aws.String("stale")})
	wantErr(t, err, 412, "PreconditionFailedException", "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id")
	moved, err := h.client.UpdateAlias(ctx, &lambda.UpdateAliasInput{FunctionName: aws.String("f"), Name: aws.String("live"), FunctionVersion: aws.String("2"),
		RoutingConfig: &types.AliasRoutingConfiguration{}})
	if err != nil || aws.ToString(moved.FunctionVersion) != "2" {
		t.Fatalf("UpdateAlias: %+v %v", moved, err)
	}
	list, err := h.client.ListAliases(ctx, &lambda.ListAliasesInput{FunctionName: aws.String("f")})
	if err != nil || len(list.Aliases) != 1 {
		t.Fatalf("ListAliases: %+v %v", list, err)
	}
	if _, err := h.client.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("f"), Qualifier: aws.String("1")}); err != nil {
		t.Fatalf("deleting an unused version: %v", err)
	}
	_, err = h.client.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("f"), Qualifier: aws.String("$LATEST")})
	wantErr(t, err, 400, "InvalidParameterValueException", "$LATEST version cannot be deleted without deleting the function.")
	if _, err := h.client.DeleteAlias(ctx, &lambda.DeleteAliasInput{FunctionName: aws.String("f"), Name: aws.String("live")}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.client.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("f")}); err != nil {
		t.Fatal(err)
	}
	_, err = h.client.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("f")})
	wantErr(t, err, 404, "ResourceNotFoundException", "Function not found: "+arnBase+"f")
}

func TestTags(t *testing.T) {
	h := newHarness(t, 1000, 100)
	h.create(t, "f", func(in *lambda.CreateFunctionInput) { in.Tags = map[string]string{"team": "a", "env": "dev"} })
	arn := aws.String(arnBase + "f")
	if _, err := h.client.TagResource(ctx, &lambda.TagResourceInput{Resource: arn, Tags: map[string]string{"env": "prod", "cost": "x"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.client.UntagResource(ctx, &lambda.UntagResourceInput{Resource: arn, TagKeys: []string{"team", "cost"}}); err != nil {
		t.Fatal(err)
	}
	got, err := h.client.ListTags(ctx, &lambda.ListTagsInput{Resource: arn})
	if err != nil || len(got.Tags) != 1 || got.Tags["env"] != "prod" {
		t.Fatalf("ListTags: %v %v", got, err)
	}
	_, err = h.client.ListTags(ctx, &lambda.ListTagsInput{Resource: aws.String(arnBase + "nope")})
	wantErr(t, err, 404, "ResourceNotFoundException", "Function not found: "+arnBase+"nope")
	_, err = h.client.TagResource(ctx, &lambda.TagResourceInput{Resource: aws.String(arnBase + "f:1"), Tags: map[string]string{"a": "b"}})
	if code, _ := lambdatest.APIError(t, err); code != "InvalidParameterValueException" {
		t.Errorf("tagging a version: %v", err)
	}
}

func TestListFunctionsPaging(t *testing.T) {
	h := newHarness(t, 1000, 100)
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		h.create(t, n, func(in *lambda.CreateFunctionInput) { in.Publish = n == "b" || n == "d" })
	}
	collect := func(all bool) []string {
		var names []string
		var marker *string
		for page := 0; page < 20; page++ {
			in := &lambda.ListFunctionsInput{MaxItems: aws.Int32(2), Marker: marker}
			if all {
				in.FunctionVersion = types.FunctionVersionAll
			}
			out, err := h.client.ListFunctions(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			if len(out.Functions) > 2 {
				t.Fatalf("page of %d items with MaxItems 2", len(out.Functions))
			}
			for _, f := range out.Functions {
				names = append(names, aws.ToString(f.FunctionName)+":"+aws.ToString(f.Version))
			}
			if out.NextMarker == nil {
				return names
			}
			marker = out.NextMarker
		}
		t.Fatal("paging never ended")
		return nil
	}
	if got := strings.Join(collect(false), " "); got != "a:$LATEST b:$LATEST c:$LATEST d:$LATEST e:$LATEST" {
		t.Errorf("ListFunctions = %s", got)
	}
	if got := strings.Join(collect(true), " "); got != "a:$LATEST b:$LATEST b:1 c:$LATEST d:$LATEST d:1 e:$LATEST" {
		t.Errorf("ListFunctions ALL = %s", got)
	}
}
