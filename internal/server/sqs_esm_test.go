package server_test

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/lambdad/lambdad/internal/esm"
	"github.com/lambdad/lambdad/internal/lambdatest"
)

// recordingHandler processes a batch and writes what it did to a file of
// RECORD, one per invocation: when it started and ended, the messages it
// processed successfully and the ones it reports as failed. A message's
// body {"n": N} fails by N's hash, as failClass says: always (it ends in
// the dead-letter queue) or on its first receive only (it is retried and
// succeeds).
const recordingHandler = `import hashlib, json, os, time
def fail_class(n):
    h = hashlib.sha256(str(n).encode()).digest()[0] % 20
    return "always" if h == 0 else "once" if h == 1 else ""
def handler(event, context):
    start = time.time()
    time.sleep(float(os.environ.get("SLEEP", "0")))
    ok, failed = [], []
    for r in event["Records"]:
        try:
            b = json.loads(r["body"])
        except ValueError:
            b = {}
        n = b.get("n") if isinstance(b, dict) else None
        c = fail_class(n) if n is not None else ""
        if c == "always" or (c == "once" and r["attributes"]["ApproximateReceiveCount"] == "1"):
            failed.append(r)
        else:
            ok.append(r)
    rec = {"start": start, "end": time.time(),
           "ok": [{"id": r["messageId"], "body": r["body"], "group": r["attributes"].get("MessageGroupId", "")} for r in ok],
           "failed": [r["messageId"] for r in failed]}
    tmp = os.path.join(os.environ["RECORD"], context.aws_request_id + ".tmp")
    with open(tmp, "w") as f:
        json.dump(rec, f)
    os.rename(tmp, tmp[:-4] + ".json")
    return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in failed]}
`

// failClass is recordingHandler's fail_class.
func failClass(n int) string {
	switch sha256.Sum256([]byte(strconv.Itoa(n)))[0] % 20 {
	case 0:
		return "always"
	case 1:
		return "once"
	}
	return ""
}

type invocation struct {
	Start, End float64
	OK         []struct{ ID, Body, Group string }
	Failed     []string
}

// invocations reads what recordingHandler wrote.
func invocations(t *testing.T, dir string) []invocation {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	var out []invocation
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var inv invocation
		if err := json.Unmarshal(b, &inv); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, inv)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start < out[j].Start })
	return out
}

// createRecorder creates a function running recordingHandler that records
// into a new directory, which it returns.
func (f *sqsFixture) createRecorder(t *testing.T, name, sleep string) string {
	t.Helper()
	dir := t.TempDir()
	_, err := f.n.client.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String(name), Runtime: types.RuntimePython312, Handler: aws.String("handler.handler"), Role: aws.String(role),
		Code:        &types.FunctionCode{ZipFile: lambdatest.Zip(t, map[string]string{"handler.py": recordingHandler})},
		Environment: &types.Environment{Variables: map[string]string{"SLEEP": sleep, "RECORD": dir}},
		Timeout:     aws.Int32(30),
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// drain receives every message left on a queue (deleting none) and returns
// their bodies; visibility keeps them hidden from the others meanwhile.
func (f *sqsFixture) drain(t *testing.T, url string) []string {
	t.Helper()
	var bodies []string
	for range 200 {
		out, err := f.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10, VisibilityTimeout: 600})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			break
		}
		for _, m := range out.Messages {
			bodies = append(bodies, aws.ToString(m.Body))
		}
	}
	return bodies
}

// feed sends bodies in the background, ten at a time, while the queue
// holds fewer than depth messages: moto_server's receives cost time linear
// in the queue's depth, so a shallow queue keeps a long stream quick. The
// returned function waits for the last send.
func (f *sqsFixture) feed(t *testing.T, bodies []string, depth int) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for deadline := time.Now().Add(5 * time.Minute); len(bodies) > 0; {
			out, err := f.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(f.queue),
				AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages, sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
			if err != nil {
				t.Errorf("feeding: %v", err)
				return
			}
			a, _ := strconv.Atoi(out.Attributes["ApproximateNumberOfMessages"])
			b, _ := strconv.Atoi(out.Attributes["ApproximateNumberOfMessagesNotVisible"])
			if a+b >= depth {
				if time.Now().After(deadline) {
					t.Errorf("feeding: the queue stayed at %d messages", a+b)
					return
				}
				time.Sleep(20 * time.Millisecond)
				continue
			}
			k := min(10, len(bodies))
			entries := make([]sqstypes.SendMessageBatchRequestEntry, k)
			for i, body := range bodies[:k] {
				entries[i] = sqstypes.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(body)}
			}
			if _, err := f.sqs.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(f.queue), Entries: entries}); err != nil {
				t.Errorf("feeding: %v", err)
				return
			}
			bodies = bodies[k:]
		}
	}()
	return func() { <-done }
}

