package server_test

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/lambdad/lambdad/internal/lambdatest"
	"github.com/lambdad/lambdad/internal/server"
)

const fnARN = "arn:aws:lambda:us-east-1:123456789012:function:"

func (n *node) provision(q string, c int32) (*lambda.PutProvisionedConcurrencyConfigOutput, error) {
	return n.client.PutProvisionedConcurrencyConfig(ctx, &lambda.PutProvisionedConcurrencyConfigInput{
		FunctionName: aws.String("p"), Qualifier: aws.String(q), ProvisionedConcurrentExecutions: aws.Int32(c)})
}

// waitStatus polls a config until it has the status, and returns it.
func (n *node) waitStatus(t *testing.T, q string, status types.ProvisionedConcurrencyStatusEnum) *lambda.GetProvisionedConcurrencyConfigOutput {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := n.client.GetProvisionedConcurrencyConfig(ctx, &lambda.GetProvisionedConcurrencyConfigInput{FunctionName: aws.String("p"), Qualifier: aws.String(q)})
		if err != nil {
			t.Fatal(err)
		}
		if out.Status == status {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s stayed %s (%s), want %s", q, out.Status, aws.ToString(out.StatusReason), status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func wantAPIErr(t *testing.T, err error, status int, code, msg string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want %s %q, got success", code, msg)
	}
	gotCode, gotMsg := lambdatest.APIError(t, err)
	if got := lambdatest.Status(t, err); got != status || gotCode != code || gotMsg != msg {
		t.Errorf("got %d %s %q\nwant %d %s %q", got, gotCode, gotMsg, status, code, msg)
	}
}

func publishWithAlias(t *testing.T, n *node) {
	t.Helper()
	n.createGo(t, "p", func(in *lambda.CreateFunctionInput) { in.Publish = true; in.Timeout = aws.Int32(10) })
	if _, err := n.client.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String("p"), Name: aws.String("live"), FunctionVersion: aws.String("1")}); err != nil {
		t.Fatal(err)
	}
}

