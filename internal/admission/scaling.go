package admission

import "github.com/lambdad/lambdad/internal/awserr"

// The scaling rate, AWS's limit on how fast a function grows: each
// function may add DefaultScalingRate new on-demand execution environments
// every ScalingPeriod, refilled continuously (a function that has not
// grown for a while may add that many at once, then one more every
// ScalingPeriod/DefaultScalingRate). Only an invocation that needs a new
// environment spends from it; one that finds a warm environment does not.
// A refusal is the request rate's throttle (rate.go): Reason
// ReservedFunctionInvocationRateLimitExceeded for a function with a
// reservation, FunctionInvocationRateLimitExceeded for one without, the
// two rate reasons of AWS's ThrottleReason enum.
//
// Which invocations need a new environment is decided in the execution
// environment pools, after admission, per version; admission cannot ask
// them without a lock and a wait. It counts instead what a new environment
// follows from: an on-demand invocation that takes the function's running
// count above the highest it has been (its warm mark) needs one more
// environment than the function has ever had at once, and an invocation
// at or below the mark is presumed to find one of those warm. The mark
// only rises; environments the pools stop later (idle for --idle-timeout,
// or evicted at --max-environments) are not seen, so a function that
// shrank grows back to its old peak without spending from the rate, and
// the function's versions share one mark. The approximation errs towards
// admitting, never throttles a function below its peak, and at AWS's rate
// (a thousand at once) only a function growing past a thousand running
// invocations meets it. Provisioned invocations run on environments made
// beforehand and never count. A function deleted loses its mark.
//
// The mark and the schedule are atomic words beside the function's
// counter; the check reads two words when the function is at or below
// its mark and takes no lock and allocates nothing either way.

// DefaultScalingRate is AWS's new execution environments per function per
// ScalingPeriod.
const DefaultScalingRate = 1000

// ScalingPeriod is the period the scaling rate is given for.
const ScalingPeriod = 10 * second

// SetScalingRate sets the new on-demand environments each function may add
// per ScalingPeriod; 0 turns the scaling rate off.
func (c *Controller) SetScalingRate(perPeriod int) {
	c.scalingRate.Store(int64(max(0, perPeriod)))
}

// checkScaling judges an admitted on-demand invocation of e that took the
// function's running count to n, and refuses it when it needs a new
// environment beyond the scaling rate.
func (c *Controller) checkScaling(e *entry, cfg *fnConfig, n int64) error {
	if n <= e.warm.Load() {
		return nil // a warm environment serves it
	}
	perPeriod := c.scalingRate.Load()
	if perPeriod == 0 {
		e.raiseWarm(n)
		return nil
	}
	interval := ScalingPeriod / perPeriod
	if interval == 0 || e.scaling.take((*c.now.Load())(), interval, ScalingPeriod-interval) {
		e.raiseWarm(n)
		return nil
	}
	reason, counter := awserr.ReasonFunctionInvocationRateLimitExceeded, &c.throttledRate[0]
	if cfg.reserved {
		reason, counter = awserr.ReasonReservedFunctionInvocationRateLimitExceeded, &c.throttledRate[1]
	}
	counter.Add(1)
	e.throttles.Add(1)
	return awserr.Throttle(reason)
}

// raiseWarm raises the function's warm mark to n.
func (e *entry) raiseWarm(n int64) {
	for {
		w := e.warm.Load()
		if w >= n || e.warm.CompareAndSwap(w, n) {
			return
		}
	}
}
