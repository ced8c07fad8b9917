package api_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/lambdad/lambdad/internal/lambdatest"
)

const qualifiedMsg = "This operation is permitted on Lambda functions only. Aliases and versions do not support this operation. Please specify either a function name or an unqualified function ARN."

// rawPut sends PutFunctionConcurrency with any body, as the SDK would not.
func (h *harness) rawPut(t *testing.T, name, body string) *lambdatest.Response {
	t.Helper()
	return lambdatest.Do(t, "PUT", h.url+"/2017-10-31/functions/"+name+"/concurrency", []byte(body), nil)
}

// wantBody checks a raw answer: status, error type header and the exact
// body keys and values.
func wantBody(t *testing.T, what string, res *lambdatest.Response, status int, errType string, body map[string]any) {
	t.Helper()
	got := res.JSON(t)
	if res.Status != status || res.Header.Get("X-Amzn-ErrorType") != errType || !reflect.DeepEqual(got, body) {
		t.Errorf("%s:\n got %d %q %v\nwant %d %q %v", what, res.Status, res.Header.Get("X-Amzn-ErrorType"), got, status, errType, body)
	}
}

func minimumMsg(m int) string {
	return fmt.Sprintf("Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [%d].", m)
}

func TestPutFunctionConcurrencyChecksInOrder(t *testing.T) {
	h := newHarness(t, 1000, 100)
	h.create(t, "f")
	h.create(t, "g")
	if _, err := h.client.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("f")}); err != nil {
		t.Fatal(err)
	}
	qualified := map[string]any{"Type": "User", "message": qualifiedMsg}
	for _, name := range []string{"f:1", "f:$LATEST", "f:live", arnBase + "f:1", account + ":function:f:live", "nope:1",
		"arn:aws:lambda:eu-west-1:123456789012:function:f:1"} {
		// The qualifier check comes first: before existence and before the value.
		wantBody(t, "qualified "+name, h.rawPut(t, name, `{"ReservedConcurrentExecutions":-1}`), 400, "InvalidParameterValueException", qualified)
	}
	notFound := map[string]any{"Type": "User", "Message": "Function not found: " + arnBase + "nope:$LATEST"}
	wantBody(t, "missing function", h.rawPut(t, "nope", `{"ReservedConcurrentExecutions":-1}`), 404, "ResourceNotFoundException", notFound)
	wantBody(t, "missing function by ARN", h.rawPut(t, arnBase+"nope", `{}`), 404, "ResourceNotFoundException", notFound)
	wantBody(t, "negative", h.rawPut(t, "f", `{"ReservedConcurrentExecutions":-1}`), 400, "ValidationException",
		map[string]any{"message": "1 validation error detected: Value '-1' at 'reservedConcurrentExecutions' failed to satisfy constraint: Member must have value greater than or equal to 0"})
	wantBody(t, "missing value", h.rawPut(t, "f", `{}`), 400, "ValidationException",
		map[string]any{"message": "1 validation error detected: Value null at 'reservedConcurrentExecutions' failed to satisfy constraint: Member must not be null"})
	wantBody(t, "above the limit", h.rawPut(t, "f", `{"ReservedConcurrentExecutions":1001}`), 400, "InvalidParameterValueException",
		map[string]any{"message": minimumMsg(100)})
	wantBody(t, "wrong region", h.rawPut(t, "arn:aws:lambda:eu-west-1:123456789012:function:f", `{"ReservedConcurrentExecutions":1}`), 404, "ResourceNotFoundException",
		map[string]any{"Type": "User", "Message": "Functions from 'eu-west-1' are not reachable in this region ('us-east-1')"})
}

