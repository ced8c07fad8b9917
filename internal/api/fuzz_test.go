package api_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// FuzzAPI sends arbitrary requests through the whole edge (routing,
// decoding, model validation, the control plane, the renderer) and checks
// that every answer is AWS-shaped: never a 5xx, always a request id, and an
// error always a JSON body with its code in X-Amzn-ErrorType.
func FuzzAPI(f *testing.F) {
	seeds := []struct{ method, path, query, body string }{
		{"GET", "/2015-03-31/functions/f", "", ""},
		{"GET", "/2015-03-31/functions/f", "Qualifier=1", ""},
		{"GET", "/2015-03-31/functions", "MaxItems=2&Marker=xyz", ""},
		{"POST", "/2015-03-31/functions", "", `{"FunctionName":"f","Role":"arn:aws:iam::123456789012:role/r","Runtime":"python3.12","Handler":"a.b","Code":{"ZipFile":"UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA=="}}`},
		{"PUT", "/2017-10-31/functions/f/concurrency", "", `{"ReservedConcurrentExecutions":5}`},
		{"PUT", "/2017-10-31/functions/f:1/concurrency", "", `{"ReservedConcurrentExecutions":-5}`},
		{"PUT", "/2017-10-31/functions/f/concurrency", "", `{"ReservedConcurrentExecutions":"x"}`},
		{"GET", "/2019-09-30/functions/f/provisioned-concurrency", "List=ALL&MaxItems=0", ""},
		{"PUT", "/2019-09-30/functions/f/provisioned-concurrency", "Qualifier=live", `{"ProvisionedConcurrentExecutions":0}`},
		{"POST", "/2015-03-31/functions/f/aliases", "", `{"Name":"123","FunctionVersion":"$LATEST"}`},
		{"POST", "/2015-03-31/functions/f/invocations", "", `{"a":1}`},
		{"PUT", "/2019-09-25/functions/f/event-invoke-config", "", `{"DestinationConfig":{"OnFailure":{"Destination":"nope"}}}`},
		{"DELETE", "/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:f:$LATEST", "", ""},
		{"GET", "/lambdad/audit", "limit=-1", ""},
		{"PATCH", "/x/y/z", "", "{"},
	}
	for _, s := range seeds {
		f.Add(s.method, s.path, s.query, []byte(s.body))
	}
	srv := newEdge(f, 1000, 100, nil).srv
	f.Fuzz(func(t *testing.T, method, path, query string, body []byte) {
		u := &url.URL{Path: path, RawQuery: query}
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(method, " \t\r\n") || method == "" || !validMethod(method) {
			return
		}
		req, err := http.NewRequest(method, "http://lambdad"+u.EscapedPath()+"?"+query, bytes.NewReader(body))
		if err != nil {
			return
		}
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		if rec.Code >= 500 && rec.Code != 502 {
			t.Fatalf("%s %s?%s %q: %d %s", method, path, query, body, rec.Code, rec.Body)
		}
		if rec.Header().Get("X-Amzn-Requestid") == "" {
			t.Fatalf("no request id: %s %s", method, path)
		}
		if rec.Code >= 400 {
			var m map[string]any
			if json.Unmarshal(rec.Body.Bytes(), &m) != nil || rec.Header().Get("X-Amzn-ErrorType") == "" {
				t.Fatalf("%s %s: error %d not AWS-shaped: %q", method, path, rec.Code, rec.Body)
			}
		}
	})
}

func validMethod(m string) bool {
	for _, c := range m {
		if c < 'A' || c > 'Z' {
			return false
		}
	}
	return true
}
