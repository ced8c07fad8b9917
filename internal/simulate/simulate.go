// Package simulate answers "what would this concurrency plan have done to
// this traffic?": it replays a trace of invocations in virtual time
// through package admission itself, the very Controller that admits live
// invocations, so that the reservations, the unreserved pool and its
// minimum, provisioned concurrency, the request rate and the scaling rate
// are judged by the code that enforces them, and by no second copy. The
// plan is checked, call by call, by the control plane's own checks
// (control.CheckReservation, control.CheckProvisioned).
//
// The replay is event-driven: a min-heap holds the end times of the
// invocations in flight; each trace line first releases every invocation
// that ended at or before its time, then asks the Controller to admit it,
// the Controller's request and scaling rates reading the virtual clock.
// The trace is streamed, so memory holds only what is in flight, never the
// trace.
//
// Cold starts follow AWS's environments: each function:qualifier keeps the
// environments it has started; an on-demand invocation takes an idle one
// if there is one, else it is a cold start and runs init_ms longer. Idle
// environments are kept for the whole trace (no idle expiry), and
// provisioned ones are always warm and ready from the trace's start.
//
// Recommend searches the smallest plan that keeps each function's
// throttles and cold starts under target shares, re-simulating; Chart
// draws the concurrency of each pool over time. Replay and Export talk to
// a live Lambda API endpoint: the first drives real invocations with a
// trace's timing, the second reads a running account's plan.
package simulate

import (
	"fmt"
	"io"
	"math"
	"os"
	"sort"

	"github.com/lambdad/lambdad/internal/admission"
	"github.com/lambdad/lambdad/internal/awserr"
)

// Source opens a trace; a recommendation reads it more than once.
type Source func() (io.ReadCloser, error)

// File is the Source of a trace file.
func File(path string) Source {
	return func() (io.ReadCloser, error) { return os.Open(path) }
}

// Result is what a plan did to a trace.
type Result struct {
	PlanValid bool     `json:"plan_valid"`
	Problems  []string `json:"problems"`
	Account   Account  `json:"account"`
	// Functions holds every function of the trace or the plan.
	Functions map[string]*Function `json:"functions"`

	// chart is the sampled concurrency, when asked for.
	chart *chartData
}

// Account is the account's side of a Result.
type Account struct {
	Limit         int `json:"account_limit"`
	MinUnreserved int `json:"min_unreserved"`
	// UnreservedCapacity is U = L − claimed under the plan.
	UnreservedCapacity int `json:"unreserved_capacity"`
	// PeakUnreserved is the most invocations running at once in the
	// unreserved pool.
	PeakUnreserved int `json:"peak_unreserved"`
	// PeakConcurrency is the most invocations running at once in all.
	PeakConcurrency int `json:"peak_concurrency"`
	// TimeUnreservedFullMs is how long the unreserved pool was full.
	TimeUnreservedFullMs int64 `json:"time_unreserved_full_ms"`
	Invocations          int64 `json:"invocations"`
	Throttles            int64 `json:"throttles"`
	ColdStarts           int64 `json:"cold_starts"`
	// SpanMs is the simulated time, from the first request to the last
	// invocation's end.
	SpanMs int64 `json:"span_ms"`
}

// Function is one function's side of a Result. Requests are invocations
// plus throttles; shares are of requests (throttles) and of invocations
// (cold starts).
type Function struct {
	Reserved          *int             `json:"reserved,omitempty"`
	Provisioned       int              `json:"provisioned,omitempty"`
	Invocations       int64            `json:"invocations"`
	Throttles         int64            `json:"throttles"`
	ThrottleShare     float64          `json:"throttle_share"`
	ThrottlesByReason map[string]int64 `json:"throttles_by_reason"`
	PeakConcurrency   int              `json:"peak_concurrency"`
	// TimeAtLimitMs is how long an on-demand request of the function would
	// have been refused for concurrency: its on-demand count at R − P for a
	// reserved function, the unreserved pool full for the others.
	TimeAtLimitMs int64   `json:"time_at_limit_ms"`
	ColdStarts    int64   `json:"cold_starts"`
	ColdShare     float64 `json:"cold_start_share"`
	// ProvisionedInvocations ran on provisioned environments.
	ProvisionedInvocations int64 `json:"provisioned_invocations"`
	// Qualifiers breaks the function down by the trace's qualifier (""
	// for unqualified requests, which run $LATEST).
	Qualifiers map[string]*Qualifier `json:"qualifiers,omitempty"`
}

