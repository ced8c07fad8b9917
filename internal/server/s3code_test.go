package server_test

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/lambdad/lambdad/internal/lambdatest"
	"github.com/lambdad/lambdad/internal/server"
)

// TestCodeFromS3: CreateFunction, UpdateFunctionCode and
// PublishLayerVersion read code from a real S3-compatible server on
// loopback, found as any AWS client finds it (AWS_ENDPOINT_URL_S3), and a
// missing bucket or key is AWS's error.
func TestCodeFromS3(t *testing.T) {
	requireTool(t, "python3")
	s3 := lambdatest.StartS3(t)
	lambdatest.S3Credentials(t)
	t.Setenv("AWS_ENDPOINT_URL_S3", s3.Endpoint)
	n := start(t, server.Options{})

	s3.Bucket(t, "deploy")
	s3.Put(t, "deploy", "v1.zip", lambdatest.Zip(t, map[string]string{"app.py": "import lib\ndef handler(e, c):\n    return 'v1 ' + lib.NAME\n"}))
	s3.Put(t, "deploy", "v2.zip", lambdatest.Zip(t, map[string]string{"app.py": "import lib\ndef handler(e, c):\n    return 'v2 ' + lib.NAME\n"}))
	s3.Put(t, "deploy", "layer.zip", lambdatest.Zip(t, map[string]string{"python/lib.py": "NAME = 'from a layer in s3'\n"}))

	layer, err := n.client.PublishLayerVersion(ctx, &lambda.PublishLayerVersionInput{LayerName: aws.String("lib"),
		Content: &types.LayerVersionContentInput{S3Bucket: aws.String("deploy"), S3Key: aws.String("layer.zip")}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = n.client.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("s3fn"),
		Runtime: types.RuntimePython312, Handler: aws.String("app.handler"), Role: aws.String(role),
		Code: &types.FunctionCode{S3Bucket: aws.String("deploy"), S3Key: aws.String("v1.zip")}, Layers: []string{aws.ToString(layer.LayerVersionArn)}})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := n.invoke(t, "s3fn", `{}`); err != nil || string(out.Payload) != `"v1 from a layer in s3"` {
		t.Fatalf("invoke v1: %v %s", err, out.Payload)
	}
	if _, err := n.client.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("s3fn"),
		S3Bucket: aws.String("deploy"), S3Key: aws.String("v2.zip")}); err != nil {
		t.Fatal(err)
	}
	if out, err := n.invoke(t, "s3fn", `{}`); err != nil || string(out.Payload) != `"v2 from a layer in s3"` {
		t.Fatalf("invoke v2: %v %s", err, out.Payload)
	}

	for _, c := range []struct{ bucket, key, want string }{
		{"missing", "v1.zip", "Error occurred while GetObject. S3 Error Code: NoSuchBucket. S3 Error Message: The specified bucket does not exist"},
		{"deploy", "missing.zip", "Error occurred while GetObject. S3 Error Code: NoSuchKey. S3 Error Message: The specified key does not exist."},
	} {
		_, err := n.client.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("bad"),
			Runtime: types.RuntimePython312, Handler: aws.String("app.handler"), Role: aws.String(role),
			Code: &types.FunctionCode{S3Bucket: aws.String(c.bucket), S3Key: aws.String(c.key)}})
		if code, msg := lambdatest.APIError(t, err); code != "InvalidParameterValueException" || msg != c.want || lambdatest.Status(t, err) != 400 {
			t.Errorf("CreateFunction from s3://%s/%s: %s %q", c.bucket, c.key, code, msg)
		}
		_, err = n.client.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("s3fn"),
			S3Bucket: aws.String(c.bucket), S3Key: aws.String(c.key)})
		if code, msg := lambdatest.APIError(t, err); code != "InvalidParameterValueException" || msg != c.want {
			t.Errorf("UpdateFunctionCode from s3://%s/%s: %s %q", c.bucket, c.key, code, msg)
		}
		_, err = n.client.PublishLayerVersion(ctx, &lambda.PublishLayerVersionInput{LayerName: aws.String("lib"),
			Content: &types.LayerVersionContentInput{S3Bucket: aws.String(c.bucket), S3Key: aws.String(c.key)}})
		if code, msg := lambdatest.APIError(t, err); code != "InvalidParameterValueException" || msg != c.want {
			t.Errorf("PublishLayerVersion from s3://%s/%s: %s %q", c.bucket, c.key, code, msg)
		}
	}
	s3.Put(t, "deploy", "notazip", []byte("not a zip"))
	_, err = n.client.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("s3fn"), S3Bucket: aws.String("deploy"), S3Key: aws.String("notazip")})
	if code, msg := lambdatest.APIError(t, err); code != "InvalidParameterValueException" || !strings.Contains(msg, "zip") {
		t.Errorf("an object that is not a zip: %s %q", code, msg)
	}
}

// TestBrokenAWSConfiguration: a server whose AWS configuration cannot be
// loaded (a profile that does not exist) still starts; only code from S3
// is refused, with a message that says why.
func TestBrokenAWSConfiguration(t *testing.T) {
	t.Setenv("AWS_PROFILE", "no-such-profile")
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/config")
	n := start(t, server.Options{})
	_, err := n.client.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("f"),
		Runtime: types.RuntimeProvidedal2023, Handler: aws.String("x"), Role: aws.String(role),
		Code: &types.FunctionCode{S3Bucket: aws.String("bucket"), S3Key: aws.String("k")}})
	if code, msg := lambdatest.APIError(t, err); code != "InvalidParameterValueException" || !strings.Contains(msg, "AWS configuration could not be loaded") {
		t.Errorf("S3 code with no configuration: %s %s", code, msg)
	}
	n.createShell(t, "zip")
}
