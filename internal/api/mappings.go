package api

import (
	"github.com/lambdad/lambdad/internal/control"
)

// The event source mapping operations.

type wireScalingConfig struct {
	MaximumConcurrency int `json:"MaximumConcurrency,omitempty"`
}

type wireFilter struct {
	Pattern string `json:"Pattern"`
}

type wireFilterCriteria struct {
	Filters []wireFilter `json:"Filters"`
}

type wireMapping struct {
	UUID                           string              `json:"UUID"`
	BatchSize                      int                 `json:"BatchSize"`
	MaximumBatchingWindowInSeconds int                 `json:"MaximumBatchingWindowInSeconds"`
	EventSourceArn                 string              `json:"EventSourceArn"`
	EventSourceMappingArn          string              `json:"EventSourceMappingArn"`
	FunctionArn                    string              `json:"FunctionArn"`
	FunctionResponseTypes          []string            `json:"FunctionResponseTypes"`
	LastModified                   float64             `json:"LastModified"`
	State                          string              `json:"State"`
	StateTransitionReason          string              `json:"StateTransitionReason"`
	ScalingConfig                  *wireScalingConfig  `json:"ScalingConfig,omitempty"`
	FilterCriteria                 *wireFilterCriteria `json:"FilterCriteria,omitempty"`
}

func mappingWire(v *control.MappingView) *wireMapping {
	m := v.Mapping
	w := &wireMapping{
		UUID: m.UUID, BatchSize: m.BatchSize, MaximumBatchingWindowInSeconds: m.BatchingWindowSeconds,
		EventSourceArn: m.EventSourceArn, EventSourceMappingArn: v.MappingArn, FunctionArn: v.FunctionArn,
		FunctionResponseTypes: []string{},
		// A timestamp member of rest-json: seconds since the epoch.
		LastModified: float64(m.LastModified.UnixMilli()) / 1000,
		State:        v.State, StateTransitionReason: "USER_INITIATED",
	}
	if m.ReportBatchItemFail {
		w.FunctionResponseTypes = []string{"ReportBatchItemFailures"}
	}
	if m.MaximumConcurrency > 0 {
		w.ScalingConfig = &wireScalingConfig{MaximumConcurrency: m.MaximumConcurrency}
	}
	if len(m.Filters) > 0 {
		w.FilterCriteria = &wireFilterCriteria{}
		for _, p := range m.Filters {
			w.FilterCriteria.Filters = append(w.FilterCriteria.Filters, wireFilter{Pattern: p})
		}
	}
	return w
}

func mappingInput(c *call) *control.MappingInput {
	in := &control.MappingInput{UUID: c.str("UUID"), EventSourceArn: c.str("EventSourceArn"),
		BatchSize: c.intp("BatchSize"), BatchingWindowSeconds: c.intp("MaximumBatchingWindowInSeconds")}
	if name, ok := c.in["FunctionName"].(string); ok {
		in.FunctionName = &name
	}
	if e, ok := c.in["Enabled"].(bool); ok {
		in.Enabled = &e
	}
	if sc, ok := c.in["ScalingConfig"].(map[string]any); ok {
		in.ScalingConfig = true
		if n, ok := sc["MaximumConcurrency"].(float64); ok {
			m := int(n)
			in.MaximumConcurrency = &m
		}
	}
	if fc, ok := c.in["FilterCriteria"].(map[string]any); ok {
		// FilterCriteria {} or {"Filters": []} removes the filters.
		patterns := []string{}
		fs, _ := fc["Filters"].([]any)
		for _, f := range fs {
			if f, ok := f.(map[string]any); ok {
				p, _ := f["Pattern"].(string)
				patterns = append(patterns, p)
			}
		}
		in.Filters = &patterns
	}
	if ts, ok := c.in["FunctionResponseTypes"].([]any); ok {
		types := []string{}
		for _, t := range ts {
			if s, ok := t.(string); ok {
				types = append(types, s)
			}
		}
		in.FunctionResponseTypes = &types
	}
	return in
}

func (s *Server) createMapping(c *call) (any, error) {
	v, err := s.ctl.CreateEventSourceMapping(c.ctx(), mappingInput(c))
	if err != nil {
		return nil, err
	}
	return mappingWire(v), nil
}

func (s *Server) getMapping(c *call) (any, error) {
	v, err := s.ctl.GetEventSourceMapping(c.ctx(), c.str("UUID"))
	if err != nil {
		return nil, err
	}
	return mappingWire(v), nil
}

func (s *Server) updateMapping(c *call) (any, error) {
	v, err := s.ctl.UpdateEventSourceMapping(c.ctx(), mappingInput(c))
	if err != nil {
		return nil, err
	}
	return mappingWire(v), nil
}

func (s *Server) deleteMapping(c *call) (any, error) {
	v, err := s.ctl.DeleteEventSourceMapping(c.ctx(), c.str("UUID"))
	if err != nil {
		return nil, err
	}
	return mappingWire(v), nil
}

type wireMappingList struct {
	EventSourceMappings []*wireMapping `json:"EventSourceMappings"`
	NextMarker          string         `json:"NextMarker,omitempty"`
}

func (s *Server) listMappings(c *call) (any, error) {
	vs, next, err := s.ctl.ListEventSourceMappings(c.ctx(), c.str("EventSourceArn"), c.str("FunctionName"), c.str("Marker"), c.intp("MaxItems"))
	if err != nil {
		return nil, err
	}
	out := &wireMappingList{EventSourceMappings: make([]*wireMapping, len(vs)), NextMarker: next}
	for i, v := range vs {
		out.EventSourceMappings[i] = mappingWire(v)
	}
	return out, nil
}
