package server_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/lambdad/lambdad/internal/lambdatest"
	"github.com/lambdad/lambdad/internal/sandbox"
	"github.com/lambdad/lambdad/internal/server"
)

func (n *node) publishLayer(t *testing.T, name string, files map[string]string, runtimes ...types.Runtime) *lambda.PublishLayerVersionOutput {
	t.Helper()
	out, err := n.client.PublishLayerVersion(ctx, &lambda.PublishLayerVersionInput{
		LayerName: aws.String(name), Content: &types.LayerVersionContentInput{ZipFile: lambdatest.Zip(t, files)},
		CompatibleRuntimes: runtimes, CompatibleArchitectures: []types.Architecture{types.ArchitectureX8664},
	})
	if err != nil {
		t.Fatalf("PublishLayerVersion(%s): %v", name, err)
	}
	return out
}

// TestPythonImportsFromLayers: a Python function imports a library from a
// layer, a later layer's module shadows an earlier one's as a later layer's
// files replace an earlier one's in /opt, a site-packages layout is found,
// and the layer's bin directory is on PATH.
func TestPythonImportsFromLayers(t *testing.T) {
	requireTool(t, "python3")
	n := start(t, server.Options{})
	lib := n.publishLayer(t, "greeting", map[string]string{
		"python/greeting/__init__.py": "def greet(name):\n    return 'hello ' + name\n",
		"python/which.py":             "WHO = 'first'\n",
	}, types.RuntimePython312)
	if got, want := aws.ToString(lib.LayerVersionArn), "arn:aws:lambda:us-east-1:123456789012:layer:greeting:1"; got != want {
		t.Fatalf("LayerVersionArn = %s, want %s", got, want)
	}
	over := n.publishLayer(t, "override", map[string]string{
		"python/which.py": "WHO = 'second'\n",
		"python/lib/python3.12/site-packages/sitepkg.py": "X = 'site'\n",
		"bin/layer-tool.sh": "#!/bin/sh\necho tool\n",
	}, types.RuntimePython312)
	code := lambdatest.Zip(t, map[string]string{"app.py": `import os, shutil, greeting, which, sitepkg
def handler(event, context):
    return {"greet": greeting.greet(event["name"]), "which": which.WHO, "site": sitepkg.X,
            "tool": shutil.which("layer-tool.sh") is not None}
`})
	_, err := n.client.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("py"),
		Runtime: types.RuntimePython312, Handler: aws.String("app.handler"), Role: aws.String(role),
		Code: &types.FunctionCode{ZipFile: code}, Layers: []string{aws.ToString(lib.LayerVersionArn), aws.ToString(over.LayerVersionArn)}})
	if err != nil {
		t.Fatal(err)
	}
	out, err := n.invoke(t, "py", `{"name":"layers"}`)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"greet": "hello layers", "which": "second", "site": "site", "tool": true}`; out.FunctionError != nil || string(out.Payload) != want {
		t.Fatalf("invoke: %s %s, want %s", aws.ToString(out.FunctionError), out.Payload, want)
	}
	g, err := n.client.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("py")})
	if err != nil {
		t.Fatal(err)
	}
	ls := g.Configuration.Layers
	if len(ls) != 2 || aws.ToString(ls[0].Arn) != aws.ToString(lib.LayerVersionArn) || ls[1].CodeSize != over.Content.CodeSize || ls[1].CodeSize == 0 {
		t.Errorf("GetFunction Layers = %+v", ls)
	}

	// The version deleted, the function keeps running on its code; the
	// version can no longer be added to a function.
	if _, err := n.client.DeleteLayerVersion(ctx, &lambda.DeleteLayerVersionInput{LayerName: aws.String("greeting"), VersionNumber: aws.Int64(1)}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("py"), Description: aws.String("new")}); err != nil {
		t.Fatal(err)
	}
	if out, err := n.invoke(t, "py", `{"name":"again"}`); err != nil || out.FunctionError != nil || !strings.Contains(string(out.Payload), "hello again") {
		t.Fatalf("after the layer version was deleted: %v %s", err, out.Payload)
	}
	_, err = n.client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("py"), Layers: []string{aws.ToString(lib.LayerVersionArn)}})
	if code, msg := lambdatest.APIError(t, err); code != "InvalidParameterValueException" || !strings.Contains(msg, "does not exist") {
		t.Errorf("a deleted layer version: %s %s", code, msg)
	}
	// Removing the layers takes them off the search paths.
	if _, err := n.client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("py"), Layers: []string{}}); err != nil {
		t.Fatal(err)
	}
	if out, err := n.invoke(t, "py", `{"name":"x"}`); err != nil || out.FunctionError == nil || !strings.Contains(string(out.Payload), "No module named") {
		t.Errorf("without layers: %v %s", err, out.Payload)
	}
}

// TestLayerAPI: versions, ARNs, the filters, paging, and AWS's errors.
func TestLayerAPI(t *testing.T) {
	n := start(t, server.Options{})
	for i := range 3 {
		rt := types.RuntimePython312
		if i == 1 {
			rt = types.RuntimeNodejs22x
		}
		n.publishLayer(t, "multi", map[string]string{"f": fmt.Sprint(i)}, rt)
	}
	n.publishLayer(t, "other", map[string]string{"f": "x"}, types.RuntimeNodejs22x)

	lv, err := n.client.ListLayerVersions(ctx, &lambda.ListLayerVersionsInput{LayerName: aws.String("multi")})
	if err != nil {
		t.Fatal(err)
	}
	if len(lv.LayerVersions) != 3 || lv.LayerVersions[0].Version != 3 || lv.LayerVersions[2].Version != 1 {
		t.Errorf("ListLayerVersions: %d versions, newest %+v", len(lv.LayerVersions), lv.LayerVersions)
	}
	lv, err = n.client.ListLayerVersions(ctx, &lambda.ListLayerVersionsInput{LayerName: aws.String("multi"), CompatibleRuntime: types.RuntimePython312, MaxItems: aws.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	if len(lv.LayerVersions) != 1 || lv.LayerVersions[0].Version != 3 || lv.NextMarker == nil {
		t.Fatalf("filtered first page: %+v next %v", lv.LayerVersions, lv.NextMarker)
	}
	lv, err = n.client.ListLayerVersions(ctx, &lambda.ListLayerVersionsInput{LayerName: aws.String("multi"), CompatibleRuntime: types.RuntimePython312, Marker: lv.NextMarker})
	if err != nil || len(lv.LayerVersions) != 1 || lv.LayerVersions[0].Version != 1 || lv.NextMarker != nil {
		t.Fatalf("filtered second page: %v %+v", err, lv)
	}
	ll, err := n.client.ListLayers(ctx, &lambda.ListLayersInput{CompatibleRuntime: types.RuntimeNodejs22x})
	if err != nil {
		t.Fatal(err)
	}
	if len(ll.Layers) != 2 || aws.ToString(ll.Layers[0].LayerName) != "multi" || ll.Layers[0].LatestMatchingVersion.Version != 2 ||
		aws.ToString(ll.Layers[0].LayerArn) != "arn:aws:lambda:us-east-1:123456789012:layer:multi" {
		t.Errorf("ListLayers(nodejs22.x) = %+v", ll.Layers)
	}
	ll, err = n.client.ListLayers(ctx, &lambda.ListLayersInput{CompatibleArchitecture: types.ArchitectureArm64})
	if err != nil || len(ll.Layers) != 0 {
		t.Errorf("ListLayers(arm64): %v %+v", err, ll)
	}

	byArn, err := n.client.GetLayerVersionByArn(ctx, &lambda.GetLayerVersionByArnInput{Arn: aws.String("arn:aws:lambda:us-east-1:123456789012:layer:multi:2")})
	if err != nil {
		t.Fatal(err)
	}
	if byArn.Version != 2 || byArn.Content == nil || aws.ToString(byArn.Content.CodeSha256) == "" || byArn.CreatedDate == nil {
		t.Errorf("GetLayerVersionByArn = %+v", byArn)
	}
	// Deleting a version frees its number for no one: the next is 4.
	if _, err := n.client.DeleteLayerVersion(ctx, &lambda.DeleteLayerVersionInput{LayerName: aws.String("multi"), VersionNumber: aws.Int64(3)}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.client.DeleteLayerVersion(ctx, &lambda.DeleteLayerVersionInput{LayerName: aws.String("multi"), VersionNumber: aws.Int64(3)}); err != nil {
		t.Errorf("deleting a missing version again: %v", err)
	}
	if v := n.publishLayer(t, "multi", map[string]string{"f": "4"}); v.Version != 4 {
		t.Errorf("after deleting 3, published %d", v.Version)
	}
	_, err = n.client.GetLayerVersion(ctx, &lambda.GetLayerVersionInput{LayerName: aws.String("multi"), VersionNumber: aws.Int64(3)})
	if code, msg := lambdatest.APIError(t, err); code != "ResourceNotFoundException" || lambdatest.Status(t, err) != 404 || msg != "The resource you requested does not exist." {
		t.Errorf("a deleted version: %s %s", code, msg)
	}

	// Functions: at most 5 layers, one version of each, only existing ones.
	var six []string
	for i := range 6 {
		six = append(six, aws.ToString(n.publishLayer(t, fmt.Sprintf("l%d", i), map[string]string{"f": "x"}).LayerVersionArn))
	}
	for _, c := range []struct {
		layers []string
		want   string
	}{
		{six, "Cannot reference more than 5 layers."},
		{[]string{"arn:aws:lambda:us-east-1:123456789012:layer:multi:1", "arn:aws:lambda:us-east-1:123456789012:layer:multi:2"}, "Two different versions of the same layer are not allowed."},
		{[]string{"arn:aws:lambda:us-east-1:123456789012:layer:nope:1"}, "Layer version arn:aws:lambda:us-east-1:123456789012:layer:nope:1 does not exist."},
	} {
		in := goFunctionInput(t, "f")
		in.Code.ZipFile = lambdatest.Zip(t, map[string]string{"bootstrap": "#!/bin/sh\n"}) // never runs
		in.Layers = c.layers
		_, err := n.client.CreateFunction(ctx, in)
		if code, msg := lambdatest.APIError(t, err); code != "InvalidParameterValueException" || msg != c.want {
			t.Errorf("Layers %v: %s %q, want %q", c.layers, code, msg, c.want)
		}
	}
	// A layer may declare runtimes this server does not run.
	if v := n.publishLayer(t, "java", map[string]string{"f": "x"}, types.RuntimeJava21); len(v.CompatibleRuntimes) != 1 {
		t.Errorf("a java21 layer: %+v", v.CompatibleRuntimes)
	}
	_, err = n.client.PublishLayerVersion(ctx, &lambda.PublishLayerVersionInput{LayerName: aws.String("x"),
		Content: &types.LayerVersionContentInput{ZipFile: lambdatest.Zip(t, map[string]string{"f": "x"})}, CompatibleRuntimes: []types.Runtime{"cobol9"}})
	if code, _ := lambdatest.APIError(t, err); code != "InvalidParameterValueException" {
		t.Errorf("an unknown compatible runtime: %v", err)
	}
	_, err = n.client.PublishLayerVersion(ctx, &lambda.PublishLayerVersionInput{LayerName: aws.String("bad name!"), Content: &types.LayerVersionContentInput{ZipFile: []byte("x")}})
	if code, _ := lambdatest.APIError(t, err); code != "ValidationException" {
		t.Errorf("a bad layer name: %v", err)
	}
}

// TestLayersAndURLsAreAnAccounts: one account's layers and URLs are not
// another's: B lists none of A's layers, cannot read or use A's layer
// version (AWS's AccessDeniedException, as without a layer version
// policy), publishes its own layer of the same name from version 1, and
// a URL request runs in the account that owns the URL.
func TestLayersAndURLsAreAnAccounts(t *testing.T) {
	n, a, b := startAccounts(t, t.TempDir())
	pub := func(c *lambda.Client) *lambda.PublishLayerVersionOutput {
		t.Helper()
		out, err := c.PublishLayerVersion(ctx, &lambda.PublishLayerVersionInput{LayerName: aws.String("shared"),
			Content: &types.LayerVersionContentInput{ZipFile: lambdatest.Zip(t, map[string]string{"f": "x"})}})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	la := pub(a)
	pub(a)
	if ll, err := b.ListLayers(ctx, &lambda.ListLayersInput{}); err != nil || len(ll.Layers) != 0 {
		t.Errorf("B lists %v %+v", err, ll)
	}
	_, err := b.GetLayerVersionByArn(ctx, &lambda.GetLayerVersionByArnInput{Arn: la.LayerVersionArn})
	if code, _ := lambdatest.APIError(t, err); code != "AccessDeniedException" || lambdatest.Status(t, err) != 403 {
		t.Errorf("B reads A's layer version: %v", err)
	}
	in := goFunctionInput(t, "f")
	in.Code.ZipFile = lambdatest.Zip(t, map[string]string{"bootstrap": "#!/bin/sh\n"}) // never runs
	in.Role = aws.String("arn:aws:iam::" + accountB + ":role/r")
	in.Layers = []string{aws.ToString(la.LayerVersionArn)}
	_, err = b.CreateFunction(ctx, in)
	if code, _ := lambdatest.APIError(t, err); code != "AccessDeniedException" {
		t.Errorf("B uses A's layer version: %v", err)
	}
	if lb := pub(b); lb.Version != 1 || aws.ToString(lb.LayerVersionArn) != "arn:aws:lambda:us-east-1:"+accountB+":layer:shared:1" {
		t.Errorf("B's own layer: %d %s", lb.Version, aws.ToString(lb.LayerVersionArn))
	}

	// The same name in both accounts, each recording its events apart.
	dirs := map[string]string{"a": t.TempDir(), "b": t.TempDir()}
	for mark, c := range map[string]*lambda.Client{"a": a, "b": b} {
		in := goFunctionInput(t, "web")
		in.Role = aws.String("arn:aws:iam::" + map[string]string{"a": accountA, "b": accountB}[mark] + ":role/r")
		in.Environment = &types.Environment{Variables: map[string]string{"RECORD_DIR": dirs[mark]}}
		if _, err := c.CreateFunction(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	u, err := b.CreateFunctionUrlConfig(ctx, &lambda.CreateFunctionUrlConfigInput{FunctionName: aws.String("web"), AuthType: types.FunctionUrlAuthTypeNone})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.GetFunctionUrlConfig(ctx, &lambda.GetFunctionUrlConfigInput{FunctionName: aws.String("web")}); err == nil {
		t.Error("A reads B's URL")
	}
	id := strings.SplitN(strings.TrimPrefix(aws.ToString(u.FunctionUrl), "http://"), ".", 2)[0]
	res := lambdatest.Do(t, "POST", n.URL()+"/lambda-url/"+id+"/", []byte(`{}`), nil)
	ranA, _ := filepath.Glob(filepath.Join(dirs["a"], "*.json"))
	ranB, _ := filepath.Glob(filepath.Join(dirs["b"], "*.json"))
	if res.Status != 200 || len(ranA) != 0 || len(ranB) != 1 {
		t.Errorf("B's URL: %d %s; events recorded by A's function %d, by B's %d", res.Status, res.Body, len(ranA), len(ranB))
	}
}

// TestCustomRuntimeFromALayer: a provided-runtime function whose code has
// no bootstrap runs the bootstrap of its layer, as AWS finds it in /opt.
func TestCustomRuntimeFromALayer(t *testing.T) {
	n := start(t, server.Options{})
	rt, err := n.client.PublishLayerVersion(ctx, &lambda.PublishLayerVersionInput{LayerName: aws.String("runtime"),
		Content: &types.LayerVersionContentInput{ZipFile: lambdatest.GoFunction(t)}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = n.client.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("custom"),
		Runtime: types.RuntimeProvidedal2023, Handler: aws.String("handler"), Role: aws.String(role),
		Code: &types.FunctionCode{ZipFile: lambdatest.Zip(t, map[string]string{"handler.txt": "x"})}, Layers: []string{aws.ToString(rt.LayerVersionArn)}})
	if err != nil {
		t.Fatal(err)
	}
	out, err := n.invoke(t, "custom", `{"echo":"from a layer"}`)
	if err != nil || out.FunctionError != nil || decode(t, out).Echo != "from a layer" {
		t.Fatalf("invoke: %v %s", err, out.Payload)
	}
}

// TestNodeRequiresFromLayers: a Node function requires a package from a
// layer's nodejs/node_modules, and one from nodejs/nodeNN/node_modules.
func TestNodeRequiresFromLayers(t *testing.T) {
	requireTool(t, "node")
	n := start(t, server.Options{})
	l := n.publishLayer(t, "nodelib", map[string]string{
		"nodejs/node_modules/greet/index.js":      "exports.greet = (n) => 'hi ' + n;\n",
		"nodejs/node20/node_modules/ver/index.js": "exports.v = 'node20 dir';\n",
	}, types.RuntimeNodejs20x)
	_, err := n.client.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("js"),
		Runtime: types.RuntimeNodejs20x, Handler: aws.String("index.handler"), Role: aws.String(role),
		Code: &types.FunctionCode{ZipFile: lambdatest.Zip(t, map[string]string{"index.js": `const {greet} = require('greet'); const {v} = require('ver');
