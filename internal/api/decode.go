package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/lambdad/lambdad/internal/apimodel"
	"github.com/lambdad/lambdad/internal/awserr"
)

// maxBody bounds a JSON request body: AWS takes a 50 MB zip inline, which
// is 69905067 bytes once base64-encoded.
const maxBody = 69905067

// decode builds an operation's input from the request, the way AWS's front
// end does: path, query and header members by their location names, the
// rest from the JSON body. It checks the members from the path, query and
// headers against the model at once, and returns the body members'
// violations separately (deferred), because AWS checks some of them only
// after the name checks of the operation.
func decode(op *apimodel.Operation, r *http.Request, body []byte) (in map[string]any, deferred error, err error) {
	in = map[string]any{}
	shape := op.Input
	if shape == nil {
		return in, nil, nil
	}
	if shape.Payload == "" && len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, &in); err != nil {
			return nil, nil, awserr.New(awserr.InvalidRequestContent, "Could not parse request body into json: %s", jsonProblem(err))
		}
		// Location members are never taken from the body.
		for name, m := range shape.Members {
			if m.Location != "" {
				delete(in, name)
			}
		}
		if p := shape.TypeMismatch(in, ""); p != "" {
			return nil, nil, awserr.New(awserr.InvalidRequestContent, "Could not parse request body into json: Cannot deserialize value at '%s'", p)
		}
	}
	if shape.Payload != "" && len(body) > 0 {
		// The raw body is the payload member; handlers read it as bytes.
		in[shape.Payload] = true
	}
	var located, inBody apimodel.Violations
	query := r.URL.Query()
	for name, m := range shape.Members {
		var raw string
		var present bool
		switch m.Location {
		case "uri":
			raw = r.PathValue(m.LocationName)
			present = true
		case "querystring":
			vs, ok := query[m.LocationName]
			if ok && m.Shape.Type == "list" {
				// A list is the parameter repeated: ?tagKeys=a&tagKeys=b.
				l := make([]any, len(vs))
				for i, v := range vs {
					l[i] = v
				}
				in[name] = l
				continue
			}
			if ok && len(vs) > 0 {
				raw, present = vs[0], true
			}
		case "header":
			if vs := r.Header.Values(m.LocationName); len(vs) > 0 {
				raw, present = vs[0], true
			}
		default:
			continue
		}
		if !present {
			continue
		}
		v, err := scalar(m, raw)
		if err != nil {
			return nil, nil, err
		}
		in[name] = v
	}
	for _, name := range shape.Names {
		m := shape.Members[name]
		v, ok := in[name]
		if !ok || v == nil {
			continue
		}
		if m.Location != "" {
			m.Shape.Check(v, m.Path, &located)
		} else {
			m.Shape.Check(v, m.Path, &inBody)
		}
	}
	// Required members that are missing: path members are always present,
	// so these are body (or query/header) members.
	for _, name := range shape.Required {
		if v, ok := in[name]; !ok || v == nil {
			if m := shape.Members[name]; m.Location != "" {
				located = append(located, missing(m))
			} else {
				inBody = append(inBody, missing(m))
			}
		}
	}
	if len(located) > 0 {
		return nil, nil, awserr.New(awserr.Validation, "%s", located.Message())
	}
	if len(inBody) > 0 {
		deferred = awserr.New(awserr.Validation, "%s", inBody.Message())
	}
	return in, deferred, nil
}

func missing(m *apimodel.Member) string {
	return "Value null at '" + m.Path + "' failed to satisfy constraint: Member must not be null"
}

// scalar converts a path, query or header value to its model type.
func scalar(m *apimodel.Member, raw string) (any, error) {
	switch m.Shape.Type {
	case "integer", "long":
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return nil, awserr.New(awserr.InvalidParameterValue, "Invalid value for %s: %s", m.LocationName, raw)
		}
		return float64(n), nil
	case "boolean":
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return nil, awserr.New(awserr.InvalidParameterValue, "Invalid value for %s: %s", m.LocationName, raw)
		}
		return b, nil
	}
	return raw, nil
}

func jsonProblem(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return "Unexpected character at offset " + strconv.FormatInt(se.Offset, 10)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return "Expected an object"
	}
	return "malformed JSON"
}

// bind moves a decoded, checked input into the typed request of the
// control plane.
func bind(in map[string]any, v any) error {
	data, err := json.Marshal(in)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return awserr.New(awserr.InvalidRequestContent, "Could not parse request body into json: Cannot deserialize value for %s", te.Field)
		}
		return awserr.New(awserr.InvalidRequestContent, "Could not parse request body into json: %s", jsonProblem(err))
	}
	return nil
}

// readBody reads a request body of at most limit bytes; larger bodies are
// answered with AWS's 413.
func readBody(r *http.Request, limit int64, opName string) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, tooLarge(limit, opName)
	}
	// A body the authenticator has read already (to check the hash its
	// signature covers) is taken as it is, not copied again.
	if p, ok := r.Body.(interface{ Payload() []byte }); ok {
		body := p.Payload()
		if int64(len(body)) > limit {
			return nil, tooLarge(limit, opName)
		}
		return body, nil
	}
	var body []byte
	if r.ContentLength > 0 {
		// Read straight into a buffer of the announced size.
		body = make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, body); err != nil {
			return nil, errClientGone
		}
		return body, nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, errClientGone
	}
	if int64(len(body)) > limit {
		return nil, tooLarge(limit, opName)
	}
	return body, nil
}

func tooLarge(limit int64, opName string) error {
	return awserr.New(awserr.RequestTooLarge, "Request must be smaller than %d bytes for the %s operation", limit, opName)
}
