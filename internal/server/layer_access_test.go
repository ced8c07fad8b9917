package server_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/lambdad/lambdad/internal/lambdatest"
)

// TestLayerActionsOnLayerARNs: with access control on, the layer
// operations are authorized on the layer's ARN (publishing and listing
// versions) or its version's (the rest), as Lambda's permissions
// reference names them, so a policy can grant one layer and not another.
func TestLayerActionsOnLayerARNs(t *testing.T) {
	const layers = "arn:aws:lambda:us-east-1:111111111111:layer:"
	n := startGuarded(t, `{
  "accounts": [{"id": "111111111111"}],
  "principals": [
    {"accessKeyId": "AKIAADMIN0000000001", "secretAccessKey": "admin-secret", "account": "111111111111", "user": "admin",
     "policy": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "lambda:*", "Resource": "*"}]}},
    {"accessKeyId": "AKIALAYERS000000001", "secretAccessKey": "layers-secret", "account": "111111111111", "user": "libs",
     "policy": {"Version": "2012-10-17", "Statement": [
       {"Effect": "Allow", "Action": ["lambda:PublishLayerVersion", "lambda:ListLayerVersions"], "Resource": "`+layers+`shared"},
       {"Effect": "Allow", "Action": ["lambda:GetLayerVersion", "lambda:DeleteLayerVersion"], "Resource": "`+layers+`shared:*"},
       {"Effect": "Deny", "Action": "lambda:DeleteLayerVersion", "Resource": "`+layers+`shared:1"}]}}
  ]}`)
	admin := lambdatest.ClientWith(n.URL(), "AKIAADMIN0000000001", "admin-secret", "")
	libs := lambdatest.ClientWith(n.URL(), "AKIALAYERS000000001", "layers-secret", "")
	zip := lambdatest.Zip(t, map[string]string{"python/m.py": "x = 1\n"})

	for _, name := range []string{"shared", "shared"} {
		if _, err := libs.PublishLayerVersion(ctx, &lambda.PublishLayerVersionInput{LayerName: aws.String(name),
			Content: &types.LayerVersionContentInput{ZipFile: zip}}); err != nil {
			t.Fatalf("publish %s: %v", name, err)
		}
	}
	if _, err := admin.PublishLayerVersion(ctx, &lambda.PublishLayerVersionInput{LayerName: aws.String("other"),
		Content: &types.LayerVersionContentInput{ZipFile: zip}}); err != nil {
		t.Fatal(err)
	}
	_, err := libs.PublishLayerVersion(ctx, &lambda.PublishLayerVersionInput{LayerName: aws.String("other"), Content: &types.LayerVersionContentInput{ZipFile: zip}})
	wantAPIError(t, "publish other", err, "AccessDeniedException", 403,
		"User: arn:aws:iam::111111111111:user/libs is not authorized to perform: lambda:PublishLayerVersion on resource: "+layers+
			"other because no identity-based policy allows the lambda:PublishLayerVersion action")
	if _, err := libs.GetLayerVersion(ctx, &lambda.GetLayerVersionInput{LayerName: aws.String("shared"), VersionNumber: aws.Int64(2)}); err != nil {
		t.Errorf("get shared:2: %v", err)
	}
	if _, err := libs.GetLayerVersionByArn(ctx, &lambda.GetLayerVersionByArnInput{Arn: aws.String(layers + "shared:1")}); err != nil {
		t.Errorf("get shared:1 by ARN: %v", err)
	}
	_, err = libs.GetLayerVersionByArn(ctx, &lambda.GetLayerVersionByArnInput{Arn: aws.String(layers + "other:1")})
	wantAPIError(t, "get other:1 by ARN", err, "AccessDeniedException", 403,
		"User: arn:aws:iam::111111111111:user/libs is not authorized to perform: lambda:GetLayerVersion on resource: "+layers+
			"other:1 because no identity-based policy allows the lambda:GetLayerVersion action")
	if _, err := libs.ListLayerVersions(ctx, &lambda.ListLayerVersionsInput{LayerName: aws.String("shared")}); err != nil {
		t.Errorf("list shared: %v", err)
	}
	if _, err := libs.ListLayerVersions(ctx, &lambda.ListLayerVersionsInput{LayerName: aws.String("other")}); err == nil {
		t.Errorf("listed other's versions")
	}
	_, err = libs.DeleteLayerVersion(ctx, &lambda.DeleteLayerVersionInput{LayerName: aws.String("shared"), VersionNumber: aws.Int64(1)})
	wantAPIError(t, "delete shared:1", err, "AccessDeniedException", 403,
		"User: arn:aws:iam::111111111111:user/libs is not authorized to perform: lambda:DeleteLayerVersion on resource: "+layers+
			"shared:1 with an explicit deny in an identity-based policy")
	if _, err := libs.DeleteLayerVersion(ctx, &lambda.DeleteLayerVersionInput{LayerName: aws.String("shared"), VersionNumber: aws.Int64(2)}); err != nil {
		t.Errorf("delete shared:2: %v", err)
	}
}
