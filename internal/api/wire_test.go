package api_test

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/lambdad/lambdad/internal/apimodel"
	"github.com/lambdad/lambdad/internal/awserr"
	"github.com/lambdad/lambdad/internal/control"
	"github.com/lambdad/lambdad/internal/lambdatest"
)

// The expectations in this file are AWS's answers as recorded in LocalStack's
// AWS-validated snapshots (tests/aws/services/lambda_/test_lambda_api.snapshot.json)
// unless a comment says otherwise.

// withoutPrograms makes the server's interpreter lookup fail for the named
// programs, as on a machine without them.
func withoutPrograms(missing ...string) func(*control.Options) {
	return func(o *control.Options) {
		o.LookPath = func(p string) (string, error) {
			for _, m := range missing {
				if p == m {
					return "", errors.New("executable file not found in $PATH")
				}
			}
			return "/usr/bin/" + p, nil
		}
	}
}

const servedRuntimes = "provided.al2, provided.al2023, python3.8, python3.9, python3.10, python3.11, python3.12, python3.13, python3.14, nodejs16.x, nodejs18.x, nodejs20.x, nodejs22.x, nodejs24.x"

func TestRuntimesThisServerCannotRun(t *testing.T) {
	h := newHarness(t, 1000, 100, withoutPrograms("node"))
	retired := func(rt string) string {
		return "The runtime parameter of " + rt + " is no longer supported for creating or updating AWS Lambda functions. We recommend you use a supported runtime while creating or updating functions."
	}
	enum := func(rt string) string {
		return "Value " + rt + " at 'runtime' failed to satisfy constraint: Member must satisfy enum value set: [nodejs20.x, python3.14, provided.al2023, python3.12, python3.13, nodejs24.x, nodejs22.x, java25, python3.10, python3.11, java21, ruby3.3, ruby3.4, ruby3.2, python3.8, python3.9, java17, nodejs16.x, dotnet10, dotnet8, java11, dotnet6, nodejs18.x, provided.al2, java8.al2, ruby4.0] or be a valid ARN"
	}
	cases := []struct {
		runtime types.Runtime
		message string
	}{
		{types.RuntimeJava21, "The runtime parameter of java21 is not supported on this server. Runtimes it supports: " + servedRuntimes + "."},
		{types.RuntimeRuby33, "The runtime parameter of ruby3.3 is not supported on this server. Runtimes it supports: " + servedRuntimes + "."},
		{types.RuntimePython27, retired("python2.7")},
		{types.RuntimeNodejs12x, retired("nodejs12.x")},
		{types.RuntimeJava8, retired("java8")},
		{types.RuntimeProvided, retired("provided")},
		{"non-existent-runtime", enum("non-existent-runtime")},
		{"PYTHON3.9", enum("PYTHON3.9")},
		// A runtime lambdad runs, on a machine without its interpreter.
		{types.RuntimeNodejs22x, "The runtime parameter of nodejs22.x cannot be used on this server: node was not found on its PATH."},
	}
	for _, c := range cases {
		_, err := h.client.CreateFunction(ctx, &lambda.CreateFunctionInput{
			FunctionName: aws.String("f"), Runtime: c.runtime, Handler: aws.String("index.handler"), Role: aws.String(role),
			Code: &types.FunctionCode{ZipFile: lambdatest.Zip(t, map[string]string{"index.js": ""})},
		})
		wantErr(t, err, 400, "InvalidParameterValueException", c.message)
	}
	if _, err := h.client.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("f")}); err == nil {
		t.Fatal("a refused CreateFunction stored the function")
	}

	// The body has AWS's shape: Type User, lower-case message.
	res := lambdatest.Do(t, "POST", h.url+"/2015-03-31/functions", []byte(`{"FunctionName":"f","Role":"`+role+
		`","Runtime":"java21","Handler":"h","Code":{"ZipFile":"UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA=="}}`), nil)
	if body := res.JSON(t); res.Status != 400 || body["Type"] != "User" || !strings.HasPrefix(body["message"].(string), "The runtime parameter of java21") || len(body) != 2 {
		t.Errorf("java21: %d %s", res.Status, res.Body)
	}

	// Runtimes it runs are accepted: provided needs no interpreter, python3 is there.
	h.create(t, "f")
	h.create(t, "py", func(in *lambda.CreateFunctionInput) {
		in.Runtime = types.RuntimePython312
		in.Handler = aws.String("a.b")
	})

	// UpdateFunctionConfiguration refuses the same runtimes and keeps the old one.
	for _, c := range cases {
		_, err := h.client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("f"), Runtime: c.runtime})
		wantErr(t, err, 400, "InvalidParameterValueException", c.message)
	}
	got, err := h.client.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("f")})
	if err != nil || got.Runtime != types.RuntimeProvidedal2023 {
		t.Fatalf("after refused updates: %v %v", got.Runtime, err)
	}
	upd, err := h.client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("f"), Runtime: types.RuntimePython313})
	if err != nil || upd.Runtime != types.RuntimePython313 {
		t.Fatalf("update to python3.13: %v %v", upd, err)
	}
	// Other settings change without naming the runtime.
	if _, err := h.client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("f"), Timeout: aws.Int32(9)}); err != nil {
		t.Fatal(err)
	}
}

