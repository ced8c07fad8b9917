package api

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"net/http"

	"github.com/lambdad/lambdad/internal/control"
	"github.com/lambdad/lambdad/internal/function"
)

func (s *Server) configWire(ctx context.Context, c *function.Config, qualifier string) *wireConfig {
	return configWire(c, s.ctl.ARN(ctx, c.Name, qualifier))
}

// versionARN is the ARN AWS reports for a version's configuration:
// unqualified for $LATEST as the function, qualified for a version.
func (s *Server) versionWire(ctx context.Context, c *function.Config) *wireConfig {
	q := ""
	if c.Version != function.Latest {
		q = c.Version
	}
	return s.configWire(ctx, c, q)
}

func (s *Server) createFunction(c *call) (any, error) {
	var in control.CreateFunctionInput
	if err := bind(c.in, &in); err != nil {
		return nil, err
	}
	v, err := s.ctl.CreateFunction(c.ctx(), &in)
	if err != nil {
		return nil, err
	}
	// With Publish, AWS answers with version 1's configuration under the
	// function's unqualified ARN (recorded), unlike PublishVersion and
	// UpdateFunctionCode, which qualify it.
	return s.configWire(c.ctx(), v.Config, ""), nil
}

// codeURL is where GetFunction tells clients to download the code: an
// endpoint of this server, presigned when access control is on, as AWS
// points at a presigned S3 URL.
func (s *Server) codeURL(r *http.Request, sha string) string {
	raw, _ := base64.StdEncoding.DecodeString(sha)
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	path := "/lambdad/code/" + hex.EncodeToString(raw) + ".zip"
	if s.presign != nil {
		path += "?" + s.presign.PresignPath(path)
	}
	return scheme + "://" + r.Host + path
}

func (s *Server) getFunction(c *call) (any, error) {
	v, err := s.ctl.GetFunction(c.ctx(), c.str("FunctionName"), c.str("Qualifier"))
	if err != nil {
		return nil, err
	}
	out := &wireGetFunction{
		Configuration: s.configWire(c.ctx(), v.Config, v.Qualifier),
		Code:          wireCode{RepositoryType: "S3", Location: s.codeURL(c.r, v.Config.CodeSha256)},
		Tags:          v.Function.Tags,
	}
	if v.Function.Reserved != nil {
		out.Concurrency = &wireConcurrency{ReservedConcurrentExecutions: v.Function.Reserved}
	}
	return out, nil
}

func (s *Server) getFunctionConfiguration(c *call) (any, error) {
	v, err := s.ctl.GetFunction(c.ctx(), c.str("FunctionName"), c.str("Qualifier"))
	if err != nil {
		return nil, err
	}
	return s.configWire(c.ctx(), v.Config, v.Qualifier), nil
}

type wireFunctionList struct {
	Functions  []*wireConfig `json:"Functions"`
	NextMarker string        `json:"NextMarker,omitempty"`
}

func (s *Server) listFunctions(c *call) (any, error) {
	var in control.ListFunctionsInput
	if err := bind(c.in, &in); err != nil {
		return nil, err
	}
	cfgs, next, err := s.ctl.ListFunctions(c.ctx(), &in)
	if err != nil {
		return nil, err
	}
	out := &wireFunctionList{Functions: make([]*wireConfig, len(cfgs)), NextMarker: next}
	for i, cfg := range cfgs {
		if in.FunctionVersion == "ALL" {
			// Listing every version, AWS qualifies $LATEST's ARN too, as
			// ListVersionsByFunction does (recorded).
			out.Functions[i] = s.configWire(c.ctx(), cfg, cfg.Version)
		} else {
			out.Functions[i] = s.versionWire(c.ctx(), cfg)
		}
	}
	return out, nil
}

func (s *Server) updateFunctionCode(c *call) (any, error) {
	var in control.UpdateFunctionCodeInput
	if err := bind(c.in, &in); err != nil {
		return nil, err
	}
	cfg, err := s.ctl.UpdateFunctionCode(c.ctx(), &in)
	if err != nil {
		return nil, err
	}
	return s.versionWire(c.ctx(), cfg), nil
}

func (s *Server) updateFunctionConfiguration(c *call) (any, error) {
	var in control.UpdateFunctionConfigurationInput
	if err := bind(c.in, &in); err != nil {
		return nil, err
	}
	cfg, err := s.ctl.UpdateFunctionConfiguration(c.ctx(), &in)
	if err != nil {
		return nil, err
	}
	return s.versionWire(c.ctx(), cfg), nil
}

func (s *Server) deleteFunction(c *call) (any, error) {
	// The model gives 200, but AWS answers DeleteFunction with 204.
	return noContent{}, s.ctl.DeleteFunction(c.ctx(), c.str("FunctionName"), c.str("Qualifier"))
}

func (s *Server) publishVersion(c *call) (any, error) {
	var in control.PublishVersionInput
	if err := bind(c.in, &in); err != nil {
		return nil, err
	}
	cfg, err := s.ctl.PublishVersion(c.ctx(), &in)
	if err != nil {
		return nil, err
	}
	return s.versionWire(c.ctx(), cfg), nil
}

type wireVersionList struct {
	Versions   []*wireConfig `json:"Versions"`
	NextMarker string        `json:"NextMarker,omitempty"`
}

func (s *Server) listVersions(c *call) (any, error) {
	cfgs, next, err := s.ctl.ListVersions(c.ctx(), c.str("FunctionName"), c.str("Marker"), c.intp("MaxItems"))
	if err != nil {
		return nil, err
	}
	out := &wireVersionList{Versions: make([]*wireConfig, len(cfgs)), NextMarker: next}
	for i, cfg := range cfgs {
		out.Versions[i] = s.configWire(c.ctx(), cfg, cfg.Version)
	}
	return out, nil
}
