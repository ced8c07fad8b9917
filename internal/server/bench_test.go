package server_test

import (
	"bytes"
	"io"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/lambdad/lambdad/internal/iam"
	"github.com/lambdad/lambdad/internal/lambdatest"
	"github.com/lambdad/lambdad/internal/server"
	"github.com/lambdad/lambdad/internal/sigv4"
)

// BenchmarkInvokeWarm measures one synchronous invocation of a warm Go
// function through the whole server: HTTP, routing, admission, the
// environment's Runtime API round trip and the response.
func BenchmarkInvokeWarm(b *testing.B) {
	n := benchNode(b, server.Options{}, "echo")
	url := n.URL() + "/2015-03-31/functions/echo/invocations"
	client := &http.Client{}
	body := []byte(`{"echo":"x"}`)
	invoke := func() {
		resp, err := client.Post(url, "application/json", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	invoke()
	b.ResetTimer()
	for b.Loop() {
		invoke()
	}
}

// benchNode starts a node for a benchmark with one function running
// testfn.
func benchNode(b *testing.B, opts server.Options, fn string) *node {
	b.Helper()
	opts.Listen, opts.DataDir = "127.0.0.1:0", b.TempDir()
	n, err := server.Start(opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { n.Close(ctx) })
	nd := &node{Node: n, client: clientFor(n.URL())}
	if _, err := nd.client.CreateFunction(ctx, goFunctionInput(b, fn)); err != nil {
		b.Fatal(err)
	}
	return nd
}

// sendEventB posts one Event invocation and returns the status (0 after a
// connection error, which it reports).
func sendEventB(b *testing.B, client *http.Client, url, payload string) int {
	req, _ := http.NewRequest("POST", url, bytes.NewReader([]byte(payload)))
	req.Header.Set("X-Amz-Invocation-Type", "Event")
	resp, err := client.Do(req)
	if err != nil {
		b.Error(err)
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// BenchmarkEnqueue64 measures durable enqueue: 64 concurrent senders of
// Event invocations through HTTP, each answered 202 only once its event is
// on disk. It reports events per second and fsyncs (commits) per event.
// The function is reserved at 0, so no event runs while this measures the
// write path; they go to the dead-letter path afterwards.
func BenchmarkEnqueue64(b *testing.B) {
	n := benchNode(b, server.Options{AsyncWorkers: 1}, "sink")
	if _, err := n.client.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("sink"), ReservedConcurrentExecutions: aws.Int32(0)}); err != nil {
		b.Fatal(err)
	}
	url := n.URL() + "/2015-03-31/functions/sink/invocations"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 128}}
	before := n.Events().Stats()
	b.SetParallelism(64 / max(1, runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if status := sendEventB(b, client, url, `{"n":1}`); status != 202 {
				b.Errorf("status %d", status)
				return
			}
		}
	})
	b.StopTimer()
	after := n.Events().Stats()
	events := after.AsyncEventsReceived - before.AsyncEventsReceived
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(after.Commits-before.Commits)/float64(max(events, 1)), "fsyncs/event")
}

// BenchmarkEventDispatch measures what running an event costs end to end
// (durable enqueue, dispatch, the invocation, removal from the queue) per
// event under load: 16 senders, 8 dispatch workers, the same function as
// BenchmarkInvokeWarm and BenchmarkInvokeWarm8, to compare.
func BenchmarkEventDispatch(b *testing.B) {
	n := benchNode(b, server.Options{AsyncWorkers: 8}, "echo")
	url := n.URL() + "/2015-03-31/functions/echo/invocations"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	send := func() { sendEventB(b, client, url, `{"echo":"x"}`) }
	wait := func(count int64) {
		for n.Events().Stats().Succeeded < count {
			time.Sleep(200 * time.Microsecond)
		}
	}
	// Warm the environments first, as BenchmarkInvokeWarm8 does.
	for range 8 {
		send()
	}
	wait(8)
	b.SetParallelism(16 / max(1, runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			send()
		}
	})
	wait(int64(8 + b.N))
}

// BenchmarkInvokeWarm8 is BenchmarkInvokeWarm with 8 concurrent clients:
// the throughput of synchronous invocations.
func BenchmarkInvokeWarm8(b *testing.B) {
	n := benchNode(b, server.Options{}, "echo")
	url := n.URL() + "/2015-03-31/functions/echo/invocations"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	b.SetParallelism(8 / max(1, runtime.GOMAXPROCS(0)))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Post(url, "application/json", bytes.NewReader([]byte(`{"echo":"x"}`)))
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}

// BenchmarkInvokeWarmSigned is BenchmarkInvokeWarm on a server with access
// control on: every request carries a SigV4 signature (made once; the
// server accepts it for five minutes) that the server checks, with the
// admin's policy, so the difference between the two is the server's cost
// of access control.
func BenchmarkInvokeWarmSigned(b *testing.B) {
	creds, err := iam.Parse("credentials.json", []byte(credentialsJSON))
	if err != nil {
		b.Fatal(err)
	}
	opts := server.Options{AccountID: "111111111111", Credentials: creds}
	opts.Listen, opts.DataDir = "127.0.0.1:0", b.TempDir()
	n, err := server.Start(opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { n.Close(ctx) })
	admin := lambdatest.ClientWith(n.URL(), adminKey, adminSecret, "")
	in := goFunctionInput(b, "echo")
	in.Role = aws.String("arn:aws:iam::111111111111:role/r")
	if _, err := admin.CreateFunction(ctx, in); err != nil {
		b.Fatal(err)
	}
	url := n.URL() + "/2015-03-31/functions/echo/invocations"
	body := []byte(`{"echo":"x"}`)
	signedReq, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	signedReq.Header.Set("Content-Type", "application/json")
	sigv4.Sign(signedReq, body, adminKey, adminSecret, "us-east-1", "lambda", time.Now())
	client := &http.Client{}
	invoke := func() {
		req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
		req.Header = signedReq.Header
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	invoke()
	b.ResetTimer()
	for b.Loop() {
		invoke()
	}
}
