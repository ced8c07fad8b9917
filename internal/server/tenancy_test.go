package server_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/lambdad/lambdad/internal/lambdatest"
	"github.com/lambdad/lambdad/internal/server"
)

// perTenant gives CreateFunction tenant isolation.
func perTenant(in *lambda.CreateFunctionInput) {
	in.TenancyConfig = &types.TenancyConfig{TenantIsolationMode: types.TenantIsolationModePerTenant}
}

func isolated(c *types.TenancyConfig) bool {
	return c != nil && c.TenantIsolationMode == types.TenantIsolationModePerTenant
}

// tenantAnswer is testfn's answer with its tenant.
type tenantAnswer struct {
	PID      int     `json:"pid"`
	TenantID *string `json:"tenant_id"`
}

func (n *node) invokeTenant(t *testing.T, name, tenant string) tenantAnswer {
	t.Helper()
	in := &lambda.InvokeInput{FunctionName: aws.String(name), Payload: []byte(`{}`)}
	if tenant != "" {
		in.TenantId = aws.String(tenant)
	}
	out, err := n.client.Invoke(ctx, in)
	if err != nil {
		t.Fatalf("Invoke(%s, tenant %q): %v", name, tenant, err)
	}
	if out.FunctionError != nil {
		t.Fatalf("Invoke(%s, tenant %q): %s", name, tenant, out.Payload)
	}
	var a tenantAnswer
	if err := json.Unmarshal(out.Payload, &a); err != nil {
		t.Fatalf("payload %s: %v", out.Payload, err)
	}
	return a
}

// TestTenancyConfigIsKept: CreateFunction takes TenancyConfig, and every
// FunctionConfiguration shows it (Create, Get, GetConfiguration, List,
// versions, which inherit it) and keeps it through an update; a function
// without it shows none; a mode outside the model's enum is AWS's
// ValidationException.
func TestTenancyConfigIsKept(t *testing.T) {
	n := start(t, server.Options{})
	in := goFunctionInput(t, "iso")
	perTenant(in)
	in.Publish = true
	created, err := n.client.CreateFunction(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if !isolated(created.TenancyConfig) {
		t.Errorf("CreateFunction answered TenancyConfig %+v", created.TenancyConfig)
	}
	n.createGo(t, "plain")

	got, err := n.client.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("iso")})
	if err != nil || !isolated(got.Configuration.TenancyConfig) {
		t.Errorf("GetFunction: %v %+v", err, got)
	}
	for _, q := range []string{"", "1", "$LATEST"} {
		in := &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("iso")}
		if q != "" {
			in.Qualifier = aws.String(q)
		}
		c, err := n.client.GetFunctionConfiguration(ctx, in)
		if err != nil || !isolated(c.TenancyConfig) {
			t.Errorf("GetFunctionConfiguration(%q): %v %+v", q, err, c)
		}
	}
	// An update keeps it, and a version published afterwards has it.
	if _, err := n.client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String("iso"), Description: aws.String("changed")}); err != nil {
		t.Fatal(err)
	}
	if v, err := n.client.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("iso")}); err != nil || !isolated(v.TenancyConfig) {
		t.Errorf("PublishVersion: %v %+v", err, v)
	}
	// UpdateFunctionConfiguration has no TenancyConfig: one in its body
	// changes nothing.
	res := lambdatest.Do(t, "PUT", n.URL()+"/2015-03-31/functions/plain/configuration",
		[]byte(`{"TenancyConfig":{"TenantIsolationMode":"PER_TENANT"}}`), map[string]string{"Content-Type": "application/json"})
	if res.Status != 200 || strings.Contains(string(res.Body), "TenancyConfig") {
		t.Errorf("UpdateFunctionConfiguration with a TenancyConfig: %d %s", res.Status, res.Body)
	}

	list, err := n.client.ListFunctions(ctx, &lambda.ListFunctionsInput{})
	if err != nil || len(list.Functions) != 2 {
		t.Fatalf("ListFunctions: %v %+v", err, list)
	}
	for _, f := range list.Functions {
		if want := aws.ToString(f.FunctionName) == "iso"; isolated(f.TenancyConfig) != want || !want && f.TenancyConfig != nil {
			t.Errorf("ListFunctions: %s has TenancyConfig %+v", aws.ToString(f.FunctionName), f.TenancyConfig)
		}
	}
	all, err := n.client.ListFunctions(ctx, &lambda.ListFunctionsInput{FunctionVersion: types.FunctionVersionAll})
	if err != nil {
		t.Fatal(err)
	}
	versions, err := n.client.ListVersionsByFunction(ctx, &lambda.ListVersionsByFunctionInput{FunctionName: aws.String("iso")})
	if err != nil || len(versions.Versions) != 3 {
		t.Fatalf("ListVersionsByFunction: %v %+v", err, versions)
	}
	for _, c := range append(versions.Versions, all.Functions...) {
		if want := aws.ToString(c.FunctionName) == "iso"; isolated(c.TenancyConfig) != want {
			t.Errorf("%s:%s has TenancyConfig %+v", aws.ToString(c.FunctionName), aws.ToString(c.Version), c.TenancyConfig)
		}
	}
	plain, err := n.client.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("plain")})
	if err != nil || plain.TenancyConfig != nil {
		t.Errorf("a function without tenant isolation: %v %+v", err, plain.TenancyConfig)
	}

	// The mode is checked against the model's enum.
	bad := goFunctionInput(t, "bad")
	bad.TenancyConfig = &types.TenancyConfig{TenantIsolationMode: "SHARED"}
	_, err = n.client.CreateFunction(ctx, bad)
	wantAPIError(t, "TenantIsolationMode SHARED", err, "ValidationException", 400,
		"1 validation error detected: Value 'SHARED' at 'tenancyConfig.tenantIsolationMode' failed to satisfy constraint: Member must satisfy enum value set: [PER_TENANT]")
	res = lambdatest.Do(t, "POST", n.URL()+"/2015-03-31/functions", []byte(`{"FunctionName":"bad","Runtime":"provided.al2023","Handler":"bootstrap","Role":"`+role+`","Code":{"ZipFile":"UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA=="},"TenancyConfig":{}}`),
		map[string]string{"Content-Type": "application/json"})
	if res.Status != 400 || res.Header.Get("X-Amzn-ErrorType") != "ValidationException" || !strings.Contains(string(res.Body), "at 'tenancyConfig.tenantIsolationMode' failed to satisfy constraint: Member must not be null") {
		t.Errorf("TenancyConfig without its mode: %d %s", res.Status, res.Body)
	}
}

