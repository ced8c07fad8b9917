package control

import (
	"context"
	"errors"
	"slices"

	"github.com/lambdad/lambdad/internal/awserr"
	"github.com/lambdad/lambdad/internal/function"
	"github.com/lambdad/lambdad/internal/store"
)

// URLConfigInput is the request of CreateFunctionUrlConfig and
// UpdateFunctionUrlConfig.
type URLConfigInput struct {
	FunctionName string
	Qualifier    string
	AuthType     string
	Cors         *function.Cors
	InvokeMode   string
}

// AWS's words for a function URL's errors (recorded): CreateFunctionUrlConfig
// and ListFunctionUrlConfigs say "Function does not exist" of a missing
// function or alias; Get, Update and Delete say the resource does not
// exist, whatever is missing.
func urlFunctionMissing() error {
	return awserr.New(awserr.ResourceNotFound, "Function does not exist")
}

func urlMissing() error {
	return awserr.New(awserr.ResourceNotFound, "The resource you requested does not exist.")
}

// urlTarget parses a URL's function and qualifier (an alias, or none).
// The model has already refused a Qualifier that is a version or $LATEST;
// one in the name must agree with it.
func (s *Service) urlTarget(ctx context.Context, name, qualifier string) (function.Ref, error) {
	ref, err := s.names(ctx).Parse(name)
	if err != nil {
		return ref, err
	}
	if qualifier != "" && ref.Qualifier != "" && qualifier != ref.Qualifier {
		return ref, awserr.New(awserr.InvalidParameterValue, "The derived qualifier from the function name does not match the specified qualifier.")
	}
	if qualifier != "" {
		ref.Qualifier = qualifier
	}
	if ref.Qualifier != "" && !function.IsAliasName(ref.Qualifier) {
		return ref, awserr.New(awserr.Validation, "1 validation error detected: Value '%s' at 'qualifier' failed to satisfy constraint: Member must satisfy regular expression pattern: ((?!^\\d+$)^[0-9a-zA-Z-_]+$)", ref.Qualifier)
	}
	return ref, nil
}