func TestCreateFunctionNameLength(t *testing.T) {
	h := newHarness(t, 1000, 100)
	name64 := strings.Repeat("a", 64)
	out := h.create(t, name64)
	if aws.ToString(out.FunctionName) != name64 {
		t.Errorf("FunctionName = %q", aws.ToString(out.FunctionName))
	}
	name65 := strings.Repeat("a", 65)
	create := func(name string) error {
		_, err := h.client.CreateFunction(ctx, &lambda.CreateFunctionInput{
			FunctionName: aws.String(name), Runtime: types.RuntimeProvidedal2023, Handler: aws.String("bootstrap"), Role: aws.String(role),
			Code: &types.FunctionCode{ZipFile: lambdatest.Zip(t, map[string]string{"bootstrap": ""})},
		})
		return err
	}
	wantErr(t, create(name65), 400, "InvalidParameterValueException",
		"1 validation error detected: Value '"+name65+"' at 'functionName' failed to satisfy constraint: Member must have length less than or equal to 64")
	// An ARN over the model's 140 characters is the front end's ValidationException.
	long := arnBase + strings.Repeat("a", 140-len(arnBase)+1)
	wantErr(t, create(long), 400, "ValidationException",
		"1 validation error detected: Value '"+long+"' at 'functionName' failed to satisfy constraint: Member must have length less than or equal to 140")
	// Reading a name that long is still the 404 of a function that does not exist.
	_, err := h.client.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(name65)})
	wantErr(t, err, 404, "ResourceNotFoundException", "Function not found: "+arnBase+name65)
}

