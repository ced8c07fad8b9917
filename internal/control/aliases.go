package control

import (
	"context"
	"errors"
	"maps"

	"github.com/lambdad/lambdad/internal/awserr"
	"github.com/lambdad/lambdad/internal/function"
	"github.com/lambdad/lambdad/internal/store"
	"github.com/lambdad/lambdad/internal/uuid"
)

// RoutingConfig is an alias's traffic split.
type RoutingConfig struct {
	AdditionalVersionWeights map[string]float64
}

// AliasInput is the request of CreateAlias and UpdateAlias.
type AliasInput struct {
	FunctionName    string
	Name            string
	FunctionVersion *string
	Description     *string
	RoutingConfig   *RoutingConfig
	RevisionId      string
}

// AliasARN is an alias's ARN.
func (s *Service) AliasARN(ctx context.Context, name, alias string) string {
	return s.names(ctx).QualifiedARN(name, alias)
}

// AWS words a missing alias differently by operation (recorded):
// GetAlias says "Cannot find alias arn: ...", as every operation that
// resolves a qualifier does; UpdateAlias says "Alias not found: ...";
// DeleteAlias succeeds.
func aliasNotFound(arn string) error {
	return awserr.New(awserr.ResourceNotFound, "Alias not found: %s", arn)
}

func cannotFindAlias(arn string) error {
	return awserr.New(awserr.ResourceNotFound, "Cannot find alias arn: %s", arn)
}

// checkAliasTarget checks that an alias may point at version with the
// given extra weights.
func (s *Service) checkAliasTarget(ctx context.Context, tx Tx, name, version string, routing *RoutingConfig) error {
	if _, err := tx.Version(name, version); errors.Is(err, store.ErrNotFound) {
		return awserr.FunctionNotFound(s.ARN(ctx, name, version))
	} else if err != nil {
		return err
	}
	if routing == nil {
		return nil
	}
	if len(routing.AdditionalVersionWeights) > 1 {
		return awserr.New(awserr.InvalidParameterValue, "Number of additional version weights cannot be greater than 1.")
	}
	for v := range routing.AdditionalVersionWeights {
		if v == version {
			return awserr.New(awserr.InvalidParameterValue, "Invalid function version %s. Function version %s is already included in routing configuration.", v, v)
		}
		if version == function.Latest || v == function.Latest {
			return awserr.New(awserr.InvalidParameterValue, "$LATEST is not supported for an alias pointing to more than 1 version")
		}
		if _, err := tx.Version(name, v); errors.Is(err, store.ErrNotFound) {
			return awserr.FunctionNotFound(s.ARN(ctx, name, v))
		} else if err != nil {
			return err
		}
	}
	return nil
}

// CreateAlias creates an alias.
func (s *Service) CreateAlias(ctx context.Context, in *AliasInput) (*function.Alias, error) {
	name, err := s.unqualified(ctx, in.FunctionName)
	if err != nil {
		return nil, err
	}
	if in.FunctionVersion == nil {
		return nil, awserr.New(awserr.InvalidParameterValue, "FunctionVersion is required.")
	}
	a := &function.Alias{Name: in.Name, FunctionVersion: *in.FunctionVersion, RevisionID: uuid.New()}
	set(&a.Description, in.Description)
	if in.RoutingConfig != nil {
		a.RoutingWeights = maps.Clone(in.RoutingConfig.AdditionalVersionWeights)
	}
	err = s.update(ctx, func(tx Tx) error {
		if _, err := mustFunction(tx, name, s.ARN(ctx, name, "")); err != nil {
			return err
		}
		if _, err := tx.Alias(name, in.Name); err == nil {
			return awserr.New(awserr.ResourceConflict, "Alias already exists: %s", s.AliasARN(ctx, name, in.Name))
		}
		if err := s.checkAliasTarget(ctx, tx, name, a.FunctionVersion, in.RoutingConfig); err != nil {
			return err
		}
		return tx.PutAlias(name, a)
	})
	return a, internal("create alias", err)
}

