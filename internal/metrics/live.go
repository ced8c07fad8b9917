package metrics

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/lambdad/lambdad/internal/admission"
)

// Picture is the account as the console draws it: each reserved pool, the
// unreserved pool, what runs in each, and throttles. It is the answer of
// GET /lambdad/concurrency and each event of its stream.
type Picture struct {
	Time         time.Time `json:"time"`
	AccountLimit int       `json:"accountLimit"`
	InFlight     int       `json:"inFlight"`
	// Unreserved is the pool the functions without a reservation share:
	// its capacity is U.
	Unreserved Pool `json:"unreserved"`
	// UnreservedProvisioned is the provisioned concurrency of functions
	// without a reservation: claimed out of L, outside U.
	UnreservedProvisioned int `json:"unreservedProvisioned"`
	// Reserved lists the largest reserved pools (at most MaxPools), by
	// reservation then name; OtherReserved sums the rest.
	Reserved      []Pool            `json:"reserved"`
	OtherReserved *Pool             `json:"otherReserved,omitempty"`
	Throttles     map[string]uint64 `json:"throttles"`
	// Functions holds the functions a request named (?function=).
	Functions []FunctionFigures `json:"functions,omitempty"`
}

// Pool is one pool of the picture.
type Pool struct {
	// Function names a reserved pool's function; Functions counts the
	// pools summed into OtherReserved.
	Function  string `json:"function,omitempty"`
	Functions int    `json:"functions,omitempty"`
	Capacity  int    `json:"capacity"`
	InUse     int    `json:"inUse"`
	// Provisioned is the provisioned concurrency configured inside a
	// reserved pool, and ProvisionedInUse what of it runs.
	Provisioned      int    `json:"provisioned,omitempty"`
	ProvisionedInUse int    `json:"provisionedInUse,omitempty"`
	Throttles        uint64 `json:"throttles"`
}

// FunctionFigures is one function's concurrency, for the console's list
// and function page.
type FunctionFigures struct {
	Name        string `json:"name"`
	Reserved    *int   `json:"reserved,omitempty"`
	InFlight    int    `json:"inFlight"`
	Throttles   uint64 `json:"throttles"`
	Invocations uint64 `json:"invocations"`
	Errors      uint64 `json:"errors"`
}

// MaxPools bounds the reserved pools drawn one by one.
const MaxPools = 24

// maxNamed bounds the functions one request may name.
const maxNamed = 200

// picture computes the picture, or returns the one computed within the
// last pictureAge: with many console streams open, admission is walked
// once per pictureAge, not once per stream.
func (m *Metrics) picture() *Picture {
	m.pic.mu.Lock()
	defer m.pic.mu.Unlock()
	if p := m.pic.last; p != nil && time.Since(p.Time) < pictureAge {
		return p
	}
	m.pic.last = pictureOf(m.adm.Snapshot(), time.Now())
	return m.pic.last
}

const pictureAge = 250 * time.Millisecond

// pictureCache holds the last picture.
type pictureCache struct {
	mu   sync.Mutex // guards last
	last *Picture
}

func pictureOf(s admission.Snapshot, now time.Time) *Picture {
	p := &Picture{Time: now, AccountLimit: s.AccountLimit, InFlight: s.InFlight, Throttles: s.Throttles,
		Unreserved: Pool{Capacity: s.UnreservedCapacity, InUse: s.UnreservedInFlight}, Reserved: []Pool{}}
	for _, fs := range s.Functions {
		if !fs.HasReserved {
			p.Unreserved.Throttles += fs.Throttles
			p.UnreservedProvisioned += fs.ProvisionedConfigured
			continue
		}
		p.Reserved = append(p.Reserved, Pool{Function: fs.Name, Capacity: fs.Reserved, InUse: fs.OnDemandInFlight + fs.ProvisionedInFlight,
			Provisioned: fs.ProvisionedConfigured, ProvisionedInUse: fs.ProvisionedInFlight, Throttles: fs.Throttles})
	}
	slices.SortStableFunc(p.Reserved, func(a, b Pool) int { return cmp.Compare(b.Capacity, a.Capacity) })
	if len(p.Reserved) > MaxPools {
		o := &Pool{}
		for _, r := range p.Reserved[MaxPools:] {
			o.Functions++
			o.Capacity += r.Capacity
			o.InUse += r.InUse
			o.Provisioned += r.Provisioned
			o.ProvisionedInUse += r.ProvisionedInUse
			o.Throttles += r.Throttles
		}
		p.Reserved, p.OtherReserved = p.Reserved[:MaxPools], o
	}
	return p
}

// figuresOf is one function's figures.
func (m *Metrics) figuresOf(name string) FunctionFigures {
	f := FunctionFigures{Name: name}
	if fs, ok := m.adm.Function(name); ok {
		f.InFlight, f.Throttles = fs.OnDemandInFlight+fs.ProvisionedInFlight, fs.Throttles
		if fs.HasReserved {
			f.Reserved = new(fs.Reserved)
		}
	}
	if v, ok := m.functions.Load(name); ok {
		c := v.(*counters)
		f.Invocations, f.Errors = c.invocations.Load(), c.errors.Load()
	}
	return f
}

// ServePicture answers GET /lambdad/concurrency: the picture, with the
// figures of each function named by ?function= (repeatable, at most 200).
func (m *Metrics) ServePicture(w http.ResponseWriter, r *http.Request) {
	names := r.URL.Query()["function"]
	if len(names) > maxNamed {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"message":"at most %d functions may be named"}`+"\n", maxNamed)
		return
	}
	p := *m.picture()
	for _, n := range names {
		p.Functions = append(p.Functions, m.figuresOf(n))
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(&p)
}

// StreamInterval is how often the stream sends the picture.
const StreamInterval = 500 * time.Millisecond

// ServeStream answers GET /lambdad/concurrency/stream with server-sent
// events: a "picture" event at once and then every StreamInterval, until
// the client goes, the request's context ends or Close is called.
func (m *Metrics) ServeStream(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	t := time.NewTicker(StreamInterval)
	defer t.Stop()
	for {
		b, err := json.Marshal(m.picture())
		if err != nil {
			return
		}
		if _, err := fmt.Fprintf(w, "event: picture\ndata: %s\n\n", b); err != nil {
			return
		}
		if rc.Flush() != nil {
			return
		}
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		case <-m.done:
			return
		}
	}
}

// Close ends every open stream and stops the history, waiting for it;
// call it when the server shuts down, since a stream never ends by itself
// and a graceful shutdown waits for it.
func (m *Metrics) Close() {
	m.closeOnce.Do(func() { close(m.done) })
	m.wg.Wait()
}