func waitUntil(t *testing.T, what string, limit time.Duration, ok func() bool, state func() string) {
	t.Helper()
	for deadline := time.Now().Add(limit); !ok(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached in %v; %s", what, limit, state())
		}
	}
}

func bodyN(t *testing.T, body string) int {
	t.Helper()
	var b struct{ N *int }
	if err := json.Unmarshal([]byte(body), &b); err != nil || b.N == nil {
		t.Fatalf("body %q has no n", body)
	}
	return *b.N
}

// TestSQSThousandMessagesWithFailures sends 1,000 messages through a mapping
// with ReportBatchItemFailures whose function fails some by their number's
// hash: about 5% always (they go to the dead-letter queue after three
// receives) and 5% on their first receive only (retried, then processed).
// In the end none is lost and none was deleted without having been
// processed: the queue is empty, each message the function never processed
// is in the dead-letter queue, and each one it processed is not.
//
// MaximumConcurrency is 2 because moto_server is not safe under many
// concurrent receives: it then answers 500 after marking messages received,
// and those come back only after their visibility timeout (a maxReceiveCount
// of 3 leaves room for one such receive; a message lost so twice goes to the
// dead-letter queue unprocessed, which is still no loss).
func TestSQSThousandMessagesWithFailures(t *testing.T) {
	f := newSQSFixture(t, 2*time.Second, 3)
	dir := f.createRecorder(t, "worker", "0")
	const total = 1000
	var bodies []string
	want := map[string]int{}
	for i := range total {
		bodies = append(bodies, fmt.Sprintf(`{"n":%d}`, i))
		want[failClass(i)]++
	}
	if want["always"] == 0 || want["once"] == 0 {
		t.Fatalf("the hash fails nothing: %v", want)
	}
	began := float64(time.Now().UnixNano()) / 1e9
	uuid := f.mapping(t, &lambda.CreateEventSourceMappingInput{FunctionName: aws.String("worker"), BatchSize: aws.Int32(10),
		FunctionResponseTypes: []types.FunctionResponseType{types.FunctionResponseTypeReportBatchItemFailures},
		ScalingConfig:         &types.ScalingConfig{MaximumConcurrency: aws.Int32(2)}})
	f.feed(t, bodies, 100)()
	// The always-failing ones move to the dead-letter queue when they are
	// received a fourth time, after three visibility timeouts.
	waitUntil(t, "the queue drained", 120*time.Second, func() bool {
		return f.count(t, f.queue) == 0 && f.count(t, f.dlq) >= want["always"]
	}, func() string {
		return fmt.Sprintf("queue %d, dead letters %d, stats %s", f.count(t, f.queue), f.count(t, f.dlq), n2s(f.n, uuid))
	})
	s := f.n.Mappings().Stats()[uuid]
	if _, err := f.n.client.DeleteEventSourceMapping(ctx, &lambda.DeleteEventSourceMappingInput{UUID: aws.String(uuid)}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // a batch in flight at the delete writes its record

	processed := map[int]int{} // n → successful invocations with it
	perTen := map[int]int{}
	for _, inv := range invocations(t, dir) {
		perTen[int(inv.Start-began)/10] += len(inv.OK) + len(inv.Failed)
		for _, m := range inv.OK {
			processed[bodyN(t, m.Body)]++
		}
	}
	t.Logf("messages handed to the function by 10 s since the mapping was created: %v", perTen)
	dead := map[int]bool{}
	for _, b := range f.drain(t, f.dlq) {
		dead[bodyN(t, b)] = true
	}
	twice, unprocessedDead := 0, 0
	for i := range total {
		c := failClass(i)
		switch {
		case c == "always" && processed[i] > 0:
			t.Errorf("message %d, which the function always fails, was processed", i)
		case processed[i] == 0 && !dead[i]:
			// Not on the queue, not in the dead-letter queue and never
			// processed: deleted unprocessed, or lost.
			t.Errorf("message %d (%q) was neither processed nor dead-lettered", i, c)
		case processed[i] > 0 && dead[i]:
			t.Errorf("message %d was processed and also dead-lettered", i)
		case c != "always" && dead[i]:
			unprocessedDead++
		}
		if processed[i] > 1 {
			twice++
		}
	}
	// A few may be dead-lettered unprocessed by moto's failed receives;
	// many would mean the mapping abandons batches.
	if unprocessedDead > total/50 {
		t.Errorf("%d messages the function would have processed ended in the dead-letter queue", unprocessedDead)
	}
	if int(s.Deleted) < len(processed) {
		t.Errorf("%d deletions for %d messages processed", s.Deleted, len(processed))
	}
	t.Logf("%d processed (%d more than once), %d dead letters (%d of them not failed by the function); stats %+v",
		len(processed), twice, len(dead), unprocessedDead, s)
}

// TestSQSMappingDisableStopsInvoking disables a mapping while messages keep
// coming and checks that no invocation starts more than stopBound after
// UpdateEventSourceMapping answered, that the messages not processed are
// still on the queue, and that enabling it again finishes them.
func TestSQSMappingDisableStopsInvoking(t *testing.T) {
	// stopBound is the promise: the update reaches the poller through the
	// store's feed at once and the poller cancels its receives and every
	// batch not yet invoked; the bound leaves room for a loaded machine.
	const stopBound = time.Second
	f := newSQSFixture(t, 5*time.Second, 0)
	dir := f.createRecorder(t, "worker", "0.05")
	const total = 400
	var bodies []string
	for i := range total {
		bodies = append(bodies, fmt.Sprintf(`{"k":%d}`, i)) // no "n": the function fails none
	}
	// The messages keep coming while the mapping is disabled.
	fed := f.feed(t, bodies, 60)
	uuid := f.mapping(t, &lambda.CreateEventSourceMappingInput{FunctionName: aws.String("worker"), BatchSize: aws.Int32(2)})
	waitStats(t, f.n, uuid, "40 deleted", func(s esm.Stats) bool { return s.Deleted >= 40 })
	if _, err := f.n.client.UpdateEventSourceMapping(ctx, &lambda.UpdateEventSourceMappingInput{UUID: aws.String(uuid), Enabled: aws.Bool(false)}); err != nil {
		t.Fatal(err)
	}
	stopped := float64(time.Now().UnixNano()) / 1e9
	time.Sleep(stopBound + 2*time.Second)
	invs := invocations(t, dir)
	ok := 0
	for _, inv := range invs {
		ok += len(inv.OK)
		if late := inv.Start - stopped; late > stopBound.Seconds() {
			t.Errorf("an invocation started %.3f s after the mapping was disabled (bound %v)", late, stopBound)
		}
	}
	if got, err := f.n.client.GetEventSourceMapping(ctx, &lambda.GetEventSourceMappingInput{UUID: aws.String(uuid)}); err != nil || aws.ToString(got.State) != "Disabled" {
		t.Errorf("state after disabling: %+v %v", got, err)
	}
	left := f.count(t, f.queue)
	t.Logf("disabled after %d messages processed; last invocation started %.3f s after the update; %d on the queue",
		ok, invs[len(invs)-1].Start-stopped, left)
	if left == 0 {
		t.Errorf("nothing on the queue %v after disabling: the feed did not go on", stopBound+2*time.Second)
	}
	if _, err := f.n.client.UpdateEventSourceMapping(ctx, &lambda.UpdateEventSourceMappingInput{UUID: aws.String(uuid), Enabled: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	// Enabled again, the mapping takes the rest; batches cut short by the
	// stop come back after the 5 s visibility timeout.
	fed()
	seen := map[string]bool{}
	waitUntil(t, "every message processed", 90*time.Second, func() bool {
		for _, inv := range invocations(t, dir) {
			for _, m := range inv.OK {
				seen[m.Body] = true
			}
		}
		return len(seen) == total
	}, func() string { return fmt.Sprintf("%d of %d processed; %s", len(seen), total, n2s(f.n, uuid)) })
}

// TestSQSMappingFilterCriteria checks FilterCriteria: refused patterns,
// the criteria in the answers, and delivery: only the messages matching one
// of the two filters reach the function, the others are deleted unseen.
func TestSQSMappingFilterCriteria(t *testing.T) {
	f := newSQSFixture(t, 30*time.Second, 0)
	dir := f.createRecorder(t, "worker", "0")
	criteria := func(patterns ...string) *types.FilterCriteria {
		fc := &types.FilterCriteria{Filters: []types.Filter{}}
		for _, p := range patterns {
			fc.Filters = append(fc.Filters, types.Filter{Pattern: aws.String(p)})
		}
		return fc
	}
	_, err := f.n.client.CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{FunctionName: aws.String("worker"),
		EventSourceArn: aws.String(f.queueArn), FilterCriteria: criteria(`{"body": {"kind": [{"wildcard": "k*"}]}}`)})
	if code, msg := lambdatest.APIError(t, err); code != "InvalidParameterValueException" || !strings.HasPrefix(msg, "Invalid filter pattern definition.") || !strings.Contains(msg, "wildcard") {
		t.Errorf("a wildcard pattern: %s %s", code, msg)
	}
	six := slices.Repeat([]string{`{"body": {"a": [1]}}`}, 6)
	_, err = f.n.client.CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{FunctionName: aws.String("worker"),
		EventSourceArn: aws.String(f.queueArn), FilterCriteria: criteria(six...)})
	if code, msg := lambdatest.APIError(t, err); code != "InvalidParameterValueException" || !strings.Contains(msg, "at most 5") {
		t.Errorf("six filters: %s %s", code, msg)
	}

	// Sent before the mapping: 60 messages of three kinds.
	var bodies []string
	wantIn := map[string]bool{}
	for i := range 60 {
		var b string
		switch i % 3 {
		case 0:
			b = fmt.Sprintf(`{"kind":"keep","i":%d}`, i)
		case 1:
			b = fmt.Sprintf(`{"kind":"drop","price":%d}`, i)
		default:
			b = fmt.Sprintf("plain text %d", i)
		}
		bodies = append(bodies, b)
		// The filters: kind keep, or a price under 30.
		if i%3 == 0 || (i%3 == 1 && i < 30) {
			wantIn[b] = true
		}
	}
	f.send(t, bodies)
	patterns := []string{`{"body": {"kind": ["keep"]}}`, `{"body": {"price": [{"numeric": ["<", 30]}]}}`}
	out, err := f.n.client.CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{FunctionName: aws.String("worker"),
		EventSourceArn: aws.String(f.queueArn), BatchSize: aws.Int32(5), FilterCriteria: criteria(patterns...)})
	if err != nil {
		t.Fatal(err)
	}
	uuid := aws.ToString(out.UUID)
	got, err := f.n.client.GetEventSourceMapping(ctx, &lambda.GetEventSourceMappingInput{UUID: out.UUID})
	if err != nil || got.FilterCriteria == nil || len(got.FilterCriteria.Filters) != 2 || aws.ToString(got.FilterCriteria.Filters[1].Pattern) != patterns[1] {
		t.Errorf("get: FilterCriteria %+v %v", got.FilterCriteria, err)
	}
	waitUntil(t, "the queue drained", 60*time.Second, func() bool { return f.count(t, f.queue) == 0 }, func() string { return n2s(f.n, uuid) })
	time.Sleep(200 * time.Millisecond)
	seen := map[string]bool{}
	for _, inv := range invocations(t, dir) {
		for _, m := range inv.OK {
			if !wantIn[m.Body] {
				t.Errorf("the function got %q, which matches no filter", m.Body)
			}
			seen[m.Body] = true
		}
	}
	if len(seen) != len(wantIn) {
		t.Errorf("the function got %d of the %d messages that match", len(seen), len(wantIn))
	}
	// At least once: SQS (moto, under concurrent receives) may hand a
	// message out twice, and each copy is filtered and deleted.
	if s := f.n.Mappings().Stats()[uuid]; s.Filtered < int64(len(bodies)-len(wantIn)) {
		t.Errorf("%d messages filtered out and deleted, want %d: %+v", s.Filtered, len(bodies)-len(wantIn), s)
	}

	// FilterCriteria {} removes the filters.
	up, err := f.n.client.UpdateEventSourceMapping(ctx, &lambda.UpdateEventSourceMappingInput{UUID: out.UUID, FilterCriteria: &types.FilterCriteria{}})
	if err != nil || up.FilterCriteria != nil {
		t.Errorf("update with FilterCriteria {}: %+v %v", up.FilterCriteria, err)
	}
	list, err := f.n.client.ListEventSourceMappings(ctx, &lambda.ListEventSourceMappingsInput{FunctionName: aws.String("worker")})
	if err != nil || len(list.EventSourceMappings) != 1 || list.EventSourceMappings[0].FilterCriteria != nil {
		t.Errorf("list after removing the filters: %+v %v", list, err)
	}
}

