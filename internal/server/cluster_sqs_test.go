package server_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/lambdad/lambdad/internal/lambdatest"
	"github.com/lambdad/lambdad/internal/server"
)

// TestClusterMappingPolledByOneNode: of a cluster's nodes one polls each
// event source mapping, so that its limits hold as on one node, and when
// that node goes another takes the mapping over.
func TestClusterMappingPolledByOneNode(t *testing.T) {
	moto := lambdatest.Moto(t)
	endpoint := lambdatest.Etcd(t)
	nodes := cluster(t, endpoint, "/mapping/", 2, func(o *server.Options) { o.SQSEndpoint = moto })
	q := lambdatest.SQS(moto)
	out, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("work"), Attributes: map[string]string{"VisibilityTimeout": "5"}})
	if err != nil {
		t.Fatal(err)
	}
	queue := aws.ToString(out.QueueUrl)
	f := &sqsFixture{n: nodes[0], sqs: q, queue: queue, queueArn: "arn:aws:sqs:us-east-1:123456789012:work"}
	dir := t.TempDir()
	nodes[0].createGo(t, "sink", recording(dir))
	uuid := f.mapping(t, &lambda.CreateEventSourceMappingInput{FunctionName: aws.String("sink"), BatchSize: aws.Int32(10)})
	polling := func() (on []int) {
		for i, n := range nodes {
			if n == nil {
				continue
			}
			if _, ok := n.Mappings().Stats()[uuid]; ok {
				on = append(on, i)
			}
		}
		return on
	}
	waitUntil(t, "one node polls the mapping", 20*time.Second, func() bool { return len(polling()) == 1 }, func() string { return fmt.Sprint(polling()) })
	time.Sleep(1500 * time.Millisecond) // a rebalance or more: still one
	owner := polling()
	if len(owner) != 1 {
		t.Fatalf("nodes %v poll the mapping, want one", owner)
	}
	drained := func(n int) {
		t.Helper()
		waitUntil(t, "the queue drained", 60*time.Second, func() bool { return f.count(t, queue) == 0 && len(records(t, dir, 0, 0)) >= n },
			func() string {
				return fmt.Sprintf("%d on the queue, %d batches recorded", f.count(t, queue), len(records(t, dir, 0, 0)))
			})
	}
	f.send(t, bodies(20))
	drained(2)
	if err := nodes[owner[0]].Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	nodes[owner[0]] = nil
	waitUntil(t, "the other node polls the mapping", 20*time.Second, func() bool { return len(polling()) == 1 }, func() string { return fmt.Sprint(polling()) })
	f.send(t, bodies(10))
	drained(3)
}

func bodies(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf(`{"n":%d}`, i)
	}
	return out
}
