package server_test

import (
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/lambdad/lambdad/internal/lambdatest"
	"github.com/lambdad/lambdad/internal/server"
)

// The call sequences of the Terraform AWS provider's Lambda resources, in
// its order, with the fields it reads and the waits it makes: a resource
// whose sequence fails here would fail terraform apply, refresh or destroy.

// waitFor polls as the provider's waiters do, until ok or 30 s.
func waitFor(t *testing.T, what string, ok func() (bool, error)) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		done, err := ok()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached in 30 s", what)
		}
	}
}

// readFunction is the provider's read of aws_lambda_function.
func readFunction(t *testing.T, c *lambda.Client, name string, reserved *int32) *lambda.GetFunctionOutput {
	t.Helper()
	fn, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(name)})
	if err != nil {
		t.Fatalf("read GetFunction: %v", err)
	}
	if fn.Code == nil || aws.ToString(fn.Code.Location) == "" || fn.Configuration == nil || fn.Tags == nil {
		t.Errorf("read GetFunction lacks Code, Configuration or Tags: %+v", fn)
	}
	if reserved != nil && (fn.Concurrency == nil || aws.ToInt32(fn.Concurrency.ReservedConcurrentExecutions) != *reserved) {
		t.Errorf("read Concurrency = %+v, want %d", fn.Concurrency, *reserved)
	}
	if _, err := c.ListVersionsByFunction(ctx, &lambda.ListVersionsByFunctionInput{FunctionName: aws.String(name), MaxItems: aws.Int32(10000)}); err != nil {
		t.Errorf("read ListVersionsByFunction MaxItems 10000: %v", err)
	}
	if _, err := c.GetFunctionCodeSigningConfig(ctx, &lambda.GetFunctionCodeSigningConfigInput{FunctionName: aws.String(name)}); err != nil {
		t.Errorf("read GetFunctionCodeSigningConfig: %v", err)
	}
	return fn
}

func TestTerraformFunctionLifecycle(t *testing.T) {
	n := start(t, server.Options{})
	c := n.client

	// Create, with tags inline, then wait for State Active.
	in := goFunctionInput(t, "tf")
	in.Tags = map[string]string{"Name": "tf"}
	in.Publish = true
	created, err := c.CreateFunction(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "State Active", func() (bool, error) {
		out, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("tf")})
		return err == nil && out.Configuration.State == types.StateActive, err
	})
	if _, err := c.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("tf"), ReservedConcurrentExecutions: aws.Int32(5)}); err != nil {
		t.Fatal(err)
	}
	fn := readFunction(t, c, "tf", aws.Int32(5))
	if fn.Tags["Name"] != "tf" || aws.ToString(fn.Configuration.Version) != "$LATEST" || aws.ToString(created.Version) != "1" {
		t.Errorf("after create: tags %v, version %s, created version %s", fn.Tags, aws.ToString(fn.Configuration.Version), aws.ToString(created.Version))
	}

	// Update: configuration, wait for LastUpdateStatus, code, then publish
	// and read the new version by its qualifier.
	if _, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("tf"),
		MemorySize: aws.Int32(256), Environment: &types.Environment{Variables: map[string]string{"KEY": "v"}}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "LastUpdateStatus Successful", func() (bool, error) {
		out, err := c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("tf")})
		return err == nil && out.LastUpdateStatus == types.LastUpdateStatusSuccessful, err
	})
	if _, err := c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("tf"),
		ZipFile: lambdatest.GoFunctionWith(t, map[string]string{"marker.txt": "2"})}); err != nil {
		t.Fatal(err)
	}
	pub, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("tf")})
	if err != nil {
		t.Fatal(err)
	}
	v, err := c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("tf"), Qualifier: pub.Version})
	if err != nil || aws.ToInt32(v.MemorySize) != 256 || aws.ToString(v.Version) != "2" {
		t.Fatalf("the published version: %+v %v", v, err)
	}
	readFunction(t, c, "tf", aws.Int32(5))

	// aws_lambda_alias, aws_lambda_provisioned_concurrency_config (READY
	// with all of the request allocated) and
	// aws_lambda_function_event_invoke_config.
	if _, err := c.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String("tf"), Name: aws.String("live"), FunctionVersion: pub.Version}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetAlias(ctx, &lambda.GetAliasInput{FunctionName: aws.String("tf"), Name: aws.String("live")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutProvisionedConcurrencyConfig(ctx, &lambda.PutProvisionedConcurrencyConfigInput{FunctionName: aws.String("tf"),
		Qualifier: aws.String("live"), ProvisionedConcurrentExecutions: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "provisioned READY", func() (bool, error) {
		out, err := c.GetProvisionedConcurrencyConfig(ctx, &lambda.GetProvisionedConcurrencyConfigInput{FunctionName: aws.String("tf"), Qualifier: aws.String("live")})
		return err == nil && out.Status == types.ProvisionedConcurrencyStatusEnumReady && aws.ToInt32(out.AllocatedProvisionedConcurrentExecutions) == 2, err
	})
	if _, err := c.PutFunctionEventInvokeConfig(ctx, &lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String("tf"),
		Qualifier: aws.String("live"), MaximumRetryAttempts: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	if out, err := c.GetFunctionEventInvokeConfig(ctx, &lambda.GetFunctionEventInvokeConfigInput{FunctionName: aws.String("tf"), Qualifier: aws.String("live")}); err != nil || aws.ToInt32(out.MaximumRetryAttempts) != 1 {
		t.Fatalf("event invoke config: %+v %v", out, err)
	}

	// Destroy, in the provider's order, then wait until the function is
	// gone.
	if _, err := c.DeleteFunctionEventInvokeConfig(ctx, &lambda.DeleteFunctionEventInvokeConfigInput{FunctionName: aws.String("tf"), Qualifier: aws.String("live")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteProvisionedConcurrencyConfig(ctx, &lambda.DeleteProvisionedConcurrencyConfigInput{FunctionName: aws.String("tf"), Qualifier: aws.String("live")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteAlias(ctx, &lambda.DeleteAliasInput{FunctionName: aws.String("tf"), Name: aws.String("live")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("tf")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "deleted", func() (bool, error) {
		_, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("tf")})
		var nf *types.ResourceNotFoundException
		if errors.As(err, &nf) {
			return true, nil
		}
		return false, err
	})
}
