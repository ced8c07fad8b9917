package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/lambdad/lambdad/internal/function"
	"github.com/lambdad/lambdad/internal/store"
)

// filled serves the API over a store holding n functions, written straight
// to the store in large transactions (creating 100,000 through the API
// would time mostly fsyncs).
func filled(b testing.TB, n int) http.Handler {
	b.Helper()
	e := newEdge(b, 1000, 100, nil)
	db := e.db
	code := []byte("code")
	sha := "Ck9ibEV4YW1wbGVDb2RlU2hhMjU2AAAAAAAAAAAAAAA="
	release, err := db.SaveCode(sha, code)
	if err != nil {
		b.Fatal(err)
	}
	defer release()
	now := time.Now()
	for start := 0; start < n; start += 5000 {
		err := db.Update(func(tx *store.Tx) error {
			tx = tx.In(account)
			for i := start; i < min(n, start+5000); i++ {
				name := fmt.Sprintf("fn-%06d", i)
				c := &function.Config{Name: name, Version: function.Latest, Runtime: "provided.al2023", Handler: "bootstrap",
					Role: role, Timeout: 3, MemorySize: 128, CodeSha256: sha, CodeSize: 4, LastModified: now, RevisionID: "r"}
				if err := tx.PutVersion(c); err != nil {
					return err
				}
				if err := tx.PutFunction(&function.Function{Name: name}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	return e.srv
}

func call(b *testing.B, h http.Handler, method, path string, body string, want int) {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != want {
		b.Fatalf("%s %s: %d %s", method, path, rec.Code, rec.Body)
	}
}

// BenchmarkControlPlane measures the control-plane calls at two store sizes:
// nothing answers by scanning all functions, so the cost must not grow.
// It also reports the Go heap the server holds with the functions
// registered.
func BenchmarkControlPlane(b *testing.B) {
	sizes := []int{10, 10000}
	if os.Getenv("LAMBDAD_SOAK") != "" {
		sizes = append(sizes, 100000)
	}
	for _, n := range sizes {
		h := filled(b, n)
		b.Run(fmt.Sprintf("GetFunction/functions=%d", n), func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				call(b, h, "GET", fmt.Sprintf("/2015-03-31/functions/fn-%06d", i%n), "", 200)
			}
		})
		b.Run(fmt.Sprintf("ListFunctions50/functions=%d", n), func(b *testing.B) {
			for b.Loop() {
				call(b, h, "GET", "/2015-03-31/functions?MaxItems=50", "", 200)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(min(n, 50)), "ns/item")
		})
		b.Run(fmt.Sprintf("ListFunctions50FromMiddle/functions=%d", n), func(b *testing.B) {
			// A page from a marker in the middle, as a client paging through.
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", fmt.Sprintf("/2015-03-31/functions?MaxItems=%d", max(1, n/2)), nil))
			var page struct{ NextMarker string }
			json.Unmarshal(rec.Body.Bytes(), &page)
			for b.Loop() {
				call(b, h, "GET", "/2015-03-31/functions?MaxItems=50&Marker="+page.NextMarker, "", 200)
			}
		})
		b.Run(fmt.Sprintf("GetAccountSettings/functions=%d", n), func(b *testing.B) {
			for b.Loop() {
				call(b, h, "GET", "/2016-08-19/account-settings", "", 200)
			}
		})
		b.Run(fmt.Sprintf("PutGetConcurrency/functions=%d", n), func(b *testing.B) {
			// 800 functions spread over the key space, one each: within the
			// 900 that may be reserved.
			spread := max(1, n/800)
			for i := 0; b.Loop(); i++ {
				name := fmt.Sprintf("fn-%06d", (i%min(n, 800))*spread)
				call(b, h, "PUT", "/2017-10-31/functions/"+name+"/concurrency", `{"ReservedConcurrentExecutions":1}`, 200)
				call(b, h, "GET", "/2019-09-30/functions/"+name+"/concurrency", "", 200)
			}
		})
		b.Run(fmt.Sprintf("Heap/functions=%d", n), func(b *testing.B) {
			for b.Loop() {
			}
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "heap-MB")
			b.ReportMetric(float64(rssBytes())/(1<<20), "rss-MB")
		})
	}
}

func rssBytes() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range bytes.Split(data, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			var kb int64
			fmt.Sscan(string(bytes.TrimSpace(bytes.TrimSuffix(bytes.TrimSpace(v), []byte("kB")))), &kb)
			return kb * 1024
		}
	}
	return 0
}
