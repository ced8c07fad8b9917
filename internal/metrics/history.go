package metrics

import (
	"encoding/json"
	"net/http"
	"time"
)

// HistoryLength is how far back the picture's history goes, so that the
// console's charts show the last minutes as soon as the page opens.
const HistoryLength = 5 * time.Minute

// history is a ring of pictures taken every interval, guarded by mu.
type history struct {
	interval time.Duration
	ring     []*Picture // oldest first once full: next is the oldest
	next     int
	full     bool
}

// Start begins keeping the picture's history: one picture every
// Options.HistoryInterval (1 s by default) for the last HistoryLength.
// Close stops it and waits for it.
func (m *Metrics) Start() {
	m.wg.Go(func() {
		t := time.NewTicker(m.hist.interval)
		defer t.Stop()
		for {
			m.record(m.picture())
			select {
			case <-t.C:
			case <-m.done:
				return
			}
		}
	})
}

func (m *Metrics) record(p *Picture) {
	m.histMu.Lock()
	defer m.histMu.Unlock()
	h := &m.hist
	h.ring[h.next] = p
	h.next = (h.next + 1) % len(h.ring)
	if h.next == 0 {
		h.full = true
	}
}

// samples returns the history, oldest first.
func (m *Metrics) samples() []*Picture {
	m.histMu.Lock()
	defer m.histMu.Unlock()
	h := &m.hist
	if !h.full {
		return append([]*Picture(nil), h.ring[:h.next]...)
	}
	return append(append([]*Picture(nil), h.ring[h.next:]...), h.ring[:h.next]...)
}

// ServeHistory answers GET /lambdad/concurrency/history: the pictures of
// the last HistoryLength, oldest first, one per history interval.
func (m *Metrics) ServeHistory(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(struct {
		IntervalMillis int64      `json:"intervalMillis"`
		Pictures       []*Picture `json:"pictures"`
	}{m.hist.interval.Milliseconds(), m.samples()})
}
