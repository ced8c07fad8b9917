package control

import (
	"context"
	"errors"
	"os"
	"slices"
	"strconv"

	"github.com/lambdad/lambdad/internal/archive"
	"github.com/lambdad/lambdad/internal/awserr"
	"github.com/lambdad/lambdad/internal/function"
	"github.com/lambdad/lambdad/internal/store"
)

// LayerContent is PublishLayerVersion's Content.
type LayerContent struct {
	ZipFile         []byte
	S3Bucket        string
	S3Key           string
	S3ObjectVersion string
}

// PublishLayerVersionInput is PublishLayerVersion's request.
type PublishLayerVersionInput struct {
	LayerName               string
	Description             string
	Content                 LayerContent
	CompatibleRuntimes      []string
	CompatibleArchitectures []string
	LicenseInfo             string
}

// layerRef parses a LayerName parameter into a layer of the caller's.
func (s *Service) layerRef(ctx context.Context, name string) (function.LayerRef, error) {
	p := s.names(ctx)
	ref, err := p.ParseLayerName(name)
	if err != nil {
		return ref, err
	}
	if ref.Account != p.Account || ref.Region != p.Region {
		return ref, layerAccessDenied(ctx, p.LayerARN(ref.Name))
	}
	return ref, nil
}

// layerAccessDenied is AWS's answer for another account's layer: this
// server keeps no layer version policies, so no other account may use one.
func layerAccessDenied(ctx context.Context, arn string) error {
	return awserr.New(awserr.AccessDenied, "User: %s is not authorized to perform: lambda:GetLayerVersion on resource: %s", callerARN(ctx), arn)
}

func callerARN(ctx context.Context) string {
	c := callerOf(ctx)
	if c.Principal != "" {
		return c.Principal
	}
	if c.Account == "" {
		return "anonymous"
	}
	return "arn:aws:iam::" + c.Account + ":root"
}

// PublishLayerVersion publishes the next version of a layer, creating the
// layer with version 1.
func (s *Service) PublishLayerVersion(ctx context.Context, in *PublishLayerVersionInput) (*function.LayerVersion, error) {
	ref, err := s.layerRef(ctx, in.LayerName)
	if err != nil {
		return nil, err
	}
	for _, rt := range in.CompatibleRuntimes {
		if err := function.CheckLayerRuntime(rt); err != nil {
			return nil, err
		}
	}
	zip, err := s.code(ctx, &Code{ZipFile: in.Content.ZipFile, S3Bucket: in.Content.S3Bucket, S3Key: in.Content.S3Key, S3ObjectVersion: in.Content.S3ObjectVersion})
	if err != nil {
		return nil, err
	}
	unzipped, err := archive.Check(zip, archive.MaxUnzipped)
	if err != nil {
		return nil, err
	}
	lv := &function.LayerVersion{
		Name: ref.Name, Description: in.Description, LicenseInfo: in.LicenseInfo,
		CompatibleRuntimes: in.CompatibleRuntimes, CompatibleArchitectures: in.CompatibleArchitectures,
		CodeSha256: sha(zip), CodeSize: int64(len(zip)), UnzippedSize: unzipped, Created: s.opts.Now(),
	}
	release, err := s.db.SaveCode(lv.CodeSha256, zip)
	if err != nil {
		return nil, internal("save code", err)
	}
	defer release()
	err = s.update(ctx, func(tx Tx) error {
		l, err := tx.Layer(ref.Name)
		if errors.Is(err, store.ErrNotFound) {
			l, err = &function.Layer{Name: ref.Name}, nil
		}
		if err != nil {
			return err
		}
		l.LastVersion++
		lv.Version = l.LastVersion // set afresh on every run of the body
		if err := tx.PutLayer(l); err != nil {
			return err
		}
		return tx.PutLayerVersion(lv)
	})
	if err != nil {
		return nil, internal("publish layer version", err)
	}
	return lv, nil
}

func layerVersionNotFound() error {
	return awserr.New(awserr.ResourceNotFound, "The resource you requested does not exist.")
}

// GetLayerVersion reads one version of a layer of the caller's.
func (s *Service) GetLayerVersion(ctx context.Context, name string, version int64) (*function.LayerVersion, error) {
	ref, err := s.layerRef(ctx, name)
	if err != nil {
		return nil, err
	}
	var lv *function.LayerVersion
	err = s.view(ctx, func(tx Tx) error {
		lv, err = tx.LayerVersion(ref.Name, version)
		if errors.Is(err, store.ErrNotFound) {
			return layerVersionNotFound()
		}
		return err
	})
	if err != nil {
		return nil, internal("get layer version", err)
	}
	return lv, nil
}

// GetLayerVersionByArn reads a layer version by its ARN.
func (s *Service) GetLayerVersionByArn(ctx context.Context, arn string) (*function.LayerVersion, error) {
	ref, ok := function.ParseLayerVersionARN(arn)
	if !ok {
		return nil, awserr.New(awserr.InvalidParameterValue, "Invalid Layer Version Arn: %s", arn)
	}
	p := s.names(ctx)
	if ref.Account != p.Account || ref.Region != p.Region {
		return nil, layerAccessDenied(ctx, arn)
	}
	return s.GetLayerVersion(ctx, ref.Name, ref.Version)
}

