package api

import (
	"github.com/lambdad/lambdad/internal/function"
)

// The response shapes of the Lambda API, by the model's member names.

type wireEnvironment struct {
	Variables map[string]string `json:"Variables"`
}

type wireTracing struct {
	Mode string `json:"Mode"`
}

type wireEphemeral struct {
	Size int `json:"Size"`
}

type wireSnapStart struct {
	ApplyOn            string `json:"ApplyOn"`
	OptimizationStatus string `json:"OptimizationStatus"`
}

type wireLogging struct {
	LogFormat string `json:"LogFormat"`
	LogGroup  string `json:"LogGroup"`
}

type wireConfig struct {
	FunctionName     string           `json:"FunctionName"`
	FunctionArn      string           `json:"FunctionArn"`
	Runtime          string           `json:"Runtime,omitempty"`
	Role             string           `json:"Role"`
	Handler          string           `json:"Handler,omitempty"`
	CodeSize         int64            `json:"CodeSize"`
	Description      string           `json:"Description"`
	Timeout          int              `json:"Timeout"`
	MemorySize       int              `json:"MemorySize"`
	LastModified     string           `json:"LastModified"`
	CodeSha256       string           `json:"CodeSha256"`
	Version          string           `json:"Version"`
	Environment      *wireEnvironment `json:"Environment,omitempty"`
	TracingConfig    wireTracing      `json:"TracingConfig"`
	RevisionId       string           `json:"RevisionId"`
	State            string           `json:"State"`
	LastUpdateStatus string           `json:"LastUpdateStatus"`
	PackageType      string           `json:"PackageType"`
	Architectures    []string         `json:"Architectures"`
	EphemeralStorage wireEphemeral    `json:"EphemeralStorage"`
	SnapStart        wireSnapStart    `json:"SnapStart"`
	LoggingConfig    wireLogging      `json:"LoggingConfig"`
	Layers           []wireLayer      `json:"Layers,omitempty"`
	TenancyConfig    *wireTenancy     `json:"TenancyConfig,omitempty"`
}

// wireTenancy is TenancyConfig, shown only for a function that has it.
type wireTenancy struct {
	TenantIsolationMode string `json:"TenantIsolationMode"`
}

type wireLayer struct {
	Arn      string `json:"Arn"`
	CodeSize int64  `json:"CodeSize"`
}

func configWire(c *function.Config, arn string) *wireConfig {
	w := &wireConfig{
		FunctionName: c.Name, FunctionArn: arn, Runtime: c.Runtime, Role: c.Role, Handler: c.Handler,
		CodeSize: c.CodeSize, Description: c.Description, Timeout: c.Timeout, MemorySize: c.MemorySize,
		LastModified: function.FormatTime(c.LastModified), CodeSha256: c.CodeSha256, Version: c.Version,
		TracingConfig: wireTracing{"PassThrough"}, RevisionId: c.RevisionID, State: "Active",
		LastUpdateStatus: "Successful", PackageType: "Zip", Architectures: c.Architectures,
		EphemeralStorage: wireEphemeral{c.Ephemeral}, SnapStart: wireSnapStart{"None", "Off"},
		LoggingConfig: wireLogging{"Text", "/aws/lambda/" + c.Name},
	}
	if c.TracingMode != "" {
		w.TracingConfig.Mode = c.TracingMode
	}
	for _, l := range c.Layers {
		w.Layers = append(w.Layers, wireLayer{Arn: l.Arn, CodeSize: l.CodeSize})
	}
	if c.TenantIsolation != "" {
		w.TenancyConfig = &wireTenancy{c.TenantIsolation}
	}
	if len(c.Environment) > 0 {
		w.Environment = &wireEnvironment{Variables: c.Environment}
	}
	return w
}

type wireCode struct {
	RepositoryType string `json:"RepositoryType"`
	Location       string `json:"Location"`
}

type wireConcurrency struct {
	ReservedConcurrentExecutions *int `json:"ReservedConcurrentExecutions,omitempty"`
}

type wireGetFunction struct {
	Configuration *wireConfig       `json:"Configuration"`
	Code          wireCode          `json:"Code"`
	Tags          map[string]string `json:"Tags,omitempty"`
	Concurrency   *wireConcurrency  `json:"Concurrency,omitempty"`
}

type wireRouting struct {
	AdditionalVersionWeights map[string]float64 `json:"AdditionalVersionWeights"`
}

type wireAlias struct {
	AliasArn        string       `json:"AliasArn"`
	Name            string       `json:"Name"`
	FunctionVersion string       `json:"FunctionVersion"`
	Description     string       `json:"Description"`
	RoutingConfig   *wireRouting `json:"RoutingConfig,omitempty"`
	RevisionId      string       `json:"RevisionId"`
}

func aliasWire(a *function.Alias, arn string) *wireAlias {
	w := &wireAlias{AliasArn: arn, Name: a.Name, FunctionVersion: a.FunctionVersion, Description: a.Description, RevisionId: a.RevisionID}
	if len(a.RoutingWeights) > 0 {
		w.RoutingConfig = &wireRouting{AdditionalVersionWeights: a.RoutingWeights}
	}
	return w
}

type wireAccountLimit struct {
	TotalCodeSize                  int64 `json:"TotalCodeSize"`
	CodeSizeUnzipped               int64 `json:"CodeSizeUnzipped"`
	CodeSizeZipped                 int64 `json:"CodeSizeZipped"`
	ConcurrentExecutions           int   `json:"ConcurrentExecutions"`
	UnreservedConcurrentExecutions int   `json:"UnreservedConcurrentExecutions"`
}

type wireAccountUsage struct {
	TotalCodeSize int64 `json:"TotalCodeSize"`
	FunctionCount int64 `json:"FunctionCount"`
}

type wireAccountSettings struct {
	AccountLimit wireAccountLimit `json:"AccountLimit"`
	AccountUsage wireAccountUsage `json:"AccountUsage"`
}
