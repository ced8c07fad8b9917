package simulate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"
)

// ReplayOptions bound a replay.
type ReplayOptions struct {
	// MaxCount stops after this many requests (0: no bound).
	MaxCount int
	// MaxDuration stops sending new requests this long after the start
	// (0: no bound); the ones in flight are awaited.
	MaxDuration time.Duration
	// MaxInFlight bounds the requests in flight at once (default 10000):
	// a request due while that many run waits, and the replay falls behind
	// the trace rather than exhaust this machine.
	MaxInFlight int
}

// Replay drives real synchronous invocations at the client's endpoint with
// the trace's timing: each request is sent when its timestamp comes, on
// the wall clock, measured from the trace's first line, with the payload
// {"sleep_ms": duration_ms}, which the function must honor by sleeping
// that long (as lambdad's bench function and its test function do). The
// trace's functions must exist. It reports, per function, the invocations
// that succeeded and the throttles by Reason, in the shape of a
// simulation's Result (concurrency is what the client saw in flight;
// cold starts are not observed). Failures other than throttles are listed
// as problems.
func (c *Client) Replay(ctx context.Context, r io.Reader, o ReplayOptions) (*Result, error) {
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = 10000
	}
	tr := NewTrace(r)
	res := &Result{PlanValid: true, Problems: []string{}, Functions: map[string]*Function{}}
	var (
		mu       sync.Mutex
		wg       sync.WaitGroup
		inFlight = map[string]int{}
		total    int
		failures = map[string]int{}
		firstErr = map[string]string{}
	)
	sem := make(chan struct{}, o.MaxInFlight)
	fn := func(name string) *Function {
		f := res.Functions[name]
		if f == nil {
			f = &Function{ThrottlesByReason: map[string]int64{}}
			res.Functions[name] = f
		}
		return f
	}
	var (
		inv     Invocation
		start   time.Time
		first   int64
		sent    int
		readErr error
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for o.MaxCount == 0 || sent < o.MaxCount {
		ok, err := tr.Next(&inv)
		if err != nil {
			readErr = err
			break
		}
		if !ok {
			break
		}
		if sent == 0 {
			start, first = time.Now(), inv.At
		}
		offset := time.Duration(inv.At - first)
		if o.MaxDuration > 0 && offset > o.MaxDuration {
			break
		}
		if d := time.Until(start.Add(offset)); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
			case <-t.C:
			}
		}
		if ctx.Err() != nil {
			break
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		sent++
		name, qualifier := inv.Function, inv.Qualifier
		payload := fmt.Appendf(nil, `{"sleep_ms":%d}`, (inv.Duration+5e5)/1e6)
		mu.Lock()
		inFlight[name]++
		total++
		f := fn(name)
		f.PeakConcurrency = max(f.PeakConcurrency, inFlight[name])
		res.Account.PeakConcurrency = max(res.Account.PeakConcurrency, total)
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			err := c.Invoke(ctx, name, qualifier, payload)
			mu.Lock()
			defer mu.Unlock()
			inFlight[name]--
			total--
			f := res.Functions[name]
			var ae *APIError
			switch {
			case err == nil:
				f.Invocations++
				res.Account.Invocations++
			case errors.As(err, &ae) && ae.Status == 429:
				reason := ae.Reason
				if reason == "" {
					reason = "Other"
				}
				f.Throttles++
				f.ThrottlesByReason[reason]++
				res.Account.Throttles++
			default:
				failures[name]++
				if firstErr[name] == "" {
					firstErr[name] = err.Error()
				}
			}
		}()
	}
	wg.Wait()
	if sent > 0 {
		res.Account.SpanMs = time.Since(start).Milliseconds()
	}
	for name, f := range res.Functions {
		if n := f.Invocations + f.Throttles; n > 0 {
			f.ThrottleShare = float64(f.Throttles) / float64(n)
		}
		if n := failures[name]; n > 0 {
			res.Problems = append(res.Problems, fmt.Sprintf("%s: %d requests failed, the first with %s", name, n, firstErr[name]))
		}
	}
	sort.Strings(res.Problems)
	res.PlanValid = len(res.Problems) == 0
	if readErr != nil {
		return res, readErr
	}
	return res, nil
}

// Functions lists the functions a trace invokes, in the order first seen.
func Functions(r io.Reader) ([]string, error) {
	tr := NewTrace(r)
	seen := map[string]bool{}
	var names []string
	var inv Invocation
	for {
		ok, err := tr.Next(&inv)
		if err != nil {
			return nil, err
		}
		if !ok {
			return names, nil
		}
		if !seen[inv.Function] {
			seen[inv.Function] = true
			names = append(names, inv.Function)
		}
	}
}

// Prepare makes an endpoint ready for a replay: it creates each of the
// functions that does not exist from zip (when zip is not nil), and
// applies the plan's reservations (when plan is not nil). Provisioned
// concurrency is left out: it needs published versions or aliases, which
// a replay does not make.
func (c *Client) Prepare(ctx context.Context, functions []string, zip []byte, plan *Plan) error {
	for _, name := range functions {
		if zip == nil {
			break
		}
		err := c.CreateFunction(ctx, name, zip, 900)
		var ae *APIError
		if err != nil && !(errors.As(err, &ae) && ae.Status == 409) {
			return err
		}
	}
	if plan == nil {
		return nil
	}
	for _, name := range plan.names() {
		if r := plan.Functions[name].Reserved; r != nil {
			if err := c.PutFunctionConcurrency(ctx, name, *r); err != nil {
				return err
			}
		}
	}
	return nil
}
