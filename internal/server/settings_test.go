package server_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/lambdad/lambdad/internal/lambdatest"
	"github.com/lambdad/lambdad/internal/server"
)

// TestCodeSigningRecursionRuntime walks the code signing, recursion and
// runtime management operations as deploy tools call them (Terraform
// reads GetFunctionCodeSigningConfig for every function), with AWS's
// answers for what is missing, and a restart in between.
func TestCodeSigningRecursionRuntime(t *testing.T) {
	dir := t.TempDir()
	n := start(t, server.Options{DataDir: dir})
	c := n.client
	n.createGo(t, "f")

	// A function without one answers with neither member.
	fcsc, err := c.GetFunctionCodeSigningConfig(ctx, &lambda.GetFunctionCodeSigningConfigInput{FunctionName: aws.String("f")})
	if err != nil || aws.ToString(fcsc.CodeSigningConfigArn) != "" {
		t.Fatalf("a function without a code signing config: %+v %v", fcsc, err)
	}
	_, err = c.GetFunctionCodeSigningConfig(ctx, &lambda.GetFunctionCodeSigningConfigInput{FunctionName: aws.String("absent")})
	if code, msg := lambdatest.APIError(t, err); code != "ResourceNotFoundException" || msg != "Function not found: arn:aws:lambda:us-east-1:123456789012:function:absent" {
		t.Errorf("an absent function: %s %s", code, msg)
	}

	created, err := c.CreateCodeSigningConfig(ctx, &lambda.CreateCodeSigningConfigInput{
		AllowedPublishers: &types.AllowedPublishers{SigningProfileVersionArns: []string{"arn:aws:signer:us-east-1:123456789012:/signing-profiles/test"}},
		Description:       aws.String("Testing CodeSigning Config"),
	})
	if err != nil {
		t.Fatal(err)
	}
	csc := created.CodeSigningConfig
	arn := aws.ToString(csc.CodeSigningConfigArn)
	if !regexp.MustCompile(`^arn:aws:lambda:us-east-1:123456789012:code-signing-config:csc-[0-9a-f]{17}$`).MatchString(arn) ||
		!strings.HasSuffix(arn, aws.ToString(csc.CodeSigningConfigId)) || csc.CodeSigningPolicies.UntrustedArtifactOnDeployment != types.CodeSigningPolicyWarn {
		t.Fatalf("created: %+v", csc)
	}
	updated, err := c.UpdateCodeSigningConfig(ctx, &lambda.UpdateCodeSigningConfigInput{CodeSigningConfigArn: aws.String(arn),
		CodeSigningPolicies: &types.CodeSigningPolicies{UntrustedArtifactOnDeployment: types.CodeSigningPolicyEnforce}})
	if err != nil || updated.CodeSigningConfig.CodeSigningPolicies.UntrustedArtifactOnDeployment != types.CodeSigningPolicyEnforce ||
		aws.ToString(updated.CodeSigningConfig.Description) != "Testing CodeSigning Config" {
		t.Fatalf("updated: %+v %v", updated, err)
	}
	put, err := c.PutFunctionCodeSigningConfig(ctx, &lambda.PutFunctionCodeSigningConfigInput{FunctionName: aws.String("f"), CodeSigningConfigArn: aws.String(arn)})
	if err != nil || aws.ToString(put.FunctionName) != "f" || aws.ToString(put.CodeSigningConfigArn) != arn {
		t.Fatalf("put function code signing config: %+v %v", put, err)
	}
	missing := strings.TrimSuffix(arn, arn[len(arn)-3:]) + "fff"
	_, err = c.PutFunctionCodeSigningConfig(ctx, &lambda.PutFunctionCodeSigningConfigInput{FunctionName: aws.String("absent"), CodeSigningConfigArn: aws.String(missing)})
	if code, msg := lambdatest.APIError(t, err); code != "CodeSigningConfigNotFoundException" ||
		msg != "The code signing configuration cannot be found. Check that the provided configuration is not deleted: "+missing+"." {
		t.Errorf("a missing configuration (looked for before the function): %s %s", code, msg)
	}

	// After a restart it is all still there.
	closeNode(t, n)
	n = start(t, server.Options{DataDir: dir})
	c = n.client
	fcsc, err = c.GetFunctionCodeSigningConfig(ctx, &lambda.GetFunctionCodeSigningConfigInput{FunctionName: aws.String("f")})
	if err != nil || aws.ToString(fcsc.CodeSigningConfigArn) != arn || aws.ToString(fcsc.FunctionName) != "f" {
		t.Fatalf("after a restart: %+v %v", fcsc, err)
	}
	list, err := c.ListCodeSigningConfigs(ctx, &lambda.ListCodeSigningConfigsInput{})
	if err != nil || len(list.CodeSigningConfigs) != 1 || aws.ToString(list.CodeSigningConfigs[0].CodeSigningConfigArn) != arn {
		t.Errorf("list: %+v %v", list, err)
	}
	fns, err := c.ListFunctionsByCodeSigningConfig(ctx, &lambda.ListFunctionsByCodeSigningConfigInput{CodeSigningConfigArn: aws.String(arn)})
	if err != nil || len(fns.FunctionArns) != 1 || fns.FunctionArns[0] != "arn:aws:lambda:us-east-1:123456789012:function:f" {
		t.Errorf("functions by config: %+v %v", fns, err)
	}
	if _, err := c.DeleteFunctionCodeSigningConfig(ctx, &lambda.DeleteFunctionCodeSigningConfigInput{FunctionName: aws.String("f")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteCodeSigningConfig(ctx, &lambda.DeleteCodeSigningConfigInput{CodeSigningConfigArn: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetCodeSigningConfig(ctx, &lambda.GetCodeSigningConfigInput{CodeSigningConfigArn: aws.String(arn)})
	if code, msg := lambdatest.APIError(t, err); code != "ResourceNotFoundException" || msg != "The Lambda code signing configuration "+arn+" can not be found." {
		t.Errorf("a deleted configuration: %s %s", code, msg)
	}

	// Recursion: Terminate until set.
	rec, err := c.GetFunctionRecursionConfig(ctx, &lambda.GetFunctionRecursionConfigInput{FunctionName: aws.String("f")})
	if err != nil || rec.RecursiveLoop != types.RecursiveLoopTerminate {
		t.Errorf("default recursion: %+v %v", rec, err)
	}
	if r, err := c.PutFunctionRecursionConfig(ctx, &lambda.PutFunctionRecursionConfigInput{FunctionName: aws.String("f"), RecursiveLoop: types.RecursiveLoopAllow}); err != nil || r.RecursiveLoop != types.RecursiveLoopAllow {
		t.Fatalf("put recursion: %+v %v", r, err)
	}
	if rec, err = c.GetFunctionRecursionConfig(ctx, &lambda.GetFunctionRecursionConfigInput{FunctionName: aws.String("f")}); err != nil || rec.RecursiveLoop != types.RecursiveLoopAllow {
		t.Errorf("recursion after put: %+v %v", rec, err)
	}
	_, err = c.PutFunctionRecursionConfig(ctx, &lambda.PutFunctionRecursionConfigInput{FunctionName: aws.String("f"), RecursiveLoop: "InvalidValue"})
	if code, msg := lambdatest.APIError(t, err); code != "ValidationException" || !strings.Contains(msg, "Value 'InvalidValue' at 'recursiveLoop' failed to satisfy constraint: Member must satisfy enum value set:") {
		t.Errorf("an invalid RecursiveLoop: %s %s", code, msg)
	}

	// Runtime management: Auto until set; Manual needs a runtime version.
	rm, err := c.GetRuntimeManagementConfig(ctx, &lambda.GetRuntimeManagementConfigInput{FunctionName: aws.String("f")})
	if err != nil || rm.UpdateRuntimeOn != types.UpdateRuntimeOnAuto {
		t.Errorf("default runtime management: %+v %v", rm, err)
	}
	_, err = c.PutRuntimeManagementConfig(ctx, &lambda.PutRuntimeManagementConfigInput{FunctionName: aws.String("f"), UpdateRuntimeOn: types.UpdateRuntimeOnManual})
	if code, _ := lambdatest.APIError(t, err); code != "InvalidParameterValueException" {
		t.Errorf("Manual without a runtime version: %v", err)
	}
	if _, err := c.PutRuntimeManagementConfig(ctx, &lambda.PutRuntimeManagementConfigInput{FunctionName: aws.String("f"), UpdateRuntimeOn: types.UpdateRuntimeOnFunctionUpdate}); err != nil {
		t.Fatal(err)
	}
	if rm, err = c.GetRuntimeManagementConfig(ctx, &lambda.GetRuntimeManagementConfigInput{FunctionName: aws.String("f")}); err != nil || rm.UpdateRuntimeOn != types.UpdateRuntimeOnFunctionUpdate {
		t.Errorf("runtime management after put: %+v %v", rm, err)
	}
	// The function still runs after all this.
	if _, err := n.invoke(t, "f", `{}`); err != nil {
		t.Errorf("invoke: %v", err)
	}
}
