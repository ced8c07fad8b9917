package control

import (
	"context"
	"errors"
	"sort"
	"time"

	"github.com/lambdad/lambdad/internal/awserr"
	"github.com/lambdad/lambdad/internal/function"
	"github.com/lambdad/lambdad/internal/store"
)

// Statuses reports the live state of provisioned configs: the
// provisioner owns it; the control plane only asks.
type Statuses interface {
	Status(fn function.Key, qualifier string) ProvisionStatus
}

// ProvisionStatus is a config's live state.
type ProvisionStatus struct {
	Allocated int
	Available int
	// Status is IN_PROGRESS, READY or FAILED.
	Status string
	Reason string
}

// ProvisionedView is a config with its live state.
type ProvisionedView struct {
	Config *store.ProvisionedConfig
	ProvisionStatus
}

func (s *Service) status(ctx context.Context, fn, qualifier string) ProvisionStatus {
	if s.statuses == nil {
		return ProvisionStatus{Status: "IN_PROGRESS"}
	}
	return s.statuses.Status(function.Key{Account: s.account(ctx), Name: fn}, qualifier)
}

// provisionedTarget checks the FunctionName and Qualifier of a provisioned
// concurrency operation, in AWS's order, and returns the function, the
// qualifier and the version it names.
func (s *Service) provisionedTarget(ctx context.Context, tx Tx, name, qualifier string, put bool) (string, string, string, error) {
	ref, err := s.names(ctx).ParseWithQualifier(name, qualifier)
	if err != nil {
		return "", "", "", err
	}
	q := ref.Qualifier
	if q == "" || q == function.Latest {
		if put {
			return "", "", "", awserr.New(awserr.InvalidParameterValue, "Provisioned Concurrency Configs cannot be applied to unpublished function versions.")
		}
		return "", "", "", awserr.New(awserr.InvalidParameterValue, "The function resource provided must be an alias or a published version.")
	}
	arn := s.ARN(ctx, ref.Name, q)
	if function.IsVersion(q) {
		if _, err := tx.Version(ref.Name, q); errors.Is(err, store.ErrNotFound) {
			return "", "", "", awserr.FunctionNotFound(arn)
		} else if err != nil {
			return "", "", "", err
		}
		return ref.Name, q, q, nil
	}
	a, err := tx.Alias(ref.Name, q)
	if errors.Is(err, store.ErrNotFound) {
		return "", "", "", awserr.New(awserr.ResourceNotFound, "Cannot find alias arn: %s", arn)
	} else if err != nil {
		return "", "", "", err
	}
	return ref.Name, q, a.FunctionVersion, nil
}

// PutProvisionedConcurrency sets a version's or alias's provisioned
// concurrency, with AWS's checks.
func (s *Service) PutProvisionedConcurrency(ctx context.Context, name, qualifier string, n int) (*ProvisionedView, error) {
	var cfg *store.ProvisionedConfig
	var fname, q, version string
	err := s.update(ctx, func(tx Tx) error {
		var err error
		if fname, q, version, err = s.provisionedTarget(ctx, tx, name, qualifier, true); err != nil {
			return err
		}
		f, err := tx.Function(fname)
		if err != nil {
			return err
		}
		if err := refuseIsolated(tx, fname, s.ARN(ctx, fname, q), "Provisioned concurrency"); err != nil {
			return err
		}
		if err := s.provisionConflict(ctx, tx, fname, q, version); err != nil {
			return err
		}
		old, err := tx.ProvisionedConfig(fname, q)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		others := f.Provisioned
		if old != nil {
			others -= old.Requested
		}
		var claimedOthers int64
		if f.Reserved == nil && n <= s.limits(ctx).Concurrency {
			sums, err := tx.Sums()
			if err != nil {
				return err
			}
			claimedOthers = sums.Claimed() - int64(f.Provisioned)
		}
		if err := CheckProvisioned(s.limits(ctx), f.Reserved, claimedOthers, others, n); err != nil {
			return err
		}
		cfg = &store.ProvisionedConfig{Function: fname, Qualifier: q, Requested: n, LastModified: s.opts.Now()}
		if err := tx.PutProvisionedConfig(cfg, version); err != nil {
			return err
		}
		f.Provisioned = others + n
		return tx.PutFunction(f)
	})
	if err != nil {
		return nil, internal("put provisioned concurrency", err)
	}
	// AWS answers a Put with the new request just begun, whatever was
	// allocated before.
	return &ProvisionedView{Config: cfg, ProvisionStatus: ProvisionStatus{Status: "IN_PROGRESS"}}, nil
}