func TestPublishedARNs(t *testing.T) {
	h := newHarness(t, 1000, 100)
	// CreateFunction with Publish answers version 1 under the unqualified ARN.
	out := h.create(t, "f", func(in *lambda.CreateFunctionInput) { in.Publish = true })
	if aws.ToString(out.FunctionArn) != arnBase+"f" || aws.ToString(out.Version) != "1" {
		t.Errorf("CreateFunction Publish: FunctionArn %s Version %s, want %s and 1", aws.ToString(out.FunctionArn), aws.ToString(out.Version), arnBase+"f")
	}
	// UpdateFunctionCode with Publish qualifies it.
	upd, err := h.client.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("f"),
		ZipFile: lambdatest.Zip(t, map[string]string{"bootstrap": "v2"}), Publish: true})
	if err != nil || aws.ToString(upd.FunctionArn) != arnBase+"f:2" {
		t.Fatalf("UpdateFunctionCode Publish: %v %v", upd, err)
	}

	arns := func(in *lambda.ListFunctionsInput) []string {
		t.Helper()
		res, err := h.client.ListFunctions(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, f := range res.Functions {
			out = append(out, aws.ToString(f.FunctionArn))
		}
		return out
	}
	if got, want := strings.Join(arns(&lambda.ListFunctionsInput{FunctionVersion: types.FunctionVersionAll}), " "),
		arnBase+"f:$LATEST "+arnBase+"f:1 "+arnBase+"f:2"; got != want {
		t.Errorf("ListFunctions ALL:\n got %s\nwant %s", got, want)
	}
	if got := strings.Join(arns(&lambda.ListFunctionsInput{}), " "); got != arnBase+"f" {
		t.Errorf("ListFunctions: %s, want the unqualified ARN", got)
	}
	// ListVersionsByFunction already qualified $LATEST; the two agree.
	vs, err := h.client.ListVersionsByFunction(ctx, &lambda.ListVersionsByFunctionInput{FunctionName: aws.String("f")})
	if err != nil || aws.ToString(vs.Versions[0].FunctionArn) != arnBase+"f:$LATEST" {
		t.Fatalf("ListVersionsByFunction: %v %v", vs, err)
	}
}

func TestTracingConfigIsKept(t *testing.T) {
	h := newHarness(t, 1000, 100)
	out := h.create(t, "f", func(in *lambda.CreateFunctionInput) {
		in.TracingConfig = &types.TracingConfig{Mode: types.TracingModeActive}
	})
	if out.TracingConfig == nil || out.TracingConfig.Mode != types.TracingModeActive {
		t.Fatalf("CreateFunction TracingConfig = %+v", out.TracingConfig)
	}
	mode := func(q string) types.TracingMode {
		t.Helper()
		in := &lambda.GetFunctionInput{FunctionName: aws.String("f")}
		if q != "" {
			in.Qualifier = aws.String(q)
		}
		got, err := h.client.GetFunction(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		return got.Configuration.TracingConfig.Mode
	}
	if m := mode(""); m != types.TracingModeActive {
		t.Errorf("GetFunction: %s", m)
	}
	// An update that does not name it keeps it; a published version carries it.
	if _, err := h.client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("f"), Timeout: aws.Int32(5)}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.client.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("f")}); err != nil {
		t.Fatal(err)
	}
	if m := mode("1"); m != types.TracingModeActive {
		t.Errorf("version 1: %s", m)
	}
	upd, err := h.client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("f"),
		TracingConfig: &types.TracingConfig{Mode: types.TracingModePassThrough}})
	if err != nil || upd.TracingConfig.Mode != types.TracingModePassThrough {
		t.Fatalf("update to PassThrough: %+v %v", upd, err)
	}
	if m := mode(""); m != types.TracingModePassThrough {
		t.Errorf("after update: %s", m)
	}
	if m := mode("1"); m != types.TracingModeActive {
		t.Errorf("version 1 after update: %s", m)
	}
	// A function created without it reports PassThrough, as AWS does.
	if out := h.create(t, "g"); out.TracingConfig.Mode != types.TracingModePassThrough {
		t.Errorf("default: %s", out.TracingConfig.Mode)
	}
}

func TestMissingAliasAnswers(t *testing.T) {
	h := newHarness(t, 1000, 100)
	h.create(t, "f")
	_, err := h.client.GetAlias(ctx, &lambda.GetAliasInput{FunctionName: aws.String("f"), Name: aws.String("non-existent")})
	wantErr(t, err, 404, "ResourceNotFoundException", "Cannot find alias arn: "+arnBase+"f:non-existent")
	_, err = h.client.UpdateAlias(ctx, &lambda.UpdateAliasInput{FunctionName: aws.String("f"), Name: aws.String("non-existent")})
	wantErr(t, err, 404, "ResourceNotFoundException", "Alias not found: "+arnBase+"f:non-existent")
	res := lambdatest.Do(t, "DELETE", h.url+"/2015-03-31/functions/f/aliases/non-existent", nil, nil)
	if res.Status != 204 || len(res.Body) != 0 {
		t.Errorf("DeleteAlias of a missing alias: %d %s, want 204", res.Status, res.Body)
	}
	// The function must exist all the same.
	_, err = h.client.DeleteAlias(ctx, &lambda.DeleteAliasInput{FunctionName: aws.String("nope"), Name: aws.String("live")})
	wantErr(t, err, 404, "ResourceNotFoundException", "Function not found: "+arnBase+"nope")
}

