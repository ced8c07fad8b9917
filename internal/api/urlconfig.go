package api

import (
	"net"
	"strings"

	"github.com/lambdad/lambdad/internal/control"
	"github.com/lambdad/lambdad/internal/function"
)

// urlTimeFormat is how AWS renders a function URL's CreationTime and
// LastModifiedTime (ISO 8601, microseconds, UTC).
const urlTimeFormat = "2006-01-02T15:04:05.000000Z"

type wireURLConfig struct {
	FunctionUrl      string         `json:"FunctionUrl"`
	FunctionArn      string         `json:"FunctionArn"`
	AuthType         string         `json:"AuthType"`
	Cors             *function.Cors `json:"Cors,omitempty"`
	CreationTime     string         `json:"CreationTime"`
	LastModifiedTime string         `json:"LastModifiedTime,omitempty"`
	InvokeMode       string         `json:"InvokeMode,omitempty"`
}

// FunctionURL is the address lambdad serves a URL at: AWS's
// https://<id>.lambda-url.<region>.on.aws/ becomes a name under
// .localhost (which resolves to the loopback address) on the port the
// client reached the API at.
func FunctionURL(id, region, apiHost string) string {
	port := ""
	if _, p, err := net.SplitHostPort(apiHost); err == nil {
		port = ":" + p
	}
	return "http://" + id + ".lambda-url." + region + ".localhost" + port + "/"
}

// urlWire renders a URL. AWS leaves InvokeMode out of the answers of
// Create and Update unless the request named it, and LastModifiedTime out
// of Create's (recorded).
func (s *Server) urlWire(c *call, u *function.URLConfig, lastModified, invokeMode bool) *wireURLConfig {
	w := &wireURLConfig{
		FunctionUrl: FunctionURL(u.ID, s.ctl.Options().Region, c.r.Host), FunctionArn: s.ctl.ARN(c.ctx(), u.Function, u.Qualifier),
		AuthType: u.AuthType, Cors: u.Cors, CreationTime: u.Created.UTC().Format(urlTimeFormat),
	}
	if lastModified {
		w.LastModifiedTime = u.LastModified.UTC().Format(urlTimeFormat)
	}
	if invokeMode {
		w.InvokeMode = u.InvokeMode
	}
	return w
}

func (s *Server) createURLConfig(c *call) (any, error) {
	var in control.URLConfigInput
	if err := bind(c.in, &in); err != nil {
		return nil, err
	}
	u, err := s.ctl.CreateFunctionURLConfig(c.ctx(), &in)
	if err != nil {
		return nil, err
	}
	return s.urlWire(c, u, false, in.InvokeMode != ""), nil
}

func (s *Server) getURLConfig(c *call) (any, error) {
	u, err := s.ctl.GetFunctionURLConfig(c.ctx(), c.str("FunctionName"), c.str("Qualifier"))
	if err != nil {
		return nil, err
	}
	return s.urlWire(c, u, true, true), nil
}

func (s *Server) updateURLConfig(c *call) (any, error) {
	var in control.URLConfigInput
	if err := bind(c.in, &in); err != nil {
		return nil, err
	}
	u, err := s.ctl.UpdateFunctionURLConfig(c.ctx(), &in)
	if err != nil {
		return nil, err
	}
	return s.urlWire(c, u, true, in.InvokeMode != ""), nil
}

func (s *Server) deleteURLConfig(c *call) (any, error) {
	return noContent{}, s.ctl.DeleteFunctionURLConfig(c.ctx(), c.str("FunctionName"), c.str("Qualifier"))
}

type wireURLList struct {
	FunctionUrlConfigs []*wireURLConfig `json:"FunctionUrlConfigs"`
	NextMarker         string           `json:"NextMarker,omitempty"`
}

func (s *Server) listURLConfigs(c *call) (any, error) {
	us, next, err := s.ctl.ListFunctionURLConfigs(c.ctx(), c.str("FunctionName"), c.str("Marker"), c.intp("MaxItems"))
	if err != nil {
		return nil, err
	}
	out := &wireURLList{FunctionUrlConfigs: make([]*wireURLConfig, len(us)), NextMarker: next}
	for i, u := range us {
		out.FunctionUrlConfigs[i] = s.urlWire(c, u, true, true)
	}
	return out, nil
}

// urlID reads the URL id of a request to a function URL: the first label
// of a host <id>.lambda-url.<region>.localhost, or the path form
// /lambda-url/<id>/... for clients that cannot resolve *.localhost. rest
// is the path the function sees.
func urlID(host, path, region string) (id, rest string, ok bool) {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(host)
	if label, ok := strings.CutSuffix(host, ".lambda-url."+region+".localhost"); ok && label != "" && !strings.Contains(label, ".") {
		return label, path, true
	}
	if tail, ok := strings.CutPrefix(path, "/lambda-url/"); ok {
		id, rest, _ := strings.Cut(tail, "/")
		if id != "" {
			return strings.ToLower(id), "/" + rest, true
		}
	}
	return "", "", false
}
