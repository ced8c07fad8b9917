package simulate

import (
	"io"
	"runtime"
	"strconv"
	"testing"
)

// genTrace is a CSV trace made on the fly: n invocations over 20
// functions (four reserved in the plan below, one with an alias), one
// every 50 µs, lasting 10 to 400 ms, so that about 4,000 are in flight.
// It samples the heap every million lines, to show it flat.
type genTrace struct {
	n, i    int
	buf     []byte
	maxHeap uint64
}

var genNames = func() []string {
	var s []string
	for i := 0; i < 20; i++ {
		s = append(s, "fn"+strconv.Itoa(i))
	}
	s[1] += ":live"
	return s
}()

func (g *genTrace) Read(p []byte) (int, error) {
	if g.i == 0 && g.buf == nil {
		g.buf = append(g.buf, "timestamp_ms,function,duration_ms,init_ms\n"...)
	}
	for len(g.buf) < len(p) && g.i < g.n {
		g.buf = strconv.AppendFloat(g.buf, float64(g.i)*0.05, 'f', 2, 64)
		g.buf = append(g.buf, ',')
		g.buf = append(g.buf, genNames[(g.i*7)%len(genNames)]...)
		g.buf = append(g.buf, ',')
		g.buf = strconv.AppendInt(g.buf, int64(10+(g.i*31)%390), 10)
		g.buf = append(g.buf, ",120\n"...)
		g.i++
		if g.i%1000000 == 0 {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			g.maxHeap = max(g.maxHeap, m.HeapInuse)
		}
	}
	if len(g.buf) == 0 {
		return 0, io.EOF
	}
	n := copy(p, g.buf)
	g.buf = g.buf[:copy(g.buf, g.buf[n:])]
	return n, nil
}

const benchPlan = `{"account_limit": 5000, "functions": {"fn0": {"reserved": 150}, "fn1": {"reserved": 300, "provisioned": {"live": 100}}, "fn2": {"reserved": 100}, "fn3": {"reserved": 250}}}`

// BenchmarkSimulate reports the cost of one simulated invocation, trace
// parsing included.
func BenchmarkSimulate(b *testing.B) {
	p := plan(b, benchPlan)
	g := &genTrace{n: b.N}
	b.ReportAllocs()
	b.ResetTimer()
	r, err := RunReader(p, g, Options{})
	if err != nil {
		b.Fatal(err)
	}
	if r.Account.Invocations+r.Account.Throttles != int64(b.N) {
		b.Fatalf("%d requests simulated, want %d", r.Account.Invocations+r.Account.Throttles, b.N)
	}
}

// BenchmarkSimulate10M simulates ten million invocations per iteration
// and reports the heap's high mark: it stays flat whatever the length.
func BenchmarkSimulate10M(b *testing.B) {
	p := plan(b, benchPlan)
	for b.Loop() {
		g := &genTrace{n: 10_000_000}
		r, err := RunReader(p, g, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if r.Account.Throttles == 0 || r.Account.Invocations == 0 {
			b.Fatalf("account %+v", r.Account)
		}
		b.ReportMetric(float64(g.maxHeap)/(1<<20), "MB-heap")
	}
}
