package consoletest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/lambdad/lambdad/internal/lambdatest"
	"github.com/lambdad/lambdad/internal/server"
)

const role = "arn:aws:iam::123456789012:role/lambda-role"

// chromiumPath finds Debian's chromium, skipping the test without it
// unless the end-to-end tests are required.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("LAMBDAD_REQUIRE_E2E") == "1" {
		t.Fatal("chromium is not installed (apt-get install chromium) and LAMBDAD_REQUIRE_E2E=1")
	}
	t.Skip("chromium is not installed; apt-get install chromium to run the browser tests")
	return ""
}

// browser starts a headless chromium with a fresh profile and returns a
// context of its first tab. The machine's network is closed, so
// everything that would call out (updates, sync, QUIC probes, the first
// run's pages) is off.
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1000),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	tab, cancelTab := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	// The first run starts the browser, which lives as long as its
	// context: the time limit goes on the contexts derived after it.
	if err := chromedp.Do(tab); err != nil {
		cancelTab()
		cancelAlloc()
		t.Fatalf("starting chromium: %v", err)
	}
	ctx, cancelTime := context.WithTimeout(tab, 90*time.Second)
	t.Cleanup(func() { cancelTime(); cancelTab(); cancelAlloc() })
	return ctx
}

// node starts a lambdad node for the test.
func node(t *testing.T, opts server.Options) (*server.Node, *lambda.Client) {
	t.Helper()
	opts.DataDir = t.TempDir()
	opts.Listen = "127.0.0.1:0"
	opts.Logger = lambdatest.Logger(t)
	n, err := server.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := n.Close(c); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return n, lambdatest.Client(n.URL())
}

func createGo(t *testing.T, c *lambda.Client, name string) {
	t.Helper()
	_, err := c.CreateFunction(context.Background(), &lambda.CreateFunctionInput{
		FunctionName: aws.String(name), Runtime: types.RuntimeProvidedal2023, Handler: aws.String("bootstrap"),
		Role: aws.String(role), Code: &types.FunctionCode{ZipFile: lambdatest.GoFunction(t)},
	})
	if err != nil {
		t.Fatalf("CreateFunction(%s): %v", name, err)
	}
}

func createShell(t *testing.T, c *lambda.Client, name string) {
	t.Helper()
	_, err := c.CreateFunction(context.Background(), &lambda.CreateFunctionInput{
		FunctionName: aws.String(name), Runtime: types.RuntimeProvidedal2023, Handler: aws.String("bootstrap"),
		Role: aws.String(role), Code: &types.FunctionCode{ZipFile: lambdatest.Zip(t, map[string]string{"bootstrap": "#!/bin/sh\n"})},
	})
	if err != nil {
		t.Fatalf("CreateFunction(%s): %v", name, err)
	}
}

// shots is where screenshots go.
func shots(t *testing.T) string {
	if d := os.Getenv("LAMBDAD_SCREENSHOTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// screenshot saves the whole page as name.png.
func screenshot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// run runs browser actions, failing the test on error.
func run(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// textOf is the text of the first element matching the CSS selector, ""
// when there is none.
func textOf(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	js := fmt.Sprintf(`(document.querySelector(%q) || {textContent: ""}).textContent.trim()`, sel)
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
	if err != nil {
		t.Fatalf("reading %s: %v", sel, err)
	}
	return s
}

// attr is an attribute of the first element matching the CSS selector.
func attr(t *testing.T, ctx context.Context, sel, name string) string {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q)?.getAttribute(%q)) || ""`, sel, name)))
	if err != nil {
		t.Fatalf("reading %s's %s: %v", sel, name, err)
	}
	return v
}

// waitText waits until the element's text is want, for at most within;
// it returns how long that took.
func waitText(t *testing.T, ctx context.Context, sel, want string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		got := textOf(t, ctx, sel)
		if got == want {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("%s reads %q after %v, want %q", sel, got, within, want)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// clickLink clicks the link whose text is exactly text, as a user who
// reads the page would.
func clickLink(t *testing.T, ctx context.Context, text string) {
	t.Helper()
	sel := fmt.Sprintf(`//a[normalize-space(.)=%q]`, text)
	run(t, ctx, "choose "+text, chromedp.WaitVisible(chromedp.Search(sel)), chromedp.Click(chromedp.Search(sel)))
}

func clickLabel(t *testing.T, ctx context.Context, text string) {
	t.Helper()
	sel := fmt.Sprintf(`//label[normalize-space(.)=%q]`, text)
	run(t, ctx, "choose "+text, chromedp.WaitVisible(chromedp.Search(sel)), chromedp.Click(chromedp.Search(sel)))
}

func clickButton(t *testing.T, ctx context.Context, text string) {
	t.Helper()
	sel := fmt.Sprintf(`//button[normalize-space(.)=%q]`, text)
	run(t, ctx, "press "+text, chromedp.WaitVisible(chromedp.Search(sel)), chromedp.Click(chromedp.Search(sel)))
}

// enter replaces the text of the input labelled label.
func enter(t *testing.T, ctx context.Context, label, value string) {
	t.Helper()
	sel := fmt.Sprintf(`//input[@id=//label[normalize-space(.)=%q]/@for]`, label)
	run(t, ctx, "enter "+label, chromedp.WaitVisible(chromedp.Search(sel)))
	// Empty the field first, as a user selecting its text would.
	clear := fmt.Sprintf(`(() => { const l = [...document.querySelectorAll('label')].find(l => l.textContent.trim() === %q); document.getElementById(l.htmlFor).value = ''; return true })()`, label)
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](clear)); err != nil {
		t.Fatalf("empty %s: %v", label, err)
	}
	run(t, ctx, "enter "+label, chromedp.SendKeys(chromedp.Search(sel), value))
}

