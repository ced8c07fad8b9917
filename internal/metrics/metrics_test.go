package metrics

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/lambdad/lambdad/internal/admission"
	"github.com/lambdad/lambdad/internal/invoke"
)

func gather(t testing.TB, m *Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/lambdad/metrics", nil))
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(rec.Body.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// TestHotPathDoesNotAllocate: once a function and an operation have been
// seen, recording an invocation and a request allocates nothing.
func TestHotPathDoesNotAllocate(t *testing.T) {
	m := New(admission.New(10), nil, Options{})
	o := invoke.Outcome{Duration: 3 * time.Millisecond, InitDuration: time.Millisecond, Error: true, Spillover: true}
	m.Invoked("", "f", o)
	m.ObserveRequest("Invoke", 200, time.Millisecond)
	if n := testing.AllocsPerRun(1000, func() {
		m.Invoked("", "f", o)
		m.ObserveRequest("Invoke", 200, time.Millisecond)
	}); n != 0 {
		t.Errorf("recording allocates %v times", n)
	}
}

// TestCardinalityIsBounded: past MaxFunctions, functions are summed into
// function="(other)", and the ones that had series keep them.
func TestCardinalityIsBounded(t *testing.T) {
	adm := admission.New(1000)
	m := New(adm, nil, Options{MaxFunctions: 3})
	for i := range 3 {
		m.Invoked("", fmt.Sprintf("a%d", i), invoke.Outcome{})
	}
	gather(t, m)
	for i := range 10 {
		name := fmt.Sprintf("b%d", i)
		adm.SetReserved(name, 1, true)
		m.Invoked("", name, invoke.Outcome{Error: true})
	}
	fams := gather(t, m)
	values := map[string]float64{}
	for _, s := range fams["lambdad_invocations_total"].Metric {
		values[s.Label[0].GetValue()] = s.Counter.GetValue()
	}
	want := map[string]float64{"a0": 1, "a1": 1, "a2": 1, Other: 10}
	if fmt.Sprint(values) != fmt.Sprint(want) {
		t.Errorf("invocations by function = %v, want %v", values, want)
	}
	if got := len(fams["lambdad_reserved_concurrency"].Metric); got != 1 {
		t.Errorf("%d reserved series, want 1 (the sum)", got)
	}
	if got := fams["lambdad_reserved_concurrency"].Metric[0].Gauge.GetValue(); got != 10 {
		t.Errorf("summed reservation %v, want 10", got)
	}
}

func TestPictureSumsPastMaxPools(t *testing.T) {
	adm := admission.New(1000)
	for i := range MaxPools + 3 {
		adm.SetReserved(fmt.Sprintf("r%02d", i), 1+i, true)
	}
	s, err := adm.Acquire("u", "$LATEST")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release()
	p := pictureOf(adm.Snapshot(), time.Now())
	if len(p.Reserved) != MaxPools || p.OtherReserved == nil || p.OtherReserved.Functions != 3 || p.OtherReserved.Capacity != 1+2+3 {
		t.Errorf("reserved pools %d, other %+v", len(p.Reserved), p.OtherReserved)
	}
	if p.Reserved[0].Function != fmt.Sprintf("r%02d", MaxPools+2) {
		t.Errorf("the largest pool is not first: %+v", p.Reserved[0])
	}
	if p.Unreserved.InUse != 1 || p.Unreserved.Capacity != adm.Unreserved() {
		t.Errorf("unreserved pool %+v", p.Unreserved)
	}
}

// BenchmarkScrape is one whole scrape (collection and text encoding) with
// 10,000 functions, each reserved and invoked: with the default bound on
// functions with series of their own, and with every function given its
// own.
func BenchmarkScrape(b *testing.B) {
	b.Run("default", func(b *testing.B) { benchmarkScrape(b, 0) })
	b.Run("unbounded", func(b *testing.B) { benchmarkScrape(b, 10000) })
}

func benchmarkScrape(b *testing.B, maxFunctions int) {
	adm := admission.New(admission.MaxConcurrency)
	m := New(adm, nil, Options{MaxFunctions: maxFunctions})
	for i := range 10000 {
		name := fmt.Sprintf("fn-%05d", i)
		adm.SetReserved(name, 1, true)
		m.Invoked("", name, invoke.Outcome{Duration: time.Millisecond})
	}
	req := httptest.NewRequest("GET", "/lambdad/metrics", nil)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		m.Handler().ServeHTTP(rec, req)
	}
}

func TestServePicture(t *testing.T) {
	adm := admission.New(100)
	adm.SetReserved("r", 5, true)
	m := New(adm, nil, Options{})
	m.Invoked("", "r", invoke.Outcome{Error: true})
	rec := httptest.NewRecorder()
	m.ServePicture(rec, httptest.NewRequest("GET", "/lambdad/concurrency?function=r&function=nobody", nil))
	var p Picture
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatal(err)
	}
	if len(p.Reserved) != 1 || p.Reserved[0].Function != "r" || p.Reserved[0].Capacity != 5 || p.Unreserved.Capacity != 95 {
		t.Errorf("pools %+v, unreserved %+v", p.Reserved, p.Unreserved)
	}
	if len(p.Functions) != 2 || p.Functions[0].Reserved == nil || *p.Functions[0].Reserved != 5 || p.Functions[0].Errors != 1 || p.Functions[1].Reserved != nil {
		t.Errorf("the named functions: %+v", p.Functions)
	}
	many := "/lambdad/concurrency?" + strings.Repeat("function=x&", maxNamed+1)
	rec = httptest.NewRecorder()
	m.ServePicture(rec, httptest.NewRequest("GET", many, nil))
	if rec.Code != 400 || rec.Header().Get("Content-Type") != "application/json" {
		t.Errorf("too many functions: %d %s", rec.Code, rec.Body)
	}
}

