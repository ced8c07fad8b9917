package server_test

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/lambdad/lambdad/internal/esm"
	"github.com/lambdad/lambdad/internal/lambdatest"
	"github.com/lambdad/lambdad/internal/server"
)

// sqsHandler processes a batch: it sleeps a little per batch, so batches
// overlap, and reports the messages whose body asks to fail.
const sqsHandler = `import json, os, time
def handler(event, context):
    time.sleep(float(os.environ.get("SLEEP", "0.1")))
    failed = [{"itemIdentifier": r["messageId"]} for r in event["Records"] if json.loads(r["body"]).get("fail")]
    assert all(r["eventSource"] == "aws:sqs" and r["md5OfBody"] and r["receiptHandle"] for r in event["Records"])
    return {"batchItemFailures": failed}
`

type sqsFixture struct {
	n        *node
	sqs      *sqs.Client
	queue    string // URL
	queueArn string
	dlq      string
}

// newSQSFixture starts moto_server and lambdad reading it, and makes a
// queue whose messages go to a dead-letter queue after maxReceive
// receives, visible again visibility after a receive.
func newSQSFixture(t *testing.T, visibility time.Duration, maxReceive int) *sqsFixture {
	t.Helper()
	endpoint := lambdatest.Moto(t)
	f := &sqsFixture{n: start(t, server.Options{SQSEndpoint: endpoint}), sqs: lambdatest.SQS(endpoint)}
	dlq, err := f.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("dlq")})
	if err != nil {
		t.Fatal(err)
	}
	f.dlq = aws.ToString(dlq.QueueUrl)
	attrs := map[string]string{"VisibilityTimeout": strconv.Itoa(int(visibility / time.Second))}
	if maxReceive > 0 {
		attrs["RedrivePolicy"] = fmt.Sprintf(`{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:123456789012:dlq","maxReceiveCount":"%d"}`, maxReceive)
	}
	q, err := f.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("work"), Attributes: attrs})
	if err != nil {
		t.Fatal(err)
	}
	f.queue, f.queueArn = aws.ToString(q.QueueUrl), "arn:aws:sqs:us-east-1:123456789012:work"
	return f
}

func (f *sqsFixture) createFunction(t *testing.T, name string, sleep string) {
	t.Helper()
	_, err := f.n.client.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String(name), Runtime: types.RuntimePython312, Handler: aws.String("handler.handler"), Role: aws.String(role),
		Code:        &types.FunctionCode{ZipFile: lambdatest.Zip(t, map[string]string{"handler.py": sqsHandler})},
		Environment: &types.Environment{Variables: map[string]string{"SLEEP": sleep}},
		Timeout:     aws.Int32(30),
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (f *sqsFixture) send(t *testing.T, bodies []string) {
	t.Helper()
	sendBodies(t, f.sqs, f.queue, bodies)
}

// sendBodies sends messages to a queue, ten a request.
func sendBodies(t testing.TB, c *sqs.Client, queue string, bodies []string) {
	t.Helper()
	for len(bodies) > 0 {
		n := min(10, len(bodies))
		entries := make([]sqstypes.SendMessageBatchRequestEntry, n)
		for i, b := range bodies[:n] {
			entries[i] = sqstypes.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(b)}
		}
		if _, err := c.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(queue), Entries: entries}); err != nil {
			t.Fatal(err)
		}
		bodies = bodies[n:]
	}
}

// count is the messages of a queue, visible and in flight.
func (f *sqsFixture) count(t *testing.T, url string) int {
	t.Helper()
	out, err := f.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages, sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := strconv.Atoi(out.Attributes["ApproximateNumberOfMessages"])
	b, _ := strconv.Atoi(out.Attributes["ApproximateNumberOfMessagesNotVisible"])
	return a + b
}

func (f *sqsFixture) mapping(t *testing.T, in *lambda.CreateEventSourceMappingInput) string {
	t.Helper()
	in.EventSourceArn = aws.String(f.queueArn)
	out, err := f.n.client.CreateEventSourceMapping(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.State) != "Creating" || aws.ToString(out.FunctionArn) != "arn:aws:lambda:us-east-1:123456789012:function:"+aws.ToString(in.FunctionName) {
		t.Errorf("created mapping: %+v", out)
	}
	return aws.ToString(out.UUID)
}

