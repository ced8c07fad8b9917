package simulate

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// WriteJSON writes r as one JSON object.
func (r *Result) WriteJSON(w io.Writer) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// WriteText writes r as a table: the plan's validity and problems, then
// one line per function and one for the account.
func (r *Result) WriteText(w io.Writer) error {
	if r.PlanValid {
		fmt.Fprintln(w, "plan: valid under AWS's rules")
	} else {
		fmt.Fprintf(w, "plan: NOT valid under AWS's rules (%d problems)\n", len(r.Problems))
		for _, p := range r.Problems {
			fmt.Fprintf(w, "  %s\n", p)
		}
	}
	a := r.Account
	fmt.Fprintf(w, "account: limit %d, minimum unreserved %d, unreserved pool %d, peak unreserved %d, peak concurrency %d, unreserved pool full %s\n",
		a.Limit, a.MinUnreserved, a.UnreservedCapacity, a.PeakUnreserved, a.PeakConcurrency, msText(a.TimeUnreservedFullMs))
	fmt.Fprintf(w, "over %s: %d invocations, %d throttles, %d cold starts\n\n", msText(a.SpanMs), a.Invocations, a.Throttles, a.ColdStarts)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "FUNCTION\tRESERVED\tPROVISIONED\tINVOCATIONS\tTHROTTLES\tSHARE\tPEAK\tAT LIMIT\tCOLD STARTS\tREASONS\t")
	for _, name := range r.Names() {
		f := r.Functions[name]
		res := "-"
		if f.Reserved != nil {
			res = strconv.Itoa(*f.Reserved)
		}
		var why []string
		for _, reason := range reasons {
			if n := f.ThrottlesByReason[reason]; n > 0 {
				why = append(why, fmt.Sprintf("%s %d", reason, n))
			}
		}
		if n := f.ThrottlesByReason["Other"]; n > 0 {
			why = append(why, fmt.Sprintf("other %d", n))
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%d\t%s\t%d\t%s\t\n", name, res, f.Provisioned, f.Invocations, f.Throttles,
			pct(f.ThrottleShare), f.PeakConcurrency, msText(f.TimeAtLimitMs), f.ColdStarts, strings.Join(why, ", "))
	}
	return tw.Flush()
}

func pct(f float64) string { return strconv.FormatFloat(100*f, 'f', 2, 64) + "%" }

func msText(ms int64) string {
	if ms < 10000 {
		return strconv.FormatInt(ms, 10) + " ms"
	}
	return strconv.FormatFloat(float64(ms)/1000, 'f', 1, 64) + " s"
}