func TestProvisionedErrors(t *testing.T) {
	n := start(t, server.Options{})
	publishWithAlias(t, n)
	_, err := n.provision("$LATEST", 1)
	wantAPIErr(t, err, 400, "InvalidParameterValueException", "Provisioned Concurrency Configs cannot be applied to unpublished function versions.")
	_, err = n.client.GetProvisionedConcurrencyConfig(ctx, &lambda.GetProvisionedConcurrencyConfigInput{FunctionName: aws.String("p"), Qualifier: aws.String("$LATEST")})
	wantAPIErr(t, err, 400, "InvalidParameterValueException", "The function resource provided must be an alias or a published version.")
	_, err = n.provision("9", 1)
	wantAPIErr(t, err, 404, "ResourceNotFoundException", "Function not found: "+fnARN+"p:9")
	_, err = n.client.PutProvisionedConcurrencyConfig(ctx, &lambda.PutProvisionedConcurrencyConfigInput{FunctionName: aws.String("nothere"), Qualifier: aws.String("3"), ProvisionedConcurrentExecutions: aws.Int32(1)})
	wantAPIErr(t, err, 404, "ResourceNotFoundException", "Function not found: "+fnARN+"nothere:3")
	_, err = n.provision("nope", 1)
	wantAPIErr(t, err, 404, "ResourceNotFoundException", "Cannot find alias arn: "+fnARN+"p:nope")
	res := lambdatest.Do(t, "PUT", n.URL()+"/2019-09-30/functions/p/provisioned-concurrency?Qualifier=live", []byte(`{"ProvisionedConcurrentExecutions":0}`), nil)
	wantBody(t, res, 400, "ValidationException", `{"message":"1 validation error detected: Value '0' at 'provisionedConcurrentExecutions' failed to satisfy constraint: Member must have value greater than or equal to 1"}`)
	res = lambdatest.Do(t, "GET", n.URL()+"/2019-09-30/functions/p/provisioned-concurrency?Qualifier=live", nil, nil)
	wantBody(t, res, 404, "ProvisionedConcurrencyConfigNotFoundException", `{"Type":"User","message":"No Provisioned Concurrency Config found for this function"}`)
	res = lambdatest.Do(t, "DELETE", n.URL()+"/2019-09-30/functions/p/provisioned-concurrency?Qualifier=live", nil, nil)
	if res.Status != 204 {
		t.Errorf("Delete with no config: %d %s", res.Status, res.Body)
	}
	_, err = n.provision("live", 1001)
	wantAPIErr(t, err, 400, "InvalidParameterValueException", "Specified ConcurrentExecutions for function is greater than account's unreserved concurrency [1000].")
	_, err = n.provision("live", 901)
	wantAPIErr(t, err, 400, "InvalidParameterValueException", "Specified ConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [100].")

	// A version and an alias on it cannot both be provisioned.
	if _, err := n.provision("1", 1); err != nil {
		t.Fatal(err)
	}
	_, err = n.provision("live", 1)
	wantAPIErr(t, err, 409, "ResourceConflictException", "Alias can't be used for Provisioned Concurrency configuration on an already Provisioned version")
	n.client.DeleteProvisionedConcurrencyConfig(ctx, &lambda.DeleteProvisionedConcurrencyConfigInput{FunctionName: aws.String("p"), Qualifier: aws.String("1")})
	if _, err := n.provision("live", 1); err != nil {
		t.Fatal(err)
	}
	_, err = n.provision("1", 1)
	wantAPIErr(t, err, 409, "ResourceConflictException", "Version is pointed by a Provisioned Concurrency alias")

	// With a reservation: provisioned within it; the reservation not below it.
	n.reserve(t, "p", 5)
	_, err = n.provision("live", 6)
	wantAPIErr(t, err, 400, "InvalidParameterValueException", "Requested Provisioned Concurrency should not be greater than the reservedConcurrentExecution for function")
	if _, err := n.provision("live", 3); err != nil {
		t.Fatal(err)
	}
	_, err = n.client.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("p"), ReservedConcurrentExecutions: aws.Int32(2)})
	wantAPIErr(t, err, 400, "InvalidParameterValueException", " ReservedConcurrentExecutions  2 should not be lower than function's total provisioned concurrency [3].")
	res = lambdatest.Do(t, "PUT", n.URL()+"/2017-10-31/functions/p/concurrency", []byte(`{"ReservedConcurrentExecutions":2}`), nil)
	wantBody(t, res, 400, "InvalidParameterValueException", `{"message":" ReservedConcurrentExecutions  2 should not be lower than function's total provisioned concurrency [3]."}`)
}

// wantBody checks a raw answer's status, error type and exact body.
func wantBody(t *testing.T, res *lambdatest.Response, status int, errType, body string) {
	t.Helper()
	if res.Status != status || res.Header.Get("X-Amzn-ErrorType") != errType || string(res.Body) != body {
		t.Errorf("got %d %s %s\nwant %d %s %s", res.Status, res.Header.Get("X-Amzn-ErrorType"), res.Body, status, errType, body)
	}
}