// provisionConflict refuses a config on an alias whose version is
// provisioned itself, and on a version an alias with a config points at.
func (s *Service) provisionConflict(ctx context.Context, tx Tx, fname, q, version string) error {
	cfgs, err := tx.ProvisionedConfigs(fname)
	if err != nil {
		return err
	}
	for _, c := range cfgs {
		if c.Qualifier == q {
			continue
		}
		if !function.IsVersion(q) && c.Qualifier == version {
			return awserr.New(awserr.ResourceConflict, "Alias can't be used for Provisioned Concurrency configuration on an already Provisioned version")
		}
		if function.IsVersion(q) && !function.IsVersion(c.Qualifier) {
			a, err := tx.Alias(fname, c.Qualifier)
			if err == nil && a.FunctionVersion == q {
				return awserr.New(awserr.ResourceConflict, "Version is pointed by a Provisioned Concurrency alias")
			}
		}
	}
	return nil
}

// GetProvisionedConcurrency reads a config with its live state.
func (s *Service) GetProvisionedConcurrency(ctx context.Context, name, qualifier string) (*ProvisionedView, error) {
	var cfg *store.ProvisionedConfig
	err := s.view(ctx, func(tx Tx) error {
		fname, q, _, err := s.provisionedTarget(ctx, tx, name, qualifier, false)
		if err != nil {
			return err
		}
		cfg, err = tx.ProvisionedConfig(fname, q)
		if errors.Is(err, store.ErrNotFound) {
			return awserr.New(awserr.ProvisionedConcurrencyConfigNotFound, "No Provisioned Concurrency Config found for this function")
		}
		return err
	})
	if err != nil {
		return nil, internal("get provisioned concurrency", err)
	}
	return &ProvisionedView{Config: cfg, ProvisionStatus: s.status(ctx, cfg.Function, cfg.Qualifier)}, nil
}

// DeleteProvisionedConcurrency removes a config; removing none is fine.
func (s *Service) DeleteProvisionedConcurrency(ctx context.Context, name, qualifier string) error {
	var fname, q string
	err := s.update(ctx, func(tx Tx) (err error) {
		if fname, q, _, err = s.provisionedTarget(ctx, tx, name, qualifier, false); err != nil {
			return err
		}
		return s.dropProvisioned(ctx, tx, fname, q)
	})
	return internal("delete provisioned concurrency", err)
}

// dropProvisioned removes a config, if any, and its share of the
// function's total, inside tx.
func (s *Service) dropProvisioned(ctx context.Context, tx Tx, fname, q string) error {
	old, err := tx.ProvisionedConfig(fname, q)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	f, err := tx.Function(fname)
	if err != nil {
		return err
	}
	f.Provisioned -= old.Requested
	if err := tx.PutFunction(f); err != nil {
		return err
	}
	return tx.DeleteProvisionedConfig(fname, q)
}

// ListProvisionedConcurrency lists a function's configs.
func (s *Service) ListProvisionedConcurrency(ctx context.Context, name, marker string, maxItems *int) ([]*ProvisionedView, string, error) {
	fname, after, limit, err := s.page(ctx, name, marker, maxItems)
	if err != nil {
		return nil, "", err
	}
	var cfgs []*store.ProvisionedConfig
	err = s.view(ctx, func(tx Tx) error {
		if _, err := mustFunction(tx, fname, s.ARN(ctx, fname, "")); err != nil {
			return err
		}
		cfgs, err = tx.ProvisionedConfigs(fname)
		return err
	})
	if err != nil {
		return nil, "", internal("list provisioned concurrency", err)
	}
	sort.Slice(cfgs, func(i, j int) bool { return cfgs[i].Qualifier < cfgs[j].Qualifier })
	var out []*ProvisionedView
	next := ""
	for _, c := range cfgs {
		if after != "" && c.Qualifier <= after {
			continue
		}
		if len(out) == limit {
			next = encodeMarker(fname, out[limit-1].Config.Qualifier)
			break
		}
		out = append(out, &ProvisionedView{Config: c, ProvisionStatus: s.status(ctx, fname, c.Qualifier)})
	}
	return out, next, nil
}

// ProvisionedTimeFormat is how AWS renders a provisioned config's
// LastModified.
const ProvisionedTimeFormat = "2006-01-02T15:04:05-0700"

// FormatProvisionedTime renders t as AWS does for provisioned configs.
func FormatProvisionedTime(t time.Time) string { return t.UTC().Format(ProvisionedTimeFormat) }
