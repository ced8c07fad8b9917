package control

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"

	"github.com/lambdad/lambdad/internal/awserr"
	"github.com/lambdad/lambdad/internal/function"
	"github.com/lambdad/lambdad/internal/store"
)

// The small configurations deploy tools read and write beside a function:
// code signing configurations, the runtime management configuration and
// the recursion configuration. They are kept and answered as AWS does.
// lambdad has no AWS Signer to check signatures against, so a code
// signing configuration does not block a deployment, whatever its policy.

// CodeSigningInput is Create/UpdateCodeSigningConfig's request.
type CodeSigningInput struct {
	ARN                 string // Update only
	Description         *string
	SigningProfiles     []string
	HasProfiles         bool
	UntrustedArtifact   string
	CodeSigningPolicies bool
	Tags                map[string]string
}

// CodeSigningARN is the ARN of one of the caller's code signing
// configurations.
func (s *Service) CodeSigningARN(ctx context.Context, id string) string {
	return "arn:aws:lambda:" + s.opts.Region + ":" + s.account(ctx) + ":code-signing-config:" + id
}

// cscID is the id an ARN names when it is one of the caller's, else "".
func (s *Service) cscID(ctx context.Context, arn string) string {
	prefix := "arn:aws:lambda:" + s.opts.Region + ":" + s.account(ctx) + ":code-signing-config:"
	if id, ok := strings.CutPrefix(arn, prefix); ok {
		return id
	}
	return ""
}

func cscNotFound(arn string) error {
	return awserr.NoType(awserr.ResourceNotFound, "The Lambda code signing configuration %s can not be found.", arn)
}

// CreateCodeSigningConfig stores a new code signing configuration.
func (s *Service) CreateCodeSigningConfig(ctx context.Context, in *CodeSigningInput) (*store.CodeSigningConfig, error) {
	var id [9]byte
	rand.Read(id[:])
	c := &store.CodeSigningConfig{
		ID:                "csc-" + hex.EncodeToString(id[:])[:17],
		SigningProfiles:   in.SigningProfiles,
		UntrustedArtifact: "Warn",
		LastModified:      s.opts.Now().UTC(),
		Tags:              in.Tags,
	}
	if in.Description != nil {
		c.Description = *in.Description
	}
	if in.UntrustedArtifact != "" {
		c.UntrustedArtifact = in.UntrustedArtifact
	}
	err := s.update(ctx, func(tx Tx) error { return tx.PutCodeSigningConfig(c) })
	return c, internal("create code signing config", err)
}

// GetCodeSigningConfig reads one of the caller's configurations.
func (s *Service) GetCodeSigningConfig(ctx context.Context, arn string) (*store.CodeSigningConfig, error) {
	var c *store.CodeSigningConfig
	err := s.view(ctx, func(tx Tx) (err error) {
		c, err = s.mustCSC(ctx, tx, arn)
		return err
	})
	return c, internal("get code signing config", err)
}

func (s *Service) mustCSC(ctx context.Context, tx Tx, arn string) (*store.CodeSigningConfig, error) {
	id := s.cscID(ctx, arn)
	if id == "" {
		return nil, cscNotFound(arn)
	}
	c, err := tx.CodeSigningConfig(id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, cscNotFound(arn)
	}
	return c, err
}

// UpdateCodeSigningConfig changes what the request names of a
// configuration.
func (s *Service) UpdateCodeSigningConfig(ctx context.Context, in *CodeSigningInput) (*store.CodeSigningConfig, error) {
	var c *store.CodeSigningConfig
	err := s.update(ctx, func(tx Tx) (err error) {
		if c, err = s.mustCSC(ctx, tx, in.ARN); err != nil {
			return err
		}
		if in.Description != nil {
			c.Description = *in.Description
		}
		if in.HasProfiles {
			c.SigningProfiles = in.SigningProfiles
		}
		if in.UntrustedArtifact != "" {
			c.UntrustedArtifact = in.UntrustedArtifact
		}
		c.LastModified = s.opts.Now().UTC()
		return tx.PutCodeSigningConfig(c)
	})
	return c, internal("update code signing config", err)
}

