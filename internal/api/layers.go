package api

import (
	"github.com/lambdad/lambdad/internal/control"
	"github.com/lambdad/lambdad/internal/function"
)

type wireLayerContent struct {
	Location   string `json:"Location"`
	CodeSha256 string `json:"CodeSha256"`
	CodeSize   int64  `json:"CodeSize"`
}

type wireLayerVersion struct {
	Content                 *wireLayerContent `json:"Content,omitempty"`
	LayerArn                string            `json:"LayerArn,omitempty"`
	LayerVersionArn         string            `json:"LayerVersionArn"`
	Description             string            `json:"Description"`
	CreatedDate             string            `json:"CreatedDate"`
	Version                 int64             `json:"Version"`
	CompatibleRuntimes      []string          `json:"CompatibleRuntimes,omitempty"`
	CompatibleArchitectures []string          `json:"CompatibleArchitectures,omitempty"`
	LicenseInfo             string            `json:"LicenseInfo,omitempty"`
}

// layerWire renders a layer version; content is false in lists, which
// carry neither the code nor the layer's own ARN.
func (s *Server) layerWire(c *call, v *function.LayerVersion, content bool) *wireLayerVersion {
	names := s.ctl.NamesOf(c.ctx())
	if v.Owner != "" {
		names.Account = v.Owner
	}
	w := &wireLayerVersion{
		LayerVersionArn: names.LayerVersionARN(v.Name, v.Version), Description: v.Description,
		CreatedDate: function.FormatTime(v.Created), Version: v.Version, CompatibleRuntimes: v.CompatibleRuntimes,
		CompatibleArchitectures: v.CompatibleArchitectures, LicenseInfo: v.LicenseInfo,
	}
	if content {
		w.LayerArn = names.LayerARN(v.Name)
		w.Content = &wireLayerContent{Location: s.codeURL(c.r, v.CodeSha256), CodeSha256: v.CodeSha256, CodeSize: v.CodeSize}
	}
	return w
}

func (s *Server) publishLayerVersion(c *call) (any, error) {
	var in control.PublishLayerVersionInput
	if err := bind(c.in, &in); err != nil {
		return nil, err
	}
	v, err := s.ctl.PublishLayerVersion(c.ctx(), &in)
	if err != nil {
		return nil, err
	}
	return s.layerWire(c, v, true), nil
}

func (c *call) int64(name string) int64 {
	f, _ := c.in[name].(float64)
	return int64(f)
}

func (s *Server) getLayerVersion(c *call) (any, error) {
	v, err := s.ctl.GetLayerVersion(c.ctx(), c.str("LayerName"), c.int64("VersionNumber"))
	if err != nil {
		return nil, err
	}
	return s.layerWire(c, v, true), nil
}

func (s *Server) getLayerVersionByArn(c *call) (any, error) {
	v, err := s.ctl.GetLayerVersionByArn(c.ctx(), c.str("Arn"))
	if err != nil {
		return nil, err
	}
	return s.layerWire(c, v, true), nil
}

func (s *Server) deleteLayerVersion(c *call) (any, error) {
	return noContent{}, s.ctl.DeleteLayerVersion(c.ctx(), c.str("LayerName"), c.int64("VersionNumber"))
}

type wireLayerItem struct {
	LayerName             string            `json:"LayerName"`
	LayerArn              string            `json:"LayerArn"`
	LatestMatchingVersion *wireLayerVersion `json:"LatestMatchingVersion"`
}

type wireLayerList struct {
	Layers     []wireLayerItem `json:"Layers"`
	NextMarker string          `json:"NextMarker,omitempty"`
}

func (c *call) layerFilter() function.LayerFilter {
	return function.LayerFilter{CompatibleRuntime: c.str("CompatibleRuntime"), CompatibleArchitecture: c.str("CompatibleArchitecture")}
}

func (s *Server) listLayers(c *call) (any, error) {
	items, next, err := s.ctl.ListLayers(c.ctx(), c.layerFilter(), c.str("Marker"), c.intp("MaxItems"))
	if err != nil {
		return nil, err
	}
	out := &wireLayerList{Layers: make([]wireLayerItem, len(items)), NextMarker: next}
	for i, v := range items {
		out.Layers[i] = wireLayerItem{LayerName: v.Name, LayerArn: s.ctl.NamesOf(c.ctx()).LayerARN(v.Name), LatestMatchingVersion: s.layerWire(c, v, false)}
	}
	return out, nil
}

type wireLayerVersionList struct {
	LayerVersions []*wireLayerVersion `json:"LayerVersions"`
	NextMarker    string              `json:"NextMarker,omitempty"`
}

func (s *Server) listLayerVersions(c *call) (any, error) {
	vs, next, err := s.ctl.ListLayerVersions(c.ctx(), c.str("LayerName"), c.layerFilter(), c.str("Marker"), c.intp("MaxItems"))
	if err != nil {
		return nil, err
	}
	out := &wireLayerVersionList{LayerVersions: make([]*wireLayerVersion, len(vs)), NextMarker: next}
	for i, v := range vs {
		out.LayerVersions[i] = s.layerWire(c, v, false)
	}
	return out, nil
}

func (s *Server) addLayerVersionPermission(c *call) (any, error) {
	var in control.AddLayerVersionPermissionInput
	if err := bind(c.in, &in); err != nil {
		return nil, err
	}
	st, rev, err := s.ctl.AddLayerVersionPermission(c.ctx(), &in)
	if err != nil {
		return nil, err
	}
	return &struct {
		Statement  string `json:"Statement"`
		RevisionId string `json:"RevisionId"`
	}{st, rev}, nil
}

func (s *Server) removeLayerVersionPermission(c *call) (any, error) {
	err := s.ctl.RemoveLayerVersionPermission(c.ctx(), c.str("LayerName"), c.int64("VersionNumber"), c.str("StatementId"), c.str("RevisionId"))
	if err != nil {
		return nil, err
	}
	return noContent{}, nil
}

func (s *Server) getLayerVersionPolicy(c *call) (any, error) {
	doc, rev, err := s.ctl.GetLayerVersionPolicy(c.ctx(), c.str("LayerName"), c.int64("VersionNumber"))
	if err != nil {
		return nil, err
	}
	return &struct {
		Policy     string `json:"Policy"`
		RevisionId string `json:"RevisionId"`
	}{doc, rev}, nil
}
