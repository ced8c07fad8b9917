package console

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// TestPageBudget keeps what a browser loads for the console under
// PageBudget, and everything it loads on this server.
func TestPageBudget(t *testing.T) {
	total := 0
	outside := regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:)?//|url\(\s*["']?(https?:)?//|@import|fetch\(\s*["']https?:`)
	err := fs.WalkDir(assets, "assets", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(assets, path)
		if err != nil {
			return err
		}
		total += len(b)
		if m := outside.Find(b); m != nil {
			t.Errorf("%s loads something from elsewhere: %q", path, m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if total > PageBudget {
		t.Errorf("the console weighs %d bytes, over its budget of %d", total, PageBudget)
	}
	t.Logf("the console weighs %d bytes of %d", total, PageBudget)
}

func TestWantsPage(t *testing.T) {
	for _, c := range []struct {
		method, path, accept string
		want                 bool
	}{
		{"GET", "/", "text/html,application/xhtml+xml,*/*;q=0.8", true},
		{"HEAD", "/", "text/html", true},
		{"GET", "/", "application/json", false},
		{"GET", "/", "", false},
		{"POST", "/", "text/html", false},
		{"GET", "/2015-03-31/functions/", "text/html", false},
	} {
		r := httptest.NewRequest(c.method, c.path, nil)
		r.Header.Set("Accept", c.accept)
		if got := WantsPage(r); got != c.want {
			t.Errorf("WantsPage(%s %s, Accept %q) = %v, want %v", c.method, c.path, c.accept, got, c.want)
		}
	}
}

type fakeSession struct{}

func (fakeSession) Principal(*http.Request) (Principal, bool) {
	return Principal{Account: "111122223333", Name: "alice"}, true
}
func (fakeSession) CSRFToken(*http.Request) string { return "tok<en>" }

// TestSessionHook: the session's principal and CSRF token reach the page,
// escaped, and the page keeps to its own origin.
func TestSessionHook(t *testing.T) {
	for _, o := range []Options{{}, {Session: fakeSession{}}} {
		c, err := New(o)
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		c.ServePage(rec, httptest.NewRequest("GET", "/", nil))
		body := rec.Body.String()
		if o.Session != nil && (!strings.Contains(body, `content="tok&lt;en&gt;"`) || !strings.Contains(body, `content="alice" data-account="111122223333"`)) {
			t.Errorf("the page does not carry the session:\n%s", body)
		}
		if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("Content-Security-Policy %q", csp)
		}
	}
	c, _ := New(Options{})
	rec := httptest.NewRecorder()
	c.ServeAsset(rec, httptest.NewRequest("GET", AssetPrefix+"app.js", nil))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "EventSource") {
		t.Errorf("app.js: %d", rec.Code)
	}
}