// DeleteCodeSigningConfig removes one of the caller's configurations.
func (s *Service) DeleteCodeSigningConfig(ctx context.Context, arn string) error {
	err := s.update(ctx, func(tx Tx) error {
		c, err := s.mustCSC(ctx, tx, arn)
		if err != nil {
			return err
		}
		// A configuration in use stays, as on AWS: the functions must be
		// unbound first.
		inUse := false
		if err := tx.ScanFunctions(func(f *function.Function) error {
			inUse = inUse || f.CodeSigningConfigArn == arn
			return nil
		}); err != nil {
			return err
		}
		if inUse {
			return awserr.New(awserr.ResourceConflict, "The code signing configuration %s cannot be deleted because it is used by one or more functions.", arn)
		}
		return tx.DeleteCodeSigningConfig(c.ID)
	})
	return internal("delete code signing config", err)
}

// ListCodeSigningConfigs pages through the caller's configurations; the
// marker is the last id of the page before.
func (s *Service) ListCodeSigningConfigs(ctx context.Context, marker string, maxItems *int) ([]*store.CodeSigningConfig, string, error) {
	limit := 50
	if maxItems != nil {
		limit = min(*maxItems, 50)
	}
	var out []*store.CodeSigningConfig
	err := s.view(ctx, func(tx Tx) (err error) {
		out, err = tx.CodeSigningConfigs(marker, limit+1)
		return err
	})
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = out[limit-1].ID
	}
	return out, next, internal("list code signing configs", err)
}

// ListFunctionsByCodeSigningConfig lists the ARNs of the caller's
// functions that use a configuration.
func (s *Service) ListFunctionsByCodeSigningConfig(ctx context.Context, arn string) ([]string, error) {
	var out []string
	err := s.view(ctx, func(tx Tx) error {
		out = out[:0]
		if _, err := s.mustCSC(ctx, tx, arn); err != nil {
			return err
		}
		return tx.ScanFunctions(func(f *function.Function) error {
			if f.CodeSigningConfigArn == arn {
				out = append(out, s.ARN(ctx, f.Name, ""))
			}
			return nil
		})
	})
	return out, internal("list functions by code signing config", err)
}

// cscExists checks that a function may be bound to the configuration arn,
// with AWS's error when there is none.
func (s *Service) cscExists(ctx context.Context, tx Tx, arn string) error {
	if _, err := s.mustCSC(ctx, tx, arn); err != nil {
		if _, ok := awserr.As(err); ok {
			return awserr.New("CodeSigningConfigNotFoundException", "The code signing configuration cannot be found. Check that the provided configuration is not deleted: %s.", arn)
		}
		return err
	}
	return nil
}

// PutFunctionCodeSigningConfig makes a function use a configuration; the
// configuration is looked for first, as AWS does.
func (s *Service) PutFunctionCodeSigningConfig(ctx context.Context, name, arn string) (string, error) {
	fname, err := s.unqualified(ctx, name)
	if err != nil {
		return "", err
	}
	err = s.update(ctx, func(tx Tx) error {
		if err := s.cscExists(ctx, tx, arn); err != nil {
			return err
		}
		f, err := mustFunction(tx, fname, s.ARN(ctx, fname, ""))
		if err != nil {
			return err
		}
		f.CodeSigningConfigArn = arn
		return tx.PutFunction(f)
	})
	return fname, internal("put function code signing config", err)
}

// FunctionCodeSigningConfig is the configuration a function uses, "" for
// none.
func (s *Service) FunctionCodeSigningConfig(ctx context.Context, name string) (fname, arn string, err error) {
	if fname, err = s.unqualified(ctx, name); err != nil {
		return "", "", err
	}
	err = s.view(ctx, func(tx Tx) error {
		f, err := mustFunction(tx, fname, s.ARN(ctx, fname, ""))
		if err == nil {
			arn = f.CodeSigningConfigArn
		}
		return err
	})
	return fname, arn, internal("get function code signing config", err)
}

// DeleteFunctionCodeSigningConfig makes a function use none.
func (s *Service) DeleteFunctionCodeSigningConfig(ctx context.Context, name string) error {
	fname, err := s.unqualified(ctx, name)
	if err != nil {
		return err
	}
	err = s.update(ctx, func(tx Tx) error {
		f, err := mustFunction(tx, fname, s.ARN(ctx, fname, ""))
		if err != nil || f.CodeSigningConfigArn == "" {
			return err
		}
		f.CodeSigningConfigArn = ""
		return tx.PutFunction(f)
	})
	return internal("delete function code signing config", err)
}

