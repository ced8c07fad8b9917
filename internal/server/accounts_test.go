package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/lambdad/lambdad/internal/account"
	"github.com/lambdad/lambdad/internal/api"
	"github.com/lambdad/lambdad/internal/awserr"
	"github.com/lambdad/lambdad/internal/clock"
	"github.com/lambdad/lambdad/internal/lambdatest"
	"github.com/lambdad/lambdad/internal/server"
)

const (
	accountA = "111111111111"
	accountB = "222222222222"
	keyA     = "AKIDACCOUNTA"
	keyB     = "AKIDACCOUNTB"
)

// keyAccounts authenticates by access key alone: each known key acts in
// its account, any other is refused as AWS refuses an unknown key.
type keyAccounts map[string]string

func (k keyAccounts) Authenticate(r *http.Request) (account.Caller, error) {
	key := api.AccessKeyID(r)
	acct, ok := k[key]
	if !ok {
		return account.Caller{}, awserr.New("UnrecognizedClientException", "The security token included in the request is invalid.")
	}
	return account.Caller{Account: acct, AccessKeyID: key}, nil
}

// limitsByAccount gives account B small limits of its own and every other
// account AWS's defaults.
type limitsByAccount struct{}

func (limitsByAccount) Limits(id string) account.Limits {
	if id == accountB {
		return account.Limits{Concurrency: 20, MinUnreserved: 5}
	}
	return account.Limits{Concurrency: 1000, MinUnreserved: 100}
}

func startAccounts(t *testing.T, dir string) (n *node, a, b *lambda.Client) {
	t.Helper()
	n = start(t, server.Options{DataDir: dir, AccountID: accountA,
		Auth: keyAccounts{keyA: accountA, keyB: accountB}, Accounts: limitsByAccount{}})
	return n, lambdatest.ClientAs(n.URL(), keyA), lambdatest.ClientAs(n.URL(), keyB)
}

func createMarked(t *testing.T, c *lambda.Client, name, mark string) {
	t.Helper()
	in := goFunctionInput(t, name)
	in.Role = aws.String("arn:aws:iam::" + map[string]string{"a": accountA, "b": accountB}[mark] + ":role/r")
	in.Environment = &types.Environment{Variables: map[string]string{"MARK": mark}}
	if _, err := c.CreateFunction(ctx, in); err != nil {
		t.Fatalf("CreateFunction(%s) as %s: %v", name, mark, err)
	}
}

func invokeAs(t *testing.T, c *lambda.Client, name, event string) (answer, error) {
	t.Helper()
	out, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(name), Payload: []byte(event)})
	if err != nil {
		return answer{}, err
	}
	if out.FunctionError != nil {
		t.Fatalf("invoke %s: %s", name, out.Payload)
	}
	return decode(t, out), nil
}

