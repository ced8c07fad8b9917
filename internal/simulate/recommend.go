package simulate

import (
	"fmt"
	"sort"

	"github.com/lambdad/lambdad/internal/admission"
)

// Targets are what a recommendation aims for.
type Targets struct {
	// Throttle is the largest share of a function's requests that may be
	// throttled (0.01: 1%).
	Throttle float64
	// Cold is the largest share of a qualifier's invocations that may be
	// cold starts; provisioned concurrency is sized to meet it.
	Cold float64
}

// Recommendation is a plan sized for a trace, and what it does to it.
type Recommendation struct {
	Plan   *Plan
	Result *Result
	// Before is what the plan it replaces did.
	Before *Result
	// Feasible is false when no plan within the account's limits meets
	// the targets; Notes say why, and what was done instead.
	Feasible bool
	Notes    []string
	// Simulations counts the replays the search took.
	Simulations int
}

// Recommend searches the smallest plan that keeps each function's
// throttles and each qualifier's cold starts under the targets, by
// replaying the trace:
//
//  1. Provisioned concurrency, per qualifier (a version or an alias) of
//     the trace whose cold starts pass the target: the smallest value
//     that brings them under it, searched with nothing else limiting.
//  2. Reservations, per function the plan reserves: the smallest value,
//     at least its provisioned concurrency, that keeps its throttles
//     under the target, and never above the share the given plan had, so
//     that no function throttles more than under the plan it replaces.
//     A reserved function meets only its own limits (its pool, its rates),
//     so every function's search runs in the same replays, a binary search
//     each, with the account limit raised out of the way.
//  3. The functions left unreserved share what remains, U; a function
//     still over the target there is given a reservation of its own, sized
//     the same way, and the others are checked again.
//
// The plan found is replayed with the account's real limits, and checked
// by AWS's rules; a plan whose reservations need more than L − min(M, L)
// is infeasible, and the notes say by how much.
func Recommend(plan *Plan, src Source, t Targets) (*Recommendation, error) {
	rc := &recommender{src: src, targets: t}
	before, err := rc.run(plan, Options{})
	if err != nil {
		return nil, err
	}
	out := &Recommendation{Before: before, Feasible: true}
	limits := plan.Limits()
	maxClaim := limits.Concurrency - limits.Minimum()
	// The searches run with room in the account.
	roomy := Options{accountLimit: admission.MaxConcurrency}

	// Demand: every function unreserved, unprovisioned, with room.
	open := plan.Clone()
	for _, f := range open.Functions {
		f.Reserved, f.Provisioned = nil, nil
	}
	demand, err := rc.run(open, roomy)
	if err != nil {
		return nil, err
	}

	rec := plan.Clone()
	// 1. Provisioned concurrency.
	var prov []*search
	for _, name := range demand.Names() {
		d := demand.Functions[name]
		quals := make([]string, 0, len(d.Qualifiers))
		for q := range d.Qualifiers {
			quals = append(quals, q)
		}
		sort.Strings(quals)
		for _, q := range quals {
			dq := d.Qualifiers[q]
			if dq.Invocations == 0 || float64(dq.ColdStarts)/float64(dq.Invocations) <= t.Cold {
				continue
			}
			if q == "" || q == "$LATEST" {
				out.Notes = append(out.Notes, fmt.Sprintf("%s: %s of its unqualified invocations are cold starts; provisioned concurrency needs a version or an alias", name, pct(float64(dq.ColdStarts)/float64(dq.Invocations))))
				continue
			}
			prov = append(prov, &search{fn: name, qualifier: q, lo: 0, hi: dq.PeakConcurrency, ok: func(r *Result) bool {
				x := r.Functions[name].Qualifiers[q]
				return x == nil || x.Invocations == 0 || float64(x.ColdStarts)/float64(x.Invocations) <= t.Cold
			}})
		}
	}
	// Provisioned configurations the trace gives no cold start to are
	// kept only where they carry traffic.
	for name, f := range rec.Functions {
		for q := range f.Provisioned {
			if d := demand.Functions[name]; d == nil || d.Qualifiers[q] == nil {
				out.Notes = append(out.Notes, fmt.Sprintf("%s:%s: provisioned %d, but the trace never invokes it: removed", name, q, f.Provisioned[q]))
				delete(f.Provisioned, q)
			}
		}
	}
	err = rc.parallel(prov, func() *Plan {
		p := open.Clone()
		for _, s := range prov {
			fp := p.Functions[s.fn]
			if fp == nil {
				fp = &FunctionPlan{}
				p.Functions[s.fn] = fp
			}
			if fp.Provisioned == nil {
				fp.Provisioned = map[string]int{}
			}
			fp.Provisioned[s.qualifier] = s.mid()
		}
		return p
	}, roomy)
	if err != nil {
		return nil, err
	}
	for _, s := range prov {
		fp := rec.Functions[s.fn]
		if fp == nil {
			fp = &FunctionPlan{}
			rec.Functions[s.fn] = fp
		}
		if fp.Provisioned == nil {
			fp.Provisioned = map[string]int{}
		}
		fp.Provisioned[s.qualifier] = s.lo
	}

	// 2. and 3. Reservations: first those of the plan, then the
	// functions the unreserved pool leaves over the target.
	var reserve []string
	for _, name := range rec.names() {
		if rec.Functions[name].Reserved != nil {
			reserve = append(reserve, name)
		}
	}
	var result *Result
	for round := 0; ; round++ {
		if err := rc.reserve(rec, reserve, before, maxClaim, roomy); err != nil {
			return nil, err
		}
		if result, err = rc.run(rec, Options{}); err != nil {
			return nil, err
		}
		reserve = reserve[:0]
		for _, name := range result.Names() {
			f := result.Functions[name]
			if f.Reserved == nil && f.ThrottleShare > t.Throttle {
				reserve = append(reserve, name)
			}
		}
		if len(reserve) == 0 || round == 3 {
			break
		}
		for _, name := range reserve {
			if rec.Functions[name] == nil {
				rec.Functions[name] = &FunctionPlan{}
			}
			out.Notes = append(out.Notes, fmt.Sprintf("%s: %s throttled in the unreserved pool of %d: given a reservation of its own", name, pct(result.Functions[name].ThrottleShare), result.Account.UnreservedCapacity))
		}
	}

	claimed := 0
	for _, f := range rec.Functions {
		if f.Reserved != nil {
			claimed += *f.Reserved
		} else {
			claimed += f.provisioned()
		}
	}
	if claimed > maxClaim {
		out.Feasible = false
		out.Notes = append(out.Notes, fmt.Sprintf("infeasible: the reservations and provisioned concurrency that meet the targets claim %d, more than the %d the account may claim (L %d − minimum unreserved %d); raise the account limit or accept more throttles", claimed, maxClaim, limits.Concurrency, limits.Minimum()))
	}
	for _, name := range result.Names() {
		if f := result.Functions[name]; f.ThrottleShare > t.Throttle {
			out.Feasible = false
			out.Notes = append(out.Notes, fmt.Sprintf("%s: still throttles %s under the recommended plan", name, pct(f.ThrottleShare)))
		}
	}
	if !result.PlanValid {
		out.Feasible = false
	}
	out.Plan, out.Result, out.Simulations = rec, result, rc.runs
	return out, nil
}