func TestProvisionedLifecycle(t *testing.T) {
	dir := t.TempDir()
	n := start(t, server.Options{DataDir: dir})
	publishWithAlias(t, n)
	startPut := time.Now()
	put, err := n.provision("live", 2)
	if err != nil {
		t.Fatal(err)
	}
	if put.Status != types.ProvisionedConcurrencyStatusEnumInProgress || aws.ToInt32(put.RequestedProvisionedConcurrentExecutions) != 2 ||
		aws.ToInt32(put.AllocatedProvisionedConcurrentExecutions) != 0 || aws.ToString(put.LastModified) == "" {
		t.Errorf("Put answered %+v", put)
	}
	ready := n.waitStatus(t, "live", types.ProvisionedConcurrencyStatusEnumReady)
	t.Logf("2 environments READY %v after Put", time.Since(startPut))
	if aws.ToInt32(ready.AllocatedProvisionedConcurrentExecutions) != 2 || aws.ToInt32(ready.AvailableProvisionedConcurrentExecutions) != 2 {
		t.Errorf("READY with %+v", ready)
	}
	settings, _ := n.client.GetAccountSettings(ctx, &lambda.GetAccountSettingsInput{})
	if got := aws.ToInt32(settings.AccountLimit.UnreservedConcurrentExecutions); got != 998 {
		t.Errorf("UnreservedConcurrentExecutions = %d, want 998 (provisioned comes out of the pool)", got)
	}

	// Through the alias, provisioned environments answer first; the rest
	// spill over to on-demand.
	var mu sync.Mutex
	kinds := map[string]int{}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			out, err := n.invoke(t, "p:live", `{"sleep_ms":700}`)
			if err != nil {
				t.Error(err)
				return
			}
			a := decode(t, out)
			mu.Lock()
			kinds[a.InitType]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if kinds["provisioned-concurrency"] != 2 || kinds["on-demand"] != 2 {
		t.Errorf("4 invocations on 2 provisioned environments ran as %v", kinds)
	}
	// The function version itself is not the alias: it runs on demand.
	if out, _ := n.invoke(t, "p:1", `{}`); decode(t, out).InitType != "on-demand" {
		t.Errorf("p:1 ran on a provisioned environment of the alias")
	}

	// Scaling down and up again.
	for _, want := range []int32{1, 3} {
		if _, err := n.provision("live", want); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			got := n.waitStatus(t, "live", types.ProvisionedConcurrencyStatusEnumReady)
			if aws.ToInt32(got.AllocatedProvisionedConcurrentExecutions) == want && n.Environments().Stats().Idle >= int(want) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("scaling to %d: %+v", want, got)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	list, err := n.client.ListProvisionedConcurrencyConfigs(ctx, &lambda.ListProvisionedConcurrencyConfigsInput{FunctionName: aws.String("p")})
	if err != nil || len(list.ProvisionedConcurrencyConfigs) != 1 || aws.ToString(list.ProvisionedConcurrencyConfigs[0].FunctionArn) != fnARN+"p:live" {
		t.Fatalf("List: %+v %v", list, err)
	}

	// A restart restores the environments.
	n.Close(ctx)
	n = start(t, server.Options{DataDir: dir})
	n.waitStatus(t, "live", types.ProvisionedConcurrencyStatusEnumReady)
	if out, _ := n.invoke(t, "p:live", `{}`); decode(t, out).InitType != "provisioned-concurrency" {
		t.Errorf("after a restart the alias runs on demand")
	}

	// Moving the alias re-provisions for the new version.
	if _, err := n.client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("p"), Description: aws.String("v2")}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.client.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("p")}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.client.UpdateAlias(ctx, &lambda.UpdateAliasInput{FunctionName: aws.String("p"), Name: aws.String("live"), FunctionVersion: aws.String("2")}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, err := n.invoke(t, "p:live", `{}`)
		if err != nil {
			t.Fatal(err)
		}
		if a := decode(t, out); a.Version == "2" && a.InitType == "provisioned-concurrency" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the moved alias never ran on provisioned environments of version 2")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := n.client.DeleteAlias(ctx, &lambda.DeleteAliasInput{FunctionName: aws.String("p"), Name: aws.String("live")}); err != nil {
		t.Fatal(err)
	}
	_, err = n.client.ListProvisionedConcurrencyConfigs(ctx, &lambda.ListProvisionedConcurrencyConfigsInput{FunctionName: aws.String("p")})
	if err != nil {
		t.Fatal(err)
	}
	settings, _ = n.client.GetAccountSettings(ctx, &lambda.GetAccountSettingsInput{})
	if got := aws.ToInt32(settings.AccountLimit.UnreservedConcurrentExecutions); got != 1000 {
		t.Errorf("after DeleteAlias: UnreservedConcurrentExecutions = %d, want 1000", got)
	}
}

