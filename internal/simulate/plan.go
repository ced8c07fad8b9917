package simulate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/lambdad/lambdad/internal/account"
	"github.com/lambdad/lambdad/internal/admission"
	"github.com/lambdad/lambdad/internal/apimodel"
	"github.com/lambdad/lambdad/internal/awserr"
	"github.com/lambdad/lambdad/internal/control"
)

// Plan is a concurrency plan: the account's limits and each function's
// reservation and provisioned configurations, as a plan file holds them.
type Plan struct {
	// AccountLimit is L (default 1000, AWS's).
	AccountLimit *int `json:"account_limit,omitempty"`
	// MinUnreserved is M (default 100, AWS's); min(M, L) is in force.
	MinUnreserved *int `json:"min_unreserved,omitempty"`
	// InvocationRate is the requests per second allowed per unit of
	// concurrency (default 10, AWS's; 0 turns the limit off).
	InvocationRate *int `json:"invocation_rate,omitempty"`
	// ScalingRate is the new on-demand environments a function may add
	// per 10 seconds (default 1000, AWS's; 0 turns the limit off).
	ScalingRate *int                     `json:"scaling_rate,omitempty"`
	Functions   map[string]*FunctionPlan `json:"functions"`
}

// FunctionPlan is one function's settings.
type FunctionPlan struct {
	// Reserved is the function's reserved concurrency; nil: none.
	Reserved *int `json:"reserved,omitempty"`
	// Provisioned is the provisioned concurrency configured per qualifier
	// (a version or an alias).
	Provisioned map[string]int `json:"provisioned,omitempty"`
}

// Limits are the plan's account limits, defaults filled in.
func (p *Plan) Limits() account.Limits {
	l := account.Limits{Concurrency: 1000, MinUnreserved: 100}
	if p.AccountLimit != nil {
		l.Concurrency = *p.AccountLimit
	}
	if p.MinUnreserved != nil {
		l.MinUnreserved = *p.MinUnreserved
	}
	return l
}

func (p *Plan) rates() (request, scaling int) {
	request, scaling = admission.DefaultRequestRate, admission.DefaultScalingRate
	if p.InvocationRate != nil {
		request = *p.InvocationRate
	}
	if p.ScalingRate != nil {
		scaling = *p.ScalingRate
	}
	return request, scaling
}

// provisioned is the function's total configured provisioned concurrency.
func (f *FunctionPlan) provisioned() int {
	n := 0
	if f != nil {
		for _, v := range f.Provisioned {
			n += v
		}
	}
	return n
}

// names are the plan's functions, sorted.
func (p *Plan) names() []string {
	names := make([]string, 0, len(p.Functions))
	for n := range p.Functions {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Clone is a deep copy of p.
func (p *Plan) Clone() *Plan {
	q := *p
	q.Functions = make(map[string]*FunctionPlan, len(p.Functions))
	for n, f := range p.Functions {
		g := &FunctionPlan{}
		if f != nil {
			if f.Reserved != nil {
				g.Reserved = new(*f.Reserved)
			}
			if f.Provisioned != nil {
				g.Provisioned = make(map[string]int, len(f.Provisioned))
				for k, v := range f.Provisioned {
					g.Provisioned[k] = v
				}
			}
		}
		q.Functions[n] = g
	}
	return &q
}

// ReadPlan parses a plan file. Unknown keys are refused, so that a typo
// does not silently leave a setting out of the plan.
func ReadPlan(r io.Reader) (*Plan, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}
	return ParsePlan(data)
}

// ParsePlan parses a plan file's bytes.
func ParsePlan(data []byte) (*Plan, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var p Plan
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("plan: %s", jsonError(data, err))
	}
	if dec.More() {
		return nil, fmt.Errorf("plan: more than one JSON value")
	}
	if p.Functions == nil {
		p.Functions = map[string]*FunctionPlan{}
	}
	for name, f := range p.Functions {
		if f == nil {
			p.Functions[name] = &FunctionPlan{}
		}
	}
	for _, x := range []struct {
		name string
		v    *int
	}{{"account_limit", p.AccountLimit}, {"min_unreserved", p.MinUnreserved}, {"invocation_rate", p.InvocationRate}, {"scaling_rate", p.ScalingRate}} {
		if x.v != nil && *x.v < 0 {
			return nil, fmt.Errorf("plan: %s is %d; it must be 0 or more", x.name, *x.v)
		}
	}
	if l := p.Limits().Concurrency; l > admission.MaxConcurrency {
		return nil, fmt.Errorf("plan: account_limit %d is more than the %d lambdad counts", l, admission.MaxConcurrency)
	}
	return &p, nil
}

