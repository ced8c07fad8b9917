// Package metrics publishes lambdad's concurrency and invocation figures:
// Prometheus families named after AWS's CloudWatch metrics with a lambdad_
// prefix (served at /lambdad/metrics), and the live account picture the
// console draws (JSON and server-sent events under /lambdad/concurrency).
//
// The figures are read from their owners when asked for, never pushed: the
// in-flight counts, settings and throttles from admission's lock-free
// Snapshot, the async figures from the event queue. What only the invoke
// path sees (invocations, errors, durations) it records here through
// Invoked and ObserveRequest, which cost a few atomic adds: no lock, no
// allocation once a function has been seen.
//
// Label cardinality is bounded: per-function series are kept for at most
// Options.MaxFunctions functions (default 1,000), the first ones seen, for
// the life of the process, so that a counter's series never comes and
// goes; every other function is summed into function="(other)", a name no
// function can have. With 100,000 functions a scrape therefore has at most
// 1,001 values of the function label in each per-function family and
// 6,006 per-function series (six a value: concurrent executions, reserved
// concurrency, throttles by each of two reasons, invocations, errors;
// TestCardinalityWithManyFunctions counts them), two more a value for
// functions with provisioned concurrency and four a provisioned target,
// plus a fixed set of account, async, API (one series set per operation,
// about 30) and Go runtime series.
package metrics

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lambdad/lambdad/internal/admission"
	"github.com/lambdad/lambdad/internal/events"
	"github.com/lambdad/lambdad/internal/invoke"
)

// Admission is what metrics reads of the admission controller.
type Admission interface {
	Snapshot() admission.Snapshot
	Function(name string) (admission.FunctionState, bool)
}

// Events is what metrics reads of the asynchronous queue; nil when there is
// none.
type Events interface {
	Stats() events.Stats
}

// Options configure a Metrics.
type Options struct {
	// MaxFunctions bounds the functions given series of their own; 0 means
	// 1,000.
	MaxFunctions int
	// HistoryInterval is how often Start records the picture; 0 means 1 s.
	HistoryInterval time.Duration
	// Account is the account whose invocations are counted, the one whose
	// admission the figures are read from: another account's function of
	// the same name is a different function and must not add to its
	// series. Empty counts every invocation.
	Account string
}

// Other is the function label of the sum over functions past
// Options.MaxFunctions. Function names cannot hold parentheses.
const Other = "(other)"

// Metrics records what the invoke path reports and serves every family.
// The zero value is not usable; call New.
type Metrics struct {
	adm      Admission
	events   Events
	mappings atomic.Pointer[Mappings]
	reg      *prometheus.Registry
	max      int
	account  string

	// functions maps a function name to its *counters. Entries are made
	// on a function's first invocation and kept for the life of the
	// process (a few dozen bytes each).
	functions sync.Map

	duration, initDuration prometheus.Histogram

	// ops maps an API operation to its latency histogram; the map is
	// replaced whole when an operation is first seen, so that readers take
	// no lock.
	ops   atomic.Pointer[map[string]prometheus.Observer]
	opsMu sync.Mutex // serialises the replacements of ops
	opVec *prometheus.HistogramVec

	pic       pictureCache
	done      chan struct{} // closed by Close: streams and the history end
	closeOnce sync.Once
	wg        sync.WaitGroup // the history's goroutine

	histMu sync.Mutex // guards hist's ring
	hist   history

	mu sync.Mutex // guards the following; taken by scrapes only
	// own holds the functions that have series of their own.
	own map[string]bool
}

// counters are one function's invocation counts.
type counters struct {
	invocations, errors, provisioned, spillover atomic.Uint64
}

// New returns the metrics of one node over its admission controller and
// its event queue (ev may be nil).
func New(adm Admission, ev Events, o Options) *Metrics {
	if o.MaxFunctions <= 0 {
		o.MaxFunctions = 1000
	}
	if o.HistoryInterval <= 0 {
		o.HistoryInterval = time.Second
	}
	m := &Metrics{adm: adm, events: ev, reg: prometheus.NewRegistry(), max: o.MaxFunctions, account: o.Account, own: map[string]bool{},
		done: make(chan struct{})}
	m.hist = history{interval: o.HistoryInterval, ring: make([]*Picture, max(1, int(HistoryLength/o.HistoryInterval)))}
	// Buckets from 1 ms to about 16 min: Lambda's durations run from
	// under a millisecond to the 15-minute timeout.
	buckets := prometheus.ExponentialBuckets(0.001, 4, 11)
	m.duration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "lambdad_duration_seconds", Help: "Time the function code spent on an invocation (CloudWatch Duration), all functions.", Buckets: buckets,
	})
	m.initDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "lambdad_init_duration_seconds", Help: "Init time of the invocations that started a new environment (REPORT's Init Duration), all functions.", Buckets: buckets,
	})
	m.opVec = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "lambdad_api_request_duration_seconds", Help: "Time to answer an API request, by AWS operation.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
	}, []string{"operation"})
	m.ops.Store(&map[string]prometheus.Observer{})
	m.reg.MustRegister(m.duration, m.initDuration, m.opVec, (*collector)(m),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Invoked records one invocation that ran (invoke.Observer), when it is
// of the metrics' account.
func (m *Metrics) Invoked(account, function string, o invoke.Outcome) {
	if m.account != "" && account != m.account {
		return
	}
	c := m.counters(function)
	c.invocations.Add(1)
	if o.Error {
		c.errors.Add(1)
	}
	if o.Provisioned {
		c.provisioned.Add(1)
	}
	if o.Spillover {
		c.spillover.Add(1)
	}
	m.duration.Observe(o.Duration.Seconds())
	if o.InitDuration > 0 {
		m.initDuration.Observe(o.InitDuration.Seconds())
	}
}

func (m *Metrics) counters(function string) *counters {
	if v, ok := m.functions.Load(function); ok {
		return v.(*counters)
	}
	v, _ := m.functions.LoadOrStore(function, new(counters))
	return v.(*counters)
}

// ObserveRequest records one API request's latency (api.RequestObserver).
// The operations are the model's, so the label is bounded by the API.
func (m *Metrics) ObserveRequest(operation string, _ int, took time.Duration) {
	o, ok := (*m.ops.Load())[operation]
	if !ok {
		o = m.addOp(operation)
	}
	o.Observe(took.Seconds())
}

func (m *Metrics) addOp(operation string) prometheus.Observer {
	m.opsMu.Lock()
	defer m.opsMu.Unlock()
	old := *m.ops.Load()
	if o, ok := old[operation]; ok {
		return o
	}
	next := make(map[string]prometheus.Observer, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	o := m.opVec.WithLabelValues(operation)
	next[operation] = o
	m.ops.Store(&next)
	return o
}

// Handler serves the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