// GetAlias reads an alias.
func (s *Service) GetAlias(ctx context.Context, functionName, alias string) (*function.Alias, string, error) {
	name, err := s.unqualified(ctx, functionName)
	if err != nil {
		return nil, "", err
	}
	var a *function.Alias
	err = s.view(ctx, func(tx Tx) error {
		if _, err := mustFunction(tx, name, s.ARN(ctx, name, "")); err != nil {
			return err
		}
		a, err = tx.Alias(name, alias)
		if errors.Is(err, store.ErrNotFound) {
			return cannotFindAlias(s.AliasARN(ctx, name, alias))
		}
		return err
	})
	return a, name, internal("get alias", err)
}

// UpdateAlias changes an alias.
func (s *Service) UpdateAlias(ctx context.Context, in *AliasInput) (*function.Alias, error) {
	name, err := s.unqualified(ctx, in.FunctionName)
	if err != nil {
		return nil, err
	}
	var out *function.Alias
	err = s.update(ctx, func(tx Tx) error {
		if _, err := mustFunction(tx, name, s.ARN(ctx, name, "")); err != nil {
			return err
		}
		old, err := tx.Alias(name, in.Name)
		if errors.Is(err, store.ErrNotFound) {
			return aliasNotFound(s.AliasARN(ctx, name, in.Name))
		} else if err != nil {
			return err
		}
		if err := checkRevision(in.RevisionId, old.RevisionID); err != nil {
			return err
		}
		a := *old
		set(&a.FunctionVersion, in.FunctionVersion)
		set(&a.Description, in.Description)
		if in.RoutingConfig != nil {
			a.RoutingWeights = maps.Clone(in.RoutingConfig.AdditionalVersionWeights)
		}
		var routing *RoutingConfig
		if len(a.RoutingWeights) > 0 {
			routing = &RoutingConfig{AdditionalVersionWeights: a.RoutingWeights}
		}
		if err := s.checkAliasTarget(ctx, tx, name, a.FunctionVersion, routing); err != nil {
			return err
		}
		a.RevisionID = uuid.New()
		out = &a
		return tx.PutAlias(name, &a)
	})
	return out, internal("update alias", err)
}

// DeleteAlias deletes an alias. Deleting one that does not exist succeeds,
// as on AWS (recorded: 204).
func (s *Service) DeleteAlias(ctx context.Context, functionName, alias string) error {
	name, err := s.unqualified(ctx, functionName)
	if err != nil {
		return err
	}
	err = s.update(ctx, func(tx Tx) error {
		f, err := mustFunction(tx, name, s.ARN(ctx, name, ""))
		if err != nil {
			return err
		}
		if _, err := tx.Alias(name, alias); errors.Is(err, store.ErrNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		// DeleteAlias drops the alias's provisioned concurrency, its
		// resource policy and its function URL (whose id then answers no
		// more) too.
		if err := s.dropProvisioned(ctx, tx, name, alias); err != nil {
			return err
		}
		if err := tx.DeleteURLConfig(name, alias); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if err := dropPolicy(tx, f, alias); err != nil {
			return err
		}
		return tx.DeleteAlias(name, alias)
	})
	if err != nil {
		return internal("delete alias", err)
	}
	return nil
}

// ListAliases lists a function's aliases, optionally only those that point
// at functionVersion.
func (s *Service) ListAliases(ctx context.Context, functionName, functionVersion, marker string, maxItems *int) ([]*function.Alias, string, error) {
	name, after, limit, err := s.page(ctx, functionName, marker, maxItems)
	if err != nil {
		return nil, "", err
	}
	var out []*function.Alias
	next := ""
	err = s.view(ctx, func(tx Tx) error {
		out = nil // the body may run again: it starts afresh
		if _, err := mustFunction(tx, name, s.ARN(ctx, name, "")); err != nil {
			return err
		}
		from := after
		for len(out) <= limit {
			page, err := tx.Aliases(name, from, limit+1)
			if err != nil || len(page) == 0 {
				return err
			}
			for _, a := range page {
				if functionVersion == "" || a.FunctionVersion == functionVersion {
					out = append(out, a)
				}
				from = a.Name
			}
		}
		return nil
	})
	if len(out) > limit {
		out = out[:limit]
		next = encodeMarker(name, out[limit-1].Name)
	}
	return out, next, internal("list aliases", err)
}
