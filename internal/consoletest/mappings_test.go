package consoletest

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/chromedp/chromedp"

	"github.com/lambdad/lambdad/internal/lambdatest"
	"github.com/lambdad/lambdad/internal/server"
)

// TestMappingsPage: the console lists an account's event source mappings
// with their state and settings, and counts what each has done as its
// messages go through.
func TestMappingsPage(t *testing.T) {
	moto := lambdatest.Moto(t)
	n, client := node(t, server.Options{SQSEndpoint: moto})
	q := lambdatest.SQS(moto)
	out, err := q.CreateQueue(t.Context(), &sqs.CreateQueueInput{QueueName: aws.String("orders-queue")})
	if err != nil {
		t.Fatal(err)
	}
	createGo(t, client, "orders")
	m, err := client.CreateEventSourceMapping(t.Context(), &lambda.CreateEventSourceMappingInput{FunctionName: aws.String("orders"),
		EventSourceArn: aws.String("arn:aws:sqs:us-east-1:123456789012:orders-queue"), BatchSize: aws.Int32(5)})
	if err != nil {
		t.Fatal(err)
	}
	row := fmt.Sprintf(`#mappings tr[data-uuid=%q]`, aws.ToString(m.UUID))
	ctx := browser(t)
	dir := shots(t)
	run(t, ctx, "open the mappings page", chromedp.Navigate(n.URL()+"/#/mappings"), chromedp.WaitVisible(chromedp.CSS(row)))
	waitText(t, ctx, row+` [data-field="state"]`, "Enabled", 10*time.Second)
	if got := textOf(t, ctx, row+" th"); got != "orders-queue" {
		t.Errorf("the mapping's queue shows as %q", got)
	}
	for i := range 2 {
		var entries []sqstypes.SendMessageBatchRequestEntry
		for j := range 10 {
			entries = append(entries, sqstypes.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(j)), MessageBody: aws.String(fmt.Sprintf(`{"n":%d}`, 10*i+j))})
		}
		if _, err := q.SendMessageBatch(t.Context(), &sqs.SendMessageBatchInput{QueueUrl: out.QueueUrl, Entries: entries}); err != nil {
			t.Fatal(err)
		}
	}
	// At least the 20 sent: a message SQS hands out again (its visibility
	// timeout passed on a slow machine) counts again, as on AWS.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		got := textOf(t, ctx, row+` [data-field="messages"]`)
		if n, err := strconv.Atoi(got); err == nil && n >= 20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("messages shown as %q 30 s after 20 were sent", got)
		}
	}
	screenshot(t, ctx, dir, "mappings")
	if got := textOf(t, ctx, row+` [data-field="batches"]`); got == "—" || got == "0" {
		t.Errorf("batches shown as %q after 20 messages went through", got)
	}
}
