// Package apimodel loads the AWS Lambda API model (the 2015-03-31 rest-json
// model the AWS SDKs are generated from, every operation, without its
// documentation) and provides what the HTTP edge needs from it: each operation's
// method, path and success status, where each input member comes from (path,
// query string, header or body), and the model's constraints, checked with
// the wording AWS's front end uses for ValidationException.
package apimodel

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

//go:embed lambda-2015-03-31.json
var modelJSON []byte

// Model is the loaded API model.
type Model struct {
	Operations map[string]*Operation
	Shapes     map[string]*Shape
}

// Operation is one API operation.
type Operation struct {
	Name   string
	Method string
	// Path is the route without its fixed query part, e.g.
	// "/2019-09-30/functions/{FunctionName}/provisioned-concurrency".
	Path string
	// Query holds a fixed query part of the route ("List=ALL"), if any.
	Query  map[string]string
	Status int
	Input  *Shape
	Output *Shape
}

// Shape is a model shape.
type Shape struct {
	Name    string
	Type    string // structure, string, integer, long, boolean, list, map, blob, timestamp, double, float
	Members map[string]*Member
	// Names lists Members' keys sorted, so that violations are always
	// reported in one order.
	Names    []string
	Required []string
	Payload  string // member carried as the raw body
	Min, Max *float64
	Pattern  string
	Enum     []string
	Member   *Shape // list element
	Key      *Shape // map key
	Value    *Shape // map value
	// Sensitive values are never echoed in messages ("Value at 'x' ...").
	Sensitive bool
	// serviceEnum marks an enum AWS's front end does not check; the
	// service refuses unknown values itself, with its own error.
	serviceEnum bool
	match       func(string) bool
}

// Member is a structure member.
type Member struct {
	Name         string
	Location     string // "uri", "querystring", "header", "" (body)
	LocationName string
	// Path is how AWS names the member in a violation: lower camel case.
	Path  string
	Shape *Shape
}

type rawShape struct {
	Type      string   `json:"type"`
	Required  []string `json:"required"`
	Payload   string   `json:"payload"`
	Min       *float64 `json:"min"`
	Max       *float64 `json:"max"`
	Pattern   string   `json:"pattern"`
	Enum      []string `json:"enum"`
	Sensitive bool     `json:"sensitive"`
	Members   map[string]struct {
		Shape        string `json:"shape"`
		Location     string `json:"location"`
		LocationName string `json:"locationName"`
	} `json:"members"`
	Member *struct{ Shape string } `json:"member"`
	Key    *struct{ Shape string } `json:"key"`
	Value  *struct{ Shape string } `json:"value"`
}

type rawModel struct {
	Operations map[string]struct {
		HTTP struct {
			Method       string `json:"method"`
			RequestURI   string `json:"requestUri"`
			ResponseCode int    `json:"responseCode"`
		} `json:"http"`
		Input  *struct{ Shape string } `json:"input"`
		Output *struct{ Shape string } `json:"output"`
	} `json:"operations"`
	Shapes map[string]rawShape `json:"shapes"`
}

// Patterns of the model that use look-around, which Go's regexp does not
// have; each is checked by an equivalent function instead.
var lookaround = map[string]func(string) bool{
	// An alias name: never all digits.
	`(?!^[0-9]+$)([a-zA-Z0-9-_]+)`: func(s string) bool {
		return aliasChars.MatchString(s) && !allDigits.MatchString(s)
	},
	// A name that does not end with a dot.
	`[0-9A-Za-z\.\-_]*(?<!\.)`: func(s string) bool {
		return dottedName.MatchString(s) && !strings.HasSuffix(s, ".")
	},
	// A function URL's qualifier: an alias name (or $LATEST), never all
	// digits.
	`((?!^\d+$)^[0-9a-zA-Z-_]+$)`: func(s string) bool {
		return aliasChars.MatchString(s) && !allDigits.MatchString(s)
	},
	// A collection name (document-database event sources): not starting
	// with "system.", first character a word character, no '$'.
	`(^(?!(system\x2e)))(^[_a-zA-Z0-9])([^$]*)`: func(s string) bool {
		return !strings.HasPrefix(s, "system.") && s != "" && aliasChars.MatchString(s[:1]) && s[0] != '-' && !strings.Contains(s, "$")
	},
}

