package api

import (
	"github.com/lambdad/lambdad/internal/archive"
)

func (s *Server) putFunctionConcurrency(c *call) (any, error) {
	n, err := s.ctl.PutFunctionConcurrency(c.ctx(), c.str("FunctionName"), c.intp("ReservedConcurrentExecutions"), c.deferred)
	if err != nil {
		return nil, err
	}
	return &wireConcurrency{ReservedConcurrentExecutions: &n}, nil
}

func (s *Server) getFunctionConcurrency(c *call) (any, error) {
	n, ok, err := s.ctl.GetFunctionConcurrency(c.ctx(), c.str("FunctionName"))
	if err != nil {
		return nil, err
	}
	if !ok {
		// AWS answers {} when nothing is set: the key is absent, not null.
		return &wireConcurrency{}, nil
	}
	return &wireConcurrency{ReservedConcurrentExecutions: &n}, nil
}

func (s *Server) deleteFunctionConcurrency(c *call) (any, error) {
	return noContent{}, s.ctl.DeleteFunctionConcurrency(c.ctx(), c.str("FunctionName"))
}

// AWS's fixed account limits on code.
const (
	totalCodeSizeLimit = 80530636800
	codeSizeZipped     = 52428800
)

func (s *Server) getAccountSettings(c *call) (any, error) {
	a, err := s.ctl.GetAccountSettings(c.ctx())
	if err != nil {
		return nil, err
	}
	return &wireAccountSettings{
		AccountLimit: wireAccountLimit{
			TotalCodeSize: totalCodeSizeLimit, CodeSizeUnzipped: archive.MaxUnzipped, CodeSizeZipped: codeSizeZipped,
			ConcurrentExecutions: a.ConcurrentExecutions, UnreservedConcurrentExecutions: a.UnreservedConcurrentExecutions,
		},
		AccountUsage: wireAccountUsage{TotalCodeSize: a.TotalCodeSize, FunctionCount: a.FunctionCount},
	}, nil
}
