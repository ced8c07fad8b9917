package api_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/lambdad/lambdad/internal/api"
	"github.com/lambdad/lambdad/internal/lambdatest"
)

func TestSearchFunctions(t *testing.T) {
	h := newHarness(t, 1000, 100)
	for i := range 7 {
		h.create(t, fmt.Sprintf("orders-%d", i))
	}
	h.create(t, "Billing")
	if _, err := h.client.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("orders-3"), ReservedConcurrentExecutions: aws.Int32(5)}); err != nil {
		t.Fatal(err)
	}
	page := func(query string) api.FunctionSearchPage {
		t.Helper()
		res := lambdatest.Do(t, "GET", h.url+"/lambdad/functions?"+query, nil, nil)
		var p api.FunctionSearchPage
		if res.Status != 200 || json.Unmarshal(res.Body, &p) != nil {
			t.Fatalf("GET /lambdad/functions?%s: %d %s", query, res.Status, res.Body)
		}
		return p
	}
	var got []string
	after := ""
	for pages := 0; pages < 10; pages++ {
		p := page("q=ORDERS&limit=3&after=" + after)
		for _, f := range p.Functions {
			got = append(got, f.Name)
			if (f.Reserved != nil) != (f.Name == "orders-3") || f.Reserved != nil && *f.Reserved != 5 {
				t.Errorf("%s reserved %v", f.Name, f.Reserved)
			}
		}
		if after = p.NextAfter; after == "" {
			break
		}
	}
	want := []string{"orders-0", "orders-1", "orders-2", "orders-3", "orders-4", "orders-5", "orders-6"}
	if !slices.Equal(got, want) {
		t.Errorf("pages of q=ORDERS = %v, want %v", got, want)
	}
	if p := page("q=bill"); len(p.Functions) != 1 || p.Functions[0].Name != "Billing" || p.NextAfter != "" {
		t.Errorf("q=bill = %+v", p)
	}
	if res := lambdatest.Do(t, "GET", h.url+"/lambdad/functions?limit=0", nil, nil); res.Status != 400 {
		t.Errorf("limit=0: %d %s", res.Status, res.Body)
	}
}

// BenchmarkSearchFunctions: the console's functions list with 10,000
// functions: a page, a page from the middle, and a search that must walk
// every name (it matches 10).
func BenchmarkSearchFunctions(b *testing.B) {
	h := filled(b, 10000)
	for _, c := range []struct{ name, query string }{
		{"first-page", "limit=50"},
		{"middle-page", "limit=50&after=fn-005000"},
		{"search-all", "limit=50&q=fn-00999"},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				call(b, h, "GET", "/lambdad/functions?"+c.query, "", 200)
			}
		})
	}
}
