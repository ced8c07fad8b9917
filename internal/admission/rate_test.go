package admission

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/lambdad/lambdad/internal/awserr"
)

// reasonOf is the throttle Reason of err, "" when err is nil.
func reasonOf(t *testing.T, err error) string {
	t.Helper()
	if err == nil {
		return ""
	}
	e, ok := awserr.As(err)
	if !ok || e.Code != awserr.TooManyRequests {
		t.Fatalf("not a throttle: %v", err)
	}
	return e.Reason
}

// burst makes n requests of function at once (each released at once) and
// returns how many were admitted and the reason of the first refusal.
func burst(t *testing.T, c *Controller, function string, n int) (admitted int, reason string) {
	t.Helper()
	for range n {
		s, err := c.Acquire(function, "$LATEST")
		if err != nil {
			if reason == "" {
				reason = reasonOf(t, err)
			}
			continue
		}
		admitted++
		s.Release()
	}
	return admitted, reason
}

// TestRequestRate holds each function to 10 requests per second per unit
// of its concurrency, a second's worth at once and then evenly, with AWS's
// reasons; the clock is the synctest bubble's.
func TestRequestRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := New(3)
		c.SetReserved("r", 2, true)
		c.SetReserved("zero", 0, true)

		// Reserved at 2: 20 per second.
		if n, reason := burst(t, c, "r", 25); n != 20 || reason != awserr.ReasonReservedFunctionInvocationRateLimitExceeded {
			t.Errorf("reserved burst: %d admitted, then %q", n, reason)
		}
		// Unreserved, L = 3: 30 per second, paced apart from r.
		if n, reason := burst(t, c, "u", 40); n != 30 || reason != awserr.ReasonFunctionInvocationRateLimitExceeded {
			t.Errorf("unreserved burst: %d admitted, then %q", n, reason)
		}
		if n, _ := burst(t, c, "v", 30); n != 30 {
			t.Errorf("another unreserved function: %d admitted; functions are paced apart", n)
		}
		// A refused request took no slot.
		if s := c.Snapshot(); s.InFlight != 0 || s.Throttles[awserr.ReasonReservedFunctionInvocationRateLimitExceeded] != 5 ||
			s.Throttles[awserr.ReasonFunctionInvocationRateLimitExceeded] != 10 {
			t.Errorf("after the bursts: %d in flight, throttles %v", s.InFlight, s.Throttles)
		}
		// Reserved at 0: the concurrency check answers, with its reason.
		if _, reason := burst(t, c, "zero", 1); reason != awserr.ReasonReservedFunctionConcurrentInvocationLimitExceeded {
			t.Errorf("reserved at 0: %q", reason)
		}

		// Paced: one request every 50 ms for r.
		time.Sleep(50 * time.Millisecond)
		if n, _ := burst(t, c, "r", 3); n != 1 {
			t.Errorf("50 ms later: %d admitted, want 1", n)
		}
		// A second later the whole burst is back, and no more.
		time.Sleep(time.Second)
		if n, _ := burst(t, c, "r", 25); n != 20 {
			t.Errorf("a second later: %d admitted, want 20", n)
		}

		// The rate follows the reservation, and can be turned off.
		c.SetReserved("r", 1, true)
		time.Sleep(time.Second)
		if n, _ := burst(t, c, "r", 25); n != 10 {
			t.Errorf("reserved at 1: %d admitted, want 10", n)
		}
		c.SetRequestRate(0)
		if n, _ := burst(t, c, "r", 100); n != 100 {
			t.Errorf("with the rate off: %d admitted", n)
		}
	})
}

func BenchmarkAcquireReleaseRated(b *testing.B) {
	c := New(MaxConcurrency) // 10 million requests per second: never throttled here
	b.ReportAllocs()
	for b.Loop() {
		s, err := c.Acquire("f", "$LATEST")
		if err != nil {
			b.Fatal(err)
		}
		s.Release()
	}
}
