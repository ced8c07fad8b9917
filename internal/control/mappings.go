package control

import (
	"context"
	"errors"
	"strings"

	"github.com/lambdad/lambdad/internal/awserr"
	"github.com/lambdad/lambdad/internal/esm/filter"
	"github.com/lambdad/lambdad/internal/store"
	"github.com/lambdad/lambdad/internal/uuid"
)

// Event source mappings: an SQS queue read in batches into a function.
// The records are kept here with AWS's checks; internal/esm follows them
// through the feed and does the polling.

// MappingInput is Create/UpdateEventSourceMapping's request; nil members
// were not given.
type MappingInput struct {
	UUID                  string // Update only
	FunctionName          *string
	EventSourceArn        string // Create only
	BatchSize             *int
	BatchingWindowSeconds *int
	Enabled               *bool
	MaximumConcurrency    *int
	// ScalingConfig is set when the request names one (an empty one
	// removes the maximum).
	ScalingConfig         bool
	FunctionResponseTypes *[]string
	// Filters are FilterCriteria's patterns when the request has
	// FilterCriteria (an empty list removes them).
	Filters *[]string
}

// MappingView is a mapping with what its answer reports.
type MappingView struct {
	Mapping *store.EventSourceMapping
	// State is AWS's state word for the answer: Creating, Updating or
	// Deleting right after a change, Enabled or Disabled otherwise.
	State       string
	FunctionArn string
	MappingArn  string
}

func (s *Service) mappingView(ctx context.Context, m *store.EventSourceMapping, state string) *MappingView {
	if state == "" {
		state = "Disabled"
		if m.Enabled {
			state = "Enabled"
		}
	}
	return &MappingView{Mapping: m, State: state, FunctionArn: s.ARN(ctx, m.Function, m.Qualifier),
		MappingArn: "arn:aws:lambda:" + s.opts.Region + ":" + s.account(ctx) + ":event-source-mapping:" + m.UUID}
}

func mappingNotFound(id string) error {
	return awserr.New(awserr.ResourceNotFound, "The resource you requested does not exist. (Service: Lambda, Status Code: 404, Request ID: %s)", id)
}

// checkMapping applies AWS's checks on the settings of a mapping.
func checkMapping(m *store.EventSourceMapping) error {
	if m.BatchSize > 10 && m.BatchingWindowSeconds == 0 {
		return awserr.New(awserr.InvalidParameterValue, "Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10")
	}
	if strings.HasSuffix(m.EventSourceArn, ".fifo") {
		// FIFO queues: batches of at most 10 and no batching window
		// (services-sqs-parameters.html).
		if m.BatchSize > 10 {
			return awserr.New(awserr.InvalidParameterValue, "BatchSize must be less than or equal to 10 for FIFO queues; got %d", m.BatchSize)
		}
		if m.BatchingWindowSeconds > 0 {
			return awserr.New(awserr.InvalidParameterValue, "MaximumBatchingWindowInSeconds is not supported for FIFO queues")
		}
	}
	if _, err := filter.Compile(m.Filters); err != nil {
		// AWS's sentence, then which filter and why.
		return awserr.New(awserr.InvalidParameterValue, "Invalid filter pattern definition. %v", err)
	}
	return nil
}

// sqsQueueArn checks that an event source is a queue of the caller's
// region and account.
func (s *Service) sqsQueueArn(ctx context.Context, arn string) error {
	prefix := "arn:aws:sqs:" + s.opts.Region + ":" + s.account(ctx) + ":"
	if name, ok := strings.CutPrefix(arn, prefix); !ok || name == "" || strings.Contains(name, ":") {
		return awserr.New(awserr.InvalidParameterValue, "lambdad reads event sources from SQS queues of this region and account only (arn:aws:sqs:%s:%s:NAME); got %s", s.opts.Region, s.account(ctx), arn)
	}
	return nil
}

func (in *MappingInput) apply(m *store.EventSourceMapping) {
	if in.BatchSize != nil {
		m.BatchSize = *in.BatchSize
	}
	if in.BatchingWindowSeconds != nil {
		m.BatchingWindowSeconds = *in.BatchingWindowSeconds
	}
	if in.Enabled != nil {
		m.Enabled = *in.Enabled
	}
	if in.ScalingConfig {
		m.MaximumConcurrency = 0
		if in.MaximumConcurrency != nil {
			m.MaximumConcurrency = *in.MaximumConcurrency
		}
	}
	if in.Filters != nil {
		// A fresh slice: the feed's copy of the record shares it.
		m.Filters = append([]string(nil), (*in.Filters)...)
		if len(m.Filters) == 0 {
			m.Filters = nil
		}
	}
	if in.FunctionResponseTypes != nil {
		m.ReportBatchItemFail = false
		for _, t := range *in.FunctionResponseTypes {
			m.ReportBatchItemFail = m.ReportBatchItemFail || t == "ReportBatchItemFailures"
		}
	}
}

