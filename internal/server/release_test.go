package server_test

import (
	"encoding/json"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/lambdad/lambdad/internal/server"
)

// ran is what one invocation of the marker-reading test function reports.
type ran struct {
	Version  string // the version the function process saw
	Executed string // X-Amz-Executed-Version
	Marker   string // the code it ran
	InitType string
}

func (n *node) run(t *testing.T, name, qualifier string) ran {
	t.Helper()
	out, err := n.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(name), Qualifier: aws.String(qualifier), Payload: []byte(`{"file":"marker.txt"}`)})
	if err != nil {
		t.Fatalf("Invoke(%s:%s): %v", name, qualifier, err)
	}
	if out.FunctionError != nil {
		t.Fatalf("Invoke(%s:%s): function error %s: %s", name, qualifier, aws.ToString(out.FunctionError), out.Payload)
	}
	var a struct {
		Version  string `json:"version"`
		Blob     string `json:"blob"`
		InitType string `json:"init_type"`
	}
	if err := json.Unmarshal(out.Payload, &a); err != nil {
		t.Fatalf("payload %s: %v", out.Payload, err)
	}
	if a.Version != aws.ToString(out.ExecutedVersion) {
		t.Fatalf("Invoke(%s:%s): the function ran as version %q, the response says %q", name, qualifier, a.Version, aws.ToString(out.ExecutedVersion))
	}
	return ran{Version: a.Version, Executed: aws.ToString(out.ExecutedVersion), Marker: a.Blob, InitType: a.InitType}
}

// TestReleaseWorkflow walks the everyday release of a function: new code,
// a configuration change, publish, an alias, a weighted shift, provisioned
// concurrency on the alias, and a rollback, invoking every result and
// checking each runs the code and version it should. Each archive is the
// function's own, and no version is invoked before it is changed.
func TestReleaseWorkflow(t *testing.T) {
	zips, _ := codeArchives(t, 3)
	n := start(t, server.Options{})
	const fn = "p" // the provisioned-concurrency helpers use this name
	in := goFunctionInput(t, fn)
	in.Code.ZipFile = zips[0]
	if _, err := n.client.CreateFunction(ctx, in); err != nil {
		t.Fatal(err)
	}
	// Change the code and the configuration before anything ran, then
	// publish: version 1 runs archive 1.
	if _, err := n.client.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String(fn), ZipFile: zips[1]}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String(fn), Timeout: aws.Int32(10)}); err != nil {
		t.Fatal(err)
	}
	v1, err := n.client.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String(fn)})
	if err != nil || aws.ToString(v1.Version) != "1" {
		t.Fatalf("PublishVersion: %v %v", v1, err)
	}
	if _, err := n.client.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String(fn), Name: aws.String("live"), FunctionVersion: aws.String("1")}); err != nil {
		t.Fatal(err)
	}
	if got := n.run(t, fn, "live"); got.Version != "1" || got.Marker != "archive-1" {
		t.Fatalf("live after the first release ran %+v", got)
	}

	// The next release: new code, published as version 2.
	if _, err := n.client.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String(fn), ZipFile: zips[2], Publish: true}); err != nil {
		t.Fatal(err)
	}
	if got := n.run(t, fn, "$LATEST"); got.Version != "$LATEST" || got.Marker != "archive-2" {
		t.Fatalf("$LATEST ran %+v", got)
	}

	// A weighted shift: half of live's traffic to version 2.
	if _, err := n.client.UpdateAlias(ctx, &lambda.UpdateAliasInput{FunctionName: aws.String(fn), Name: aws.String("live"), FunctionVersion: aws.String("1"),
		RoutingConfig: &types.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{"2": 0.5}}}); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for range 60 {
		got := n.run(t, fn, "live")
		if want := map[string]string{"1": "archive-1", "2": "archive-2"}[got.Version]; got.Marker != want {
			t.Fatalf("live ran %+v during the shift", got)
		}
		seen[got.Version]++
	}
	if seen["1"] == 0 || seen["2"] == 0 {
		t.Fatalf("a 50%% shift sent %v", seen)
	}

	// The shift completes, and live gets provisioned concurrency.
	if _, err := n.client.UpdateAlias(ctx, &lambda.UpdateAliasInput{FunctionName: aws.String(fn), Name: aws.String("live"), FunctionVersion: aws.String("2"),
		RoutingConfig: &types.AliasRoutingConfiguration{}}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.provision("live", 2); err != nil {
		t.Fatal(err)
	}
	n.waitStatus(t, "live", types.ProvisionedConcurrencyStatusEnumReady)
	if got := n.run(t, fn, "live"); got.Version != "2" || got.Marker != "archive-2" || got.InitType != "provisioned-concurrency" {
		t.Fatalf("provisioned live ran %+v", got)
	}

	// Roll back: live to version 1; its provisioned environments follow.
	if _, err := n.client.UpdateAlias(ctx, &lambda.UpdateAliasInput{FunctionName: aws.String(fn), Name: aws.String("live"), FunctionVersion: aws.String("1")}); err != nil {
		t.Fatal(err)
	}
	n.waitStatus(t, "live", types.ProvisionedConcurrencyStatusEnumReady)
	if got := n.run(t, fn, "live"); got.Version != "1" || got.Marker != "archive-1" || got.InitType != "provisioned-concurrency" {
		t.Fatalf("live after the rollback ran %+v", got)
	}
	// Every version still runs its own code.
	for q, want := range map[string]string{"1": "archive-1", "2": "archive-2", "$LATEST": "archive-2"} {
		if got := n.run(t, fn, q); got.Version != q || got.Marker != want {
			t.Fatalf("%s ran %+v, want %s", q, got, want)
		}
	}
}