// TestTenantIdRefusals: a function with tenant isolation refuses every kind
// of invocation without a tenant id, a function without it refuses one with
// a tenant id (400 InvalidParameterValueException, in lambdad's words,
// naming the function), and a tenant id outside the model's pattern or
// length is AWS's ValidationException.
func TestTenantIdRefusals(t *testing.T) {
	n := start(t, server.Options{})
	n.createGo(t, "iso", perTenant)
	n.createGo(t, "plain")
	needs := "The function " + fnARN + "iso uses tenant isolation (TenantIsolationMode PER_TENANT): every invocation must name its tenant in TenantId (the X-Amz-Tenant-Id header)."
	refuses := "The function " + fnARN + "plain does not use tenant isolation: an invocation of it must not name a tenant (TenantId, the X-Amz-Tenant-Id header)."
	for _, typ := range []types.InvocationType{types.InvocationTypeRequestResponse, types.InvocationTypeEvent, types.InvocationTypeDryRun} {
		_, err := n.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("iso"), InvocationType: typ, Payload: []byte(`{}`)})
		wantAPIError(t, string(typ)+" without a tenant", err, "InvalidParameterValueException", 400, needs)
		_, err = n.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("plain"), InvocationType: typ, Payload: []byte(`{}`), TenantId: aws.String("blue")})
		wantAPIError(t, string(typ)+" of a function without isolation, with a tenant", err, "InvalidParameterValueException", 400, refuses)
	}
	_, err := n.client.InvokeWithResponseStream(ctx, &lambda.InvokeWithResponseStreamInput{FunctionName: aws.String("iso"), Payload: []byte(`{}`)})
	wantAPIError(t, "InvokeWithResponseStream without a tenant", err, "InvalidParameterValueException", 400, needs)
	_, err = n.client.InvokeWithResponseStream(ctx, &lambda.InvokeWithResponseStreamInput{FunctionName: aws.String("plain"), Payload: []byte(`{}`), TenantId: aws.String("blue")})
	wantAPIError(t, "InvokeWithResponseStream with a tenant", err, "InvalidParameterValueException", 400, refuses)
	// The legacy InvokeAsync has no tenant id: a function with isolation refuses it.
	res := lambdatest.Do(t, "POST", n.URL()+"/2014-11-13/functions/iso/invoke-async", []byte(`{}`), nil)
	if res.Status != 400 || res.Header.Get("X-Amzn-ErrorType") != "InvalidParameterValueException" {
		t.Errorf("InvokeAsync of a function with isolation: %d %s", res.Status, res.Body)
	}
	// A missing function is still a 404, whatever the tenant.
	_, err = n.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("nope"), TenantId: aws.String("blue")})
	wantAPIError(t, "a missing function", err, "ResourceNotFoundException", 404, "")

	// Accepted: DryRun with a tenant, and the stream.
	dry, err := n.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("iso"), InvocationType: types.InvocationTypeDryRun, TenantId: aws.String("blue")})
	if err != nil || dry.StatusCode != 204 {
		t.Errorf("DryRun with a tenant: %v %+v", err, dry)
	}
	out, err := n.client.InvokeWithResponseStream(ctx, &lambda.InvokeWithResponseStreamInput{FunctionName: aws.String("iso"), Payload: []byte(`{}`), TenantId: aws.String("stream-tenant")})
	if err != nil {
		t.Fatal(err)
	}
	if payload, done := streamEvents(t, out); !strings.Contains(payload, `"tenant_id":"stream-tenant"`) || done.ErrorCode != nil {
		t.Errorf("InvokeWithResponseStream with a tenant: %s %+v", payload, done)
	}

	// The edge checks the value against the model (TenantId: 1 to 256 of
	// [a-zA-Z0-9\._:\/=+\-@ ]), with AWS's words.
	ok := "a.b_c:d/e=f+g-h@i j"
	if a := n.invokeTenant(t, "iso", ok); aws.ToString(a.TenantID) != ok {
		t.Errorf("tenant %q reached the function as %q", ok, aws.ToString(a.TenantID))
	}
	if a := n.invokeTenant(t, "iso", strings.Repeat("x", 256)); aws.ToString(a.TenantID) != strings.Repeat("x", 256) {
		t.Errorf("a tenant id of 256 characters reached the function as %q", aws.ToString(a.TenantID))
	}
	for _, c := range []struct{ id, want string }{
		{"bad!", "1 validation error detected: Value 'bad!' at 'tenantId' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9\\._:\\/=+\\-@ ]+"},
		{strings.Repeat("x", 257), "1 validation error detected: Value '" + strings.Repeat("x", 257) + "' at 'tenantId' failed to satisfy constraint: Member must have length less than or equal to 256"},
	} {
		_, err := n.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("iso"), Payload: []byte(`{}`), TenantId: aws.String(c.id)})
		wantAPIError(t, "tenant id "+c.id[:min(len(c.id), 10)], err, "ValidationException", 400, c.want)
		_, err = n.client.InvokeWithResponseStream(ctx, &lambda.InvokeWithResponseStreamInput{FunctionName: aws.String("iso"), Payload: []byte(`{}`), TenantId: aws.String(c.id)})
		wantAPIError(t, "streamed, tenant id "+c.id[:min(len(c.id), 10)], err, "ValidationException", 400, c.want)
	}
}

