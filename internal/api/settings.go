package api

import (
	"context"

	"github.com/lambdad/lambdad/internal/control"
	"github.com/lambdad/lambdad/internal/store"
)

// The code signing, runtime management and recursion operations.

type wireAllowedPublishers struct {
	SigningProfileVersionArns []string `json:"SigningProfileVersionArns"`
}

type wireCodeSigningPolicies struct {
	UntrustedArtifactOnDeployment string `json:"UntrustedArtifactOnDeployment"`
}

type wireCodeSigningConfig struct {
	CodeSigningConfigId  string                  `json:"CodeSigningConfigId"`
	CodeSigningConfigArn string                  `json:"CodeSigningConfigArn"`
	Description          string                  `json:"Description"`
	AllowedPublishers    wireAllowedPublishers   `json:"AllowedPublishers"`
	CodeSigningPolicies  wireCodeSigningPolicies `json:"CodeSigningPolicies"`
	LastModified         string                  `json:"LastModified"`
}

func (s *Server) cscWire(ctx context.Context, c *store.CodeSigningConfig) *wireCodeSigningConfig {
	profiles := c.SigningProfiles
	if profiles == nil {
		profiles = []string{}
	}
	return &wireCodeSigningConfig{
		CodeSigningConfigId: c.ID, CodeSigningConfigArn: s.ctl.CodeSigningARN(ctx, c.ID), Description: c.Description,
		AllowedPublishers:   wireAllowedPublishers{SigningProfileVersionArns: profiles},
		CodeSigningPolicies: wireCodeSigningPolicies{UntrustedArtifactOnDeployment: c.UntrustedArtifact},
		// AWS's ISO 8601 form with milliseconds, as for a function's
		// LastModified.
		LastModified: c.LastModified.UTC().Format("2006-01-02T15:04:05.000-0700"),
	}
}

// cscInput reads the members Create and Update share.
func cscInput(c *call) *control.CodeSigningInput {
	in := &control.CodeSigningInput{ARN: c.str("CodeSigningConfigArn")}
	if d, ok := c.in["Description"].(string); ok {
		in.Description = &d
	}
	if p, ok := c.in["AllowedPublishers"].(map[string]any); ok {
		in.HasProfiles = true
		in.SigningProfiles = []string{}
		if arns, ok := p["SigningProfileVersionArns"].([]any); ok {
			for _, a := range arns {
				if s, ok := a.(string); ok {
					in.SigningProfiles = append(in.SigningProfiles, s)
				}
			}
		}
	}
	if p, ok := c.in["CodeSigningPolicies"].(map[string]any); ok {
		in.UntrustedArtifact, _ = p["UntrustedArtifactOnDeployment"].(string)
	}
	if t, ok := c.in["Tags"].(map[string]any); ok {
		in.Tags = map[string]string{}
		for k, v := range t {
			in.Tags[k], _ = v.(string)
		}
	}
	return in
}

type wireCSCResponse struct {
	CodeSigningConfig *wireCodeSigningConfig `json:"CodeSigningConfig"`
}

func (s *Server) createCodeSigningConfig(c *call) (any, error) {
	csc, err := s.ctl.CreateCodeSigningConfig(c.ctx(), cscInput(c))
	if err != nil {
		return nil, err
	}
	return &wireCSCResponse{s.cscWire(c.ctx(), csc)}, nil
}

func (s *Server) getCodeSigningConfig(c *call) (any, error) {
	csc, err := s.ctl.GetCodeSigningConfig(c.ctx(), c.str("CodeSigningConfigArn"))
	if err != nil {
		return nil, err
	}
	return &wireCSCResponse{s.cscWire(c.ctx(), csc)}, nil
}

func (s *Server) updateCodeSigningConfig(c *call) (any, error) {
	csc, err := s.ctl.UpdateCodeSigningConfig(c.ctx(), cscInput(c))
	if err != nil {
		return nil, err
	}
	return &wireCSCResponse{s.cscWire(c.ctx(), csc)}, nil
}

func (s *Server) deleteCodeSigningConfig(c *call) (any, error) {
	return noContent{}, s.ctl.DeleteCodeSigningConfig(c.ctx(), c.str("CodeSigningConfigArn"))
}