func TestMemberConstraintViolations(t *testing.T) {
	h := newHarness(t, 1000, 100)
	create := func(mutate func(*lambda.CreateFunctionInput)) error {
		in := &lambda.CreateFunctionInput{FunctionName: aws.String("f"), Runtime: types.RuntimeProvidedal2023, Handler: aws.String("bootstrap"),
			Role: aws.String(role), Code: &types.FunctionCode{ZipFile: lambdatest.Zip(t, map[string]string{"bootstrap": ""})}}
		mutate(in)
		_, err := h.client.CreateFunction(ctx, in)
		return err
	}
	err := create(func(in *lambda.CreateFunctionInput) { in.Architectures = []types.Architecture{"X86_64"} })
	wantErr(t, err, 400, "ValidationException", "1 validation error detected: Value '[X86_64]' at 'architectures' failed to satisfy constraint: Member must satisfy constraint: [Member must satisfy enum value set: [x86_64, arm64], Member must not be null]")
	// Environment variables are sensitive: AWS does not echo them.
	err = create(func(in *lambda.CreateFunctionInput) {
		in.Environment = &types.Environment{Variables: map[string]string{"K": "secret", "GOOD": "x"}}
	})
	wantErr(t, err, 400, "ValidationException", "1 validation error detected: Value at 'environment.variables' failed to satisfy constraint: Map keys must satisfy constraint: [Member must satisfy regular expression pattern: [a-zA-Z]([a-zA-Z0-9_])+]")

	h.create(t, "f", func(in *lambda.CreateFunctionInput) { in.Publish = true })
	_, err = h.client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("f"),
		Environment: &types.Environment{Variables: map[string]string{"1X": "v"}}})
	wantErr(t, err, 400, "ValidationException", "1 validation error detected: Value at 'environment.variables' failed to satisfy constraint: Map keys must satisfy constraint: [Member must satisfy regular expression pattern: [a-zA-Z]([a-zA-Z0-9_])+]")
	_, err = h.client.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String("f"), Name: aws.String("live"), FunctionVersion: aws.String("1"),
		RoutingConfig: &types.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{"$LATEST": 0.5}}})
	wantErr(t, err, 400, "ValidationException", "1 validation error detected: Value '{$LATEST=0.5}' at 'routingConfig.additionalVersionWeights' failed to satisfy constraint: Map keys must satisfy constraint: [Member must have length less than or equal to 1024, Member must have length greater than or equal to 1, Member must satisfy regular expression pattern: [0-9]+]")
	_, err = h.client.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String("f"), Name: aws.String("live"), FunctionVersion: aws.String("1"),
		RoutingConfig: &types.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{"2": 2}}})
	wantErr(t, err, 400, "ValidationException", "1 validation error detected: Value '{2=2.0}' at 'routingConfig.additionalVersionWeights' failed to satisfy constraint: Map value must satisfy constraint: [Member must have value less than or equal to 1.0, Member must have value greater than or equal to 0.0, Member must not be null]")
}

