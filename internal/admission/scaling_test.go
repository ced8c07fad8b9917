package admission

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/lambdad/lambdad/internal/awserr"
)

// hold admits n invocations of target of function and keeps them running;
// it returns the slots and the reason of the first refusal.
func hold(t *testing.T, c *Controller, function, target string, n int) (slots []*Slot, reason string) {
	t.Helper()
	for range n {
		s, err := c.Acquire(function, target)
		if err != nil {
			if reason == "" {
				reason = reasonOf(t, err)
			}
			continue
		}
		slots = append(slots, s)
	}
	return slots, reason
}

// TestScalingRate holds each function to a number of new environments per
// ScalingPeriod, all at once when it has not grown for a period and then
// one per ScalingPeriod/rate, refilled continuously and never past the
// burst; invocations at or below the function's warm mark, and
// provisioned ones, never spend from it. The clock is the synctest
// bubble's.
func TestScalingRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := New(1000)
		c.SetRequestRate(0)
		c.SetScalingRate(4) // one new environment every 2.5 s, 4 at once

		f, reason := hold(t, c, "f", "$LATEST", 5)
		if len(f) != 4 || reason != awserr.ReasonFunctionInvocationRateLimitExceeded {
			t.Fatalf("growing from nothing: %d admitted, then %q", len(f), reason)
		}
		if s := c.Snapshot(); s.InFlight != 4 || s.Throttles[awserr.ReasonFunctionInvocationRateLimitExceeded] != 1 {
			t.Errorf("a refused invocation took a slot or was not counted: %d in flight, throttles %v", s.InFlight, s.Throttles)
		}
		// Warm environments serve again and again without spending.
		releaseAll(f)
		for range 10 {
			f, reason = hold(t, c, "f", "$LATEST", 4)
			if len(f) != 4 {
				t.Fatalf("back to the warm mark: %d admitted, then %q", len(f), reason)
			}
			releaseAll(f)
		}
		// Another function scales on its own.
		g, _ := hold(t, c, "g", "$LATEST", 4)
		if len(g) != 4 {
			t.Errorf("another function: %d admitted", len(g))
		}
		releaseAll(g)

		// Refilled continuously: one more 2.5 s later, two more 5 s after.
		f, _ = hold(t, c, "f", "$LATEST", 4)
		if more, _ := hold(t, c, "f", "$LATEST", 1); len(more) != 0 {
			t.Fatal("a fifth environment with nothing refilled")
		}
		time.Sleep(2500 * time.Millisecond)
		more, reason := hold(t, c, "f", "$LATEST", 2)
		if len(more) != 1 || reason != awserr.ReasonFunctionInvocationRateLimitExceeded {
			t.Errorf("2.5 s later: %d admitted, then %q; want 1", len(more), reason)
		}
		f = append(f, more...)
		time.Sleep(5 * time.Second)
		if more, _ = hold(t, c, "f", "$LATEST", 3); len(more) != 2 {
			t.Errorf("5 s later: %d admitted, want 2", len(more))
		}
		f = append(f, more...)
		// Unused refill does not pile up: after a long while, 4 at once.
		time.Sleep(100 * time.Second)
		if more, _ = hold(t, c, "f", "$LATEST", 6); len(more) != 4 {
			t.Errorf("100 s later: %d admitted, want 4", len(more))
		}
		f = append(f, more...)
		releaseAll(f)

		// A reserved function's throttle names the reservation.
		c.SetReserved("r", 10, true)
		r, reason := hold(t, c, "r", "$LATEST", 6)
		if len(r) != 4 || reason != awserr.ReasonReservedFunctionInvocationRateLimitExceeded {
			t.Errorf("reserved: %d admitted, then %q", len(r), reason)
		}
		releaseAll(r)

		// Provisioned invocations run on environments made beforehand.
		c.SetProvisionedConfigured("p", "1", 3)
		c.SetProvisioned("p", "1", 3)
		p, _ := hold(t, c, "p", "1", 3)
		od, reason := hold(t, c, "p", "$LATEST", 5)
		if len(p) != 3 || !p[0].Provisioned() || len(od) != 4 {
			t.Errorf("provisioned: %d provisioned, then %d on-demand (%q); want 3 and 4", len(p), len(od), reason)
		}
		releaseAll(append(p, od...))

		// A function deleted while it runs keeps its counters but not its
		// warm mark (11 by now): made again, it starts cold.
		time.Sleep(time.Duration(ScalingPeriod))
		f, _ = hold(t, c, "f", "$LATEST", 4)
		c.RemoveFunction("f")
		releaseAll(f)
		if f, _ = hold(t, c, "f", "$LATEST", 6); len(f) != 4 {
			t.Errorf("made again: %d admitted, want the 4 new environments the rate allows", len(f))
		}
		releaseAll(f)

		// Off: no limit.
		c.SetScalingRate(0)
		if f, _ = hold(t, c, "f", "$LATEST", 50); len(f) != 50 {
			t.Errorf("with the scaling rate off: %d admitted", len(f))
		}
		releaseAll(f)
	})
}

// TestAccountsScalingRate: the scaling rate set on Accounts reaches the
// accounts seen before and after.
func TestAccountsScalingRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := NewAccounts("111111111111", func(string) int { return 100 })
		a.SetRequestRate(0)
		a.For("222222222222")
		a.SetScalingRate(2)
		for _, acct := range []string{"111111111111", "222222222222", "333333333333"} {
			c := a.For(acct)
			s, reason := hold(t, c, "f", "$LATEST", 3)
			if len(s) != 2 || reason != awserr.ReasonFunctionInvocationRateLimitExceeded {
				t.Errorf("account %s: %d admitted, then %q", acct, len(s), reason)
			}
			releaseAll(s)
		}
	})
}
