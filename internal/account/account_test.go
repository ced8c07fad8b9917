package account

import "testing"

func TestLimits(t *testing.T) {
	for _, c := range []struct {
		l       Limits
		claimed int64
		min     int
		u       int64
		allows  bool
	}{
		{Limits{1000, 100}, 0, 100, 1000, true},
		{Limits{1000, 100}, 900, 100, 100, true},
		{Limits{1000, 100}, 901, 100, 99, false},
		{Limits{50, 100}, 0, 50, 50, true},
		{Limits{50, 100}, 1, 50, 49, false},
		{Limits{10, 0}, 10, 0, 0, true},
		{Limits{10, 0}, 12, 0, -2, false},
	} {
		if got := c.l.Minimum(); got != c.min {
			t.Errorf("%+v Minimum = %d, want %d", c.l, got, c.min)
		}
		if got := c.l.Unreserved(c.claimed); got != c.u {
			t.Errorf("%+v Unreserved(%d) = %d, want %d", c.l, c.claimed, got, c.u)
		}
		if got := c.l.Allows(c.claimed); got != c.allows {
			t.Errorf("%+v Allows(%d) = %v, want %v", c.l, c.claimed, got, c.allows)
		}
	}
}
