package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lambdad/lambdad/internal/admission"
	"github.com/lambdad/lambdad/internal/awserr"
)

// collector reads the owners' figures at scrape time.
type collector Metrics

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

var (
	descAccountLimit    = desc("lambdad_account_concurrency_limit", "The account concurrency limit L.")
	descUnreservedLimit = desc("lambdad_unreserved_concurrency_limit", "U: the capacity of the unreserved pool (GetAccountSettings' UnreservedConcurrentExecutions).")
	descAccountConc     = desc("lambdad_account_concurrent_executions", "Invocations running in the account (CloudWatch ConcurrentExecutions without dimensions).")
	descUnreservedConc  = desc("lambdad_unreserved_concurrent_executions", "Invocations running in the unreserved pool (CloudWatch UnreservedConcurrentExecutions).")
	descClaimed         = desc("lambdad_claimed_account_concurrency", "Concurrency unavailable to on-demand invocations of unreserved functions: the unreserved pool's running invocations plus what reservations and provisioned concurrency claim (CloudWatch ClaimedAccountConcurrency).")
	descConc            = desc("lambdad_concurrent_executions", "Invocations of the function running now, on-demand and provisioned (CloudWatch ConcurrentExecutions; resource is the function as a whole).", "function", "resource")
	descReserved        = desc("lambdad_reserved_concurrency", "The function's reserved concurrency, for functions that have one.", "function")
	descThrottles       = desc("lambdad_throttles_total", "Invocations refused with 429 TooManyRequestsException (CloudWatch Throttles), by AWS Reason.", "function", "reason")
	descInvocations     = desc("lambdad_invocations_total", "Invocations that ran the function's code, errors included (CloudWatch Invocations).", "function")
	descErrors          = desc("lambdad_errors_total", "Invocations that ended in a function error, a timeout or a crash (CloudWatch Errors).", "function")
	descProvConc        = desc("lambdad_provisioned_concurrent_executions", "Invocations running on provisioned environments (CloudWatch ProvisionedConcurrentExecutions); resource is function:qualifier.", "function", "resource")
	descProvUtil        = desc("lambdad_provisioned_concurrency_utilization", "Provisioned environments in use over those allocated, 0 to 1 (CloudWatch ProvisionedConcurrencyUtilization).", "function", "resource")
	descProvConfigured  = desc("lambdad_provisioned_concurrency_configured", "Provisioned concurrency requested on the target.", "function", "resource")
	descProvAllocated   = desc("lambdad_provisioned_concurrency_allocated", "Provisioned environments ready on the target.", "function", "resource")
	descProvInvocations = desc("lambdad_provisioned_concurrency_invocations_total", "Invocations that ran on provisioned environments (CloudWatch ProvisionedConcurrencyInvocations).", "function")
	descSpillover       = desc("lambdad_provisioned_concurrency_spillover_invocations_total", "Invocations of a provisioned target that ran on-demand because its environments were all busy (CloudWatch ProvisionedConcurrencySpilloverInvocations).", "function")
	descAsyncReceived   = desc("lambdad_async_events_received_total", "Asynchronous events accepted (CloudWatch AsyncEventsReceived).")
	descAsyncDropped    = desc("lambdad_async_events_dropped_total", "Asynchronous events that failed and went to a destination or the dead-letter list (CloudWatch AsyncEventsDropped).")
	descAsyncAge        = desc("lambdad_async_event_age_seconds", "Age of the last event taken to run, from acceptance to that attempt (CloudWatch AsyncEventAge).")
	descAsyncPending    = desc("lambdad_async_events_pending", "Asynchronous events waiting to run.")
	reasonReserved      = awserr.ReasonReservedFunctionConcurrentInvocationLimitExceeded
	reasonAccount       = awserr.ReasonConcurrentInvocationLimitExceeded
)

// Describe sends nothing: the per-function families' label values are
// known only at scrape time, so the collector is an unchecked one.
func (c *collector) Describe(chan<- *prometheus.Desc) {}

// fnFigures are one function's (or "(other)"'s) figures in a scrape.
type fnFigures struct {
	inFlight                                    int
	hasReserved                                 bool
	reserved                                    int
	throttlesReserved, throttlesAccount         uint64
	invocations, errors, provisioned, spillover uint64
	targets                                     []admission.TargetState
}

