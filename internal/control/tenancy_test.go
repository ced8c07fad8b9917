package control_test

import (
	"testing"

	"github.com/lambdad/lambdad/internal/awserr"
	"github.com/lambdad/lambdad/internal/control"
	"github.com/lambdad/lambdad/internal/function"
	"github.com/lambdad/lambdad/internal/lambdatest"
)

// TestTenancyIsKeptAndRefusesWhatAWSDoes: TenancyConfig is stored with
// $LATEST, kept by updates and inherited by versions; provisioned
// concurrency, function URLs and event source mappings are refused on such
// a function, after the checks AWS makes before (an unpublished version, a
// missing function, a mapping's own settings).
func TestTenancyIsKeptAndRefusesWhatAWSDoes(t *testing.T) {
	f := newFixture(t, 1000, 100)
	v, err := f.svc.CreateFunction(ctx, &control.CreateFunctionInput{
		FunctionName: "iso", Runtime: "provided.al2023", Handler: "bootstrap", Role: "arn:aws:iam::123456789012:role/r",
		Code:          control.Code{ZipFile: lambdatest.Zip(t, map[string]string{"bootstrap": "#!/bin/sh\n"})},
		TenancyConfig: &control.TenancyConfig{TenantIsolationMode: function.PerTenant}, Publish: true,
	})
	if err != nil || v.Config.TenantIsolation != function.PerTenant || v.Config.Version != "1" {
		t.Fatalf("CreateFunction: %v %+v", err, v)
	}
	desc := "changed"
	if c, err := f.svc.UpdateFunctionConfiguration(ctx, &control.UpdateFunctionConfigurationInput{FunctionName: "iso", Description: &desc}); err != nil || c.TenantIsolation != function.PerTenant {
		t.Fatalf("UpdateFunctionConfiguration: %v %+v", err, c)
	}
	if c, err := f.svc.PublishVersion(ctx, &control.PublishVersionInput{FunctionName: "iso"}); err != nil || c.Version != "2" || c.TenantIsolation != function.PerTenant {
		t.Fatalf("PublishVersion: %v %+v", err, c)
	}
	for _, q := range []string{"", "1", "2"} {
		if g, err := f.svc.GetFunction(ctx, "iso", q); err != nil || g.Config.TenantIsolation != function.PerTenant {
			t.Errorf("GetFunction(%q): %v %+v", q, err, g)
		}
	}
	f.create(t, "plain", true)
	if g, _ := f.svc.GetFunction(ctx, "plain", ""); g.Config.TenantIsolation != "" {
		t.Errorf("a function without isolation has %q", g.Config.TenantIsolation)
	}

	const arn = "arn:aws:lambda:us-east-1:123456789012:function:"
	refused := func(what, target string) string {
		return what + " cannot be used with tenant isolation: the function " + arn + target + " uses TenantIsolationMode PER_TENANT."
	}
	_, err = f.svc.PutProvisionedConcurrency(ctx, "iso", "$LATEST", 1)
	wantAWS(t, err, awserr.InvalidParameterValue, "Provisioned Concurrency Configs cannot be applied to unpublished function versions.")
	_, err = f.svc.PutProvisionedConcurrency(ctx, "iso", "7", 1)
	wantAWS(t, err, awserr.ResourceNotFound, "Function not found: "+arn+"iso:7")
	_, err = f.svc.PutProvisionedConcurrency(ctx, "iso", "1", 1)
	wantAWS(t, err, awserr.InvalidParameterValue, refused("Provisioned concurrency", "iso:1"))
	if _, err := f.svc.PutProvisionedConcurrency(ctx, "plain", "1", 1); err != nil {
		t.Errorf("provisioned concurrency without isolation: %v", err)
	}

	_, err = f.svc.CreateFunctionURLConfig(ctx, &control.URLConfigInput{FunctionName: "iso", AuthType: "NONE"})
	wantAWS(t, err, awserr.InvalidParameterValue, refused("A function URL", "iso"))
	_, err = f.svc.CreateFunctionURLConfig(ctx, &control.URLConfigInput{FunctionName: "iso", Qualifier: "gone", AuthType: "NONE"})
	wantAWS(t, err, awserr.ResourceNotFound, "Function does not exist")

	queue := "arn:aws:sqs:us-east-1:123456789012:q"
	name := func(s string) *string { return &s }
	big := 100
	_, err = f.svc.CreateEventSourceMapping(ctx, &control.MappingInput{FunctionName: name("iso"), EventSourceArn: queue, BatchSize: &big})
	wantAWS(t, err, awserr.InvalidParameterValue, "Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10")
	_, err = f.svc.CreateEventSourceMapping(ctx, &control.MappingInput{FunctionName: name("iso:1"), EventSourceArn: queue})
	wantAWS(t, err, awserr.InvalidParameterValue, refused("An event source mapping", "iso:1"))
	m, err := f.svc.CreateEventSourceMapping(ctx, &control.MappingInput{FunctionName: name("plain"), EventSourceArn: queue})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.UpdateEventSourceMapping(ctx, &control.MappingInput{UUID: m.Mapping.UUID, FunctionName: name("iso")})
	wantAWS(t, err, awserr.InvalidParameterValue, refused("An event source mapping", "iso"))
}
