package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func sampleURLRequest() *http.Request {
	r := httptest.NewRequest("POST", "http://abc.lambda-url.us-east-1.localhost:9001/lambda-url/abc/p/q?x=1&y=2&x=3", strings.NewReader(`{"echo":"x"}`))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("User-Agent", "Go-http-client/1.1")
	r.Header.Set("Accept-Encoding", "gzip")
	r.Header.Set("Cookie", "a=1; b=2")
	r.Header.Add("X-Multi", "one")
	r.Header.Add("X-Multi", "two")
	return r
}

func BenchmarkURLEvent(b *testing.B) {
	r := sampleURLRequest()
	body := []byte(`{"echo":"x"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(urlEvent(r, "req-id", "abc", "/p/q", "us-east-1", body)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkURLEventAppend(b *testing.B) {
	r := sampleURLRequest()
	body := []byte(`{"echo":"x"}`)
	b.ReportAllocs()
	var buf []byte
	for b.Loop() {
		buf = urlEvent(r, "req-id", "abc", "/p/q", "us-east-1", body).appendJSON(buf[:0])
	}
}

// TestURLEventJSON: the event's own encoder writes exactly what
// encoding/json writes for it, byte for byte, whatever the request holds.
func TestURLEventJSON(t *testing.T) {
	for _, s := range []string{"", "plain", `q"uote\back`, "ctl\x00\x01\x1f\n\r\t", "<b>&amp;</b>", "caf\u00e9 \u2028\u2029 \U0001F600",
		"bad\xffutf8\xc3", "\xe2\x80", strings.Repeat("x", 300)} {
		r := sampleURLRequest()
		r.Header.Set("X-Value", s)
		r.Header.Set("User-Agent", s)
		r.Header.Add("Cookie", "c="+s)
		body := []byte(s)
		ev := urlEvent(r, "id-"+s, "abc", "/p/"+s, "us-east-1", body)
		ev.QueryStringParameters = map[string]string{s: s, "k": "v"}
		want, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if got := ev.appendJSON(nil); string(got) != string(want) {
			t.Errorf("%q:\n got %s\nwant %s", s, got, want)
		}
		ev.Body, ev.Cookies, ev.QueryStringParameters = nil, nil, nil
		want, _ = json.Marshal(ev)
		if got := ev.appendJSON(nil); string(got) != string(want) {
			t.Errorf("%q without body, cookies or query:\n got %s\nwant %s", s, got, want)
		}
	}
}

// FuzzURLEventJSON checks the encoder against encoding/json on any
// string.
func FuzzURLEventJSON(f *testing.F) {
	for _, s := range []string{"", "a\"b", "\xff", "\u2028", "<&>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ev := &urlEventBody{Version: s, Headers: map[string]string{s: s, "a": s}, Body: &s, Cookies: []string{s}}
		want, _ := json.Marshal(ev)
		if got := ev.appendJSON(nil); string(got) != string(want) {
			t.Fatalf("%q:\n got %s\nwant %s", s, got, want)
		}
	})
}

// TestMayHaveStatusCode: the shortcut passes on undecoded only answers
// that encoding/json would not find a statusCode in.
func TestMayHaveStatusCode(t *testing.T) {
	for _, c := range []struct {
		in   string
		want bool
	}{
		{`{"request_id":"x","pid":7}`, false},
		{`{"statusCode":200}`, true},
		{`{"STATUSCODE":200}`, true},
		{`{"\u0073tatusCode":200}`, true},
		{`{"ſtatusCode":200}`, true},
		{`{"statuscod":200}`, false},
		{`{"a":"statusCode"}`, true}, // a value, but cheap to decode and see
	} {
		if got := mayHaveStatusCode([]byte(c.in)); got != c.want {
			t.Errorf("%s: %v, want %v", c.in, got, c.want)
		}
	}
}

// FuzzMayHaveStatusCode: whenever encoding/json finds a statusCode in an
// object, the shortcut says it may have one.
func FuzzMayHaveStatusCode(f *testing.F) {
	for _, s := range []string{`{"statusCode":1}`, `{"ſtatusCode":1}`, `{"\u0053tatuscode":1}`, `{"x":1}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var r urlResult
		if json.Unmarshal([]byte(s), &r) == nil && r.StatusCode != nil && !mayHaveStatusCode([]byte(s)) {
			t.Fatalf("%q has a statusCode the shortcut missed", s)
		}
	})
}