// TestSQSFIFOMessageGroups reads a FIFO queue of four message groups, each
// sent as a run of 20, in batches of 5: every group's messages reach the
// function in the order sent, no two batches of one group ever overlap in
// time, and batches of different groups do run at once.
func TestSQSFIFOMessageGroups(t *testing.T) {
	f := newSQSFixture(t, 30*time.Second, 0)
	q, err := f.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("work.fifo"),
		Attributes: map[string]string{"FifoQueue": "true", "VisibilityTimeout": "30"}})
	if err != nil {
		t.Fatal(err)
	}
	url, arn := aws.ToString(q.QueueUrl), "arn:aws:sqs:us-east-1:123456789012:work.fifo"
	dir := f.createRecorder(t, "worker", "0.15")
	groups := []string{"a", "b", "c", "d"}
	const perGroup = 20
	seq := 0
	for _, g := range groups {
		for i := 0; i < perGroup; i += 10 {
			var entries []sqstypes.SendMessageBatchRequestEntry
			for j := range 10 {
				seq++
				entries = append(entries, sqstypes.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(j)),
					MessageBody: aws.String(fmt.Sprintf(`{"g":"%s","i":%d}`, g, i+j)), MessageGroupId: aws.String(g),
					MessageDeduplicationId: aws.String(strconv.Itoa(seq))})
			}
			if _, err := f.sqs.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(url), Entries: entries}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// FIFO refuses a batching window and batches over 10.
	_, err = f.n.client.CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{FunctionName: aws.String("worker"),
		EventSourceArn: aws.String(arn), BatchSize: aws.Int32(5), MaximumBatchingWindowInSeconds: aws.Int32(1)})
	if code, _ := lambdatest.APIError(t, err); code != "InvalidParameterValueException" {
		t.Errorf("a batching window on a FIFO queue: %v", err)
	}
	out, err := f.n.client.CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{FunctionName: aws.String("worker"),
		EventSourceArn: aws.String(arn), BatchSize: aws.Int32(5)})
	if err != nil {
		t.Fatal(err)
	}
	uuid := aws.ToString(out.UUID)
	waitUntil(t, "the FIFO queue drained", 90*time.Second, func() bool { return f.count(t, url) == 0 }, func() string { return n2s(f.n, uuid) })
	time.Sleep(200 * time.Millisecond)

	invs := invocations(t, dir)
	next := map[string]int{}
	last := map[string]invocation{}
	overlapped := false
	for k, inv := range invs {
		for _, m := range inv.OK {
			var b struct {
				G string
				I int
			}
			json.Unmarshal([]byte(m.Body), &b)
			if m.Group != b.G {
				t.Errorf("message %s came with MessageGroupId %q", m.Body, m.Group)
			}
			if b.I != next[b.G] {
				t.Errorf("group %s: message %d came when %d was due", b.G, b.I, next[b.G])
			}
			next[b.G] = b.I + 1
			// last holds the group's invocations before this one.
			if prev, ok := last[b.G]; ok && prev.End > inv.Start {
				t.Errorf("group %s: a batch started %.3f s before the group's previous batch ended", b.G, prev.End-inv.Start)
			}
		}
		for _, m := range inv.OK {
			var b struct{ G string }
			json.Unmarshal([]byte(m.Body), &b)
			last[b.G] = inv
		}
		for _, other := range invs[:k] {
			overlapped = overlapped || other.End > inv.Start
		}
	}
	for _, g := range groups {
		if next[g] != perGroup {
			t.Errorf("group %s: %d of %d messages processed", g, next[g], perGroup)
		}
	}
	if !overlapped {
		t.Errorf("no two batches ran at once across %d invocations of 4 groups", len(invs))
	}
}