func settingsOf(t *testing.T, c *lambda.Client) *lambda.GetAccountSettingsOutput {
	t.Helper()
	s, err := c.GetAccountSettings(ctx, &lambda.GetAccountSettingsInput{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestAccountsAreApart runs two accounts on one server, each with a
// function of the same name and its own code settings, and checks that
// nothing of one reaches the other: records, ARNs, environments, limits,
// reservations, throttles and the audit trail, before and after a restart.
func TestAccountsAreApart(t *testing.T) {
	dir := t.TempDir()
	n, a, b := startAccounts(t, dir)

	// An unknown key gets AWS's answer and acts nowhere.
	_, err := lambdatest.ClientAs(n.URL(), "AKIDUNKNOWN").ListFunctions(ctx, &lambda.ListFunctionsInput{})
	if code, _ := lambdatest.APIError(t, err); code != "UnrecognizedClientException" {
		t.Fatalf("unknown key: %v", err)
	}

	createMarked(t, a, "f", "a")
	createMarked(t, a, "only-a", "a")
	createMarked(t, b, "f", "b")

	// Each account's f is its own: its ARN, its code's settings, its
	// environment.
	for _, c := range []struct {
		client *lambda.Client
		acct   string
		mark   string
	}{{a, accountA, "a"}, {b, accountB, "b"}} {
		cfg, err := c.client.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("f")})
		if err != nil {
			t.Fatal(err)
		}
		if want := "arn:aws:lambda:us-east-1:" + c.acct + ":function:f"; aws.ToString(cfg.FunctionArn) != want {
			t.Errorf("FunctionArn = %s, want %s", aws.ToString(cfg.FunctionArn), want)
		}
		ans, err := invokeAs(t, c.client, "f", `{"env":true}`)
		if err != nil {
			t.Fatal(err)
		}
		if ans.Env["MARK"] != c.mark {
			t.Errorf("account %s's f ran with MARK=%q", c.acct, ans.Env["MARK"])
		}
	}
	pa, _ := invokeAs(t, a, "f", `{}`)
	pb, _ := invokeAs(t, b, "f", `{}`)
	if pa.PID == pb.PID {
		t.Errorf("both accounts' f ran in process %d", pa.PID)
	}

	// Lists and lookups see one account.
	list, err := b.ListFunctions(ctx, &lambda.ListFunctionsInput{})
	if err != nil || len(list.Functions) != 1 || aws.ToString(list.Functions[0].FunctionName) != "f" {
		t.Fatalf("B's functions: %+v %v", list, err)
	}
	_, err = b.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("only-a")})
	if code, msg := lambdatest.APIError(t, err); code != "ResourceNotFoundException" || !strings.Contains(msg, accountB) {
		t.Errorf("B reading A's function by name: %s %s", code, msg)
	}
	_, err = b.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("arn:aws:lambda:us-east-1:" + accountA + ":function:only-a")})
	if code, _ := lambdatest.APIError(t, err); code != "ResourceNotFoundException" {
		t.Errorf("B reading A's function by ARN: %v", err)
	}

	// Each account has its own limit, minimum and sums.
	sa, sb := settingsOf(t, a), settingsOf(t, b)
	if sa.AccountLimit.ConcurrentExecutions != 1000 || aws.ToInt32(sa.AccountLimit.UnreservedConcurrentExecutions) != 1000 || sa.AccountUsage.FunctionCount != 2 {
		t.Errorf("A's settings: %+v %+v", sa.AccountLimit, sa.AccountUsage)
	}
	if sb.AccountLimit.ConcurrentExecutions != 20 || aws.ToInt32(sb.AccountLimit.UnreservedConcurrentExecutions) != 20 || sb.AccountUsage.FunctionCount != 1 {
		t.Errorf("B's settings: %+v %+v", sb.AccountLimit, sb.AccountUsage)
	}
	_, err = b.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("f"), ReservedConcurrentExecutions: aws.Int32(16)})
	if _, msg := lambdatest.APIError(t, err); !strings.Contains(msg, "below its minimum value of [5]") {
		t.Errorf("B reserving 16 of 20 with minimum 5: %v", err)
	}
	if _, err := b.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("f"), ReservedConcurrentExecutions: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	if u := aws.ToInt32(settingsOf(t, b).AccountLimit.UnreservedConcurrentExecutions); u != 19 {
		t.Errorf("B's unreserved after reserving 1: %d", u)
	}
	if u := aws.ToInt32(settingsOf(t, a).AccountLimit.UnreservedConcurrentExecutions); u != 1000 {
		t.Errorf("A's unreserved after B reserved: %d", u)
	}

	// B's f, reserved at 1 and busy, throttles B; A's f of the same name
	// runs meanwhile.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if _, err := invokeAs(t, b, "f", `{"sleep_ms":1500}`); err != nil {
			t.Errorf("B's long invocation: %v", err)
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for n.Accounts().For(accountB).Snapshot().InFlight == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	_, err = invokeAs(t, b, "f", `{}`)
	if _, msg := lambdatest.APIError(t, err); lambdatest.Status(t, err) != 429 || !strings.Contains(msg, "Rate Exceeded") {
		t.Errorf("B's second invocation: %v", err)
	}
	if _, err := invokeAs(t, a, "f", `{}`); err != nil {
		t.Errorf("A's f while B's is full: %v", err)
	}
	wg.Wait()

	// The audit trail is per account.
	for key, want := range map[string]int{keyA: 0, keyB: 1} {
		r := lambdatest.Do(t, "GET", n.URL()+"/lambdad/audit", nil, map[string]string{
			"Authorization": "AWS4-HMAC-SHA256 Credential=" + key + "/20261201/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature=0"})
		var page struct{ Records []json.RawMessage }
		if err := json.Unmarshal(r.Body, &page); err != nil || len(page.Records) != want {
			t.Errorf("audit as %s: %s", key, r.Body)
		}
	}

	// After a restart everything is where it was.
	closeNode(t, n)
	_, a, b = startAccounts(t, dir)
	if r, err := b.GetFunctionConcurrency(ctx, &lambda.GetFunctionConcurrencyInput{FunctionName: aws.String("f")}); err != nil || aws.ToInt32(r.ReservedConcurrentExecutions) != 1 {
		t.Errorf("B's reservation after restart: %+v %v", r, err)
	}
	if r, err := a.GetFunctionConcurrency(ctx, &lambda.GetFunctionConcurrencyInput{FunctionName: aws.String("f")}); err != nil || r.ReservedConcurrentExecutions != nil {
		t.Errorf("A's reservation after restart: %+v %v", r, err)
	}
	if s := settingsOf(t, a); s.AccountUsage.FunctionCount != 2 || aws.ToInt32(s.AccountLimit.UnreservedConcurrentExecutions) != 1000 {
		t.Errorf("A's settings after restart: %+v %+v", s.AccountLimit, s.AccountUsage)
	}
	if ans, err := invokeAs(t, b, "f", `{"env":true}`); err != nil || ans.Env["MARK"] != "b" {
		t.Errorf("B's f after restart: %+v %v", ans, err)
	}
}

