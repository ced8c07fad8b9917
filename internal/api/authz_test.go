package api

import (
	"strings"
	"testing"

	"github.com/lambdad/lambdad/internal/apimodel"
)

// TestIAMActionsAndResources checks the action and resource ARN
// operations are authorized as.
func TestIAMActionsAndResources(t *testing.T) {
	const fn = "arn:aws:lambda:us-east-1:111111111111:function:f"
	for _, c := range []struct {
		op       string
		in       map[string]any
		action   string
		resource string
	}{
		{"Invoke", map[string]any{"FunctionName": "f"}, "lambda:InvokeFunction", fn},
		{"Invoke", map[string]any{"FunctionName": "f", "Qualifier": "live"}, "lambda:InvokeFunction", fn + ":live"},
		{"Invoke", map[string]any{"FunctionName": "f:1"}, "lambda:InvokeFunction", fn + ":1"},
		{"Invoke", map[string]any{"FunctionName": "arn:aws:lambda:us-east-1:222222222222:function:g:3"}, "lambda:InvokeFunction", "arn:aws:lambda:us-east-1:222222222222:function:g:3"},
		{"Invoke", map[string]any{"FunctionName": "222222222222:function:g"}, "lambda:InvokeFunction", "arn:aws:lambda:us-east-1:222222222222:function:g"},
		{"InvokeAsync", map[string]any{"FunctionName": "f"}, "lambda:InvokeFunction", fn},
		{"PutFunctionConcurrency", map[string]any{"FunctionName": "f"}, "lambda:PutFunctionConcurrency", fn},
		{"DeleteFunctionConcurrency", map[string]any{"FunctionName": "f"}, "lambda:DeleteFunctionConcurrency", fn},
		{"GetFunctionConfiguration", map[string]any{"FunctionName": "f", "Qualifier": "2"}, "lambda:GetFunctionConfiguration", fn + ":2"},
		{"ListVersionsByFunction", map[string]any{"FunctionName": "f"}, "lambda:ListVersionsByFunction", fn},
		{"GetProvisionedConcurrencyConfig", map[string]any{"FunctionName": "f", "Qualifier": "live"}, "lambda:GetProvisionedConcurrencyConfig", fn + ":live"},
		{"GetAlias", map[string]any{"FunctionName": "f", "Name": "live"}, "lambda:GetAlias", fn},
		{"CreateFunction", map[string]any{"FunctionName": "f"}, "lambda:CreateFunction", fn},
		{"ListFunctions", map[string]any{}, "lambda:ListFunctions", "*"},
		{"GetAccountSettings", map[string]any{}, "lambda:GetAccountSettings", "*"},
		{"TagResource", map[string]any{"Resource": fn}, "lambda:TagResource", fn},
		{"AddPermission", map[string]any{"FunctionName": "f", "Qualifier": "1"}, "lambda:AddPermission", fn + ":1"},
		{"CreateEventSourceMapping", map[string]any{"FunctionName": "f"}, "lambda:CreateEventSourceMapping", "*"},
		{"PublishLayerVersion", map[string]any{"LayerName": "lib"}, "lambda:PublishLayerVersion", "arn:aws:lambda:us-east-1:111111111111:layer:lib"},
		{"ListLayerVersions", map[string]any{"LayerName": "arn:aws:lambda:us-east-1:222222222222:layer:lib"}, "lambda:ListLayerVersions", "arn:aws:lambda:us-east-1:222222222222:layer:lib"},
		{"ListLayers", map[string]any{}, "lambda:ListLayers", "*"},
		{"GetLayerVersion", map[string]any{"LayerName": "lib", "VersionNumber": float64(3)}, "lambda:GetLayerVersion", "arn:aws:lambda:us-east-1:111111111111:layer:lib:3"},
		{"DeleteLayerVersion", map[string]any{"LayerName": "lib", "VersionNumber": float64(2)}, "lambda:DeleteLayerVersion", "arn:aws:lambda:us-east-1:111111111111:layer:lib:2"},
		{"AddLayerVersionPermission", map[string]any{"LayerName": "lib", "VersionNumber": float64(1)}, "lambda:AddLayerVersionPermission", "arn:aws:lambda:us-east-1:111111111111:layer:lib:1"},
		{"GetLayerVersionByArn", map[string]any{"Arn": "arn:aws:lambda:us-east-1:222222222222:layer:lib:4"}, "lambda:GetLayerVersion", "arn:aws:lambda:us-east-1:222222222222:layer:lib:4"},
		{"DeleteEventSourceMapping", map[string]any{"UUID": "u-1"}, "lambda:DeleteEventSourceMapping", "arn:aws:lambda:us-east-1:111111111111:event-source-mapping:u-1"},
	} {
		action, res := iamAction(c.op), resourceFor(c.op, "us-east-1", "111111111111", c.in)
		if action != c.action || res != c.resource {
			t.Errorf("%s %v: %s on %s, want %s on %s", c.op, c.in, action, res, c.action, c.resource)
		}
	}
}

// TestEveryOperationHasAnAction checks that each operation of the model
// is authorized as an action of the lambda service.
func TestEveryOperationHasAnAction(t *testing.T) {
	m, err := apimodel.Load()
	if err != nil {
		t.Fatal(err)
	}
	for op := range m.Operations {
		a, ok := strings.CutPrefix(iamAction(op), "lambda:")
		if !ok || a == "" || (a != op && iamActions[op] == "") {
			t.Errorf("%s: action %q", op, iamAction(op))
		}
	}
}
