package metrics

import "github.com/prometheus/client_golang/prometheus"

// The event source mappings' families: one series per mapping (there are
// few; AWS allows a queue a handful).

// MappingFigures are one event source mapping's counters.
type MappingFigures struct {
	UUID, Function, Queue                                       string
	Batches, Messages, Deleted, ThrottledBatches, FailedBatches int64
	Filtered                                                    int64
	InFlight, Concurrency                                       int64
}

// Mappings is what metrics reads of the event source mappings.
type Mappings interface {
	MappingFigures() []MappingFigures
}

var (
	descMapBatches   = desc("lambdad_event_source_mapping_batches_total", "Batches an event source mapping handed to its function.", "uuid", "function", "queue")
	descMapMessages  = desc("lambdad_event_source_mapping_messages_total", "Messages in those batches (a message that comes back is counted again).", "uuid", "function", "queue")
	descMapDeleted   = desc("lambdad_event_source_mapping_deleted_total", "Messages deleted from the queue after the function processed them.", "uuid", "function", "queue")
	descMapThrottled = desc("lambdad_event_source_mapping_throttled_batches_total", "Batches refused by admission with 429; their messages return to the queue.", "uuid", "function", "queue")
	descMapFailed    = desc("lambdad_event_source_mapping_failed_batches_total", "Batches the function failed, wholly or in part.", "uuid", "function", "queue")
	descMapFiltered  = desc("lambdad_event_source_mapping_filtered_total", "Messages that matched none of the mapping's FilterCriteria, deleted without an invocation.", "uuid", "function", "queue")
	descMapInFlight  = desc("lambdad_event_source_mapping_in_flight", "Batches of the mapping running now.", "uuid", "function", "queue")
	descMapConc      = desc("lambdad_event_source_mapping_concurrency", "Batches the mapping may run at once now (its scaling).", "uuid", "function", "queue")
)

// SetMappings makes scrapes report the event source mappings of mp.
func (m *Metrics) SetMappings(mp Mappings) { m.mappings.Store(&mp) }

func (m *Metrics) collectMappings(ch chan<- prometheus.Metric) {
	p := m.mappings.Load()
	if p == nil {
		return
	}
	for _, f := range (*p).MappingFigures() {
		l := []string{f.UUID, f.Function, f.Queue}
		for _, c := range []struct {
			d *prometheus.Desc
			v int64
		}{{descMapBatches, f.Batches}, {descMapMessages, f.Messages}, {descMapDeleted, f.Deleted}, {descMapThrottled, f.ThrottledBatches}, {descMapFailed, f.FailedBatches}, {descMapFiltered, f.Filtered}} {
			ch <- prometheus.MustNewConstMetric(c.d, prometheus.CounterValue, float64(c.v), l...)
		}
		ch <- prometheus.MustNewConstMetric(descMapInFlight, prometheus.GaugeValue, float64(f.InFlight), l...)
		ch <- prometheus.MustNewConstMetric(descMapConc, prometheus.GaugeValue, float64(f.Concurrency), l...)
	}
}