exports.handler = async (e) => greet(e.name) + ' from ' + v;
`})}, Layers: []string{aws.ToString(l.LayerVersionArn)}})
	if err != nil {
		t.Fatal(err)
	}
	out, err := n.invoke(t, "js", `{"name":"node"}`)
	if err != nil || out.FunctionError != nil || string(out.Payload) != `"hi node from node20 dir"` {
		t.Fatalf("invoke: %v %s", err, out.Payload)
	}
}

// TestLayersInTheSandbox runs functions with one layer (mounted at /opt,
// as AWS extracts it) and with two (found through the search paths) in the
// full sandbox, where nothing of the host's data directory is visible.
func TestLayersInTheSandbox(t *testing.T) {
	requireTool(t, "python3")
	if missing := sandbox.Check(sandbox.Full); len(missing) > 0 {
		lambdatest.RequireE2E(t, sandbox.Report(sandbox.Full, missing))
	}
	n := start(t, server.Options{Sandbox: sandbox.Full})
	one := n.publishLayer(t, "one", map[string]string{"python/onelib.py": "X = 'one'\n"}, types.RuntimePython312)
	two := n.publishLayer(t, "two", map[string]string{"python/twolib.py": "X = 'two'\n"}, types.RuntimePython312)
	code := lambdatest.Zip(t, map[string]string{"app.py": `import os
def handler(event, context):
    import onelib
    out = {"one": onelib.X, "opt": os.path.exists("/opt/python/onelib.py")}
    try:
        import twolib
        out["two"] = twolib.X
    except ImportError:
        pass
    return out
`})
	for name, layers := range map[string][]string{
		"onelayer":  {aws.ToString(one.LayerVersionArn)},
		"twolayers": {aws.ToString(one.LayerVersionArn), aws.ToString(two.LayerVersionArn)},
	} {
		_, err := n.client.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String(name),
			Runtime: types.RuntimePython312, Handler: aws.String("app.handler"), Role: aws.String(role),
			Code: &types.FunctionCode{ZipFile: code}, Layers: layers})
		if err != nil {
			t.Fatal(err)
		}
	}
	for name, want := range map[string]string{
		"onelayer":  `{"one": "one", "opt": true}`,
		"twolayers": `{"one": "one", "opt": false, "two": "two"}`,
	} {
		out, err := n.invoke(t, name, `{}`)
		if err != nil || out.FunctionError != nil || string(out.Payload) != want {
			t.Errorf("%s: %v %s, want %s", name, err, out.Payload, want)
		}
	}
}
