package api_test

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
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

// TestSearchFunctionsTenThousand: the console's functions list over
// 10,000 functions: 200 pages of 50 walk every name once, in order; a
// search matching 100 of them comes in two pages.
func TestSearchFunctionsTenThousand(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a store with 10,000 functions")
	}
	h := filled(t, 10000)
	page := func(query string) api.FunctionSearchPage {
		t.Helper()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/lambdad/functions?"+query, nil))
		var p api.FunctionSearchPage
		if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &p) != nil {
			t.Fatalf("GET /lambdad/functions?%s: %d %s", query, rec.Code, rec.Body)
		}
		return p
	}
	seen, pages, after := 0, 0, ""
	for {
		p := page("limit=50&after=" + after)
		pages++
		for _, f := range p.Functions {
			if want := fmt.Sprintf("fn-%06d", seen); f.Name != want {
				t.Fatalf("page %d: %s where %s was due", pages, f.Name, want)
			}
			seen++
		}
		if after = p.NextAfter; after == "" || pages > 250 {
			break
		}
	}
	if seen != 10000 || pages != 200 {
		t.Errorf("the pages of 50 held %d functions in %d pages, want 10,000 in 200", seen, pages)
	}
	first := page("limit=50&q=FN-0099")
	second := page("limit=50&q=FN-0099&after=" + first.NextAfter)
	if len(first.Functions) != 50 || len(second.Functions) != 50 || second.NextAfter != "" ||
		first.Functions[0].Name != "fn-009900" || second.Functions[49].Name != "fn-009999" {
		t.Errorf("q=FN-0099: %d then %d functions (next %q)", len(first.Functions), len(second.Functions), second.NextAfter)
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