type wireCSCList struct {
	CodeSigningConfigs []*wireCodeSigningConfig `json:"CodeSigningConfigs"`
	NextMarker         string                   `json:"NextMarker,omitempty"`
}

func (s *Server) listCodeSigningConfigs(c *call) (any, error) {
	cscs, next, err := s.ctl.ListCodeSigningConfigs(c.ctx(), c.str("Marker"), c.intp("MaxItems"))
	if err != nil {
		return nil, err
	}
	out := &wireCSCList{CodeSigningConfigs: make([]*wireCodeSigningConfig, len(cscs)), NextMarker: next}
	for i, csc := range cscs {
		out.CodeSigningConfigs[i] = s.cscWire(c.ctx(), csc)
	}
	return out, nil
}

type wireFunctionArns struct {
	FunctionArns []string `json:"FunctionArns"`
}

func (s *Server) listFunctionsByCodeSigningConfig(c *call) (any, error) {
	arns, err := s.ctl.ListFunctionsByCodeSigningConfig(c.ctx(), c.str("CodeSigningConfigArn"))
	if err != nil {
		return nil, err
	}
	if arns == nil {
		arns = []string{}
	}
	return &wireFunctionArns{arns}, nil
}

type wireFunctionCSC struct {
	CodeSigningConfigArn string `json:"CodeSigningConfigArn,omitempty"`
	FunctionName         string `json:"FunctionName,omitempty"`
}

func (s *Server) putFunctionCodeSigningConfig(c *call) (any, error) {
	arn := c.str("CodeSigningConfigArn")
	name, err := s.ctl.PutFunctionCodeSigningConfig(c.ctx(), c.str("FunctionName"), arn)
	if err != nil {
		return nil, err
	}
	return &wireFunctionCSC{CodeSigningConfigArn: arn, FunctionName: name}, nil
}

// getFunctionCodeSigningConfig answers {} for a function without one, as
// AWS does.
func (s *Server) getFunctionCodeSigningConfig(c *call) (any, error) {
	name, arn, err := s.ctl.FunctionCodeSigningConfig(c.ctx(), c.str("FunctionName"))
	if err != nil {
		return nil, err
	}
	if arn == "" {
		return &wireFunctionCSC{}, nil
	}
	return &wireFunctionCSC{CodeSigningConfigArn: arn, FunctionName: name}, nil
}

func (s *Server) deleteFunctionCodeSigningConfig(c *call) (any, error) {
	return noContent{}, s.ctl.DeleteFunctionCodeSigningConfig(c.ctx(), c.str("FunctionName"))
}

type wireRecursion struct {
	RecursiveLoop string `json:"RecursiveLoop"`
}

func (s *Server) getRecursionConfig(c *call) (any, error) {
	loop, err := s.ctl.RecursionConfig(c.ctx(), c.str("FunctionName"))
	if err != nil {
		return nil, err
	}
	return &wireRecursion{loop}, nil
}

func (s *Server) putRecursionConfig(c *call) (any, error) {
	loop := c.str("RecursiveLoop")
	if err := s.ctl.PutRecursionConfig(c.ctx(), c.str("FunctionName"), loop); err != nil {
		return nil, err
	}
	return &wireRecursion{loop}, nil
}

type wireRuntimeManagement struct {
	UpdateRuntimeOn   string `json:"UpdateRuntimeOn"`
	FunctionArn       string `json:"FunctionArn"`
	RuntimeVersionArn string `json:"RuntimeVersionArn,omitempty"`
}

func (s *Server) getRuntimeManagement(c *call) (any, error) {
	r, err := s.ctl.GetRuntimeManagement(c.ctx(), c.str("FunctionName"), c.str("Qualifier"))
	if err != nil {
		return nil, err
	}
	return &wireRuntimeManagement{r.UpdateRuntimeOn, r.FunctionArn, r.RuntimeVersionArn}, nil
}

func (s *Server) putRuntimeManagement(c *call) (any, error) {
	r, err := s.ctl.PutRuntimeManagement(c.ctx(), c.str("FunctionName"), c.str("Qualifier"), c.str("UpdateRuntimeOn"), c.str("RuntimeVersionArn"))
	if err != nil {
		return nil, err
	}
	return &wireRuntimeManagement{r.UpdateRuntimeOn, r.FunctionArn, r.RuntimeVersionArn}, nil
}