func TestReservationBoundary(t *testing.T) {
	h := newHarness(t, 1000, 100)
	for _, n := range []string{"f", "g", "h"} {
		h.create(t, n)
	}
	put := func(name string, n int32) error {
		_, err := h.client.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String(name), ReservedConcurrentExecutions: aws.Int32(n)})
		return err
	}
	if err := put("f", 900); err != nil {
		t.Fatalf("900 of 1000 with 100 unreserved: %v", err)
	}
	wantErr(t, put("g", 1), 400, "InvalidParameterValueException", minimumMsg(100))
	if err := put("f", 900); err != nil {
		t.Fatalf("re-putting the same value at the boundary: %v", err)
	}
	wantErr(t, put("f", 901), 400, "InvalidParameterValueException", minimumMsg(100))
	if err := put("g", 0); err != nil {
		t.Fatalf("0 always passes the minimum check: %v", err)
	}
	if err := put("f", 500); err != nil {
		t.Fatal(err)
	}
	if err := put("g", 400); err != nil {
		t.Fatalf("500+400 leaves exactly 100: %v", err)
	}
	settings, err := h.client.GetAccountSettings(ctx, &lambda.GetAccountSettingsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToInt32(settings.AccountLimit.UnreservedConcurrentExecutions); got != 100 {
		t.Errorf("UnreservedConcurrentExecutions = %d, want 100", got)
	}
	if got := settings.AccountUsage.FunctionCount; got != 3 {
		t.Errorf("FunctionCount = %d, want 3", got)
	}

	// Get: the value when set, {} when not; GetFunction's Concurrency block.
	res := lambdatest.Do(t, "GET", h.url+"/2019-09-30/functions/h/concurrency", nil, nil)
	if res.Status != 200 || string(res.Body) != "{}" {
		t.Errorf("GetFunctionConcurrency unset: %d %s, want 200 {}", res.Status, res.Body)
	}
	got, err := h.client.GetFunctionConcurrency(ctx, &lambda.GetFunctionConcurrencyInput{FunctionName: aws.String("g")})
	if err != nil || aws.ToInt32(got.ReservedConcurrentExecutions) != 400 {
		t.Fatalf("GetFunctionConcurrency: %v %v", got, err)
	}
	_, err = h.client.GetFunctionConcurrency(ctx, &lambda.GetFunctionConcurrencyInput{FunctionName: aws.String("nope")})
	wantErr(t, err, 404, "ResourceNotFoundException", "Function not found: "+arnBase+"nope")
	if err := put("h", 0); err != nil {
		t.Fatal(err)
	}
	fn, err := h.client.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("h")})
	if err != nil || fn.Concurrency == nil || aws.ToInt32(fn.Concurrency.ReservedConcurrentExecutions) != 0 {
		t.Fatalf("GetFunction with reservation 0: Concurrency = %+v (%v)", fn.Concurrency, err)
	}

	// Delete: 204, unreserved again; errors as Put's.
	if _, err := h.client.DeleteFunctionConcurrency(ctx, &lambda.DeleteFunctionConcurrencyInput{FunctionName: aws.String("g")}); err != nil {
		t.Fatal(err)
	}
	res = lambdatest.Do(t, "DELETE", h.url+"/2017-10-31/functions/f/concurrency", nil, nil)
	if res.Status != 204 || len(res.Body) != 0 {
		t.Errorf("DeleteFunctionConcurrency: %d %q, want 204 and no body", res.Status, res.Body)
	}
	_, err = h.client.DeleteFunctionConcurrency(ctx, &lambda.DeleteFunctionConcurrencyInput{FunctionName: aws.String("nope")})
	wantErr(t, err, 404, "ResourceNotFoundException", "Function not found: "+arnBase+"nope:$LATEST")
	_, err = h.client.DeleteFunctionConcurrency(ctx, &lambda.DeleteFunctionConcurrencyInput{FunctionName: aws.String("f:1")})
	wantErr(t, err, 400, "InvalidParameterValueException", qualifiedMsg)
	settings, _ = h.client.GetAccountSettings(ctx, &lambda.GetAccountSettingsInput{})
	if got := aws.ToInt32(settings.AccountLimit.UnreservedConcurrentExecutions); got != 1000 {
		t.Errorf("after deleting: UnreservedConcurrentExecutions = %d, want 1000 (h reserves 0)", got)
	}
}