func closeNode(t *testing.T, n *node) {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := n.Close(c); err != nil {
		t.Fatal(err)
	}
}

// TestSingleAccountDataMoves starts on a data directory written before
// records were kept per account (testdata/single-account, made by
// testdata/single-account.sh and ended with kill -9 while an event ran)
// and checks that everything in it belongs to the server's account now
// and works: functions, versions, aliases, the reservation and the sums,
// provisioned and event invoke configs, the audit trail, the dead letter,
// the event that was running, and the log files.
func TestSingleAccountDataMoves(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("testdata/single-account")); err != nil {
		t.Fatal(err)
	}
	// The data was written on 2026-12-01 at 10:31 UTC, its pending
	// event a moment before: the queue runs at that time, or the event
	// would be older than its six hours and be dropped, as it should.
	made := time.Date(2026, 12, 1, 10, 31, 15, 0, time.UTC)
	n := start(t, server.Options{DataDir: dir, EventClock: shiftedClock{time.Since(made)}})
	c := n.client

	list, err := c.ListFunctions(ctx, &lambda.ListFunctionsInput{})
	if err != nil || len(list.Functions) != 3 {
		t.Fatalf("functions: %+v %v", list, err)
	}
	r, err := c.GetFunctionConcurrency(ctx, &lambda.GetFunctionConcurrencyInput{FunctionName: aws.String("keep")})
	if err != nil || aws.ToInt32(r.ReservedConcurrentExecutions) != 300 {
		t.Errorf("keep's reservation: %+v %v", r, err)
	}
	s := settingsOf(t, c)
	if s.AccountUsage.FunctionCount != 3 || aws.ToInt32(s.AccountLimit.UnreservedConcurrentExecutions) != 698 {
		t.Errorf("settings: %+v %+v", s.AccountLimit, s.AccountUsage)
	}
	out, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("keep:live")})
	if err != nil || string(out.Payload) != `{"function": "keep", "version": "1"}` {
		t.Errorf("keep:live: %s %v", out.Payload, err)
	}
	ec, err := c.GetFunctionEventInvokeConfig(ctx, &lambda.GetFunctionEventInvokeConfigInput{FunctionName: aws.String("keep")})
	if err != nil || aws.ToInt32(ec.MaximumRetryAttempts) != 0 {
		t.Errorf("keep's event invoke config: %+v %v", ec, err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		p, err := c.GetProvisionedConcurrencyConfig(ctx, &lambda.GetProvisionedConcurrencyConfigInput{FunctionName: aws.String("other"), Qualifier: aws.String("1")})
		if err != nil {
			t.Fatal(err)
		}
		if p.Status == types.ProvisionedConcurrencyStatusEnumReady && aws.ToInt32(p.AllocatedProvisionedConcurrentExecutions) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("other:1 not READY: %+v", p)
		}
	}
	audit := lambdatest.Do(t, "GET", n.URL()+"/lambdad/audit", nil, nil)
	if !strings.Contains(string(audit.Body), `"function":"keep"`) {
		t.Errorf("audit: %s", audit.Body)
	}
	dls := lambdatest.Do(t, "GET", n.URL()+"/lambdad/events/dead-letters", nil, nil)
	if !strings.Contains(string(dls.Body), `"async"`) {
		t.Errorf("dead letters: %s", dls.Body)
	}

	// The event that was running when the server was killed runs again,
	// and its lines join async's log where the old ones moved.
	logFile := filepath.Join(server.LogDir(dir), "123456789012", "async.log")
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		n.Environments().FlushLogs()
		b, err := os.ReadFile(logFile)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Count(string(b), "ran {'sleep': 3, 'pending': 1}") == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pending event did not run; async's log:\n%s", b)
		}
	}
	if _, err := os.Stat(filepath.Join(server.LogDir(dir), "keep.log")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("keep's old log file is still in place: %v", err)
	}

	// A second start finds the new layout and changes nothing.
	closeNode(t, n)
	n = start(t, server.Options{DataDir: dir})
	if s := settingsOf(t, n.client); s.AccountUsage.FunctionCount != 3 || aws.ToInt32(s.AccountLimit.UnreservedConcurrentExecutions) != 698 {
		t.Errorf("settings after a second start: %+v %+v", s.AccountLimit, s.AccountUsage)
	}
}

// shiftedClock is the real clock set back by d.
type shiftedClock struct{ d time.Duration }

func (c shiftedClock) Now() time.Time { return time.Now().Add(-c.d) }
func (shiftedClock) NewTimer(d time.Duration) clock.Timer {
	return clock.Real.NewTimer(d)
}
func (shiftedClock) AfterFunc(d time.Duration, f func()) clock.Timer {
	return clock.Real.AfterFunc(d, f)
}
