package main

import (
	"strings"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/lambdad/lambdad/internal/lambdatest"
)

// TestConfigurationUpdateKeepsCodeThroughKill9 is the sequence that once
// lost a function's code: create a function whose archive nothing else
// shares, change only its configuration before it ever ran, kill the server
// without warning, start it again, and invoke.
func TestConfigurationUpdateKeepsCodeThroughKill9(t *testing.T) {
	dir := t.TempDir()
	p := startServer(t, dir)
	c := lambdatest.Client(p.url)
	zip := lambdatest.GoFunctionWith(t, map[string]string{"marker.txt": "unique to x"})
	if _, err := c.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("x"),
		Runtime: types.RuntimeProvidedal2023, Handler: aws.String("bootstrap"), Role: aws.String(role),
		Code: &types.FunctionCode{ZipFile: zip}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("x"), Timeout: aws.Int32(9)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("x")}); err != nil {
		t.Fatal(err)
	}
	p.stop(syscall.SIGKILL)

	p = startServer(t, dir)
	c = lambdatest.Client(p.url)
	for _, q := range []string{"$LATEST", "1"} {
		out, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("x"), Qualifier: aws.String(q), Payload: []byte(`{"file":"marker.txt"}`)})
		if err != nil {
			t.Fatalf("invoke x:%s after kill -9: %v\nserver log:\n%s", q, err, p.logText())
		}
		if out.StatusCode != 200 || out.FunctionError != nil || !strings.Contains(string(out.Payload), `"blob":"unique to x"`) {
			t.Fatalf("invoke x:%s after kill -9: %d %q %s", q, out.StatusCode, aws.ToString(out.FunctionError), out.Payload)
		}
	}
	got, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("x")})
	if err != nil {
		t.Fatal(err)
	}
	if res := lambdatest.Do(t, "GET", aws.ToString(got.Code.Location), nil, nil); res.Status != 200 || len(res.Body) != len(zip) {
		t.Fatalf("Code.Location after kill -9: %d, %d bytes of %d", res.Status, len(res.Body), len(zip))
	}
}
