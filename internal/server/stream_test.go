package server_test

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/lambdad/lambdad/internal/lambdatest"
	"github.com/lambdad/lambdad/internal/server"
)

// streamEvents reads an InvokeWithResponseStream answer with the SDK's own
// event-stream reader: the payload chunks joined, and the completion.
func streamEvents(t *testing.T, out *lambda.InvokeWithResponseStreamOutput) (string, *types.InvokeWithResponseStreamCompleteEvent) {
	t.Helper()
	stream := out.GetStream()
	defer stream.Close()
	var payload strings.Builder
	var done *types.InvokeWithResponseStreamCompleteEvent
	for ev := range stream.Events() {
		switch e := ev.(type) {
		case *types.InvokeWithResponseStreamResponseEventMemberPayloadChunk:
			if done != nil {
				t.Error("a payload chunk after InvokeComplete")
			}
			payload.Write(e.Value.Payload)
		case *types.InvokeWithResponseStreamResponseEventMemberInvokeComplete:
			done = &e.Value
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("the event stream: %v", err)
	}
	if done == nil {
		t.Fatal("no InvokeComplete")
	}
	return payload.String(), done
}

// TestInvokeWithResponseStream: the SDK's streaming invoke gets a function's
// whole response as AWS sends it for a function that does not stream (one
// PayloadChunk, then InvokeComplete), a function error in InvokeComplete,
// the log tail, and throttles as Invoke's.
func TestInvokeWithResponseStream(t *testing.T) {
	n := start(t, server.Options{})
	n.createGo(t, "s")
	out, err := n.client.InvokeWithResponseStream(ctx, &lambda.InvokeWithResponseStreamInput{FunctionName: aws.String("s"),
		Payload: []byte(`{"echo":"streamed"}`), LogType: types.LogTypeTail})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.ExecutedVersion) != "$LATEST" || out.StatusCode != 200 {
		t.Errorf("ExecutedVersion %q, StatusCode %d", aws.ToString(out.ExecutedVersion), out.StatusCode)
	}
	payload, done := streamEvents(t, out)
	if !strings.Contains(payload, `"echo":"streamed"`) || done.ErrorCode != nil || !strings.Contains(lambdatest.DecodeLog(aws.ToString(done.LogResult)), "START RequestId") {
		t.Errorf("payload %s, complete %+v", payload, done)
	}

	out, err = n.client.InvokeWithResponseStream(ctx, &lambda.InvokeWithResponseStreamInput{FunctionName: aws.String("s"), Payload: []byte(`{"fail":"boom"}`)})
	if err != nil {
		t.Fatal(err)
	}
	payload, done = streamEvents(t, out)
	if payload != "" || aws.ToString(done.ErrorCode) != "Unhandled" || !strings.Contains(aws.ToString(done.ErrorDetails), "boom") {
		t.Errorf("a function error: payload %q, complete %+v", payload, done)
	}

	n.reserve(t, "s", 0)
	_, err = n.client.InvokeWithResponseStream(ctx, &lambda.InvokeWithResponseStreamInput{FunctionName: aws.String("s"), Payload: []byte(`{}`)})
	if code, _ := lambdatest.APIError(t, err); code != "TooManyRequestsException" || lambdatest.Status(t, err) != 429 {
		t.Errorf("throttled: %v", err)
	}
}
