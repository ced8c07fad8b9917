package control

import (
	"context"
	"strings"
)

// FunctionSummary is one function of SearchFunctions' listing.
type FunctionSummary struct {
	Name string
	// Reserved is the reserved concurrency, nil when none is set.
	Reserved *int
}

// SearchFunctions lists up to limit functions, in name order after the
// name after, whose names contain substr whatever the case (every
// function when substr is ""). next is the name to continue after, "" when
// nothing follows. It reads the function records only, not their
// configurations, so that a search through 100,000 names stays a cursor's
// walk; it is lambdad's own listing for the console, which AWS's
// ListFunctions (no filter) cannot serve.
func (s *Service) SearchFunctions(ctx context.Context, after, substr string, limit int) (out []FunctionSummary, next string, err error) {
	substr = strings.ToLower(substr)
	// Without a filter one read more than a page says whether another
	// follows; with one, names are read in larger batches.
	batch := limit + 1
	if substr != "" {
		batch = 500
	}
	err = s.view(ctx, func(tx Tx) error {
		out, next = nil, "" // the body may run again: it starts afresh
		for cursor := after; ; {
			fns, err := tx.Functions(cursor, batch)
			if err != nil || len(fns) == 0 {
				return err
			}
			for _, f := range fns {
				cursor = f.Name
				if substr != "" && !strings.Contains(strings.ToLower(f.Name), substr) {
					continue
				}
				if len(out) == limit {
					next = out[limit-1].Name
					return nil
				}
				out = append(out, FunctionSummary{Name: f.Name, Reserved: f.Reserved})
			}
		}
	})
	return out, next, internal("search functions", err)
}
