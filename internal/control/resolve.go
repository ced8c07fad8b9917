package control

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/lambdad/lambdad/internal/awserr"
	"github.com/lambdad/lambdad/internal/function"
	"github.com/lambdad/lambdad/internal/store"
)

// Resolving a name to what runs: the one read of the store on the invoke
// path, and its cache.

// ResolveTarget returns the configuration an invocation of ref runs, and
// the alias when its qualifier is one. Answers are cached until the next
// write; callers must not modify what it returns.
func (s *Service) ResolveTarget(ctx context.Context, ref function.Ref) (cfg *function.Config, alias *function.Alias, err error) {
	key := ref
	name, qualifier := ref.Name, ref.Qualifier
	epoch := s.cache.epoch.Load()
	if c, ok := s.cache.targets.Load(key); ok && c.(*cachedTarget).epoch == epoch {
		c := c.(*cachedTarget)
		return c.cfg, c.alias, nil
	}
	err = s.db.View(ctx, ref.Account, func(tx Tx) error {
		arn := s.Names(ref.Account).QualifiedARN(name, qualifier)
		if _, err := mustFunction(tx, name, arn); err != nil {
			return err
		}
		cfg, alias, err = resolve(tx, name, qualifier, arn)
		return err
	})
	if err != nil {
		s.cache.targets.Delete(key)
		return nil, nil, internal("resolve "+name, err)
	}
	s.cache.targets.Store(key, &cachedTarget{epoch: epoch, cfg: cfg, alias: alias})
	return cfg, alias, nil
}

// resolve finds the configuration a qualifier names: $LATEST, a version,
// or an alias (its primary version, and the alias itself). arn is the ARN
// named in the 404.
func resolve(tx Tx, name, qualifier string, arn string) (*function.Config, *function.Alias, error) {
	version := qualifier
	var alias *function.Alias
	if qualifier == "" {
		version = function.Latest
	} else if !function.IsVersion(qualifier) && qualifier != function.Latest {
		a, err := tx.Alias(name, qualifier)
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil, awserr.FunctionNotFound(arn)
		} else if err != nil {
			return nil, nil, err
		}
		alias, version = a, a.FunctionVersion
	}
	c, err := tx.Version(name, version)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, awserr.FunctionNotFound(arn)
	}
	return c, alias, err
}

// refuseIsolated refuses what AWS makes incompatible with tenant isolation
// (what: provisioned concurrency, a function URL, an event source
// mapping) on a function that uses it. Isolation is set at creation and
// versions inherit it, so $LATEST tells for every qualifier.
func refuseIsolated(tx Tx, name, arn, what string) error {
	c, err := tx.Version(name, function.Latest)
	if err != nil {
		return err
	}
	if c.TenantIsolation != "" {
		return function.TenantIsolationRefused(what, arn)
	}
	return nil
}

// resolveCache holds ResolveTarget's answers (the invoke path's one read of
// the store). Any committed change to a function, version or alias moves
// the epoch on; an answer is used only at the epoch it was read at, so a
// read that raced with a change is never kept past it.
type resolveCache struct {
	epoch   atomic.Uint64
	targets sync.Map // name \x00 qualifier → *cachedTarget
	urls    sync.Map // URL id → *cachedURL (urls.go)
}

type cachedTarget struct {
	epoch uint64
	cfg   *function.Config
	alias *function.Alias
}

func (*resolveCache) Load(*store.Tx, uint64) error { return nil }

func (r *resolveCache) Apply(b *store.Batch) {
	for i := range b.Changes {
		if k := b.Changes[i].Kind; k != store.KindProvisioned && k != store.KindMapping {
			r.epoch.Add(1)
			return
		}
	}
}
