package awserr

import (
	"encoding/json"
	"os"
	"slices"
	"testing"
)

// TestCodesMatchTheModel checks every code's status and message key
// against the error shapes of the API model lambdad embeds.
func TestCodesMatchTheModel(t *testing.T) {
	data, err := os.ReadFile("../apimodel/lambda-2015-03-31.json")
	if err != nil {
		t.Fatal(err)
	}
	var model struct {
		Shapes map[string]struct {
			Exception bool `json:"exception"`
			Error     struct {
				HTTPStatusCode int `json:"httpStatusCode"`
			} `json:"error"`
			Members map[string]json.RawMessage `json:"members"`
		} `json:"shapes"`
	}
	if err := json.Unmarshal(data, &model); err != nil {
		t.Fatal(err)
	}
	for code := range codes {
		shape, ok := model.Shapes[string(code)]
		if !ok {
			if !slices.Contains(FrontEnd, code) {
				t.Errorf("%s is not an error shape of the model", code)
			}
			continue
		}
		if !shape.Exception || shape.Error.HTTPStatusCode != code.Status() {
			t.Errorf("%s: status %d, model says %d", code, code.Status(), shape.Error.HTTPStatusCode)
		}
		if _, ok := shape.Members[code.MessageKey()]; !ok {
			t.Errorf("%s: message key %q is not a member of the model's shape", code, code.MessageKey())
		}
	}
}

func TestErrorsKeepTheirShape(t *testing.T) {
	cases := []struct {
		e            *Error
		status       int
		typ, message string
	}{
		{New(ResourceNotFound, "Function not found: %s", "arn"), 404, "User", "Function not found: arn"},
		{New(Service, "boom"), 500, "Service", "boom"},
		{New(Validation, "1 validation error detected: x"), 400, "", "1 validation error detected: x"},
		{NoType(InvalidParameterValue, "min [%d].", 100), 400, "", "min [100]."},
		{NoType(AccessDenied, "Cross-account pass role is not allowed."), 403, "", "Cross-account pass role is not allowed."},
		{Throttle(ReasonConcurrentInvocationLimitExceeded), 429, "User", "Rate Exceeded."},
	}
	for _, c := range cases {
		if c.e.Status() != c.status || c.e.Type != c.typ || c.e.Message != c.message {
			t.Errorf("%v: got %d %q %q, want %d %q %q", c.e, c.e.Status(), c.e.Type, c.e.Message, c.status, c.typ, c.message)
		}
	}
	wrapped := error(New(ResourceConflict, "x"))
	if !Is(wrapped, ResourceConflict) || Is(wrapped, ResourceNotFound) {
		t.Error("Is does not match by code")
	}
}
