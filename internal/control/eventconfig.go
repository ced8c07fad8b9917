package control

import (
	"context"
	"errors"
	"strings"

	"github.com/lambdad/lambdad/internal/awserr"
	"github.com/lambdad/lambdad/internal/function"
	"github.com/lambdad/lambdad/internal/store"
)

// Destination is one side of a DestinationConfig.
type Destination struct {
	Destination string
}

// DestinationConfig names where an asynchronous invocation's record goes.
type DestinationConfig struct {
	OnSuccess *Destination
	OnFailure *Destination
}

// EventInvokeConfigInput is the request of Put- and
// UpdateFunctionEventInvokeConfig.
type EventInvokeConfigInput struct {
	FunctionName             string
	Qualifier                string
	MaximumRetryAttempts     *int
	MaximumEventAgeInSeconds *int
	DestinationConfig        *DestinationConfig
}

// EventConfigTarget parses the FunctionName and Qualifier of an
// EventInvokeConfig operation: the function and the qualifier the config
// belongs to ("$LATEST" for the unqualified function).
func (s *Service) eventConfigTarget(ctx context.Context, tx Tx, name, qualifier string) (string, string, error) {
	ref, err := s.names(ctx).ParseWithQualifier(name, qualifier)
	if err != nil {
		return "", "", err
	}
	q := ref.Qualifier
	if q == "" {
		q = function.Latest
	}
	if _, err := mustFunction(tx, ref.Name, s.ARN(ctx, ref.Name, q)); err != nil {
		return "", "", err
	}
	if _, _, err := resolve(tx, ref.Name, q, s.ARN(ctx, ref.Name, q)); err != nil {
		return "", "", err
	}
	return ref.Name, q, nil
}

func (s *Service) noEventConfig(ctx context.Context, name, qualifier string) error {
	return awserr.New(awserr.ResourceNotFound, "The function %s doesn't have an EventInvokeConfig", s.ARN(ctx, name, qualifier))
}

// checkDestination accepts the ARNs AWS accepts as destinations. Only
// Lambda functions of this server are delivered to; others are kept in the
// dead-letter list when the time comes.
func checkDestination(d *Destination) error {
	if d == nil || d.Destination == "" {
		return nil
	}
	for _, svc := range []string{":lambda:", ":sqs:", ":sns:", ":events:", ":s3:"} {
		if strings.HasPrefix(d.Destination, "arn:") && strings.Contains(d.Destination, svc) {
			return nil
		}
	}
	return awserr.New(awserr.InvalidParameterValue, "The destination ARN %s is invalid.", d.Destination)
}

func applyEventConfig(c *store.EventConfig, in *EventInvokeConfigInput, replace bool) error {
	if replace {
		*c = store.EventConfig{Function: c.Function, Qualifier: c.Qualifier}
	}
	if in.MaximumRetryAttempts != nil {
		c.MaximumRetryAttempts = in.MaximumRetryAttempts
	}
	if in.MaximumEventAgeInSeconds != nil {
		c.MaximumEventAgeInSeconds = in.MaximumEventAgeInSeconds
	}
	if d := in.DestinationConfig; d != nil {
		if err := errors.Join(checkDestination(d.OnSuccess), checkDestination(d.OnFailure)); err != nil {
			return err
		}
		if d.OnSuccess != nil {
			c.OnSuccess = d.OnSuccess.Destination
		}
		if d.OnFailure != nil {
			c.OnFailure = d.OnFailure.Destination
		}
	}
	return nil
}