func TestProvisionedFamilies(t *testing.T) {
	adm := admission.New(100)
	adm.SetProvisionedConfigured("p", "live", 2)
	adm.SetProvisioned("p", "live", 2)
	s, err := adm.Acquire("p", "live")
	if err != nil || !s.Provisioned() {
		t.Fatalf("acquire: %v, provisioned %v", err, s.Provisioned())
	}
	defer s.Release()
	m := New(adm, nil, Options{})
	m.Invoked("", "p", invoke.Outcome{Provisioned: true})
	m.Invoked("", "p", invoke.Outcome{Spillover: true})
	fams := gather(t, m)
	get := func(name string) float64 {
		for _, s := range fams[name].GetMetric() {
			v := s.GetGauge().GetValue() + s.GetCounter().GetValue()
			return v
		}
		return -1
	}
	for name, want := range map[string]float64{
		"lambdad_provisioned_concurrent_executions":                   1,
		"lambdad_provisioned_concurrency_utilization":                 0.5,
		"lambdad_provisioned_concurrency_configured":                  2,
		"lambdad_provisioned_concurrency_invocations_total":           1,
		"lambdad_provisioned_concurrency_spillover_invocations_total": 1,
		"lambdad_claimed_account_concurrency":                         2,
	} {
		if got := get(name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if res := fams["lambdad_provisioned_concurrent_executions"].Metric[0].Label[1].GetValue(); res != "p:live" {
		t.Errorf("resource %q, want p:live", res)
	}
}

// TestHistory: Start records the picture every interval, the ring keeps
// the last HistoryLength, and Close stops it.
func TestHistory(t *testing.T) {
	adm := admission.New(100)
	m := New(adm, nil, Options{HistoryInterval: HistoryLength / 4})
	for i := range 6 {
		adm.SetReserved("r", i+1, true)
		m.record(pictureOf(adm.Snapshot(), time.Unix(int64(i), 0)))
	}
	got := m.samples()
	if len(got) != 4 || got[0].Reserved[0].Capacity != 3 || got[3].Reserved[0].Capacity != 6 {
		t.Fatalf("the ring holds %d pictures from %+v", len(got), got[0].Reserved)
	}

	m = New(adm, nil, Options{HistoryInterval: 5 * time.Millisecond})
	m.Start()
	time.Sleep(60 * time.Millisecond)
	m.Close()
	n := len(m.samples())
	if n < 3 {
		t.Errorf("%d pictures after 60 ms at one per 5 ms", n)
	}
	time.Sleep(20 * time.Millisecond)
	if len(m.samples()) != n {
		t.Error("the history goes on after Close")
	}
	rec := httptest.NewRecorder()
	m.ServeHistory(rec, httptest.NewRequest("GET", "/lambdad/concurrency/history", nil))
	var h struct {
		IntervalMillis int64
		Pictures       []Picture
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &h); err != nil || len(h.Pictures) != n || h.IntervalMillis != 5 {
		t.Errorf("history answer: %v, %d pictures, interval %d", err, len(h.Pictures), h.IntervalMillis)
	}
}

// TestCardinalityWithManyFunctions: with 100,000 functions, each reserved
// and invoked, a scrape has at most 1,001 values of the function label in
// any family (the first 1,000 seen and Other) and 6 series per value
// across the per-function families: the bound the package documents.
func TestCardinalityWithManyFunctions(t *testing.T) {
	if testing.Short() {
		t.Skip("registers 100,000 functions")
	}
	adm := admission.New(admission.MaxConcurrency)
	m := New(adm, nil, Options{})
	for i := range 100000 {
		name := fmt.Sprintf("fn-%06d", i)
		adm.SetReserved(name, 1, true)
		m.Invoked("", name, invoke.Outcome{Duration: time.Millisecond})
	}
	fams := gather(t, m)
	series := 0
	for name, f := range fams {
		values := map[string]bool{}
		for _, s := range f.Metric {
			for _, l := range s.Label {
				if l.GetName() == "function" {
					values[l.GetValue()] = true
				}
			}
		}
		if len(values) == 0 {
			continue
		}
		series += len(f.Metric)
		if len(values) > 1001 {
			t.Errorf("%s has %d values of function, want at most 1,001", name, len(values))
		}
	}
	if series > 6*1001 {
		t.Errorf("%d per-function series with 100,000 functions, want at most %d", series, 6*1001)
	}
	t.Logf("%d per-function series with 100,000 functions", series)
}
