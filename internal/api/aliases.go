package api

import (
	"github.com/lambdad/lambdad/internal/control"
)

func (s *Server) createAlias(c *call) (any, error) {
	var in control.AliasInput
	if err := bind(c.in, &in); err != nil {
		return nil, err
	}
	a, err := s.ctl.CreateAlias(c.ctx(), &in)
	if err != nil {
		return nil, err
	}
	name, _ := s.ctl.NamesOf(c.ctx()).Parse(in.FunctionName)
	return aliasWire(a, s.ctl.AliasARN(c.ctx(), name.Name, a.Name)), nil
}

func (s *Server) getAlias(c *call) (any, error) {
	a, name, err := s.ctl.GetAlias(c.ctx(), c.str("FunctionName"), c.str("Name"))
	if err != nil {
		return nil, err
	}
	return aliasWire(a, s.ctl.AliasARN(c.ctx(), name, a.Name)), nil
}

func (s *Server) updateAlias(c *call) (any, error) {
	var in control.AliasInput
	if err := bind(c.in, &in); err != nil {
		return nil, err
	}
	a, err := s.ctl.UpdateAlias(c.ctx(), &in)
	if err != nil {
		return nil, err
	}
	name, _ := s.ctl.NamesOf(c.ctx()).Parse(in.FunctionName)
	return aliasWire(a, s.ctl.AliasARN(c.ctx(), name.Name, a.Name)), nil
}

func (s *Server) deleteAlias(c *call) (any, error) {
	return noContent{}, s.ctl.DeleteAlias(c.ctx(), c.str("FunctionName"), c.str("Name"))
}

type wireAliasList struct {
	Aliases    []*wireAlias `json:"Aliases"`
	NextMarker string       `json:"NextMarker,omitempty"`
}

func (s *Server) listAliases(c *call) (any, error) {
	aliases, next, err := s.ctl.ListAliases(c.ctx(), c.str("FunctionName"), c.str("FunctionVersion"), c.str("Marker"), c.intp("MaxItems"))
	if err != nil {
		return nil, err
	}
	name, _ := s.ctl.NamesOf(c.ctx()).Parse(c.str("FunctionName"))
	out := &wireAliasList{Aliases: make([]*wireAlias, len(aliases)), NextMarker: next}
	for i, a := range aliases {
		out.Aliases[i] = aliasWire(a, s.ctl.AliasARN(c.ctx(), name.Name, a.Name))
	}
	return out, nil
}