// watchInFlight samples the function's running invocations until stop
// and returns the most seen at once.
func watchInFlight(n *node, function string) (stop func() int) {
	var peak atomic.Int64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(2 * time.Millisecond):
			}
			if fs, ok := n.Admission().Function(function); ok {
				v := int64(fs.OnDemandInFlight + fs.ProvisionedInFlight)
				if v > peak.Load() {
					peak.Store(v)
				}
			}
		}
	})
	return func() int { close(done); wg.Wait(); return int(peak.Load()) }
}

func waitStats(t *testing.T, n *node, uuid, what string, ok func(esm.Stats) bool) esm.Stats {
	t.Helper()
	var s esm.Stats
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		s = n.Mappings().Stats()[uuid]
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached in 90 s; stats %+v", what, s)
		}
	}
}

// TestSQSMappingDeliversEverything sends 200 messages, 20 of which the
// function reports as failed, through a mapping with ReportBatchItemFailures
// and MaximumConcurrency 2: the 180 are deleted once each, the 20 end in the
// dead-letter queue after their two receives, nothing is lost, and no more
// than 2 batches ever run at once, none throttled.
func TestSQSMappingDeliversEverything(t *testing.T) {
	f := newSQSFixture(t, 3*time.Second, 2)
	f.createFunction(t, "worker", "0.05")
	var bodies []string
	for i := range 200 {
		bodies = append(bodies, fmt.Sprintf(`{"n":%d,"fail":%v}`, i, i%10 == 3))
	}
	f.send(t, bodies)
	stop := watchInFlight(f.n, "worker")
	uuid := f.mapping(t, &lambda.CreateEventSourceMappingInput{FunctionName: aws.String("worker"), BatchSize: aws.Int32(10),
		FunctionResponseTypes: []types.FunctionResponseType{types.FunctionResponseTypeReportBatchItemFailures},
		ScalingConfig:         &types.ScalingConfig{MaximumConcurrency: aws.Int32(2)}})
	waitStats(t, f.n, uuid, "180 deleted", func(s esm.Stats) bool { return s.Deleted >= 180 })
	for deadline := time.Now().Add(60 * time.Second); f.count(t, f.dlq) < 20; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("dead-letter queue holds %d, want 20; queue %d; stats %+v", f.count(t, f.dlq), f.count(t, f.queue), n2s(f.n, uuid))
		}
	}
	peak := stop()
	s := f.n.Mappings().Stats()[uuid]
	// At least once: a message whose batch outlived the visibility
	// timeout may run and be deleted twice, as on AWS.
	if s.Deleted < 180 || f.count(t, f.queue) != 0 || f.count(t, f.dlq) != 20 {
		t.Errorf("deleted %d, queue %d, dead letters %d; want 180 (or more), 0, 20", s.Deleted, f.count(t, f.queue), f.count(t, f.dlq))
	}
	if peak > 2 || s.ThrottledBatches != 0 {
		t.Errorf("peak concurrency %d with MaximumConcurrency 2; %d batches throttled", peak, s.ThrottledBatches)
	}
	scrape := lambdatest.Do(t, "GET", f.n.URL()+"/lambdad/metrics", nil, nil)
	want := `lambdad_event_source_mapping_deleted_total{function="worker",queue="` + f.queueArn + `",uuid="` + uuid + `"} ` + strconv.FormatInt(f.n.Mappings().Stats()[uuid].Deleted, 10)
	if !strings.Contains(string(scrape.Body), want) {
		t.Errorf("/lambdad/metrics lacks %s", want)
	}
	got, err := f.n.client.GetEventSourceMapping(ctx, &lambda.GetEventSourceMappingInput{UUID: aws.String(uuid)})
	if err != nil || aws.ToString(got.State) != "Enabled" || aws.ToInt32(got.ScalingConfig.MaximumConcurrency) != 2 {
		t.Errorf("mapping: %+v %v", got, err)
	}
}

func n2s(n *node, uuid string) string {
	b, _ := json.Marshal(n.Mappings().Stats()[uuid])
	return string(b)
}