// urlExists reports whether the function and the alias a URL is for exist.
func urlExists(tx Tx, ref function.Ref) (bool, error) {
	if _, err := tx.Function(ref.Name); errors.Is(err, store.ErrNotFound) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	if ref.Qualifier == "" {
		return true, nil
	}
	_, err := tx.Alias(ref.Name, ref.Qualifier)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// CreateFunctionURLConfig gives a function, or one of its aliases, a URL.
func (s *Service) CreateFunctionURLConfig(ctx context.Context, in *URLConfigInput) (*function.URLConfig, error) {
	ref, err := s.urlTarget(ctx, in.FunctionName, in.Qualifier)
	if err != nil {
		return nil, err
	}
	if err := function.CheckURLSettings(in.Cors); err != nil {
		return nil, err
	}
	now := s.opts.Now()
	u := &function.URLConfig{Function: ref.Name, Qualifier: ref.Qualifier, AuthType: in.AuthType, Cors: in.Cors,
		InvokeMode: in.InvokeMode, Created: now, LastModified: now}
	if u.InvokeMode == "" {
		u.InvokeMode = function.InvokeBuffered
	}
	err = s.update(ctx, func(tx Tx) error {
		if ok, err := urlExists(tx, ref); err != nil || !ok {
			if err == nil {
				err = urlFunctionMissing()
			}
			return err
		}
		if err := refuseIsolated(tx, ref.Name, s.ARN(ctx, ref.Name, ref.Qualifier), "A function URL"); err != nil {
			return err
		}
		if _, err := tx.URLConfig(ref.Name, ref.Qualifier); err == nil {
			return awserr.New(awserr.ResourceConflict, "Failed to create function url config for [functionArn = %s]. Error message:  FunctionUrlConfig exists for this Lambda function", s.ARN(ctx, ref.Name, ref.Qualifier))
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		u.ID = function.NewURLID() // a fresh id on every run of the body
		return tx.PutURLConfig(u)
	})
	if err != nil {
		return nil, internal("create function url config", err)
	}
	return u, nil
}

// GetFunctionURLConfig reads a function's or an alias's URL.
func (s *Service) GetFunctionURLConfig(ctx context.Context, name, qualifier string) (*function.URLConfig, error) {
	ref, err := s.urlTarget(ctx, name, qualifier)
	if err != nil {
		return nil, err
	}
	var u *function.URLConfig
	err = s.view(ctx, func(tx Tx) error {
		u, err = tx.URLConfig(ref.Name, ref.Qualifier)
		if errors.Is(err, store.ErrNotFound) {
			return urlMissing()
		}
		return err
	})
	if err != nil {
		return nil, internal("get function url config", err)
	}
	return u, nil
}

// UpdateFunctionURLConfig changes the settings given; a Cors given
// replaces the old one whole.
func (s *Service) UpdateFunctionURLConfig(ctx context.Context, in *URLConfigInput) (*function.URLConfig, error) {
	ref, err := s.urlTarget(ctx, in.FunctionName, in.Qualifier)
	if err != nil {
		return nil, err
	}
	if err := function.CheckURLSettings(in.Cors); err != nil {
		return nil, err
	}
	var out *function.URLConfig
	err = s.update(ctx, func(tx Tx) error {
		u, err := tx.URLConfig(ref.Name, ref.Qualifier)
		if errors.Is(err, store.ErrNotFound) {
			return urlMissing()
		} else if err != nil {
			return err
		}
		if in.AuthType != "" {
			u.AuthType = in.AuthType
		}
		if in.Cors != nil {
			u.Cors = in.Cors
		}
		if in.InvokeMode != "" {
			u.InvokeMode = in.InvokeMode
		}
		u.LastModified = s.opts.Now()
		out = u
		return tx.PutURLConfig(u)
	})
	if err != nil {
		return nil, internal("update function url config", err)
	}
	return out, nil
}

// DeleteFunctionURLConfig removes a URL; its id never answers again.
func (s *Service) DeleteFunctionURLConfig(ctx context.Context, name, qualifier string) error {
	ref, err := s.urlTarget(ctx, name, qualifier)
	if err != nil {
		return err
	}
	err = s.update(ctx, func(tx Tx) error {
		err := tx.DeleteURLConfig(ref.Name, ref.Qualifier)
		if errors.Is(err, store.ErrNotFound) {
			return urlMissing()
		}
		return err
	})
	return internal("delete function url config", err)
}

// ListFunctionURLConfigs lists a function's URLs (its own and its
// aliases'), a page at a time.
func (s *Service) ListFunctionURLConfigs(ctx context.Context, functionName, marker string, maxItems *int) ([]*function.URLConfig, string, error) {
	name, err := s.unqualified(ctx, functionName)
	if err != nil {
		return nil, "", err
	}
	limit := pageSize(maxItems)
	after := ""
	if marker != "" {
		fn, q, err := decodeMarker(marker)
		if err != nil || fn != name {
			return nil, "", awserr.New(awserr.InvalidParameterValue, "Invalid Marker: %s", marker)
		}
		after = q
	}
	var out []*function.URLConfig
	next := ""
	err = s.view(ctx, func(tx Tx) error {
		out, next = nil, ""
		if _, err := tx.Function(name); errors.Is(err, store.ErrNotFound) {
			return urlFunctionMissing()
		} else if err != nil {
			return err
		}
		us, err := tx.URLConfigs(name)
		if err != nil {
			return err
		}
		if marker != "" {
			// The marker is the qualifier of the last URL returned ("\x00"
			// standing for the function's own, which sorts first).
			i := slices.IndexFunc(us, func(u *function.URLConfig) bool { return markerOf(u) == after })
			us = us[i+1:]
		}
		for _, u := range us {
			if len(out) == limit {
				next = encodeMarker(name, markerOf(out[limit-1]))
				return nil
			}
			out = append(out, u)
		}
		return nil
	})
	return out, next, internal("list function url configs", err)
}

func markerOf(u *function.URLConfig) string {
	if u.Qualifier == "" {
		return "\x00"
	}
	return u.Qualifier
}

// URLTarget is what a request to a URL invokes.
type URLTarget struct {
	Account string
	Config  *function.URLConfig
}

// ResolveURL finds the URL with the given id, in whichever account holds
// it; ok is false when no URL has that id. Answers are cached as
// ResolveTarget's are, until the next committed change (a URL, alias or
// function deleted moves the epoch on), so a warm URL request reads no
// store.
func (s *Service) ResolveURL(ctx context.Context, id string) (t URLTarget, ok bool, err error) {
	epoch := s.cache.epoch.Load()
	if c, hit := s.cache.urls.Load(id); hit && c.(*cachedURL).epoch == epoch {
		c := c.(*cachedURL)
		return c.target, c.ok, nil
	}
	err = s.db.View(ctx, s.opts.AccountID, func(tx Tx) error {
		acct, u, err := tx.URLByID(id)
		if errors.Is(err, store.ErrNotFound) {
			t, ok = URLTarget{}, false
			return nil
		}
		t, ok = URLTarget{Account: acct, Config: u}, err == nil
		return err
	})
	if err != nil {
		return URLTarget{}, false, internal("resolve url", err)
	}
	// Only ids that exist are kept: requests for made-up ids must not
	// grow the cache, and a deleted URL's entry goes.
	if ok {
		s.cache.urls.Store(id, &cachedURL{epoch: epoch, target: t, ok: ok})
	} else {
		s.cache.urls.Delete(id)
	}
	return t, ok, nil
}

type cachedURL struct {
	epoch  uint64
	target URLTarget
	ok     bool
}
