package api

import (
	"github.com/lambdad/lambdad/internal/control"
)

type wireProvisioned struct {
	FunctionArn                              string `json:"FunctionArn,omitempty"`
	RequestedProvisionedConcurrentExecutions int    `json:"RequestedProvisionedConcurrentExecutions"`
	AvailableProvisionedConcurrentExecutions int    `json:"AvailableProvisionedConcurrentExecutions"`
	AllocatedProvisionedConcurrentExecutions int    `json:"AllocatedProvisionedConcurrentExecutions"`
	Status                                   string `json:"Status"`
	StatusReason                             string `json:"StatusReason,omitempty"`
	LastModified                             string `json:"LastModified"`
}

func provisionedWire(v *control.ProvisionedView, arn string) *wireProvisioned {
	return &wireProvisioned{
		FunctionArn:                              arn,
		RequestedProvisionedConcurrentExecutions: v.Config.Requested,
		AvailableProvisionedConcurrentExecutions: v.Available,
		AllocatedProvisionedConcurrentExecutions: v.Allocated,
		Status:                                   v.Status,
		StatusReason:                             v.Reason,
		LastModified:                             control.FormatProvisionedTime(v.Config.LastModified),
	}
}

func (s *Server) putProvisioned(c *call) (any, error) {
	n := c.intp("ProvisionedConcurrentExecutions")
	v, err := s.ctl.PutProvisionedConcurrency(c.ctx(), c.str("FunctionName"), c.str("Qualifier"), *n)
	if err != nil {
		return nil, err
	}
	return provisionedWire(v, ""), nil
}

func (s *Server) getProvisioned(c *call) (any, error) {
	v, err := s.ctl.GetProvisionedConcurrency(c.ctx(), c.str("FunctionName"), c.str("Qualifier"))
	if err != nil {
		return nil, err
	}
	return provisionedWire(v, ""), nil
}

func (s *Server) deleteProvisioned(c *call) (any, error) {
	return noContent{}, s.ctl.DeleteProvisionedConcurrency(c.ctx(), c.str("FunctionName"), c.str("Qualifier"))
}

type wireProvisionedList struct {
	ProvisionedConcurrencyConfigs []*wireProvisioned `json:"ProvisionedConcurrencyConfigs"`
	NextMarker                    string             `json:"NextMarker,omitempty"`
}

func (s *Server) listProvisioned(c *call) (any, error) {
	views, next, err := s.ctl.ListProvisionedConcurrency(c.ctx(), c.str("FunctionName"), c.str("Marker"), c.intp("MaxItems"))
	if err != nil {
		return nil, err
	}
	out := &wireProvisionedList{ProvisionedConcurrencyConfigs: make([]*wireProvisioned, len(views)), NextMarker: next}
	for i, v := range views {
		out.ProvisionedConcurrencyConfigs[i] = provisionedWire(v, s.ctl.ARN(c.ctx(), v.Config.Function, v.Config.Qualifier))
	}
	return out, nil
}