// Qualifier is one function:qualifier of the trace.
type Qualifier struct {
	Invocations     int64 `json:"invocations"`
	Throttles       int64 `json:"throttles"`
	ColdStarts      int64 `json:"cold_starts"`
	PeakConcurrency int   `json:"peak_concurrency"`
	// Environments is how many environments the qualifier started.
	Environments int64 `json:"environments"`
}

// Options tune a simulation.
type Options struct {
	// Chart samples each pool's concurrency for Chart.
	Chart bool
	// accountLimit, when set, replaces the plan's L: the recommendation's
	// searches run with room in the account, so that each reserved
	// function meets only its own limits.
	accountLimit int
}

// reasons indexes the throttle reasons.
var reasons = [...]string{
	awserr.ReasonReservedFunctionConcurrentInvocationLimitExceeded,
	awserr.ReasonConcurrentInvocationLimitExceeded,
	awserr.ReasonReservedFunctionInvocationRateLimitExceeded,
	awserr.ReasonFunctionInvocationRateLimitExceeded,
}

func reasonIndex(r string) int {
	for i, s := range reasons {
		if s == r {
			return i
		}
	}
	return len(reasons) // any other reason a future Controller may give
}

// fnState is one function during a run.
type fnState struct {
	name     string
	reserved bool
	// onDemandCap is R − P of a reserved function.
	onDemandCap        int64
	onDemand, prov     int64
	peak               int64
	inv, thr, cold     int64
	provInv            int64
	byReason           [len(reasons) + 1]int64
	atLimit            bool
	since, atLimitTime int64
	pool               *series // the function's own pool in the chart
}

// target is one function:qualifier during a run.
type target struct {
	fn        *fnState
	qualifier string
	// idle are the target's environments that are started and free.
	idle                 int64
	running, peak        int64
	inv, thr, cold, envs int64
}

// running is one invocation in flight.
type running struct {
	end  int64
	slot *admission.Slot
	t    *target
	prov bool
}

// sim is one run.
type sim struct {
	c       *admission.Controller
	now     int64
	plan    *Plan
	fns     map[string]*fnState
	targets map[string]*target
	heap    []running
	// The unreserved pool: its capacity U, what runs in it, and how long
	// it has been full.
	u, unres, unresPeak int64
	unresFull           bool
	unresSince, unresT  int64
	total, totalPeak    int64
	start, end          int64
	started             bool
	inv, thr, cold      int64
	chart               *chartData
}

// Run replays the trace src through the plan.
func Run(plan *Plan, src Source, opt Options) (*Result, error) {
	r, err := src()
	if err != nil {
		return nil, fmt.Errorf("trace: %w", err)
	}
	defer r.Close()
	return RunReader(plan, r, opt)
}

// RunReader replays the trace read from r through the plan.
func RunReader(plan *Plan, r io.Reader, opt Options) (*Result, error) {
	s := newSim(plan, opt)
	tr := NewTrace(r)
	var inv Invocation
	for {
		ok, err := tr.Next(&inv)
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		s.request(&inv)
	}
	s.finish()
	return s.result(), nil
}

func newSim(plan *Plan, opt Options) *sim {
	limits := plan.Limits()
	if opt.accountLimit > 0 {
		limits.Concurrency = opt.accountLimit
	}
	s := &sim{plan: plan, fns: map[string]*fnState{}, targets: map[string]*target{}}
	s.c = admission.New(limits.Concurrency)
	rate, scaling := plan.rates()
	s.c.SetRequestRate(rate)
	s.c.SetScalingRate(scaling)
	// The Controller's rates read the virtual clock.
	s.c.SetNanos(func() int64 { return s.now })
	for _, name := range plan.names() {
		f := plan.Functions[name]
		if f.Reserved != nil {
			s.c.SetReserved(name, *f.Reserved, true)
		}
		for q, n := range f.Provisioned {
			// Ready from the start: configured and allocated alike.
			s.c.SetProvisionedConfigured(name, q, n)
			s.c.SetProvisioned(name, q, n)
		}
		s.fn(name)
	}
	s.u = int64(s.c.Unreserved())
	if opt.Chart {
		s.chart = newChart()
	}
	return s
}

