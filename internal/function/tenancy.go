package function

import "github.com/lambdad/lambdad/internal/awserr"

// PerTenant is the one TenancyConfig.TenantIsolationMode of the API
// model: each tenant's invocations run in execution environments of its
// own, which never serve another tenant.
const PerTenant = "PER_TENANT"

// CheckTenant applies the rule of tenant isolation to an invocation of
// cfg, named by the caller as arn: a function with tenant isolation is
// invoked with a tenant id, a function without it never is. AWS does not
// document the wording of its refusals; these sentences are lambdad's.
func CheckTenant(cfg *Config, arn, tenantID string) error {
	switch {
	case cfg.TenantIsolation != "" && tenantID == "":
		return awserr.New(awserr.InvalidParameterValue, "The function %s uses tenant isolation (TenantIsolationMode %s): every invocation must name its tenant in TenantId (the X-Amz-Tenant-Id header).", arn, cfg.TenantIsolation)
	case cfg.TenantIsolation == "" && tenantID != "":
		return awserr.New(awserr.InvalidParameterValue, "The function %s does not use tenant isolation: an invocation of it must not name a tenant (TenantId, the X-Amz-Tenant-Id header).", arn)
	}
	return nil
}

// TenantIsolationRefused is the refusal of a setting AWS makes
// incompatible with tenant isolation (provisioned concurrency, function
// URLs, event source mappings) on a function that uses it. The wording is
// lambdad's.
func TenantIsolationRefused(what, arn string) error {
	return awserr.New(awserr.InvalidParameterValue, "%s cannot be used with tenant isolation: the function %s uses TenantIsolationMode %s.", what, arn, PerTenant)
}