func TestProvisionedEqualToReservedThrottlesLatest(t *testing.T) {
	n := start(t, server.Options{})
	publishWithAlias(t, n)
	n.reserve(t, "p", 2)
	if _, err := n.provision("live", 2); err != nil {
		t.Fatal(err)
	}
	n.waitStatus(t, "live", types.ProvisionedConcurrencyStatusEnumReady)
	res := lambdatest.Do(t, "POST", n.URL()+"/2015-03-31/functions/p/invocations", []byte(`{}`), nil)
	wantBody(t, res, 429, "TooManyRequestsException", throttleBody("ReservedFunctionConcurrentInvocationLimitExceeded"))
	if out, err := n.invoke(t, "p:live", `{}`); err != nil || decode(t, out).InitType != "provisioned-concurrency" {
		t.Errorf("the alias: %v", err)
	}
}

func TestProvisionedInitFailure(t *testing.T) {
	n := start(t, server.Options{})
	zip := lambdatest.Zip(t, map[string]string{"bootstrap": "#!/bin/sh\necho cannot start >&2\nexit 1\n"})
	if _, err := n.client.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("p"), Runtime: types.RuntimeProvidedal2023,
		Handler: aws.String("x"), Role: aws.String(role), Code: &types.FunctionCode{ZipFile: zip}, Publish: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.provision("1", 2); err != nil {
		t.Fatal(err)
	}
	failed := n.waitStatus(t, "1", types.ProvisionedConcurrencyStatusEnumFailed)
	if aws.ToString(failed.StatusReason) != "FUNCTION_ERROR_INIT_FAILURE" {
		t.Errorf("StatusReason %q", aws.ToString(failed.StatusReason))
	}
}

// TestProvisionedNoColdStart reports the cost of an invocation on a READY
// provisioned environment next to a warm on-demand one.
func TestProvisionedNoColdStart(t *testing.T) {
	n := start(t, server.Options{})
	publishWithAlias(t, n)
	startPut := time.Now()
	if _, err := n.provision("live", 10); err != nil {
		t.Fatal(err)
	}
	n.waitStatus(t, "live", types.ProvisionedConcurrencyStatusEnumReady)
	t.Logf("10 Go environments: Put to READY in %v", time.Since(startPut))
	timed := func(target string, check bool) []time.Duration {
		var d []time.Duration
		for i := range 200 {
			t0 := time.Now()
			out, err := n.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(target), Payload: []byte(`{}`), LogType: types.LogTypeTail})
			d = append(d, time.Since(t0))
			if err != nil {
				t.Fatal(err)
			}
			if !check {
				continue
			}
			if a := decode(t, out); a.InitType != "provisioned-concurrency" {
				t.Fatalf("invocation %d ran %s", i, a.InitType)
			}
			if logs := lambdatest.DecodeLog(aws.ToString(out.LogResult)); containsInit(logs) {
				t.Fatalf("invocation %d on a READY provisioned environment paid a cold start:\n%s", i, logs)
			}
		}
		slices.Sort(d)
		return d
	}
	n.invoke(t, "p", `{}`) // $LATEST warm
	warm := timed("p", false)
	prov := timed("p:live", true)
	// Reported, not asserted: timings on a shared machine are not a test.
	t.Logf("provisioned p50 %v p99 %v; warm on-demand p50 %v p99 %v; provisioned p99 / warm p50 = %.2fx",
		prov[100], prov[198], warm[100], warm[198], float64(prov[198])/float64(warm[100]))
}

func containsInit(log string) bool { return strings.Contains(log, "Init Duration") }