// fn returns the state of a function, made on first sight.
func (s *sim) fn(name string) *fnState {
	if f, ok := s.fns[name]; ok {
		return f
	}
	f := &fnState{name: name}
	if p := s.plan.Functions[name]; p != nil && p.Reserved != nil {
		f.reserved = true
		f.onDemandCap = max(0, int64(*p.Reserved)-int64(p.provisioned()))
	}
	s.fns[name] = f
	return f
}

func (s *sim) target(inv *Invocation) *target {
	if t, ok := s.targets[inv.Target]; ok {
		return t
	}
	t := &target{fn: s.fn(inv.Function), qualifier: inv.Qualifier}
	s.targets[inv.Target] = t
	return t
}

// request replays one trace line.
func (s *sim) request(inv *Invocation) {
	if !s.started {
		s.started, s.start = true, inv.At
		s.unresSince = inv.At
		for _, f := range s.fns {
			f.since = inv.At
			s.limitChanged(f)
		}
		s.poolChanged()
		if s.chart != nil {
			s.chart.begin(s, inv.At)
		}
	}
	s.releaseUntil(inv.At)
	s.now = inv.At
	t := s.target(inv)
	f := t.fn
	slot, err := s.c.Acquire(f.name, inv.Qualifier)
	if err != nil {
		reason := ""
		if e, ok := awserr.As(err); ok {
			reason = e.Reason
		}
		f.thr++
		f.byReason[reasonIndex(reason)]++
		t.thr++
		s.thr++
		if s.chart != nil {
			s.chart.throttle(s, f, inv.At)
		}
		return
	}
	f.inv++
	t.inv++
	s.inv++
	end := inv.At + inv.Duration
	prov := slot.Provisioned()
	if prov {
		f.prov++
		f.provInv++
	} else {
		f.onDemand++
		if !f.reserved {
			s.unres++
			s.unresPeak = max(s.unresPeak, s.unres)
		}
		if t.idle > 0 {
			t.idle--
		} else {
			t.cold++
			f.cold++
			s.cold++
			t.envs++
			end += inv.Init
		}
	}
	t.running++
	t.peak = max(t.peak, t.running)
	f.peak = max(f.peak, f.onDemand+f.prov)
	s.total++
	s.totalPeak = max(s.totalPeak, s.total)
	s.end = max(s.end, end)
	s.push(running{end: end, slot: slot, t: t, prov: prov})
	s.changed(f, prov)
}

// changed updates the time-at-limit clocks and the chart after f's counts
// moved.
func (s *sim) changed(f *fnState, prov bool) {
	if f.reserved {
		s.limitChanged(f)
	} else if !prov {
		s.poolChanged()
	}
	if s.chart != nil {
		s.chart.sample(s, f)
	}
}

// limitChanged starts or stops a reserved function's time-at-limit clock.
func (s *sim) limitChanged(f *fnState) {
	if !f.reserved {
		return
	}
	at := f.onDemand >= f.onDemandCap
	if at == f.atLimit {
		return
	}
	if f.atLimit {
		f.atLimitTime += s.now - f.since
	}
	f.atLimit, f.since = at, s.now
}

// poolChanged starts or stops the unreserved pool's full clock.
func (s *sim) poolChanged() {
	full := s.unres >= s.u
	if full == s.unresFull {
		return
	}
	if s.unresFull {
		s.unresT += s.now - s.unresSince
	}
	s.unresFull, s.unresSince = full, s.now
}

// releaseUntil ends every invocation that ended at or before t, in the
// order they ended.
func (s *sim) releaseUntil(t int64) {
	for len(s.heap) > 0 && s.heap[0].end <= t {
		r := s.pop()
		s.now = r.end
		r.slot.Release()
		tg := r.t
		f := tg.fn
		tg.running--
		s.total--
		if r.prov {
			f.prov--
		} else {
			f.onDemand--
			tg.idle++
			if !f.reserved {
				s.unres--
			}
		}
		s.changed(f, r.prov)
	}
}