func TestSmallAccountMinimum(t *testing.T) {
	h := newHarness(t, 10, 100)
	h.create(t, "f")
	_, err := h.client.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("f"), ReservedConcurrentExecutions: aws.Int32(1)})
	wantErr(t, err, 400, "InvalidParameterValueException", minimumMsg(10))
	if _, err := h.client.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("f"), ReservedConcurrentExecutions: aws.Int32(0)}); err != nil {
		t.Fatal(err)
	}
	settings, _ := h.client.GetAccountSettings(ctx, &lambda.GetAccountSettingsInput{})
	if settings.AccountLimit.ConcurrentExecutions != 10 || aws.ToInt32(settings.AccountLimit.UnreservedConcurrentExecutions) != 10 {
		t.Errorf("AccountLimit = %+v", settings.AccountLimit)
	}
}

// TestRacingReservations proves the check and the write are one step:
// many writers racing on different functions never push the unreserved
// pool below the minimum together.
func TestRacingReservations(t *testing.T) {
	h := newHarness(t, 1000, 100)
	const writers, each = 40, 50 // 40×50 = 2000 wanted, 900 reservable
	for i := range writers {
		h.create(t, fmt.Sprintf("fn-%02d", i))
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	granted := 0
	for i := range writers {
		wg.Go(func() {
			_, err := h.client.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{
				FunctionName: aws.String(fmt.Sprintf("fn-%02d", i)), ReservedConcurrentExecutions: aws.Int32(each)})
			if err == nil {
				mu.Lock()
				granted += each
				mu.Unlock()
				return
			}
			if code, _ := lambdatest.APIError(t, err); code != "InvalidParameterValueException" {
				t.Errorf("writer %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if granted != 900 {
		t.Errorf("granted %d, want exactly 900 (18 writers of 50)", granted)
	}
	settings, err := h.client.GetAccountSettings(ctx, &lambda.GetAccountSettingsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToInt32(settings.AccountLimit.UnreservedConcurrentExecutions); int(got) != 1000-granted {
		t.Errorf("UnreservedConcurrentExecutions = %d, want %d", got, 1000-granted)
	}
}

func TestAuditTrail(t *testing.T) {
	h := newHarness(t, 1000, 100)
	h.create(t, "f")
	put, err := h.client.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("f"), ReservedConcurrentExecutions: aws.Int32(5)})
	if err != nil || aws.ToInt32(put.ReservedConcurrentExecutions) != 5 {
		t.Fatal(put, err)
	}
	if _, err := h.client.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("f"), ReservedConcurrentExecutions: aws.Int32(7)}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.client.DeleteFunctionConcurrency(ctx, &lambda.DeleteFunctionConcurrencyInput{FunctionName: aws.String("f")}); err != nil {
		t.Fatal(err)
	}
	res := lambdatest.Do(t, "GET", h.url+"/lambdad/audit?limit=10", nil, nil)
	var page struct {
		Records []struct {
			RequestID, AccessKeyID, Operation, Function string
			Old, New                                    *int
		}
	}
	if err := json.Unmarshal(res.Body, &page); err != nil || res.Status != 200 {
		t.Fatalf("audit: %d %s %v", res.Status, res.Body, err)
	}
	type rec struct {
		op       string
		old, new any
	}
	var got []rec
	for _, r := range page.Records {
		if r.RequestID == "" || r.AccessKeyID != lambdatest.AccessKeyID || r.Function != "f" {
			t.Errorf("record %+v lacks its request id, caller or function", r)
		}
		val := func(p *int) any {
			if p == nil {
				return nil
			}
			return *p
		}
		got = append(got, rec{r.Operation, val(r.Old), val(r.New)})
	}
	want := []rec{{"DeleteFunctionConcurrency", 7, nil}, {"PutFunctionConcurrency", 5, 7}, {"PutFunctionConcurrency", nil, 5}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("audit = %v, want %v", got, want)
	}
}
