package simulate

import (
	"bufio"
	"fmt"
	"html"
	"io"
	"strings"
)

// The chart samples each pool's concurrency (each reserved function's, and
// the unreserved pool's) in time buckets of one width for all pools. The
// trace's length is not known while it streams, so the buckets start at a
// millisecond and double in width, merging pairs, whenever they would
// pass maxBuckets: the chart's size is bounded whatever the trace.
const maxBuckets = 512

type chartData struct {
	start, width int64
	n            int // buckets in use
	pools        []*series
	unres        *series
}

// series is one pool: its limit, and per bucket the most invocations
// running in it and the throttles.
type series struct {
	name    string
	limit   int64
	peak    int64
	cur     int64
	max     []int64
	thr     []int64
	thrSum  int64
	reserve bool
}

func newChart() *chartData { return &chartData{width: 1e6} }

// begin makes the pools once the plan's functions are known.
func (c *chartData) begin(s *sim, at int64) {
	c.start = at
	for _, name := range s.plan.names() {
		f := s.fns[name]
		if f.reserved {
			f.pool = &series{name: name, limit: int64(*s.plan.Functions[name].Reserved), reserve: true}
			c.pools = append(c.pools, f.pool)
		}
	}
	c.unres = &series{name: "unreserved pool", limit: s.u}
	c.pools = append(c.pools, c.unres)
}

func (c *chartData) pool(f *fnState) *series {
	if f.pool != nil {
		return f.pool
	}
	return c.unres
}

// bucket returns the bucket of time at, widening the buckets and
// extending every pool up to it.
func (c *chartData) bucket(at int64) int {
	i := int((at - c.start) / c.width)
	for i >= maxBuckets {
		c.widen()
		i = int((at - c.start) / c.width)
	}
	for c.n <= i {
		for _, p := range c.pools {
			// A bucket no event touches holds the level of the one
			// before.
			p.max = append(p.max, p.cur)
			p.thr = append(p.thr, 0)
		}
		c.n++
	}
	return i
}

// widen doubles the buckets' width, merging pairs.
func (c *chartData) widen() {
	c.width *= 2
	n := (c.n + 1) / 2
	for _, p := range c.pools {
		for i := 0; i < n; i++ {
			m, t := p.max[2*i], p.thr[2*i]
			if 2*i+1 < c.n {
				m, t = max(m, p.max[2*i+1]), t+p.thr[2*i+1]
			}
			p.max[i], p.thr[i] = m, t
		}
		p.max, p.thr = p.max[:n], p.thr[:n]
	}
	c.n = n
}

// sample records f's pool's level now.
func (c *chartData) sample(s *sim, f *fnState) {
	p, level := c.unres, s.unres
	if f.pool != nil {
		p, level = f.pool, f.onDemand+f.prov
	}
	i := c.bucket(s.now)
	p.cur = level
	p.max[i] = max(p.max[i], level)
	p.peak = max(p.peak, level)
}

func (c *chartData) throttle(s *sim, f *fnState, at int64) {
	p := c.pool(f)
	p.thr[c.bucket(at)]++
	p.thrSum++
}

func (c *chartData) end(s *sim) { c.bucket(s.now) }

// Chart writes the result's concurrency per pool over time as SVG: one
// panel per pool, the concurrency as a line, the pool's limit as a dashed
// line, throttles as red marks under the buckets they fell in. The result
// must come from a run with Options.Chart.
func (r *Result) Chart(w io.Writer) error {
	c := r.chart
	if c == nil {
		return fmt.Errorf("simulate: the run kept no chart (Options.Chart)")
	}
	const (
		width, left, right = 960, 70, 20
		panel, gap, top    = 130, 40, 30
	)
	plot := float64(width - left - right)
	height := top + len(c.pools)*(panel+gap)
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(bw, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	span := float64(c.width) * float64(max(c.n, 1))
	fmt.Fprintf(bw, `<text x="%d" y="18" font-size="14">Concurrency per pool over %s s (buckets of %s ms; dashed: the limit; red: throttles)</text>`+"\n",
		left, fmtFloat(span/1e9), fmtFloat(float64(c.width)/1e6))
	for k, p := range c.pools {
		y0 := top + k*(panel+gap) + 20
		scale := float64(max(p.limit, p.peak, 1)) * 1.1
		yOf := func(v int64) float64 { return float64(y0) + float64(panel) - float64(v)/scale*float64(panel) }
		xOf := func(i int) float64 { return float64(left) + plot*float64(i)/float64(max(c.n, 1)) }
		kind := "reservation"
		if !p.reserve {
			kind = "U"
		}
		fmt.Fprintf(bw, `<text x="%d" y="%d">%s — %s %d, peak %d, throttles %d</text>`+"\n", left, y0-6, html.EscapeString(p.name), kind, p.limit, p.peak, p.thrSum)
		fmt.Fprintf(bw, `<rect x="%d" y="%d" width="%s" height="%d" fill="none" stroke="#ccc"/>`+"\n", left, y0, fmtFloat(plot), panel)
		fmt.Fprintf(bw, `<text x="%d" y="%s" text-anchor="end">%d</text><text x="%d" y="%d" text-anchor="end">0</text>`+"\n",
			left-6, fmtFloat(yOf(p.limit)+4), p.limit, left-6, y0+panel)
		// The concurrency, as steps: each bucket's most.
		var pts strings.Builder
		for i := 0; i < c.n; i++ {
			y := fmtFloat(yOf(p.max[i]))
			fmt.Fprintf(&pts, "%s,%s %s,%s ", fmtFloat(xOf(i)), y, fmtFloat(xOf(i+1)), y)
		}
		fmt.Fprintf(bw, `<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="%s"/>`+"\n", strings.TrimSpace(pts.String()))
		fmt.Fprintf(bw, `<line x1="%d" x2="%s" y1="%s" y2="%s" stroke="#d62728" stroke-dasharray="6,4"/>`+"\n",
			left, fmtFloat(float64(left)+plot), fmtFloat(yOf(p.limit)), fmtFloat(yOf(p.limit)))
		for i := 0; i < c.n; i++ {
			if p.thr[i] > 0 {
				fmt.Fprintf(bw, `<rect x="%s" y="%d" width="%s" height="6" fill="#d62728"><title>%d throttles</title></rect>`+"\n",
					fmtFloat(xOf(i)), y0+panel+2, fmtFloat(max(xOf(i+1)-xOf(i), 1)), p.thr[i])
			}
		}
	}
	y := height - 8
	fmt.Fprintf(bw, `<text x="%d" y="%d">0 s</text><text x="%d" y="%d" text-anchor="end">%s s</text>`+"\n", left, y, width-right, y, fmtFloat(span/1e9))
	fmt.Fprintln(bw, `</svg>`)
	return bw.Flush()
}

func fmtFloat(f float64) string {
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.2f", f), "0"), ".")
}