func reservation(t *testing.T, c *lambda.Client, name string) *int32 {
	t.Helper()
	out, err := c.GetFunctionConcurrency(context.Background(), &lambda.GetFunctionConcurrencyInput{FunctionName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	return out.ReservedConcurrentExecutions
}

// TestReserveConcurrencyThroughTheConsole follows the seed's steps word
// for word: Functions → the function → Configuration → Concurrency → Edit
// → Reserve concurrency → enter a number → Save, and reads the
// reservation back with the SDK; then a value that breaks the 100 rule,
// whose AWS message must show beside the field; then "Use unreserved
// account concurrency" to remove the reservation.
func TestReserveConcurrencyThroughTheConsole(t *testing.T) {
	n, client := node(t, server.Options{})
	createGo(t, client, "orders")
	createShell(t, client, "billing")
	ctx := browser(t)
	dir := shots(t)

	run(t, ctx, "open the console", chromedp.Navigate(n.URL()+"/"), chromedp.WaitVisible(chromedp.CSS(`#functions tbody tr`)))
	if got := textOf(t, ctx, "h1"); got != "Functions" {
		t.Fatalf("the console opens on %q, want the Functions page", got)
	}
	screenshot(t, ctx, dir, "functions")
	checkAccessible(t, ctx, "functions")
	clickLink(t, ctx, "orders")
	clickLink(t, ctx, "Configuration")
	clickLink(t, ctx, "Concurrency")
	run(t, ctx, "the concurrency panel", chromedp.WaitVisible(chromedp.CSS(`#function-concurrency`)))
	if got := textOf(t, ctx, "#function-concurrency"); got != "Use unreserved account concurrency" {
		t.Errorf("a new function's concurrency reads %q", got)
	}
	screenshot(t, ctx, dir, "function-concurrency")
	checkAccessible(t, ctx, "function-concurrency")
	clickLink(t, ctx, "Edit")
	clickLabel(t, ctx, "Reserve concurrency")
	if got := textOf(t, ctx, "#unreserved-figure"); got != "Unreserved account concurrency1,000" {
		t.Errorf("beside the field: %q, want the unreserved account concurrency of 1,000", got)
	}
	enter(t, ctx, "Reserved concurrency", "100")
	screenshot(t, ctx, dir, "edit-concurrency")
	checkAccessible(t, ctx, "edit-concurrency")
	clickButton(t, ctx, "Save")
	waitText(t, ctx, "#function-concurrency", "Reserved concurrency: 100", 5*time.Second)
	if got := textOf(t, ctx, "#unreserved-account"); got != "900" {
		t.Errorf("after reserving 100 the unreserved account concurrency reads %q, want 900", got)
	}
	screenshot(t, ctx, dir, "concurrency-saved")
	if r := reservation(t, client, "orders"); r == nil || *r != 100 {
		t.Fatalf("the SDK reads the reservation as %v, want 100", r)
	}

	// 1000 − 950 leaves 50 unreserved, below the minimum of 100.
	clickLink(t, ctx, "Edit")
	enter(t, ctx, "Reserved concurrency", "950")
	clickButton(t, ctx, "Save")
	run(t, ctx, "the error", chromedp.WaitVisible(chromedp.CSS(`#concurrency-error`)))
	const want = "Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [100]."
	if got := textOf(t, ctx, "#concurrency-error"); got != want {
		t.Errorf("the 100 rule's error reads %q, want AWS's %q", got, want)
	}
	if invalid := attr(t, ctx, "#reserved-concurrency", "aria-invalid"); invalid != "true" {
		t.Errorf("the field is not marked invalid (aria-invalid=%q)", invalid)
	}
	screenshot(t, ctx, dir, "concurrency-error")
	checkAccessible(t, ctx, "concurrency-error")
	if r := reservation(t, client, "orders"); r == nil || *r != 100 {
		t.Fatalf("after the refused value the SDK reads %v, want 100 still", r)
	}

	clickLabel(t, ctx, "Use unreserved account concurrency")
	clickButton(t, ctx, "Save")
	waitText(t, ctx, "#function-concurrency", "Use unreserved account concurrency", 5*time.Second)
	if r := reservation(t, client, "orders"); r != nil {
		t.Fatalf("after choosing unreserved account concurrency the SDK reads %d", *r)
	}

	// The same with the keyboard alone: Edit is focused by Tab like any
	// link; in the form the first choice has the focus, the arrow key
	// moves to "Reserve concurrency", Tab reaches the field and Enter
	// saves.
	run(t, ctx, "focus Edit", chromedp.Focus(chromedp.CSS(`#edit-concurrency`)))
	run(t, ctx, "keyboard: Edit", chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.CSS(`#concurrency-form`)))
	focused := func() string {
		id, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.activeElement.id`))
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	if id := focused(); id != "mode-unreserved" {
		t.Errorf("the edit form opens with %q focused, want the first choice", id)
	}
	run(t, ctx, "keyboard: choose", chromedp.KeyEvent(kb.ArrowDown))
	if id := focused(); id != "reserved-concurrency" && id != "mode-reserve" {
		t.Errorf("after the arrow key %q has the focus", id)
	}
	if id := focused(); id == "mode-reserve" {
		run(t, ctx, "keyboard: to the field", chromedp.KeyEvent(kb.Tab))
	}
	run(t, ctx, "keyboard: type", chromedp.KeyEvent("50"), chromedp.KeyEvent(kb.Enter))
	waitText(t, ctx, "#function-concurrency", "Reserved concurrency: 50", 5*time.Second)
	if r := reservation(t, client, "orders"); r == nil || *r != 50 {
		t.Fatalf("after the keyboard's Save the SDK reads %v, want 50", r)
	}

	// The audit trail shows the changes, newest first.
	clickLink(t, ctx, "Audit trail")
	run(t, ctx, "the audit trail", chromedp.WaitVisible(chromedp.CSS(`#audit tbody tr`)))
	ops, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#audit tbody tr')].map(r => r.cells[2].textContent + ' ' + r.cells[4].textContent)`))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(ops, "; ") != "PutFunctionConcurrency 50; DeleteFunctionConcurrency none; PutFunctionConcurrency 100" {
		t.Errorf("the audit trail reads %q", ops)
	}
	screenshot(t, ctx, dir, "audit")
	checkAccessible(t, ctx, "audit")
}

// accessibilityProblems lists what the page in view gets wrong of WCAG's
// checks a script can make: a control or image without an accessible
// name, and text whose contrast with what is behind it is under AA's
// 4.5:1 (3:1 for large text). Disabled controls are exempt, as WCAG has
// them; text over a gradient is not measured.
const accessibilityProblems = `(() => {
  const problems = [];
  const rgba = (s) => { const m = s.match(/[\d.]+/g) || [0, 0, 0, 0]; return [+m[0], +m[1], +m[2], m.length > 3 ? +m[3] : 1]; };
  const lum = ([r, g, b]) => { const f = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; }; return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
  const over = (fg, bg) => [0, 1, 2].map((i) => fg[i] * fg[3] + bg[i] * (1 - fg[3]));
  const name = (el) => (el.getAttribute('aria-label') || '').trim() ||
    (el.getAttribute('aria-labelledby') || '').split(/\s+/).map((id) => document.getElementById(id)?.textContent || '').join(' ').trim() ||
    (el.id && [...document.querySelectorAll('label')].filter((l) => l.htmlFor === el.id).map((l) => l.textContent).join(' ').trim()) ||
    (el.closest('label')?.textContent || '').trim() ||
    (['BUTTON', 'A'].includes(el.tagName) ? el.textContent.trim() : '') || (el.getAttribute('title') || '').trim();
  const visible = (el) => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden';
  for (const el of document.querySelectorAll('input:not([type=hidden]), select, textarea, button, a[href], [role=img], svg')) {
    if (visible(el) && !el.closest('[aria-hidden=true]') && !name(el)) problems.push('no accessible name: ' + el.outerHTML.slice(0, 80));
  }
  for (const el of document.querySelectorAll('body *')) {
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own || !visible(el) || el.closest(':disabled') || el.closest('.skip')) continue;
    const st = getComputedStyle(el);
    let fg = rgba(el instanceof SVGElement ? st.fill : st.color);
    let bg = null, gradient = false;
    for (let a = el; a && a.nodeType === 1; a = a.parentElement) {
      const s = getComputedStyle(a);
      if (s.backgroundImage !== 'none') { gradient = true; break; }
      const c = rgba(s.backgroundColor);
      if (c[3] > 0) { bg = bg ? over(bg.concat([1]), c).concat([1]) : c; if (c[3] >= 1) break; }
    }
    if (gradient) continue;
    bg = bg || [255, 255, 255, 1];
    const f = over(fg, bg), l1 = lum(f), l2 = lum(bg);
    const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
    const size = parseFloat(st.fontSize), bold = +st.fontWeight >= 700;
    const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    if (ratio < need) problems.push('contrast ' + ratio.toFixed(2) + ' < ' + need + ': "' + el.textContent.trim().slice(0, 40) + '" (' + st.color + ' on ' + bg + ')');
  }
  return problems;
})()`

// checkAccessible fails the test with the page's accessibility problems.
func checkAccessible(t *testing.T, ctx context.Context, page string) {
	t.Helper()
	problems, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](accessibilityProblems))
	if err != nil {
		t.Fatalf("checking %s: %v", page, err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", page, p)
	}
}