// finish ends what still runs and stops the clocks at the end.
func (s *sim) finish() {
	s.releaseUntil(math.MaxInt64)
	s.now = max(s.end, s.now)
	for _, f := range s.fns {
		if f.atLimit {
			f.atLimitTime += s.now - f.since
			f.since = s.now
		}
	}
	if s.unresFull {
		s.unresT += s.now - s.unresSince
		s.unresSince = s.now
	}
	if s.chart != nil {
		s.chart.end(s)
	}
}

func (s *sim) result() *Result {
	limits := s.plan.Limits()
	problems := s.plan.Problems()
	res := &Result{
		PlanValid: len(problems) == 0,
		Problems:  problems,
		Account: Account{
			Limit: limits.Concurrency, MinUnreserved: limits.Minimum(),
			UnreservedCapacity: int(s.u), PeakUnreserved: int(s.unresPeak), PeakConcurrency: int(s.totalPeak),
			TimeUnreservedFullMs: s.unresT / 1e6,
			Invocations:          s.inv, Throttles: s.thr, ColdStarts: s.cold,
		},
		Functions: map[string]*Function{},
		chart:     s.chart,
	}
	if res.Problems == nil {
		res.Problems = []string{}
	}
	if s.started {
		res.Account.SpanMs = (s.now - s.start) / 1e6
	}
	for name, f := range s.fns {
		out := &Function{
			Invocations: f.inv, Throttles: f.thr, PeakConcurrency: int(f.peak),
			ColdStarts: f.cold, ProvisionedInvocations: f.provInv,
			ThrottlesByReason: map[string]int64{},
			TimeAtLimitMs:     f.atLimitTime / 1e6,
		}
		if p := s.plan.Functions[name]; p != nil {
			out.Reserved, out.Provisioned = p.Reserved, p.provisioned()
		}
		if !f.reserved {
			out.TimeAtLimitMs = s.unresT / 1e6
		}
		if f.inv+f.thr > 0 {
			out.ThrottleShare = float64(f.thr) / float64(f.inv+f.thr)
		}
		if f.inv > 0 {
			out.ColdShare = float64(f.cold) / float64(f.inv)
		}
		for i, n := range f.byReason {
			if n > 0 {
				r := "Other"
				if i < len(reasons) {
					r = reasons[i]
				}
				out.ThrottlesByReason[r] = n
			}
		}
		res.Functions[name] = out
	}
	for _, t := range s.targets {
		out := res.Functions[t.fn.name]
		if out.Qualifiers == nil {
			out.Qualifiers = map[string]*Qualifier{}
		}
		out.Qualifiers[t.qualifier] = &Qualifier{Invocations: t.inv, Throttles: t.thr, ColdStarts: t.cold, PeakConcurrency: int(t.peak), Environments: t.envs}
	}
	return res
}

// Names are the result's functions, sorted.
func (r *Result) Names() []string {
	names := make([]string, 0, len(r.Functions))
	for n := range r.Functions {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// push and pop keep s.heap a 4-ary min-heap by end time, written out
// rather than through container/heap so that no element is boxed; four
// children a node halve the depth of a binary heap, and the sift-down,
// which dominates a replay, touches fewer cache lines.
func (s *sim) push(r running) {
	h := append(s.heap, r)
	i := len(h) - 1
	for i > 0 {
		p := (i - 1) / 4
		if h[p].end <= r.end {
			break
		}
		h[i] = h[p]
		i = p
	}
	h[i] = r
	s.heap = h
}

func (s *sim) pop() running {
	h := s.heap
	top := h[0]
	n := len(h) - 1
	last := h[n]
	h[n] = running{}
	h = h[:n]
	if n > 0 {
		i := 0
		for {
			c := 4*i + 1
			if c >= n {
				break
			}
			m := c
			for k := c + 1; k < c+4 && k < n; k++ {
				if h[k].end < h[m].end {
					m = k
				}
			}
			if last.end <= h[m].end {
				break
			}
			h[i] = h[m]
			i = m
		}
		h[i] = last
	}
	s.heap = h
	return top
}