// jsonError names the line and column of a JSON syntax or type error.
func jsonError(data []byte, err error) string {
	var off int64 = -1
	switch e := err.(type) {
	case *json.SyntaxError:
		off = e.Offset
	case *json.UnmarshalTypeError:
		off = e.Offset
	}
	if off < 0 || off > int64(len(data)) {
		return err.Error()
	}
	line := 1 + bytes.Count(data[:off], []byte("\n"))
	col := off - int64(bytes.LastIndexByte(data[:off], '\n'))
	return fmt.Sprintf("line %d, column %d: %v", line, col, err)
}

var model = apimodel.MustLoad()

// Problems checks the plan as AWS would check it applied to an empty
// account: each function in name order, its PutFunctionConcurrency, then
// its PutProvisionedConcurrencyConfig calls in qualifier order, each
// answered by the checks the control plane makes live (package control)
// and the API model's constraints, with AWS's messages. A refused call
// leaves nothing, as on AWS, and the next calls are checked without it.
// Claims only grow in this order, so a plan whose end state is allowed is
// allowed call by call too. An empty list means the plan is valid.
func (p *Plan) Problems() []string {
	limits := p.Limits()
	var problems []string
	var claimed int64
	for _, name := range p.names() {
		f := p.Functions[name]
		var reserved *int
		if f.Reserved != nil {
			var v apimodel.Violations
			model.Shapes["PutFunctionConcurrencyRequest"].CheckStructure(map[string]any{
				"FunctionName": name, "ReservedConcurrentExecutions": float64(*f.Reserved)}, "", &v)
			err := error(nil)
			if len(v) > 0 {
				err = awserr.New(awserr.Validation, "%s", v.Message())
			} else {
				// The function has no provisioned concurrency yet: the
				// reservation comes first.
				err = control.CheckReservation(limits, claimed, *f.Reserved, 0)
			}
			if err != nil {
				problems = append(problems, problem(name, fmt.Sprintf("PutFunctionConcurrency %d", *f.Reserved), err))
			} else {
				reserved = f.Reserved
				claimed += int64(*f.Reserved)
			}
		}
		quals := make([]string, 0, len(f.Provisioned))
		for q := range f.Provisioned {
			quals = append(quals, q)
		}
		sort.Strings(quals)
		targets := 0
		for _, q := range quals {
			n := f.Provisioned[q]
			call := fmt.Sprintf("PutProvisionedConcurrencyConfig %s %d", q, n)
			var v apimodel.Violations
			model.Shapes["PutProvisionedConcurrencyConfigRequest"].CheckStructure(map[string]any{
				"FunctionName": name, "Qualifier": q, "ProvisionedConcurrentExecutions": float64(n)}, "", &v)
			var err error
			switch {
			case len(v) > 0:
				err = awserr.New(awserr.Validation, "%s", v.Message())
			case q == "$LATEST":
				err = awserr.New(awserr.InvalidParameterValue, "Provisioned Concurrency Configs cannot be applied to unpublished function versions.")
			default:
				err = control.CheckProvisioned(limits, reserved, claimed-int64(targetsClaim(reserved, targets)), targets, n)
			}
			if err != nil {
				problems = append(problems, problem(name, call, err))
				continue
			}
			if reserved == nil {
				claimed += int64(n)
			}
			targets += n
		}
	}
	return problems
}

// targetsClaim is what a function's accepted provisioned targets claim of
// the account: nothing more under a reservation, which claims for them.
func targetsClaim(reserved *int, targets int) int {
	if reserved != nil {
		return 0
	}
	return targets
}

func problem(function, call string, err error) string {
	msg := err.Error()
	if e, ok := awserr.As(err); ok {
		msg = string(e.Code) + ": " + e.Message
	}
	return fmt.Sprintf("%s: %s: %s", function, call, msg)
}

// WritePlan writes p as a plan file, indented.
func WritePlan(w io.Writer, p *Plan) error {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// splitName parses a trace's function[:qualifier], which may also be a
// full or partial ARN.
func splitName(s string) (fn, qualifier string) {
	if _, rest, ok := strings.Cut(s, ":function:"); ok {
		s = rest
	}
	fn, qualifier, _ = strings.Cut(s, ":")
	return fn, qualifier
}
