package control

import (
	"context"
	"maps"

	"github.com/lambdad/lambdad/internal/awserr"
	"github.com/lambdad/lambdad/internal/function"
)

// taggable is the function a tagging operation's Resource ARN names; tags
// belong to functions as a whole, not to versions or aliases.
func (s *Service) taggable(ctx context.Context, arn string) (string, error) {
	if function.Qualified(arn) {
		return "", awserr.New(awserr.InvalidParameterValue, "Tags are not supported on function versions or aliases: %s", arn)
	}
	ref, err := s.names(ctx).Parse(arn)
	if err != nil {
		return "", err
	}
	return ref.Name, nil
}

// TagResource adds or replaces tags on a function.
func (s *Service) TagResource(ctx context.Context, arn string, tags map[string]string) error {
	return s.editTags(ctx, arn, func(t map[string]string) { maps.Copy(t, tags) })
}

// UntagResource removes tags from a function.
func (s *Service) UntagResource(ctx context.Context, arn string, keys []string) error {
	return s.editTags(ctx, arn, func(t map[string]string) {
		for _, k := range keys {
			delete(t, k)
		}
	})
}

// editTags changes a function's tags in one transaction.
func (s *Service) editTags(ctx context.Context, arn string, change func(map[string]string)) error {
	name, err := s.taggable(ctx, arn)
	if err != nil {
		return err
	}
	err = s.update(ctx, func(tx Tx) error {
		f, err := mustFunction(tx, name, s.ARN(ctx, name, ""))
		if err != nil {
			return err
		}
		if f.Tags == nil {
			f.Tags = map[string]string{}
		}
		change(f.Tags)
		return tx.PutFunction(f)
	})
	return internal("edit tags", err)
}

// ListTags reads a function's tags.
func (s *Service) ListTags(ctx context.Context, arn string) (map[string]string, error) {
	name, err := s.taggable(ctx, arn)
	if err != nil {
		return nil, err
	}
	var tags map[string]string
	err = s.view(ctx, func(tx Tx) error {
		f, err := mustFunction(tx, name, s.ARN(ctx, name, ""))
		if err != nil {
			return err
		}
		tags = f.Tags
		return nil
	})
	if tags == nil {
		tags = map[string]string{}
	}
	return tags, internal("list tags", err)
}
