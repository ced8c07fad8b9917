package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/lambdad/lambdad/internal/lambdatest"
)

// markHandler processes each message of a batch by leaving a file named
// after the message's number in RECORD: what a file says is what the
// function did, whatever became of the server.
const markHandler = `import json, os, time
def handler(event, context):
    time.sleep(float(os.environ.get("SLEEP", "0")))
    for r in event["Records"]:
        n = json.loads(r["body"])["n"]
        open(os.path.join(os.environ["RECORD"], "%d.%s" % (n, context.aws_request_id)), "w").close()
    return {}
`

// marked is the numbers markHandler has processed.
func marked(t *testing.T, dir string) map[int]bool {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]bool{}
	for _, e := range entries {
		n, err := strconv.Atoi(strings.SplitN(e.Name(), ".", 2)[0])
		if err != nil {
			t.Fatalf("record %s", e.Name())
		}
		out[n] = true
	}
	return out
}

// TestKill9MidStreamLosesNoMessage kills the server with SIGKILL while an
// SQS mapping is busy, then checks the queue: every message missing from
// it (deleted) had been processed by the function, so nothing was deleted
// unprocessed; a new server on the same data directory resumes the mapping
// and processes the rest, so nothing is lost. 'lambdad events mappings'
// then shows the mapping.
func TestKill9MidStreamLosesNoMessage(t *testing.T) {
	endpoint := lambdatest.Moto(t)
	q := lambdatest.SQS(endpoint)
	qo, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("work"), Attributes: map[string]string{"VisibilityTimeout": "3"}})
	if err != nil {
		t.Fatal(err)
	}
	queue, queueArn := aws.ToString(qo.QueueUrl), "arn:aws:sqs:us-east-1:123456789012:work"
	const total = 300
	for i := 0; i < total; i += 10 {
		var entries []sqstypes.SendMessageBatchRequestEntry
		for j := range 10 {
			entries = append(entries, sqstypes.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(j)), MessageBody: aws.String(fmt.Sprintf(`{"n":%d}`, i+j))})
		}
		if _, err := q.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(queue), Entries: entries}); err != nil {
			t.Fatal(err)
		}
	}

	dir, records := t.TempDir(), t.TempDir()
	// The function writes to a directory of the host, which a sandbox
	// would hide from it.
	p := startServer(t, dir, "--sandbox=off", "--sqs-endpoint", endpoint)
	c := lambdatest.Client(p.url)
	if _, err := c.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("worker"), Runtime: types.RuntimePython312,
		Handler: aws.String("handler.handler"), Role: aws.String(role), Timeout: aws.Int32(30),
		Code:        &types.FunctionCode{ZipFile: lambdatest.Zip(t, map[string]string{"handler.py": markHandler})},
		Environment: &types.Environment{Variables: map[string]string{"RECORD": records, "SLEEP": "0.05"}}}); err != nil {
		t.Fatal(err)
	}
	m, err := c.CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{FunctionName: aws.String("worker"),
		EventSourceArn: aws.String(queueArn), BatchSize: aws.Int32(5)})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(60 * time.Second); len(marked(t, records)) < 60; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("only %d messages processed in 60 s:\n%s", len(marked(t, records)), p.logText())
		}
	}
	p.stop(syscall.SIGKILL)
	// A function process still running its batch may finish it after the
	// kill: its messages count as processed, and are not deleted.
	time.Sleep(500 * time.Millisecond)
	before := marked(t, records)

	// What is left on the queue, once what was in flight is visible again
	// (after the 3 s visibility timeout): every other message was deleted,
	// and each deleted one must have been processed.
	time.Sleep(3500 * time.Millisecond)
	left := map[int]bool{}
	var handles []string
	for range 100 {
		out, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(queue), MaxNumberOfMessages: 10, VisibilityTimeout: 60})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			break
		}
		for _, msg := range out.Messages {
			var b struct{ N int }
			json.Unmarshal([]byte(aws.ToString(msg.Body)), &b)
			left[b.N] = true
			handles = append(handles, aws.ToString(msg.ReceiptHandle))
		}
	}
	deletedUnprocessed := 0
	for i := range total {
		if !left[i] && !before[i] {
			deletedUnprocessed++
		}
	}
	t.Logf("killed with %d processed; %d left on the queue, %d deleted", len(before), len(left), total-len(left))
	if deletedUnprocessed > 0 {
		t.Errorf("%d messages were deleted but never processed", deletedUnprocessed)
	}
	if len(left) == 0 || len(left) == total {
		t.Errorf("%d left on the queue of %d: the kill did not land mid-stream", len(left), total)
	}
	for _, h := range handles { // visible again at once, for the new server
		if _, err := q.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(queue), ReceiptHandle: aws.String(h), VisibilityTimeout: 0}); err != nil {
			t.Fatal(err)
		}
	}

	p = startServer(t, dir, "--sandbox=off", "--sqs-endpoint", endpoint)
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		out, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(queue),
			AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages, sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
		if err != nil {
			t.Fatal(err)
		}
		if out.Attributes["ApproximateNumberOfMessages"] == "0" && out.Attributes["ApproximateNumberOfMessagesNotVisible"] == "0" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the restarted server did not empty the queue in 90 s: %v\n%s", out.Attributes, p.logText())
		}
	}
	done := marked(t, records)
	for i := range total {
		if !done[i] {
			t.Errorf("message %d was deleted after the restart but never processed", i)
		}
	}

	out, errOut, status := runBinary(t, "events", "mappings", "--endpoint", p.url)
	row := ""
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, aws.ToString(m.UUID)) {
			row = line
		}
	}
	if status != 0 || !strings.HasPrefix(out, "UUID") || !strings.Contains(row, "Enabled") || !strings.Contains(row, " worker ") || !strings.Contains(row, " work ") {
		t.Errorf("events mappings: status %d\n%s%s", status, out, errOut)
	}
	out, _, status = runBinary(t, "events", "mappings", "--json", "--endpoint", p.url)
	var js struct {
		EventSourceMappings []struct {
			UUID, State string
			Figures     map[string]float64
		}
	}
	if err := json.Unmarshal([]byte(out), &js); status != 0 || err != nil || len(js.EventSourceMappings) != 1 ||
		js.EventSourceMappings[0].State != "Enabled" || js.EventSourceMappings[0].Figures["deleted_total"] < float64(len(left)) {
		t.Errorf("events mappings --json: status %d, %v\n%s", status, err, out)
	}
}