// DeleteLayerVersion deletes a layer version; deleting one that is not
// there succeeds, as on AWS. Functions that use it keep its code.
func (s *Service) DeleteLayerVersion(ctx context.Context, name string, version int64) error {
	ref, err := s.layerRef(ctx, name)
	if err != nil {
		return err
	}
	err = s.update(ctx, func(tx Tx) error {
		err := tx.DeleteLayerVersion(ref.Name, version)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		return err
	})
	return internal("delete layer version", err)
}

// pageSize is a List operation's page: MaxItems, at most AWS's 50.
func pageSize(maxItems *int) int {
	if maxItems != nil {
		return min(*maxItems, 50)
	}
	return 50
}

// ListLayers lists the caller's layers that have a version passing the
// filter, in name order, a page at a time: for each, its newest version
// that passes. It reads every version of the layers it passes over, which
// is cheap while an account has layers by the hundred, not the million.
func (s *Service) ListLayers(ctx context.Context, f function.LayerFilter, marker string, maxItems *int) ([]*function.LayerVersion, string, error) {
	limit := pageSize(maxItems)
	after, _, err := decodeMarker(marker)
	if err != nil {
		return nil, "", err
	}
	var out []*function.LayerVersion
	next := ""
	err = s.view(ctx, func(tx Tx) error {
		out, next = nil, ""
		layers, err := tx.Layers(after, -1)
		if err != nil {
			return err
		}
		for _, l := range layers {
			vs, err := tx.LayerVersions(l.Name, 0, -1)
			if err != nil {
				return err
			}
			i := slices.IndexFunc(vs, f.Match)
			if i < 0 {
				continue
			}
			if len(out) == limit {
				next = encodeMarker(out[limit-1].Name, "")
				return nil
			}
			out = append(out, vs[i])
		}
		return nil
	})
	return out, next, internal("list layers", err)
}

// ListLayerVersions lists a layer's versions that pass the filter, newest
// first, a page at a time. A layer that does not exist has none.
func (s *Service) ListLayerVersions(ctx context.Context, name string, f function.LayerFilter, marker string, maxItems *int) ([]*function.LayerVersion, string, error) {
	ref, err := s.layerRef(ctx, name)
	if err != nil {
		return nil, "", err
	}
	limit := pageSize(maxItems)
	var before int64
	if marker != "" {
		n, err := strconv.ParseInt(marker, 10, 64)
		if err != nil || n < 1 {
			return nil, "", awserr.New(awserr.InvalidParameterValue, "Invalid Marker: %s", marker)
		}
		before = n
	}
	var out []*function.LayerVersion
	next := ""
	err = s.view(ctx, func(tx Tx) error {
		out, next = nil, ""
		vs, err := tx.LayerVersions(ref.Name, before, -1)
		if err != nil {
			return err
		}
		for _, v := range vs {
			if !f.Match(v) {
				continue
			}
			if len(out) == limit {
				next = strconv.FormatInt(out[limit-1].Version, 10)
				return nil
			}
			out = append(out, v)
		}
		return nil
	})
	return out, next, internal("list layer versions", err)
}

// layersOf resolves a function's Layers (version ARNs) to what its
// configuration keeps, in order, with AWS's checks.
func (s *Service) layersOf(ctx context.Context, tx Tx, arns []string) ([]function.LayerUse, error) {
	if len(arns) > function.MaxLayers {
		return nil, awserr.New(awserr.InvalidParameterValue, "Cannot reference more than %d layers.", function.MaxLayers)
	}
	p := s.names(ctx)
	var out []function.LayerUse
	seen := map[string]bool{}
	for _, arn := range arns {
		ref, ok := function.ParseLayerVersionARN(arn)
		if !ok {
			return nil, awserr.New(awserr.InvalidParameterValue, "Layer version arn %s is not valid.", arn)
		}
		if ref.Account != p.Account || ref.Region != p.Region {
			return nil, layerAccessDenied(ctx, arn)
		}
		if seen[ref.Name] {
			return nil, awserr.New(awserr.InvalidParameterValue, "Two different versions of the same layer are not allowed.")
		}
		seen[ref.Name] = true
		lv, err := tx.LayerVersion(ref.Name, ref.Version)
		if errors.Is(err, store.ErrNotFound) {
			return nil, awserr.New(awserr.InvalidParameterValue, "Layer version %s does not exist.", arn)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, function.LayerUse{Arn: arn, CodeSha256: lv.CodeSha256, CodeSize: lv.CodeSize, UnzippedSize: lv.UnzippedSize})
	}
	return out, nil
}

// checkUnzipped applies AWS's 250 MB limit to a configuration's code and
// layers together.
func (s *Service) checkUnzipped(c *function.Config) error {
	total := c.UnzippedSize
	if total == 0 && len(c.Layers) > 0 {
		// A record from before the size was kept: measure the archive.
		if zip, err := os.ReadFile(s.db.CodePath(c.CodeSha256)); err == nil {
			total, _ = archive.Check(zip, 1<<62)
		}
	}
	for _, l := range c.Layers {
		total += l.UnzippedSize
	}
	if total > archive.MaxUnzipped {
		return awserr.New(awserr.InvalidParameterValue, "Function code combined with layers exceeds the maximum allowed size of %d bytes. The actual size is %d bytes.", archive.MaxUnzipped, total)
	}
	return nil
}
