package server_test

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/lambdad/lambdad/internal/lambdatest"
	"github.com/lambdad/lambdad/internal/server"
)

// BenchmarkSQSMapping measures messages a second through one mapping with
// BatchSize 10 and a function that does nothing (testfn, which echoes),
// against as many direct synchronous Invokes of the same function, five at
// a time (a mapping's starting concurrency), in the same run:
//
//	go test -run XXX -bench SQSMapping -benchtime 1x ./internal/server/
//
// "memory" reads an in-process stand-in for SQS's JSON protocol, so the
// figure is lambdad's: receiving, building the event, invoking, deleting.
// "moto" reads moto_server, whose receives cost time linear in the queue's
// depth (about 1 s a receive at 1,000 messages), so that figure is moto's;
// its queue is kept shallow.
func BenchmarkSQSMapping(b *testing.B) {
	b.Run("memory", func(b *testing.B) {
		q := newMemorySQS()
		srv := httptest.NewServer(q)
		b.Cleanup(srv.Close)
		b.Setenv("AWS_ACCESS_KEY_ID", "test")
		b.Setenv("AWS_SECRET_ACCESS_KEY", "test")
		benchMapping(b, srv.URL, 2000, func(bodies []string) { q.add(bodies) })
	})
	b.Run("moto", func(b *testing.B) {
		endpoint := lambdatest.Moto(b)
		c := lambdatest.SQS(endpoint)
		out, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("work")})
		if err != nil {
			b.Fatal(err)
		}
		benchMapping(b, endpoint, 200, func(bodies []string) { sendBodies(b, c, aws.ToString(out.QueueUrl), bodies) })
	})
}

func benchMapping(b *testing.B, endpoint string, messages int, send func([]string)) {
	n := benchNode(b, server.Options{SQSEndpoint: endpoint, Logger: slog.New(slog.DiscardHandler)}, "noop")
	bodies := make([]string, messages)
	for i := range bodies {
		bodies[i] = fmt.Sprintf(`{"n":%d}`, i)
	}
	invoke := func(workers int) {
		var next, failed atomic.Int64
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for next.Add(1) <= int64(messages) {
					if _, err := n.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("noop"), Payload: []byte(bodies[0])}); err != nil {
						failed.Add(1)
					}
				}
			})
		}
		wg.Wait()
		if failed.Load() > 0 {
			b.Fatalf("%d direct invokes failed", failed.Load())
		}
	}
	invoke(5) // the environments start before anything is timed
	var mapping, direct time.Duration
	for b.Loop() {
		send(bodies)
		began := time.Now()
		out, err := n.client.CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{FunctionName: aws.String("noop"),
			EventSourceArn: aws.String("arn:aws:sqs:us-east-1:123456789012:work"), BatchSize: aws.Int32(10)})
		if err != nil {
			b.Fatal(err)
		}
		uuid := aws.ToString(out.UUID)
		for deadline := time.Now().Add(5 * time.Minute); n.Mappings().Stats()[uuid].Deleted < int64(messages); time.Sleep(2 * time.Millisecond) {
			if time.Now().After(deadline) {
				b.Fatalf("the mapping did not get through %d messages in 5 minutes: %+v", messages, n.Mappings().Stats()[uuid])
			}
		}
		mapping += time.Since(began)
		s := n.Mappings().Stats()[uuid]
		b.Logf("mapping: %d messages in %v, %d batches, concurrency %d", s.Deleted, time.Since(began).Round(time.Millisecond), s.Batches, s.Concurrency)
		if _, err := n.client.DeleteEventSourceMapping(ctx, &lambda.DeleteEventSourceMappingInput{UUID: out.UUID}); err != nil {
			b.Fatal(err)
		}

		began = time.Now()
		invoke(5)
		direct += time.Since(began)
	}
	total := float64(b.N * messages)
	b.ReportMetric(total/mapping.Seconds(), "mapping-msgs/s")
	b.ReportMetric(total/10/mapping.Seconds(), "mapping-batches/s")
	b.ReportMetric(total/direct.Seconds(), "invoke-msgs/s")
	b.ReportMetric(0, "ns/op")
}

// memorySQS answers the SQS operations a mapping uses (GetQueueUrl,
// ReceiveMessage, DeleteMessageBatch) in the AWS JSON protocol, from
// memory, for one queue. It has no visibility timeout: a received message
// stays received until deleted, which is all a benchmark whose function
// never fails needs.
type memorySQS struct {
	mu       sync.Mutex
	ready    []memoryMessage
	received map[string]memoryMessage // receipt handle → message
	seq      int
}

type memoryMessage struct{ id, body string }

func newMemorySQS() *memorySQS { return &memorySQS{received: map[string]memoryMessage{}} }

func (q *memorySQS) add(bodies []string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, b := range bodies {
		q.seq++
		q.ready = append(q.ready, memoryMessage{id: "m-" + strconv.Itoa(q.seq), body: b})
	}
}

func (q *memorySQS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var in struct {
		MaxNumberOfMessages int
		WaitTimeSeconds     int
		Entries             []struct{ Id, ReceiptHandle string }
	}
	json.NewDecoder(r.Body).Decode(&in)
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	switch r.Header.Get("X-Amz-Target") {
	case "AmazonSQS.GetQueueUrl":
		json.NewEncoder(w).Encode(map[string]string{"QueueUrl": "http://" + r.Host + "/123456789012/work"})
	case "AmazonSQS.ReceiveMessage":
		type message struct {
			MessageId, ReceiptHandle, Body, MD5OfBody string
			Attributes                                map[string]string
		}
		var out []message
		for deadline := time.Now().Add(time.Duration(in.WaitTimeSeconds) * time.Second); ; time.Sleep(time.Millisecond) {
			q.mu.Lock()
			for len(q.ready) > 0 && len(out) < max(in.MaxNumberOfMessages, 1) {
				m := q.ready[0]
				q.ready = q.ready[1:]
				q.seq++
				handle := "h-" + strconv.Itoa(q.seq)
				q.received[handle] = m
				sum := md5.Sum([]byte(m.body))
				out = append(out, message{MessageId: m.id, ReceiptHandle: handle, Body: m.body, MD5OfBody: hex.EncodeToString(sum[:]),
					Attributes: map[string]string{"ApproximateReceiveCount": "1", "SentTimestamp": "0"}})
			}
			q.mu.Unlock()
			if len(out) > 0 || time.Now().After(deadline) || r.Context().Err() != nil {
				break
			}
		}
		json.NewEncoder(w).Encode(map[string]any{"Messages": out})
	case "AmazonSQS.DeleteMessageBatch":
		type entry struct{ Id string }
		ok := []entry{}
		q.mu.Lock()
		for _, e := range in.Entries {
			if _, found := q.received[e.ReceiptHandle]; found {
				delete(q.received, e.ReceiptHandle)
				ok = append(ok, entry{e.Id})
			}
		}
		q.mu.Unlock()
		json.NewEncoder(w).Encode(map[string]any{"Successful": ok, "Failed": []any{}})
	default:
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]string{"__type": "com.amazonaws.sqs#InvalidAction", "message": "not served by this stand-in"})
	}
}