// TestTenantsNeverShareEnvironments: two tenants invoked alternately each
// get an environment of their own (different processes), which each
// reuses, and a version and an alias of the function keep the tenants
// apart too.
func TestTenantsNeverShareEnvironments(t *testing.T) {
	n := start(t, server.Options{})
	n.createGo(t, "iso", perTenant)
	pids := map[string]int{}
	for i := range 6 {
		tenant := []string{"blue", "green"}[i%2]
		a := n.invokeTenant(t, "iso", tenant)
		if aws.ToString(a.TenantID) != tenant {
			t.Errorf("invocation %d for %s: the function saw tenant %q", i, tenant, aws.ToString(a.TenantID))
		}
		if p, seen := pids[tenant]; seen && p != a.PID {
			t.Errorf("invocation %d for %s ran in pid %d, not its warm %d", i, tenant, a.PID, p)
		}
		pids[tenant] = a.PID
	}
	if pids["blue"] == pids["green"] {
		t.Fatalf("blue and green shared pid %d", pids["blue"])
	}
	// A published version and an alias of it: the tenant still decides.
	if _, err := n.client.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("iso")}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.client.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String("iso"), Name: aws.String("live"), FunctionVersion: aws.String("1")}); err != nil {
		t.Fatal(err)
	}
	blue, green := n.invokeTenant(t, "iso:live", "blue"), n.invokeTenant(t, "iso:live", "green")
	if blue.PID == green.PID || aws.ToString(blue.TenantID) != "blue" || aws.ToString(green.TenantID) != "green" {
		t.Errorf("alias: blue %+v, green %+v", blue, green)
	}
	if again := n.invokeTenant(t, "iso:live", "blue"); again.PID != blue.PID {
		t.Errorf("alias: blue ran in pid %d, not its warm %d", again.PID, blue.PID)
	}
	// A function without isolation tells its code no tenant.
	n.createGo(t, "plain")
	if a := n.invokeTenant(t, "plain", ""); a.TenantID != nil {
		t.Errorf("a function without isolation saw tenant %q", *a.TenantID)
	}
}

