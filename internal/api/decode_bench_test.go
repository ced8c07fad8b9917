package api

import (
	"net/http/httptest"
	"testing"

	"github.com/lambdad/lambdad/internal/apimodel"
)

// BenchmarkDecodeInvoke measures the edge's share of every invocation:
// reading the request's members and checking them against the model.
func BenchmarkDecodeInvoke(b *testing.B) {
	m := apimodel.MustLoad()
	op := m.Operations["Invoke"]
	r := httptest.NewRequest("POST", "/2015-03-31/functions/echo/invocations?Qualifier=live", nil)
	r.SetPathValue("FunctionName", "echo")
	r.Header.Set("X-Amz-Log-Type", "Tail")
	body := []byte(`{"echo":"x"}`)
	for b.Loop() {
		if _, _, err := decode(op, r, body); err != nil {
			b.Fatal(err)
		}
	}
}