// reserve sizes the reservations of names in p.
func (rc *recommender) reserve(p *Plan, names []string, before *Result, maxClaim int, roomy Options) error {
	var ss []*search
	for _, name := range names {
		f := p.Functions[name]
		target := rc.targets.Throttle
		if b := before.Functions[name]; b != nil && before.PlanValid && b.Reserved != nil && b.ThrottleShare < target {
			target = b.ThrottleShare
		}
		lo := f.provisioned()
		hi := max(lo, maxClaim)
		s := &search{fn: name, lo: lo, hi: hi, ok: func(r *Result) bool {
			x := r.Functions[name]
			return x == nil || x.ThrottleShare <= target
		}}
		ss = append(ss, s)
	}
	err := rc.parallel(ss, func() *Plan {
		q := p.Clone()
		for _, s := range ss {
			q.Functions[s.fn].Reserved = new(s.mid())
		}
		return q
	}, roomy)
	if err != nil {
		return err
	}
	for _, s := range ss {
		p.Functions[s.fn].Reserved = new(s.lo)
	}
	return nil
}

type recommender struct {
	src     Source
	targets Targets
	runs    int
}

func (rc *recommender) run(p *Plan, o Options) (*Result, error) {
	rc.runs++
	return Run(p, rc.src, o)
}

// search is one binary search for the smallest value in [lo, hi] that
// passes ok (hi itself when none does; the final replay tells).
type search struct {
	fn, qualifier string
	lo, hi, top   int
	ok            func(*Result) bool
	begun         bool
}

func (s *search) mid() int {
	if s.lo >= s.hi {
		return s.lo
	}
	return (s.lo + s.hi) / 2
}

// parallel runs the searches side by side: every replay tries each
// search's midpoint, built into a plan by build.
func (rc *recommender) parallel(ss []*search, build func() *Plan, o Options) error {
	for _, s := range ss {
		s.top = s.hi
	}
	for {
		active := false
		for _, s := range ss {
			if s.lo < s.hi || !s.begun {
				active = true
			}
		}
		if !active {
			break
		}
		res, err := rc.run(build(), o)
		if err != nil {
			return err
		}
		for _, s := range ss {
			if s.begun && s.lo >= s.hi {
				continue
			}
			m := s.mid()
			s.begun = true
			if s.ok(res) {
				s.hi = m
			} else {
				s.lo = m + 1
			}
		}
	}
	for _, s := range ss {
		if s.lo > s.top {
			s.lo = s.top
		}
		s.hi = s.top
	}
	return nil
}