const (
	pythonTenant = "import os\n\ndef handler(event, context):\n    return {\"tenant_id\": context.tenant_id, \"pid\": os.getpid()}\n"
	nodeTenant   = "exports.handler = async (event, context) => ({tenant_id: context.tenantId === undefined ? null : context.tenantId, pid: process.pid});\n"
)

// TestTenantIdReachesRuntimes: the python shim's context.tenant_id and the
// node shim's context.tenantId carry the tenant (None and undefined without
// isolation), as AWS's runtimes do; testfn (aws-lambda-go) is covered by
// the tests above through lambdacontext.LambdaContext.TenantID.
func TestTenantIdReachesRuntimes(t *testing.T) {
	n := start(t, server.Options{})
	for _, c := range []struct {
		tool    string
		runtime types.Runtime
		handler string
		files   map[string]string
	}{
		{"python3", types.RuntimePython312, "app.handler", map[string]string{"app.py": pythonTenant}},
		{"node", types.RuntimeNodejs22x, "index.handler", map[string]string{"index.js": nodeTenant}},
	} {
		t.Run(c.tool, func(t *testing.T) {
			requireTool(t, c.tool)
			for _, iso := range []bool{true, false} {
				name := c.tool + "-plain"
				in := &lambda.CreateFunctionInput{Runtime: c.runtime, Handler: aws.String(c.handler), Role: aws.String(role),
					Code: &types.FunctionCode{ZipFile: lambdatest.Zip(t, c.files)}}
				if iso {
					name = c.tool + "-iso"
					in.TenancyConfig = &types.TenancyConfig{TenantIsolationMode: types.TenantIsolationModePerTenant}
				}
				in.FunctionName = aws.String(name)
				if _, err := n.client.CreateFunction(ctx, in); err != nil {
					t.Fatal(err)
				}
				if !iso {
					if a := n.invokeTenant(t, name, ""); a.TenantID != nil {
						t.Errorf("%s without isolation: tenant %q", name, *a.TenantID)
					}
					continue
				}
				blue, green := n.invokeTenant(t, name, "blue"), n.invokeTenant(t, name, "green")
				if aws.ToString(blue.TenantID) != "blue" || aws.ToString(green.TenantID) != "green" || blue.PID == green.PID {
					t.Errorf("%s: blue %+v, green %+v", name, blue, green)
				}
				if again := n.invokeTenant(t, name, "blue"); again.PID != blue.PID || aws.ToString(again.TenantID) != "blue" {
					t.Errorf("%s: blue again %+v, want pid %d", name, again, blue.PID)
				}
			}
		})
	}
}

