package api

import "github.com/lambdad/lambdad/internal/control"

func (s *Server) addPermission(c *call) (any, error) {
	var in control.AddPermissionInput
	if err := bind(c.in, &in); err != nil {
		return nil, err
	}
	st, err := s.ctl.AddPermission(c.ctx(), &in)
	if err != nil {
		return nil, err
	}
	return &struct {
		Statement string `json:"Statement"`
	}{st}, nil
}

func (s *Server) removePermission(c *call) (any, error) {
	err := s.ctl.RemovePermission(c.ctx(), c.str("FunctionName"), c.str("Qualifier"), c.str("StatementId"), c.str("RevisionId"))
	if err != nil {
		return nil, err
	}
	return noContent{}, nil
}

func (s *Server) getPolicy(c *call) (any, error) {
	doc, rev, err := s.ctl.GetPolicy(c.ctx(), c.str("FunctionName"), c.str("Qualifier"))
	if err != nil {
		return nil, err
	}
	return &struct {
		Policy     string `json:"Policy"`
		RevisionId string `json:"RevisionId"`
	}{doc, rev}, nil
}