// serviceEnums are the enum shapes whose values AWS checks in the service
// rather than at its front end. A Runtime outside the enum is answered with
// InvalidParameterValueException and a list of the runtimes AWS still
// accepts, not with ValidationException and the model's list (recorded from
// real AWS; see internal/function/runtime.go, which makes that check).
var serviceEnums = map[string]bool{"Runtime": true}

var (
	aliasChars = regexp.MustCompile(`^[a-zA-Z0-9-_]+$`)
	allDigits  = regexp.MustCompile(`^[0-9]+$`)
	dottedName = regexp.MustCompile(`^[0-9A-Za-z\.\-_]*$`)
)

// Load parses the embedded model.
func Load() (*Model, error) {
	var raw rawModel
	if err := json.Unmarshal(modelJSON, &raw); err != nil {
		return nil, fmt.Errorf("apimodel: %w", err)
	}
	m := &Model{Operations: map[string]*Operation{}, Shapes: map[string]*Shape{}}
	for name := range raw.Shapes {
		m.Shapes[name] = &Shape{Name: name}
	}
	for name, r := range raw.Shapes {
		s := m.Shapes[name]
		s.Type, s.Required, s.Payload, s.Min, s.Max, s.Pattern, s.Enum = r.Type, r.Required, r.Payload, r.Min, r.Max, r.Pattern, r.Enum
		s.Sensitive, s.serviceEnum = r.Sensitive, serviceEnums[name]
		if r.Pattern != "" {
			if f, ok := lookaround[r.Pattern]; ok {
				s.match = f
			} else {
				// AWS matches the whole value against the pattern.
				re, err := regexp.Compile(`^(?:` + r.Pattern + `)$`)
				if err != nil {
					return nil, fmt.Errorf("apimodel: shape %s: %w", name, err)
				}
				s.match = re.MatchString
			}
		}
		if len(r.Members) > 0 {
			s.Members = map[string]*Member{}
		}
		for mn, mr := range r.Members {
			s.Members[mn] = &Member{Name: mn, Location: mr.Location, LocationName: mr.LocationName, Path: memberPath("", mn), Shape: m.Shapes[mr.Shape]}
			s.Names = append(s.Names, mn)
		}
		sort.Strings(s.Names)
		if r.Member != nil {
			s.Member = m.Shapes[r.Member.Shape]
		}
		if r.Key != nil {
			s.Key = m.Shapes[r.Key.Shape]
		}
		if r.Value != nil {
			s.Value = m.Shapes[r.Value.Shape]
		}
	}
	for name, r := range raw.Operations {
		path, query, _ := strings.Cut(r.HTTP.RequestURI, "?")
		op := &Operation{Name: name, Method: r.HTTP.Method, Path: path, Status: r.HTTP.ResponseCode}
		if op.Status == 0 {
			op.Status = 200
		}
		if query != "" {
			op.Query = map[string]string{}
			for _, kv := range strings.Split(query, "&") {
				k, v, _ := strings.Cut(kv, "=")
				op.Query[k] = v
			}
		}
		if r.Input != nil {
			op.Input = m.Shapes[r.Input.Shape]
		}
		if r.Output != nil {
			op.Output = m.Shapes[r.Output.Shape]
		}
		m.Operations[name] = op
	}
	return m, nil
}

// MustLoad is Load for program start, where the embedded model is known good.
func MustLoad() *Model {
	m, err := Load()
	if err != nil {
		panic(err)
	}
	return m
}