// TestTenantEvents: an Event invocation keeps its tenant through the
// durable queue and runs in that tenant's environment; its retries run for
// the tenant too, and so does its failure destination when that has
// tenant isolation.
func TestTenantEvents(t *testing.T) {
	n := start(t, server.Options{AsyncTimeScale: 0.005})
	dir, destDir := t.TempDir(), t.TempDir()
	n.createGo(t, "iso", perTenant, recording(dir))
	n.createGo(t, "dest", perTenant, recording(destDir))
	blue := n.invokeTenant(t, "iso", "blue")
	send := func(tenant, payload string) {
		t.Helper()
		out, err := n.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("iso"), InvocationType: types.InvocationTypeEvent,
			Payload: []byte(payload), TenantId: aws.String(tenant)})
		if err != nil || out.StatusCode != 202 {
			t.Fatalf("Event invoke for %s: %v %v", tenant, out, err)
		}
	}
	send("blue", `{}`)
	rs := waitRuns(t, dir, 2, 20*time.Second)
	if r := rs[1]; r.Tenant != "blue" || r.PID != blue.PID {
		t.Errorf("blue's event ran for %q in pid %d, want blue's warm pid %d", r.Tenant, r.PID, blue.PID)
	}
	send("green", `{}`)
	rs = waitRuns(t, dir, 3, 20*time.Second)
	if r := rs[2]; r.Tenant != "green" || r.PID == blue.PID {
		t.Errorf("green's event ran for %q in pid %d (blue's is %d)", r.Tenant, r.PID, blue.PID)
	}

	// A failing event: retried for its tenant, then its record goes to
	// the destination, run for the same tenant.
	if _, err := n.client.PutFunctionEventInvokeConfig(ctx, &lambda.PutFunctionEventInvokeConfigInput{
		FunctionName: aws.String("iso"), MaximumRetryAttempts: aws.Int32(1),
		DestinationConfig: &types.DestinationConfig{OnFailure: &types.OnFailure{Destination: aws.String(fnARN + "dest")}}}); err != nil {
		t.Fatal(err)
	}
	send("blue", `{"fail":"always"}`)
	rs = waitRuns(t, dir, 5, 30*time.Second)
	for _, r := range rs[3:] {
		if r.Tenant != "blue" || r.PID != blue.PID {
			t.Errorf("an attempt of blue's failing event ran for %q in pid %d, want blue's %d", r.Tenant, r.PID, blue.PID)
		}
	}
	if d := waitRuns(t, destDir, 1, 30*time.Second); d[0].Tenant != "blue" {
		t.Errorf("the destination ran the record for %q, want blue", d[0].Tenant)
	}
}