// CreateEventSourceMapping maps an SQS queue to a function (or one of its
// versions or aliases).
func (s *Service) CreateEventSourceMapping(ctx context.Context, in *MappingInput) (*MappingView, error) {
	if err := s.sqsQueueArn(ctx, in.EventSourceArn); err != nil {
		return nil, err
	}
	ref, err := s.names(ctx).Parse(*in.FunctionName)
	if err != nil {
		return nil, err
	}
	m := &store.EventSourceMapping{UUID: uuid.New(), EventSourceArn: in.EventSourceArn, Function: ref.Name, Qualifier: ref.Qualifier,
		BatchSize: 10, Enabled: true, LastModified: s.opts.Now().UTC()}
	in.apply(m)
	if err := checkMapping(m); err != nil {
		return nil, err
	}
	err = s.update(ctx, func(tx Tx) error {
		arn := s.ARN(ctx, ref.Name, ref.Qualifier)
		if _, err := mustFunction(tx, ref.Name, arn); err != nil {
			return err
		}
		if _, _, err := resolve(tx, ref.Name, ref.Qualifier, arn); err != nil {
			return err
		}
		if err := refuseIsolated(tx, ref.Name, arn, "An event source mapping"); err != nil {
			return err
		}
		all, err := tx.EventSourceMappings("", -1)
		if err != nil {
			return err
		}
		for _, o := range all {
			if o.EventSourceArn == m.EventSourceArn && o.Function == m.Function && o.Qualifier == m.Qualifier {
				return awserr.New(awserr.ResourceConflict, `An event source mapping with SQS arn (" %s ") and function (" %s ") already exists. Please update or delete the existing mapping with UUID %s`, m.EventSourceArn, m.Function, o.UUID)
			}
		}
		return tx.PutEventSourceMapping(m)
	})
	if err != nil {
		return nil, internal("create event source mapping", err)
	}
	return s.mappingView(ctx, m, "Creating"), nil
}

func (s *Service) mustMapping(tx Tx, id string) (*store.EventSourceMapping, error) {
	m, err := tx.EventSourceMapping(id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, mappingNotFound(id)
	}
	return m, err
}

// GetEventSourceMapping reads one of the caller's mappings.
func (s *Service) GetEventSourceMapping(ctx context.Context, id string) (*MappingView, error) {
	var m *store.EventSourceMapping
	err := s.view(ctx, func(tx Tx) (err error) {
		m, err = s.mustMapping(tx, id)
		return err
	})
	if err != nil {
		return nil, internal("get event source mapping", err)
	}
	return s.mappingView(ctx, m, ""), nil
}

// UpdateEventSourceMapping changes what the request names.
func (s *Service) UpdateEventSourceMapping(ctx context.Context, in *MappingInput) (*MappingView, error) {
	var m *store.EventSourceMapping
	err := s.update(ctx, func(tx Tx) (err error) {
		if m, err = s.mustMapping(tx, in.UUID); err != nil {
			return err
		}
		if in.FunctionName != nil {
			ref, err := s.names(ctx).Parse(*in.FunctionName)
			if err != nil {
				return err
			}
			arn := s.ARN(ctx, ref.Name, ref.Qualifier)
			if _, err := mustFunction(tx, ref.Name, arn); err != nil {
				return err
			}
			if err := refuseIsolated(tx, ref.Name, arn, "An event source mapping"); err != nil {
				return err
			}
			m.Function, m.Qualifier = ref.Name, ref.Qualifier
		}
		in.apply(m)
		if err := checkMapping(m); err != nil {
			return err
		}
		m.LastModified = s.opts.Now().UTC()
		return tx.PutEventSourceMapping(m)
	})
	if err != nil {
		return nil, internal("update event source mapping", err)
	}
	return s.mappingView(ctx, m, "Updating"), nil
}

// DeleteEventSourceMapping removes a mapping; its poller stops.
func (s *Service) DeleteEventSourceMapping(ctx context.Context, id string) (*MappingView, error) {
	var m *store.EventSourceMapping
	err := s.update(ctx, func(tx Tx) (err error) {
		if m, err = s.mustMapping(tx, id); err != nil {
			return err
		}
		return tx.DeleteEventSourceMapping(m)
	})
	if err != nil {
		return nil, internal("delete event source mapping", err)
	}
	return s.mappingView(ctx, m, "Deleting"), nil
}

// ListEventSourceMappings lists the caller's mappings, optionally of one
// queue and one function, in pages; the marker is the last UUID of the
// page before.
func (s *Service) ListEventSourceMappings(ctx context.Context, sourceArn, functionName, marker string, maxItems *int) ([]*MappingView, string, error) {
	limit := 100
	if maxItems != nil {
		limit = min(*maxItems, 100)
	}
	fname := ""
	if functionName != "" {
		ref, err := s.names(ctx).Parse(functionName)
		if err != nil {
			return nil, "", err
		}
		fname = ref.Name
	}
	var out []*MappingView
	next := ""
	err := s.view(ctx, func(tx Tx) error {
		out, next = out[:0], ""
		all, err := tx.EventSourceMappings(marker, -1)
		if err != nil {
			return err
		}
		for _, m := range all {
			if sourceArn != "" && m.EventSourceArn != sourceArn || fname != "" && m.Function != fname {
				continue
			}
			if len(out) == limit {
				next = out[limit-1].Mapping.UUID
				break
			}
			out = append(out, s.mappingView(ctx, m, ""))
		}
		return nil
	})
	return out, next, internal("list event source mappings", err)
}
