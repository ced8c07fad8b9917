// This file bounds the memory of request bodies: a body is read whole into
// memory (a CreateFunction carries up to 50 MB of zip, and its decoding
// costs several times that), so the bytes of bodies being read and handled
// at once are capped, and a request past the cap is refused at once with
// 429 rather than queued.

package api

import (
	"sync/atomic"

	"github.com/lambdad/lambdad/internal/awserr"
)

// DefaultBodyMemory is the default cap on request body bytes in memory.
const DefaultBodyMemory = 192 << 20

// smallBody is what a request may always hold without counting: the
// control-plane calls and small invocations never wait on big uploads.
const smallBody = 1 << 20

// bodyBudget counts the body bytes held by requests being handled.
type bodyBudget struct {
	max  atomic.Int64
	used atomic.Int64
}

// take reserves n bytes, or reports that the budget is spent. A body
// larger than the whole budget is let through alone, so no request is
// refused forever.
func (b *bodyBudget) take(n int64) bool {
	for {
		u := b.used.Load()
		if u > 0 && u+n > b.max.Load() {
			return false
		}
		if b.used.CompareAndSwap(u, u+n) {
			return true
		}
	}
}

func (b *bodyBudget) give(n int64) { b.used.Add(-n) }

// LimitBodyMemory sets the cap on request body bytes being handled at once
// (default DefaultBodyMemory).
func (s *Server) LimitBodyMemory(n int64) {
	if n > 0 {
		s.bodies.max.Store(n)
	}
}

func errBodyBudget() error {
	return awserr.New(awserr.TooManyRequests, "Too many large requests are in progress on this server; retry later.")
}
