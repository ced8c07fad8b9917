package api

import (
	"context"
	"net/http"
)

// FunctionSummary is one function of GET /lambdad/functions.
type FunctionSummary struct {
	Name     string `json:"name"`
	Reserved *int   `json:"reserved,omitempty"`
}

// FunctionSearchPage is GET /lambdad/functions' answer.
type FunctionSearchPage struct {
	Functions []FunctionSummary `json:"Functions"`
	// NextAfter continues the listing (?after=), absent at its end.
	NextAfter string `json:"NextAfter,omitempty"`
}

// searchFunctions serves GET /lambdad/functions?q=&after=&limit=: the
// functions whose names contain q, in name order, limit (1..100, default
// 50) at a time, with their reservations.
func (s *Server) searchFunctions(ctx context.Context, r *http.Request) (any, error) {
	limit, err := intParam(r, "limit", 50, 1, 100)
	if err != nil {
		return nil, err
	}
	q := r.URL.Query()
	fns, next, err := s.ctl.SearchFunctions(ctx, q.Get("after"), q.Get("q"), limit)
	if err != nil {
		return nil, err
	}
	page := &FunctionSearchPage{Functions: make([]FunctionSummary, 0, len(fns)), NextAfter: next}
	for _, f := range fns {
		page.Functions = append(page.Functions, FunctionSummary{Name: f.Name, Reserved: f.Reserved})
	}
	return page, nil
}
