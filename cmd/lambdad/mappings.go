package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"text/tabwriter"
)

// mapping is what 'lambdad events mappings' shows of one mapping: the
// fields of ListEventSourceMappings and the poller's figures of
// /lambdad/metrics.
type mapping struct {
	UUID           string
	State          string
	FunctionArn    string
	EventSourceArn string
	BatchSize      int
	FilterCriteria *struct{ Filters []struct{ Pattern string } } `json:",omitempty"`
	ScalingConfig  *struct{ MaximumConcurrency int }             `json:",omitempty"`
	// Figures are the poller's counters by name (deleted, filtered,
	// in_flight, ...); none for a mapping not polling (disabled).
	Figures map[string]float64 `json:",omitempty"`
}

// printMappings lists the server's mappings through its API (the pages of
// ListEventSourceMappings) and adds what its metrics say of each.
func printMappings(client *http.Client, endpoint string, asJSON bool) error {
	var all []*mapping
	marker := ""
	for range 1000 { // pages of 100: far more mappings than a server holds
		u := endpoint + "/2015-03-31/event-source-mappings?MaxItems=100"
		if marker != "" {
			u += "&Marker=" + url.QueryEscape(marker)
		}
		body, err := call(client, "GET", u)
		if err != nil {
			return err
		}
		var page struct {
			EventSourceMappings []*mapping
			NextMarker          string
		}
		if err := json.Unmarshal(body, &page); err != nil {
			return fmt.Errorf("ListEventSourceMappings answered %q: %w", body, err)
		}
		all = append(all, page.EventSourceMappings...)
		if marker = page.NextMarker; marker == "" {
			break
		}
	}
	// The figures are extra: a server that refuses its metrics to this
	// caller still has its mappings listed.
	if body, err := call(client, "GET", endpoint+"/lambdad/metrics"); err == nil {
		figures := mappingFigures(body)
		for _, m := range all {
			m.Figures = figures[m.UUID]
		}
	}
	if asJSON {
		b, err := json.MarshalIndent(map[string]any{"EventSourceMappings": all}, "", "  ")
		if err != nil {
			return err
		}
		fmt.Println(string(b))
		return nil
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "UUID\tSTATE\tFUNCTION\tQUEUE\tBATCH\tFILTERS\tMAX CONC\tBATCHES\tDELETED\tFILTERED\tFAILED\tTHROTTLED\tIN FLIGHT")
	for _, m := range all {
		fn := m.FunctionArn[strings.LastIndex(m.FunctionArn, ":function:")+len(":function:"):]
		queue := m.EventSourceArn[strings.LastIndex(m.EventSourceArn, ":")+1:]
		filters, maxConc := 0, "-"
		if m.FilterCriteria != nil {
			filters = len(m.FilterCriteria.Filters)
		}
		if m.ScalingConfig != nil && m.ScalingConfig.MaximumConcurrency > 0 {
			maxConc = fmt.Sprint(m.ScalingConfig.MaximumConcurrency)
		}
		fig := func(name string) string {
			if v, ok := m.Figures[name]; ok {
				return fmt.Sprint(int64(v))
			}
			return "-"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.UUID, m.State, fn, queue, m.BatchSize, filters, maxConc,
			fig("batches_total"), fig("deleted_total"), fig("filtered_total"), fig("failed_batches_total"), fig("throttled_batches_total"), fig("in_flight"))
	}
	return w.Flush()
}

var mappingSeries = regexp.MustCompile(`^lambdad_event_source_mapping_([a-z_]+)\{(.*)\} (\S+)$`)
var uuidLabel = regexp.MustCompile(`uuid="([^"]*)"`)

// mappingFigures reads the event source mapping series of a Prometheus
// text scrape: UUID → figure name → value.
func mappingFigures(scrape []byte) map[string]map[string]float64 {
	out := map[string]map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(scrape))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		m := mappingSeries.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		id := uuidLabel.FindStringSubmatch(m[2])
		var v float64
		if id == nil || json.Unmarshal([]byte(m[3]), &v) != nil {
			continue
		}
		if out[id[1]] == nil {
			out[id[1]] = map[string]float64{}
		}
		out[id[1]][m[1]] = v
	}
	return out
}
