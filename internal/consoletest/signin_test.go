package consoletest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/chromedp/chromedp"

	"github.com/lambdad/lambdad/internal/iam"
	"github.com/lambdad/lambdad/internal/lambdatest"
	"github.com/lambdad/lambdad/internal/server"
)

const signinCredentials = `{
  "accounts": [{"id": "123456789012"}, {"id": "222222222222"}],
  "principals": [
    {"accessKeyId": "AKIACONSOLEADMIN0001", "secretAccessKey": "admin-secret", "account": "123456789012", "user": "admin",
     "policy": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["lambda:*", "lambdad:*"], "Resource": "*"}]}},
    {"accessKeyId": "AKIACONSOLEREADER001", "secretAccessKey": "reader-secret", "account": "123456789012", "user": "reader",
     "policy": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["lambda:Get*", "lambda:List*", "lambdad:*"], "Resource": "*"}]}},
    {"accessKeyId": "AKIACONSOLETENANT001", "secretAccessKey": "tenant-secret", "account": "222222222222", "user": "tenant",
     "policy": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["lambda:*", "lambdad:*"], "Resource": "*"}]}}
  ]
}`

// TestSignInToTheConsole uses the console with access control on, as a
// user would: the page asks for an access key; a wrong secret is refused;
// the reader signs in, sees the account's function and is refused the
// seed's Save with AWS's AccessDenied; the admin's Save goes through; a
// tenant of another account sees none of it. The session is an HttpOnly
// cookie the page's script cannot read (the CSRF check is
// TestConsoleSessions, in internal/server).
func TestSignInToTheConsole(t *testing.T) {
	creds, err := iam.Parse("credentials.json", []byte(signinCredentials))
	if err != nil {
		t.Fatal(err)
	}
	n, _ := node(t, server.Options{Credentials: creds})
	admin := lambdatest.ClientWith(n.URL(), "AKIACONSOLEADMIN0001", "admin-secret", "")
	createGo(t, admin, "orders")
	ctx := browser(t)
	dir := shots(t)

	signIn := func(key, secret string) {
		t.Helper()
		run(t, ctx, "open the console", chromedp.Navigate(n.URL()+"/"), chromedp.WaitVisible(chromedp.CSS(`form.signin`)))
		enter(t, ctx, "Access key ID", key)
		enter(t, ctx, "Secret access key", secret)
		clickButton(t, ctx, "Sign in")
	}
	// The seed's steps: the function, Configuration, Concurrency, Edit,
	// Reserve concurrency, a number, Save.
	reserve := func(value string) {
		t.Helper()
		clickLink(t, ctx, "orders")
		clickLink(t, ctx, "Configuration")
		clickLink(t, ctx, "Concurrency")
		clickLink(t, ctx, "Edit")
		clickLabel(t, ctx, "Reserve concurrency")
		enter(t, ctx, "Reserved concurrency", value)
		clickButton(t, ctx, "Save")
	}
	signIn("AKIACONSOLEREADER001", "wrong")
	run(t, ctx, "the refusal", chromedp.WaitVisible(chromedp.CSS(`form.signin [role=alert] *`)))
	if got := textOf(t, ctx, `form.signin [role=alert]`); !strings.Contains(got, "The security token included in the request is invalid.") {
		t.Errorf("a wrong secret: %q", got)
	}
	screenshot(t, ctx, dir, "signin-refused")
	checkAccessible(t, ctx, "signin-refused")

	signIn("AKIACONSOLEREADER001", "reader-secret")
	run(t, ctx, "the functions", chromedp.WaitVisible(chromedp.CSS(`#functions tbody tr`)))
	if got := textOf(t, ctx, "#who"); got != "Signed in as arn:aws:iam::123456789012:user/reader (account 123456789012)" {
		t.Errorf("the header reads %q", got)
	}
	cookie, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.cookie`))
	if err != nil || strings.Contains(cookie, iam.SessionCookie) {
		t.Errorf("the page's script can read the session cookie: %q %v", cookie, err)
	}
	reserve("10")
	run(t, ctx, "the error", chromedp.WaitVisible(chromedp.CSS(`#concurrency-error`)))
	const denied = "User: arn:aws:iam::123456789012:user/reader is not authorized to perform: lambda:PutFunctionConcurrency on resource: arn:aws:lambda:us-east-1:123456789012:function:orders because no identity-based policy allows the lambda:PutFunctionConcurrency action"
	if got := textOf(t, ctx, "#concurrency-error"); got != denied {
		t.Errorf("the reader's Save: %q, want %q", got, denied)
	}
	screenshot(t, ctx, dir, "signin-reader-denied")
	checkAccessible(t, ctx, "signin-reader-denied")
	if r := reservation(t, admin, "orders"); r != nil {
		t.Fatalf("the reader's Save reserved %d", *r)
	}

	run(t, ctx, "sign out", chromedp.Click(chromedp.CSS(`#signout`)), chromedp.WaitVisible(chromedp.CSS(`form.signin`)))
	signIn("AKIACONSOLEADMIN0001", "admin-secret")
	run(t, ctx, "the functions", chromedp.WaitVisible(chromedp.CSS(`#functions tbody tr`)))
	reserve("10")
	waitText(t, ctx, "#function-concurrency", "Reserved concurrency: 10", 5*time.Second)
	if r := reservation(t, admin, "orders"); r == nil || *r != 10 {
		t.Fatalf("the admin's Save: the SDK reads %v, want 10", r)
	}

	run(t, ctx, "sign out", chromedp.Click(chromedp.CSS(`#signout`)), chromedp.WaitVisible(chromedp.CSS(`form.signin`)))
	signIn("AKIACONSOLETENANT001", "tenant-secret")
	run(t, ctx, "the functions", chromedp.WaitVisible(chromedp.CSS(`#functions`)))
	time.Sleep(300 * time.Millisecond)
	if rows := rowCount(t, ctx, `#functions tbody tr`); rows != 0 {
		t.Errorf("the tenant of another account sees %d functions", rows)
	}
	screenshot(t, ctx, dir, "signin-tenant")
	tenant := lambdatest.ClientWith(n.URL(), "AKIACONSOLETENANT001", "tenant-secret", "")
	if out, err := tenant.ListFunctions(context.Background(), &lambda.ListFunctionsInput{}); err != nil || len(out.Functions) != 0 {
		t.Errorf("the tenant's ListFunctions: %v %v", out, err)
	}

	// The tenant follows the seed's steps on a function of its own
	// account; the figures of the server's account are not shown to it,
	// and the pages say so rather than wait for them.
	if _, err := tenant.CreateFunction(context.Background(), &lambda.CreateFunctionInput{
		FunctionName: aws.String("orders"), Runtime: types.RuntimeProvidedal2023, Handler: aws.String("bootstrap"),
		Role: aws.String("arn:aws:iam::222222222222:role/lambda-role"), Code: &types.FunctionCode{ZipFile: lambdatest.GoFunction(t)},
	}); err != nil {
		t.Fatal(err)
	}
	run(t, ctx, "the tenant's functions", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`#functions tbody tr`)))
	waitText(t, ctx, `#functions tbody tr .in-use`, "—", 3*time.Second)
	reserve("7")
	waitText(t, ctx, "#function-concurrency", "Reserved concurrency: 7", 5*time.Second)
	screenshot(t, ctx, dir, "signin-tenant-concurrency")
	if r := reservation(t, tenant, "orders"); r == nil || *r != 7 {
		t.Fatalf("the tenant's Save: the SDK reads %v, want 7", r)
	}
	if r := reservation(t, admin, "orders"); r == nil || *r != 10 {
		t.Fatalf("the tenant's Save changed the other account's orders: %v", r)
	}
	clickLink(t, ctx, "Account concurrency")
	run(t, ctx, "the refusal", chromedp.WaitVisible(chromedp.CSS(`#account-error`)))
	if got := textOf(t, ctx, "#account-error"); !strings.Contains(got, "server's own account") {
		t.Errorf("the tenant's account picture: %q", got)
	}
}