// TestTenantIsolationRefusesWhatAWSDoes: provisioned concurrency, function
// URLs and event source mappings are refused on a function with tenant
// isolation (InvalidParameterValueException, in lambdad's words), after
// the checks that come first (an unpublished version, a missing function),
// and still work on a function without it.
func TestTenantIsolationRefusesWhatAWSDoes(t *testing.T) {
	n := start(t, server.Options{})
	n.createGo(t, "iso", perTenant)
	n.createGo(t, "plain")
	for _, fn := range []string{"iso", "plain"} {
		if _, err := n.client.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String(fn)}); err != nil {
			t.Fatal(err)
		}
		if _, err := n.client.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String(fn), Name: aws.String("live"), FunctionVersion: aws.String("1")}); err != nil {
			t.Fatal(err)
		}
	}
	msg := func(what, arn string) string {
		return what + " cannot be used with tenant isolation: the function " + arn + " uses TenantIsolationMode PER_TENANT."
	}

	pc := func(fn, q string) error {
		_, err := n.client.PutProvisionedConcurrencyConfig(ctx, &lambda.PutProvisionedConcurrencyConfigInput{
			FunctionName: aws.String(fn), Qualifier: aws.String(q), ProvisionedConcurrentExecutions: aws.Int32(1)})
		return err
	}
	wantAPIError(t, "provisioned concurrency on version 1", pc("iso", "1"), "InvalidParameterValueException", 400, msg("Provisioned concurrency", fnARN+"iso:1"))
	wantAPIError(t, "provisioned concurrency on an alias", pc("iso", "live"), "InvalidParameterValueException", 400, msg("Provisioned concurrency", fnARN+"iso:live"))
	wantAPIError(t, "provisioned concurrency on $LATEST", pc("iso", "$LATEST"), "InvalidParameterValueException", 400,
		"Provisioned Concurrency Configs cannot be applied to unpublished function versions.")
	wantAPIError(t, "provisioned concurrency on a missing version", pc("iso", "9"), "ResourceNotFoundException", 404, "")
	if err := pc("plain", "1"); err != nil {
		t.Errorf("provisioned concurrency without isolation: %v", err)
	}

	url := func(fn, q string) error {
		in := &lambda.CreateFunctionUrlConfigInput{FunctionName: aws.String(fn), AuthType: types.FunctionUrlAuthTypeNone}
		if q != "" {
			in.Qualifier = aws.String(q)
		}
		_, err := n.client.CreateFunctionUrlConfig(ctx, in)
		return err
	}
	wantAPIError(t, "a URL of the function", url("iso", ""), "InvalidParameterValueException", 400, msg("A function URL", fnARN+"iso"))
	wantAPIError(t, "a URL of an alias", url("iso", "live"), "InvalidParameterValueException", 400, msg("A function URL", fnARN+"iso:live"))
	wantAPIError(t, "a URL of a missing alias", url("iso", "gone"), "ResourceNotFoundException", 404, "Function does not exist")
	if err := url("plain", ""); err != nil {
		t.Errorf("a URL without isolation: %v", err)
	}

	queue := "arn:aws:sqs:us-east-1:123456789012:q"
	esm := func(fn string) (*lambda.CreateEventSourceMappingOutput, error) {
		return n.client.CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{FunctionName: aws.String(fn), EventSourceArn: aws.String(queue), Enabled: aws.Bool(false)})
	}
	_, err := esm("iso")
	wantAPIError(t, "a mapping to the function", err, "InvalidParameterValueException", 400, msg("An event source mapping", fnARN+"iso"))
	_, err = esm("iso:live")
	wantAPIError(t, "a mapping to an alias", err, "InvalidParameterValueException", 400, msg("An event source mapping", fnARN+"iso:live"))
	_, err = esm("missing")
	wantAPIError(t, "a mapping to a missing function", err, "ResourceNotFoundException", 404, "")
	m, err := esm("plain")
	if err != nil {
		t.Fatalf("a mapping without isolation: %v", err)
	}
	// Nor can a mapping be moved onto such a function.
	_, err = n.client.UpdateEventSourceMapping(ctx, &lambda.UpdateEventSourceMappingInput{UUID: m.UUID, FunctionName: aws.String("iso")})
	wantAPIError(t, "a mapping moved to the function", err, "InvalidParameterValueException", 400, msg("An event source mapping", fnARN+"iso"))
}

// TestTenantIsolationWithTheAWSCLI: the AWS CLI's --tenancy-config and
// --tenant-id work as the README shows.
func TestTenantIsolationWithTheAWSCLI(t *testing.T) {
	requireTool(t, "aws")
	n := start(t, server.Options{})
	dir := t.TempDir()
	zip := filepath.Join(dir, "function.zip")
	if err := os.WriteFile(zip, lambdatest.GoFunction(t), 0o644); err != nil {
		t.Fatal(err)
	}
	cli := func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command("aws", append([]string{"--endpoint-url", n.URL(), "--output", "json", "lambda"}, args...)...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_DEFAULT_REGION=us-east-1",
			"AWS_MAX_ATTEMPTS=1", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
		out, err := cmd.Output()
		if err != nil {
			var stderr []byte
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = ee.Stderr
			}
			t.Fatalf("aws %v: %v\n%s", args, err, stderr)
		}
		return out
	}
	created := cli("create-function", "--function-name", "iso", "--runtime", "provided.al2023", "--handler", "bootstrap",
		"--role", role, "--zip-file", "fileb://function.zip", "--tenancy-config", "TenantIsolationMode=PER_TENANT")
	if !strings.Contains(string(created), `"TenantIsolationMode": "PER_TENANT"`) {
		t.Errorf("create-function: %s", created)
	}
	if got := cli("get-function-configuration", "--function-name", "iso"); !strings.Contains(string(got), `"TenantIsolationMode": "PER_TENANT"`) {
		t.Errorf("get-function-configuration: %s", got)
	}
	if err := os.WriteFile(filepath.Join(dir, "event.json"), []byte(`{}`), 0o644); err != nil {
		t.Fatal(err)
	}
	cli("invoke", "--function-name", "iso", "--tenant-id", "blue", "--payload", "fileb://event.json", "out.json")
	out, err := os.ReadFile(filepath.Join(dir, "out.json"))
	if err != nil || !strings.Contains(string(out), `"tenant_id":"blue"`) {
		t.Errorf("invoke --tenant-id blue answered %s (%v)", out, err)
	}
}