// PutEventInvokeConfig replaces a qualifier's asynchronous invocation
// configuration; replace is false for Update, which keeps what the request
// leaves out and needs a config to exist.
func (s *Service) PutEventInvokeConfig(ctx context.Context, in *EventInvokeConfigInput, replace bool) (*store.EventConfig, error) {
	var out *store.EventConfig
	err := s.update(ctx, func(tx Tx) error {
		name, q, err := s.eventConfigTarget(ctx, tx, in.FunctionName, in.Qualifier)
		if err != nil {
			return err
		}
		c, err := tx.EventConfig(name, q)
		if errors.Is(err, store.ErrNotFound) {
			if !replace {
				return s.noEventConfig(ctx, name, q)
			}
			c = &store.EventConfig{Function: name, Qualifier: q}
		} else if err != nil {
			return err
		}
		if err := applyEventConfig(c, in, replace); err != nil {
			return err
		}
		c.LastModified = s.opts.Now()
		out = c
		return tx.PutEventConfig(c)
	})
	return out, internal("put event invoke config", err)
}

// GetEventInvokeConfig reads one.
func (s *Service) GetEventInvokeConfig(ctx context.Context, name, qualifier string) (*store.EventConfig, error) {
	var out *store.EventConfig
	err := s.view(ctx, func(tx Tx) error {
		fn, q, err := s.eventConfigTarget(ctx, tx, name, qualifier)
		if err != nil {
			return err
		}
		out, err = tx.EventConfig(fn, q)
		if errors.Is(err, store.ErrNotFound) {
			return s.noEventConfig(ctx, fn, q)
		}
		return err
	})
	return out, internal("get event invoke config", err)
}

// DeleteEventInvokeConfig removes one.
func (s *Service) DeleteEventInvokeConfig(ctx context.Context, name, qualifier string) error {
	err := s.update(ctx, func(tx Tx) error {
		fn, q, err := s.eventConfigTarget(ctx, tx, name, qualifier)
		if err != nil {
			return err
		}
		if _, err := tx.EventConfig(fn, q); errors.Is(err, store.ErrNotFound) {
			return s.noEventConfig(ctx, fn, q)
		} else if err != nil {
			return err
		}
		return tx.DeleteEventConfig(fn, q)
	})
	return internal("delete event invoke config", err)
}

// ListEventInvokeConfigs lists a function's configurations.
func (s *Service) ListEventInvokeConfigs(ctx context.Context, name, marker string, maxItems *int) ([]*store.EventConfig, string, error) {
	fname, after, limit, err := s.page(ctx, name, marker, maxItems)
	if err != nil {
		return nil, "", err
	}
	var out []*store.EventConfig
	next := ""
	err = s.view(ctx, func(tx Tx) error {
		out, next = nil, "" // the body may run again: it starts afresh
		if _, err := mustFunction(tx, fname, s.ARN(ctx, fname, "")); err != nil {
			return err
		}
		all, err := tx.EventConfigs(fname)
		if err != nil {
			return err
		}
		for _, c := range all {
			if after != "" && c.Qualifier <= after {
				continue
			}
			if len(out) == limit {
				next = encodeMarker(fname, out[limit-1].Qualifier)
				break
			}
			out = append(out, c)
		}
		return nil
	})
	return out, next, internal("list event invoke configs", err)
}

// EventConfigFor is the configuration that governs an event sent to
// name:qualifier ("" meaning $LATEST); nil when there is none.
func (s *Service) EventConfigFor(ctx context.Context, name, qualifier string) (*store.EventConfig, error) {
	if qualifier == "" {
		qualifier = function.Latest
	}
	var out *store.EventConfig
	err := s.view(ctx, func(tx Tx) (err error) {
		out, err = tx.EventConfig(name, qualifier)
		if errors.Is(err, store.ErrNotFound) {
			out, err = nil, nil
		}
		return err
	})
	return out, internal("read event invoke config", err)
}

// Reservation reads a function's reservation; ok is false when there is
// none or the function does not exist.
func (s *Service) Reservation(ctx context.Context, name string) (n int, ok bool, err error) {
	err = s.view(ctx, func(tx Tx) error {
		f, err := tx.Function(name)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err == nil && f.Reserved != nil {
			n, ok = *f.Reserved, true
		}
		return err
	})
	return n, ok, internal("read reservation", err)
}