// TestSQSOverPull is AWS's over-pull problem: a function reserved at 1
// behind a mapping that starts with 5 concurrent batches throttles its own
// batches, which go back to the queue and come again; with
// MaximumConcurrency no higher than the reservation nothing is throttled.
// Either way every message is processed and deleted in the end.
func TestSQSOverPull(t *testing.T) {
	f := newSQSFixture(t, time.Second, 0)
	f.createFunction(t, "slow", "0.2")
	f.n.reserve(t, "slow", 2)
	var bodies []string
	for i := range 60 {
		bodies = append(bodies, fmt.Sprintf(`{"n":%d}`, i))
	}
	f.send(t, bodies)
	uuid := f.mapping(t, &lambda.CreateEventSourceMappingInput{FunctionName: aws.String("slow"), BatchSize: aws.Int32(2)})
	s := waitStats(t, f.n, uuid, "60 deleted", func(s esm.Stats) bool { return s.Deleted >= 60 })
	if s.ThrottledBatches == 0 {
		t.Errorf("no batch was throttled with 5 concurrent batches against a reservation of 2: %+v", s)
	}
	if _, err := f.n.client.DeleteEventSourceMapping(ctx, &lambda.DeleteEventSourceMappingInput{UUID: aws.String(uuid)}); err != nil {
		t.Fatal(err)
	}

	f.send(t, bodies)
	uuid = f.mapping(t, &lambda.CreateEventSourceMappingInput{FunctionName: aws.String("slow"), BatchSize: aws.Int32(2),
		ScalingConfig: &types.ScalingConfig{MaximumConcurrency: aws.Int32(2)}})
	s = waitStats(t, f.n, uuid, "60 deleted", func(s esm.Stats) bool { return s.Deleted >= 60 })
	if s.ThrottledBatches != 0 {
		t.Errorf("%d batches throttled with MaximumConcurrency at the reservation", s.ThrottledBatches)
	}
	if c := f.count(t, f.queue); c != 0 {
		t.Errorf("%d messages left on the queue", c)
	}
}

// TestSQSMappingAPI checks the mapping operations' answers and errors.
func TestSQSMappingAPI(t *testing.T) {
	n := start(t, server.Options{SQSEndpoint: "http://127.0.0.1:1"}) // never reached: the mappings are disabled
	n.createGo(t, "f")
	arn := "arn:aws:sqs:us-east-1:123456789012:q"
	out, err := n.client.CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{FunctionName: aws.String("f"), EventSourceArn: aws.String(arn), Enabled: aws.Bool(false)})
	if err != nil || aws.ToInt32(out.BatchSize) != 10 || !strings.HasSuffix(aws.ToString(out.EventSourceMappingArn), ":event-source-mapping:"+aws.ToString(out.UUID)) {
		t.Fatalf("create: %+v %v", out, err)
	}
	_, err = n.client.CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{FunctionName: aws.String("f"), EventSourceArn: aws.String(arn)})
	if code, msg := lambdatest.APIError(t, err); code != "ResourceConflictException" || !strings.Contains(msg, "already exists. Please update or delete the existing mapping with UUID "+aws.ToString(out.UUID)) {
		t.Errorf("a second mapping of the same queue and function: %s %s", code, msg)
	}
	_, err = n.client.UpdateEventSourceMapping(ctx, &lambda.UpdateEventSourceMappingInput{UUID: out.UUID, BatchSize: aws.Int32(100)})
	if _, msg := lambdatest.APIError(t, err); msg != "Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10" {
		t.Errorf("BatchSize 100 without a window: %v", err)
	}
	_, err = n.client.CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{FunctionName: aws.String("f"), EventSourceArn: aws.String(arn + "2"),
		ScalingConfig: &types.ScalingConfig{MaximumConcurrency: aws.Int32(1)}})
	if code, _ := lambdatest.APIError(t, err); code != "ValidationException" {
		t.Errorf("MaximumConcurrency 1: %v", err)
	}
	got, err := n.client.GetEventSourceMapping(ctx, &lambda.GetEventSourceMappingInput{UUID: out.UUID})
	if err != nil || aws.ToString(got.State) != "Disabled" {
		t.Errorf("get: %+v %v", got, err)
	}
	list, err := n.client.ListEventSourceMappings(ctx, &lambda.ListEventSourceMappingsInput{FunctionName: aws.String("f")})
	if err != nil || len(list.EventSourceMappings) != 1 {
		t.Errorf("list: %+v %v", list, err)
	}
	del, err := n.client.DeleteEventSourceMapping(ctx, &lambda.DeleteEventSourceMappingInput{UUID: out.UUID})
	if err != nil || aws.ToString(del.State) != "Deleting" {
		t.Errorf("delete: %+v %v", del, err)
	}
	_, err = n.client.GetEventSourceMapping(ctx, &lambda.GetEventSourceMappingInput{UUID: out.UUID})
	if code, _ := lambdatest.APIError(t, err); code != "ResourceNotFoundException" {
		t.Errorf("get after delete: %v", err)
	}
}