func TestCrossAccountRole(t *testing.T) {
	h := newHarness(t, 1000, 100)
	other := "arn:aws:iam::210987654321:role/lambda-role"
	_, err := h.client.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("f"), Runtime: types.RuntimeProvidedal2023,
		Handler: aws.String("bootstrap"), Role: aws.String(other), Code: &types.FunctionCode{ZipFile: lambdatest.Zip(t, map[string]string{"bootstrap": ""})}})
	wantErr(t, err, 403, "AccessDeniedException", "Cross-account pass role is not allowed.")
	res := lambdatest.Do(t, "POST", h.url+"/2015-03-31/functions", []byte(`{"FunctionName":"f","Role":"`+other+
		`","Runtime":"provided.al2023","Handler":"h","Code":{"ZipFile":"UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA=="}}`), nil)
	if body := res.JSON(t); res.Status != 403 || res.Header.Get("X-Amzn-ErrorType") != "AccessDeniedException" ||
		body["Message"] != "Cross-account pass role is not allowed." || len(body) != 1 {
		t.Errorf("raw: %d %s %s", res.Status, res.Header.Get("X-Amzn-ErrorType"), res.Body)
	}

	h.create(t, "f")
	_, err = h.client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("f"), Role: aws.String(other)})
	wantErr(t, err, 403, "AccessDeniedException", "Cross-account pass role is not allowed.")
	got, err := h.client.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("f")})
	if err != nil || aws.ToString(got.Role) != role {
		t.Fatalf("role after a refused update: %v %v", got, err)
	}
	// Another role of the server's own account is fine.
	mine := "arn:aws:iam::" + account + ":role/other"
	upd, err := h.client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("f"), Role: aws.String(mine)})
	if err != nil || aws.ToString(upd.Role) != mine {
		t.Fatalf("own-account role: %v %v", upd, err)
	}
}

// syncBuffer is a bytes.Buffer safe for the logger and the test to share.
type syncBuffer struct {
	mu chan struct{}
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu <- struct{}{}
	defer func() { <-s.mu }()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu <- struct{}{}
	defer func() { <-s.mu }()
	return s.b.String()
}

func TestUnknownOperationsAreLogged(t *testing.T) {
	logs := &syncBuffer{mu: make(chan struct{}, 1)}
	srv := newEdge(t, 1000, 100, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))).srv
	for _, c := range []struct{ method, path string }{
		{"GET", "/2015-03-31/functions/f/url"}, // no operation of the model
		{"PATCH", "/2015-03-31/functions/f"},   // a route with another method
		{"POST", "/2018-10-31/layerz/l"},       // another path of no operation
	} {
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequest(c.method, c.path, nil))
		if rec.Code != 404 {
			t.Errorf("%s %s: %d", c.method, c.path, rec.Code)
		}
		id := rec.Header().Get("X-Amzn-Requestid")
		want := "level=INFO msg=\"unknown operation\" request_id=" + id + " method=" + c.method + " path=" + c.path + " status=404 code=UnknownOperationException"
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
}

// TestEveryOperationAnswers sends a request to the route of every
// operation of the API model: none may answer as an unknown operation,
// and the ones this server does not run say so by name.
func TestEveryOperationAnswers(t *testing.T) {
	e := newEdge(t, 1000, 100, nil)
	model, err := apimodel.Load()
	if err != nil {
		t.Fatal(err)
	}
	fill := regexp.MustCompile(`\{[^}]+\}`)
	for name, op := range model.Operations {
		path := fill.ReplaceAllString(op.Path, "x")
		if len(op.Query) > 0 {
			q := url.Values{}
			for k, v := range op.Query {
				q.Set(k, v)
			}
			path += "?" + q.Encode()
		}
		rec := httptest.NewRecorder()
		e.srv.ServeHTTP(rec, httptest.NewRequest(op.Method, path, strings.NewReader("{}")))
		code := rec.Header().Get("X-Amzn-Errortype")
		if code == string(awserr.UnknownOperation) || rec.Code == 500 {
			t.Errorf("%s (%s %s): %d %s %s", name, op.Method, path, rec.Code, code, rec.Body)
		}
		if name == "CreateCapacityProvider" || name == "GetDurableExecution" {
			if rec.Code != 400 || !strings.Contains(rec.Body.String(), "lambdad does not support "+name) {
				t.Errorf("%s: %d %s", name, rec.Code, rec.Body)
			}
		}
	}
}
