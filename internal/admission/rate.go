package admission

import (
	"sync/atomic"

	"github.com/lambdad/lambdad/internal/awserr"
	"github.com/lambdad/lambdad/internal/clock"
)

// The request rate, AWS's second limit beside concurrency: a function's
// invocation requests are limited to DefaultRequestRate per second per
// unit of its concurrency, its reservation R when it has one (throttled
// with Reason ReservedFunctionInvocationRateLimitExceeded) and the
// account's limit L when it has none (FunctionInvocationRateLimitExceeded).
// A function may spend a second's worth at once; after that, requests are
// paced evenly. A function reserved at 0 is left to the concurrency check,
// which refuses every request with its own reason.
//
// Each function's pace is one atomic word (the generic cell rate
// algorithm: the time at which the next request would be on schedule), so
// the check takes no lock and allocates nothing.

// DefaultRequestRate is AWS's requests per second per unit of concurrency.
const DefaultRequestRate = 10

// second is a second in the pacers' nanoseconds.
const second = int64(1e9)

// pacer is one function's schedule: tat is the theoretical arrival time of
// the next request, in nanoseconds since epoch.
type pacer struct{ tat atomic.Int64 }

// allow takes one request at rate per second, with a burst of one second's
// worth, or reports that it is ahead of schedule.
func (p *pacer) allow(now, rate int64) bool {
	interval := second / rate
	if interval == 0 {
		return true
	}
	return p.take(now, interval, second-interval)
}

// take takes one unit paced at one per interval nanoseconds, of which
// up to tolerance/interval + 1 may come at once, or reports that it is
// ahead of schedule.
func (p *pacer) take(now, interval, tolerance int64) bool {
	for {
		tat := p.tat.Load()
		t := max(tat, now)
		if t-now > tolerance {
			return false
		}
		if p.tat.CompareAndSwap(tat, t+interval) {
			return true
		}
	}
}

// SetClock makes the request rate read c (clock.Real by default), so that
// tests can pace requests on a clock of their own.
func (c *Controller) SetClock(clk clock.Clock) {
	now := clock.Nanos(clk)
	c.now.Store(&now)
}

// SetNanos makes the request rate read now, a monotonic reading in
// nanoseconds (a clock.Coarse's Nanos, say), instead of a clock.
func (c *Controller) SetNanos(now func() int64) { c.now.Store(&now) }

// SetRequestRate sets the requests per second allowed per unit of
// concurrency; 0 turns the request rate off.
func (c *Controller) SetRequestRate(perUnit int) { c.requestRate.Store(int64(max(0, perUnit))) }

// checkRate paces one request of e under cfg.
func (c *Controller) checkRate(e *entry, cfg *fnConfig) error {
	perUnit := c.requestRate.Load()
	if perUnit == 0 {
		return nil
	}
	units, reason, counter := int64(field(c.caps.Load(), 0)), awserr.ReasonFunctionInvocationRateLimitExceeded, &c.throttledRate[0]
	if cfg.reserved {
		units, reason, counter = cfg.reservation, awserr.ReasonReservedFunctionInvocationRateLimitExceeded, &c.throttledRate[1]
	}
	if units == 0 || e.requests.allow((*c.now.Load())(), units*perUnit) {
		return nil
	}
	counter.Add(1)
	e.throttles.Add(1)
	return awserr.Throttle(reason)
}
