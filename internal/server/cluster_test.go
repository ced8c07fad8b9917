package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/lambdad/lambdad/internal/lambdatest"
	"github.com/lambdad/lambdad/internal/server"
)

// cluster starts n nodes sharing one etcd under prefix.
func cluster(t *testing.T, endpoint, prefix string, n int, mutate ...func(*server.Options)) []*node {
	t.Helper()
	var out []*node
	for range n {
		out = append(out, clusterNode(t, endpoint, prefix, mutate...))
	}
	return out
}

func clusterNode(t *testing.T, endpoint, prefix string, mutate ...func(*server.Options)) *node {
	t.Helper()
	o := server.Options{EtcdEndpoints: []string{endpoint}, EtcdPrefix: prefix}
	for _, m := range mutate {
		m(&o)
	}
	return start(t, o)
}

// TestClusterAnyNodeServesAnyFunction: a function created through one node
// is served, code and all, by every other, including a node that started
// after the first one was gone.
func TestClusterAnyNodeServesAnyFunction(t *testing.T) {
	endpoint := lambdatest.Etcd(t)
	nodes := cluster(t, endpoint, "/any/", 2)
	a, b := nodes[0], nodes[1]
	a.createGo(t, "f")
	out, err := b.invoke(t, "f", `{"echo":"from b"}`)
	if err != nil || out.FunctionError != nil {
		t.Fatalf("invoke on the other node: %v %s", err, payloadOf(out))
	}
	if err := a.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := clusterNode(t, endpoint, "/any/")
	got, err := c.client.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("f")})
	if err != nil {
		t.Fatalf("GetFunction on a node started after the creator stopped: %v", err)
	}
	if got.Configuration.CodeSha256 == nil || *got.Configuration.CodeSha256 == "" {
		t.Errorf("no CodeSha256: %+v", got.Configuration)
	}
	out, err = c.invoke(t, "f", `{}`)
	if err != nil || out.FunctionError != nil {
		t.Fatalf("invoke on a node that never saw the upload, its creator gone: %v %s", err, payloadOf(out))
	}
	var ans answer
	if err := json.Unmarshal(out.Payload, &ans); err != nil || ans.RequestID == "" {
		t.Errorf("answer %s: %v", out.Payload, err)
	}
}

// TestClusterSettingReachesEveryNode: a reservation put through one node
// governs admission on another within a bounded time, and so does its
// removal; the time is measured.
func TestClusterSettingReachesEveryNode(t *testing.T) {
	endpoint := lambdatest.Etcd(t)
	nodes := cluster(t, endpoint, "/setting/", 2)
	a, b := nodes[0], nodes[1]
	a.createGo(t, "f")
	if _, err := b.invoke(t, "f", `{}`); err != nil {
		t.Fatal(err)
	}
	var worst time.Duration
	for range 5 {
		start := time.Now()
		a.reserve(t, "f", 0)
		for {
			_, err := b.invoke(t, "f", `{}`)
			var throttle *types.TooManyRequestsException
			if errors.As(err, &throttle) {
				break
			}
			if time.Since(start) > 5*time.Second {
				t.Fatalf("the other node still admits 5 s after a reservation of 0: %v", err)
			}
		}
		worst = max(worst, time.Since(start))
		start = time.Now()
		if _, err := a.client.DeleteFunctionConcurrency(ctx, &lambda.DeleteFunctionConcurrencyInput{FunctionName: aws.String("f")}); err != nil {
			t.Fatal(err)
		}
		for {
			if _, err := b.invoke(t, "f", `{}`); err == nil {
				break
			} else if time.Since(start) > 5*time.Second {
				t.Fatalf("the other node still throttles 5 s after the reservation went: %v", err)
			}
		}
		worst = max(worst, time.Since(start))
	}
	t.Logf("a reservation put or removed on one node governed the other within %v (worst of 10, the write and an invoke included)", worst)
	got, err := b.client.GetFunctionConcurrency(ctx, &lambda.GetFunctionConcurrencyInput{FunctionName: aws.String("f")})
	if err != nil || got.ReservedConcurrentExecutions != nil {
		t.Errorf("GetFunctionConcurrency on the other node: %+v, %v; want none", got, err)
	}
}

func payloadOf(out *lambda.InvokeOutput) string {
	if out == nil {
		return ""
	}
	return string(out.Payload)
}