// Collect reads admission's snapshot and the invocation counters.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	m := (*Metrics)(c)
	s := m.adm.Snapshot()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(descAccountLimit, float64(s.AccountLimit))
	gauge(descUnreservedLimit, float64(s.UnreservedCapacity))
	gauge(descAccountConc, float64(s.InFlight))
	gauge(descUnreservedConc, float64(s.UnreservedInFlight))
	gauge(descClaimed, float64(s.UnreservedInFlight+s.AccountLimit-s.UnreservedCapacity))

	figs := m.figures(s)
	for name, f := range figs {
		gauge(descConc, float64(f.inFlight), name, name)
		if f.hasReserved {
			gauge(descReserved, float64(f.reserved), name)
		}
		counter(descThrottles, f.throttlesReserved, name, reasonReserved)
		counter(descThrottles, f.throttlesAccount, name, reasonAccount)
		counter(descInvocations, f.invocations, name)
		counter(descErrors, f.errors, name)
		// Most functions have no provisioned concurrency: their
		// provisioned counters would be zeros in every scrape.
		if len(f.targets) > 0 || f.provisioned != 0 || f.spillover != 0 {
			counter(descProvInvocations, f.provisioned, name)
			counter(descSpillover, f.spillover, name)
		}
		for _, t := range f.targets {
			// The targets summed into Other are one resource, Other.
			res := name + ":" + t.Target
			if name == Other {
				res = Other
			}
			gauge(descProvConc, float64(t.InFlight), name, res)
			gauge(descProvConfigured, float64(t.Configured), name, res)
			gauge(descProvAllocated, float64(t.Allocated), name, res)
			util := 0.0
			if t.Allocated > 0 {
				util = float64(t.InFlight) / float64(t.Allocated)
			}
			gauge(descProvUtil, util, name, res)
		}
	}
	if m.events != nil {
		st := m.events.Stats()
		counter(descAsyncReceived, uint64(st.AsyncEventsReceived))
		counter(descAsyncDropped, uint64(st.AsyncEventsDropped))
		gauge(descAsyncAge, float64(st.AsyncEventAgeMillis)/1000)
		gauge(descAsyncPending, float64(st.Pending))
	}
}

// figures gathers each function's figures, giving series of their own to
// at most m.max functions and summing the rest into Other.
func (m *Metrics) figures(s admission.Snapshot) map[string]*fnFigures {
	m.mu.Lock()
	defer m.mu.Unlock()
	figs := make(map[string]*fnFigures, min(len(s.Functions)+1, m.max+1))
	slot := func(name string) *fnFigures {
		if !m.own[name] {
			if len(m.own) >= m.max {
				name = Other
			} else {
				m.own[name] = true
			}
		}
		f := figs[name]
		if f == nil {
			f = &fnFigures{}
			figs[name] = f
		}
		return f
	}
	for i := range s.Functions {
		fs := &s.Functions[i]
		f := slot(fs.Name)
		f.inFlight += fs.OnDemandInFlight + fs.ProvisionedInFlight
		if fs.HasReserved {
			f.hasReserved = true
			f.reserved += fs.Reserved
		}
		f.throttlesReserved += fs.ThrottlesReserved
		f.throttlesAccount += fs.Throttles - fs.ThrottlesReserved
		if len(fs.Targets) > 0 {
			if f == figs[Other] {
				f.targets = mergeTargets(f.targets, fs.Targets)
			} else {
				f.targets = fs.Targets
			}
		}
	}
	m.functions.Range(func(k, v any) bool {
		f, c := slot(k.(string)), v.(*counters)
		f.invocations += c.invocations.Load()
		f.errors += c.errors.Load()
		f.provisioned += c.provisioned.Load()
		f.spillover += c.spillover.Load()
		return true
	})
	return figs
}

// mergeTargets adds ts into the one summed target of Other.
func mergeTargets(sum []admission.TargetState, ts []admission.TargetState) []admission.TargetState {
	if len(sum) == 0 {
		sum = []admission.TargetState{{Target: Other}}
	}
	for _, t := range ts {
		sum[0].Configured += t.Configured
		sum[0].Allocated += t.Allocated
		sum[0].InFlight += t.InFlight
	}
	return sum
}