// RecursionConfig is a function's RecursiveLoop setting.
func (s *Service) RecursionConfig(ctx context.Context, name string) (string, error) {
	fname, err := s.unqualified(ctx, name)
	if err != nil {
		return "", err
	}
	loop := "Terminate"
	err = s.view(ctx, func(tx Tx) error {
		f, err := mustFunction(tx, fname, s.ARN(ctx, fname, ""))
		if err == nil && f.RecursiveLoop != "" {
			loop = f.RecursiveLoop
		}
		return err
	})
	return loop, internal("get function recursion config", err)
}

// PutRecursionConfig sets a function's RecursiveLoop setting (the model's
// enum has been checked at the edge).
func (s *Service) PutRecursionConfig(ctx context.Context, name, loop string) error {
	fname, err := s.unqualified(ctx, name)
	if err != nil {
		return err
	}
	err = s.update(ctx, func(tx Tx) error {
		f, err := mustFunction(tx, fname, s.ARN(ctx, fname, ""))
		if err != nil {
			return err
		}
		f.RecursiveLoop = loop
		return tx.PutFunction(f)
	})
	return internal("put function recursion config", err)
}

// RuntimeManagement is a version's runtime management configuration.
type RuntimeManagement struct {
	FunctionArn       string
	UpdateRuntimeOn   string
	RuntimeVersionArn string
}

// runtimeTarget resolves the FunctionName and Qualifier of a runtime
// management call to the version record it concerns.
func (s *Service) runtimeTarget(ctx context.Context, tx Tx, name, qualifier string) (*function.Config, string, error) {
	ref, err := s.names(ctx).ParseWithQualifier(name, qualifier)
	if err != nil {
		return nil, "", err
	}
	arn := s.ARN(ctx, ref.Name, ref.Qualifier)
	if _, err := mustFunction(tx, ref.Name, arn); err != nil {
		return nil, "", err
	}
	cfg, _, err := resolve(tx, ref.Name, ref.Qualifier, arn)
	return cfg, arn, err
}

// GetRuntimeManagement reads a version's configuration: Auto unless set.
func (s *Service) GetRuntimeManagement(ctx context.Context, name, qualifier string) (*RuntimeManagement, error) {
	var out *RuntimeManagement
	err := s.view(ctx, func(tx Tx) error {
		cfg, arn, err := s.runtimeTarget(ctx, tx, name, qualifier)
		if err != nil {
			return err
		}
		out = &RuntimeManagement{FunctionArn: arn, UpdateRuntimeOn: "Auto"}
		if cfg.UpdateRuntimeOn != "" {
			out.UpdateRuntimeOn, out.RuntimeVersionArn = cfg.UpdateRuntimeOn, cfg.RuntimeVersionArn
		}
		return nil
	})
	return out, internal("get runtime management config", err)
}

// PutRuntimeManagement sets a version's configuration. Manual needs the
// runtime version to stay on, and only Manual takes one.
func (s *Service) PutRuntimeManagement(ctx context.Context, name, qualifier, on, versionArn string) (*RuntimeManagement, error) {
	switch {
	case on == "Manual" && versionArn == "":
		return nil, awserr.New(awserr.InvalidParameterValue, "RuntimeVersionArn must be provided when UpdateRuntimeOn is Manual.")
	case on != "Manual" && versionArn != "":
		return nil, awserr.New(awserr.InvalidParameterValue, "RuntimeVersionArn can only be provided when UpdateRuntimeOn is Manual.")
	}
	var out *RuntimeManagement
	err := s.update(ctx, func(tx Tx) error {
		cfg, arn, err := s.runtimeTarget(ctx, tx, name, qualifier)
		if err != nil {
			return err
		}
		c := *cfg
		c.UpdateRuntimeOn, c.RuntimeVersionArn = on, versionArn
		out = &RuntimeManagement{FunctionArn: arn, UpdateRuntimeOn: on, RuntimeVersionArn: versionArn}
		return tx.PutVersion(&c)
	})
	return out, internal("put runtime management config", err)
}
