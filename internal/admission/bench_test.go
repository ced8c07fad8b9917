package admission

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lambdad/lambdad/internal/clock"
	"github.com/lambdad/lambdad/internal/function"
)

// benchLimit is far above anything a benchmark holds, so nothing throttles;
// benchShare is what one function reserves or provisions.
const (
	benchLimit = MaxConcurrency
	benchShare = 1 << 16
)

// benchPools sets up one function of each kind the hot path tells apart.
func benchPools() (*Controller, []struct{ name, function, target string }) {
	c := New(benchLimit)
	// These measure the concurrency accounting; they come far faster than
	// the request rate allows (BenchmarkAcquireReleaseRated measures it).
	c.SetRequestRate(0)
	c.SetReserved("reserved", benchShare, true)
	c.SetProvisionedConfigured("provisioned", "live", benchShare)
	c.SetProvisioned("provisioned", "live", benchShare)
	return c, []struct{ name, function, target string }{
		{"unreserved", "unreserved", "$LATEST"},
		{"reserved", "reserved", "$LATEST"},
		{"provisioned", "provisioned", "live"},
	}
}

func acquireRelease(b *testing.B, c *Controller, function, target string) {
	s, err := c.Acquire(function, target)
	if err != nil {
		b.Fatal(err)
	}
	s.Release()
}

// BenchmarkAcquireRelease is one admission and its release on one
// goroutine, per kind of pool.
func BenchmarkAcquireRelease(b *testing.B) {
	c, cases := benchPools()
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				acquireRelease(b, c, bc.function, bc.target)
			}
		})
	}
}

// BenchmarkAcquireReleaseParallel is the same from every P at once. In the
// "same function" cases all goroutines contend for one function's counters
// (the worst case); in "own function" each goroutine invokes a function of
// its own, which for unreserved functions still share the unreserved pool's
// counter.
func BenchmarkAcquireReleaseParallel(b *testing.B) {
	c, cases := benchPools()
	for _, bc := range cases {
		b.Run(bc.name+"/same-function", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					acquireRelease(b, c, bc.function, bc.target)
				}
			})
		})
	}
	for _, reserved := range []bool{false, true} {
		name := "unreserved/own-function"
		if reserved {
			name = "reserved/own-function"
		}
		b.Run(name, func(b *testing.B) {
			var next atomic.Int64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				function := fmt.Sprintf("%s-%d", name, next.Add(1))
				if reserved {
					c.SetReserved(function, benchShare, true)
				}
				for pb.Next() {
					acquireRelease(b, c, function, "$LATEST")
				}
			})
		})
	}
}

// BenchmarkAcquireReleaseFunctions shows that the cost of finding a function
// does not grow with the number registered: "hot" invokes one function over
// and over, "spread" walks all of them (so at 100,000 functions it also pays
// the cache misses of touching a different function's counters each time).
func BenchmarkAcquireReleaseFunctions(b *testing.B) {
	for _, n := range []int{1, 1000, 100_000} {
		c := New(benchLimit)
		c.SetRequestRate(0) // the concurrency accounting only, as in benchPools
		names := make([]string, n)
		for i := range names {
			names[i] = fmt.Sprintf("function-%06d", i)
			if i%2 == 0 {
				c.SetReserved(names[i], 10, true)
			} else {
				c.SetProvisionedConfigured(names[i], "1", 1)
			}
		}
		b.Run(fmt.Sprintf("functions=%d/hot", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				acquireRelease(b, c, names[0], "$LATEST")
			}
		})
		b.Run(fmt.Sprintf("functions=%d/spread", n), func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				acquireRelease(b, c, names[i], "$LATEST")
				if i++; i == len(names) {
					i = 0
				}
			}
		})
	}
}

// BenchmarkAccountsAcquireRelease is an admission through Accounts, as the
// invoke path makes it: the server's own account (found without a map
// lookup) and another account's.
func BenchmarkAccountsAcquireRelease(b *testing.B) {
	a := NewAccounts("111111111111", func(string) int { return 1000 })
	a.SetRequestRate(0) // the concurrency accounting only, as in benchPools
	for _, acct := range []string{"111111111111", "222222222222"} {
		fn := function.Key{Account: acct, Name: "f"}
		b.Run(acct, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				s, err := a.Acquire(fn, "$LATEST")
				if err != nil {
					b.Fatal(err)
				}
				s.Release()
			}
		})
	}
}

// BenchmarkAcquireReleaseRatedCoarse is BenchmarkAcquireReleaseRated on a
// clock.Coarse reading, as the server runs it.
func BenchmarkAcquireReleaseRatedCoarse(b *testing.B) {
	c := New(MaxConcurrency)
	k := clock.NewCoarse(clock.Real, 10*time.Millisecond)
	defer k.Stop()
	c.SetNanos(k.Nanos)
	b.ReportAllocs()
	for b.Loop() {
		s, err := c.Acquire("f", "$LATEST")
		if err != nil {
			b.Fatal(err)
		}
		s.Release()
	}
}

// BenchmarkAcquireReleaseScaling measures what the scaling rate adds to an
// admission: "warm" is every admission of a function at or below its warm
// mark (the common case: one load and a compare), "off" the same with the
// rate turned off, and "new-environment" an admission above the mark
// every time, which takes from the function's schedule (a clock read and a
// compare-and-swap) and raises the mark.
func BenchmarkAcquireReleaseScaling(b *testing.B) {
	for _, bc := range []struct {
		name string
		rate int
		grow bool
	}{{"warm", DefaultScalingRate, false}, {"off", 0, false}, {"new-environment", 1e9, true}} {
		b.Run(bc.name, func(b *testing.B) {
			c := New(benchLimit)
			c.SetRequestRate(0)
			c.SetScalingRate(bc.rate) // 1e9 per 10 s: never throttled here
			e := c.lookup("f")
			b.ReportAllocs()
			for b.Loop() {
				if bc.grow {
					e.warm.Store(0)
				}
				s, err := c.Acquire("f", "$LATEST")
				if err != nil {
					b.Fatal(err)
				}
				s.Release()
			}
		})
	}
}
