package api

import (
	"context"
	"github.com/lambdad/lambdad/internal/control"
	"github.com/lambdad/lambdad/internal/store"
)

type wireDestination struct {
	Destination string `json:"Destination,omitempty"`
}

type wireDestinationConfig struct {
	OnSuccess wireDestination `json:"OnSuccess"`
	OnFailure wireDestination `json:"OnFailure"`
}

type wireEventInvokeConfig struct {
	LastModified             float64               `json:"LastModified"`
	FunctionArn              string                `json:"FunctionArn"`
	MaximumRetryAttempts     *int                  `json:"MaximumRetryAttempts,omitempty"`
	MaximumEventAgeInSeconds *int                  `json:"MaximumEventAgeInSeconds,omitempty"`
	DestinationConfig        wireDestinationConfig `json:"DestinationConfig"`
}

func (s *Server) eventConfigWire(ctx context.Context, c *store.EventConfig) *wireEventInvokeConfig {
	return &wireEventInvokeConfig{
		// A timestamp member of rest-json: seconds since the epoch.
		LastModified:             float64(c.LastModified.UnixMilli()) / 1000,
		FunctionArn:              s.ctl.ARN(ctx, c.Function, c.Qualifier),
		MaximumRetryAttempts:     c.MaximumRetryAttempts,
		MaximumEventAgeInSeconds: c.MaximumEventAgeInSeconds,
		DestinationConfig: wireDestinationConfig{
			OnSuccess: wireDestination{c.OnSuccess},
			OnFailure: wireDestination{c.OnFailure},
		},
	}
}

func (s *Server) putEventInvokeConfig(replace bool) handler {
	return func(c *call) (any, error) {
		var in control.EventInvokeConfigInput
		if err := bind(c.in, &in); err != nil {
			return nil, err
		}
		cfg, err := s.ctl.PutEventInvokeConfig(c.ctx(), &in, replace)
		if err != nil {
			return nil, err
		}
		return s.eventConfigWire(c.ctx(), cfg), nil
	}
}

func (s *Server) getEventInvokeConfig(c *call) (any, error) {
	cfg, err := s.ctl.GetEventInvokeConfig(c.ctx(), c.str("FunctionName"), c.str("Qualifier"))
	if err != nil {
		return nil, err
	}
	return s.eventConfigWire(c.ctx(), cfg), nil
}

func (s *Server) deleteEventInvokeConfig(c *call) (any, error) {
	return noContent{}, s.ctl.DeleteEventInvokeConfig(c.ctx(), c.str("FunctionName"), c.str("Qualifier"))
}

type wireEventInvokeConfigList struct {
	FunctionEventInvokeConfigs []*wireEventInvokeConfig `json:"FunctionEventInvokeConfigs"`
	NextMarker                 string                   `json:"NextMarker,omitempty"`
}

func (s *Server) listEventInvokeConfigs(c *call) (any, error) {
	cfgs, next, err := s.ctl.ListEventInvokeConfigs(c.ctx(), c.str("FunctionName"), c.str("Marker"), c.intp("MaxItems"))
	if err != nil {
		return nil, err
	}
	out := &wireEventInvokeConfigList{FunctionEventInvokeConfigs: make([]*wireEventInvokeConfig, len(cfgs)), NextMarker: next}
	for i, cfg := range cfgs {
		out.FunctionEventInvokeConfigs[i] = s.eventConfigWire(c.ctx(), cfg)
	}
	return out, nil
}
