package server_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/lambdad/lambdad/internal/server"
)

// held is invocations of one function kept running until let is called.
type held struct {
	wg   sync.WaitGroup
	gate string
	mu   sync.Mutex
	errs []error
}

// holdInvocations starts k invocations of name, each running until
// let, and waits until the server runs them all.
func (n *node) holdInvocations(t *testing.T, name string, k int) *held {
	t.Helper()
	h := &held{gate: filepath.Join(t.TempDir(), "go")}
	before := n.Admission().Snapshot().InFlight
	for range k {
		h.wg.Go(func() {
			out, err := n.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(name), Payload: fmt.Appendf(nil, `{"wait_for":%q}`, h.gate)})
			if err == nil && out.FunctionError != nil {
				err = fmt.Errorf("function error: %s", out.Payload)
			}
			h.mu.Lock()
			h.errs = append(h.errs, err)
			h.mu.Unlock()
		})
	}
	deadline := time.Now().Add(time.Minute)
	for n.Admission().Snapshot().InFlight < before+k {
		h.mu.Lock()
		failed := len(h.errs) > 0
		h.mu.Unlock()
		if failed || time.Now().After(deadline) {
			h.let(t)
			t.Fatalf("holding %d invocations of %s: %v", k, name, h.errs)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return h
}

// let ends the held invocations and returns their errors.
func (h *held) let(t *testing.T) []error {
	t.Helper()
	if err := os.WriteFile(h.gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	h.wg.Wait()
	return h.errs
}

// wantScalingThrottle fails t unless err is AWS's 429 for the scaling
// rate of a function without a reservation.
func wantScalingThrottle(t *testing.T, what string, err error) {
	t.Helper()
	var tm *types.TooManyRequestsException
	if !errors.As(err, &tm) || tm.Reason != types.ThrottleReasonFunctionInvocationRateLimitExceeded || aws.ToString(tm.Message) != "Rate Exceeded." {
		t.Errorf("%s: %v, want TooManyRequestsException with Reason FunctionInvocationRateLimitExceeded", what, err)
	}
}

// TestScalingRate checks the scaling rate on the wire with 2 new
// environments per 10 seconds (one every 5 s, two at once): a third
// concurrent invocation is refused with AWS's 429, the two warm
// environments then serve again without waiting, and 5 s after the first
// two a third environment is allowed, and a fourth is not.
func TestScalingRate(t *testing.T) {
	n := start(t, server.Options{ScalingRate: new(2), InvocationRate: new(0)})
	n.createGo(t, "f", func(in *lambda.CreateFunctionInput) { in.Timeout = aws.Int32(120) })
	invoke := func() error {
		_, err := n.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("f"), Payload: []byte(`{}`)})
		return err
	}

	start := time.Now()
	h := n.holdInvocations(t, "f", 2)
	wantScalingThrottle(t, "a third environment at once", invoke())
	for _, err := range h.let(t) {
		if err != nil {
			t.Errorf("a held invocation: %v", err)
		}
	}
	// Warm reuse spends nothing: the two run again at once, and one
	// after the other as often as asked.
	h = n.holdInvocations(t, "f", 2)
	for _, err := range h.let(t) {
		if err != nil {
			t.Errorf("a warm invocation: %v", err)
		}
	}
	for range 5 {
		if err := invoke(); err != nil {
			t.Fatalf("a warm invocation: %v", err)
		}
	}
	if time.Since(start) > 4*time.Second {
		t.Skipf("the machine is too slow to see the refill apart: %v", time.Since(start))
	}

	// Refilled: one more environment 5 s after the first two.
	time.Sleep(time.Until(start.Add(5200 * time.Millisecond)))
	h = n.holdInvocations(t, "f", 3)
	wantScalingThrottle(t, "a fourth environment before the next refill", invoke())
	for _, err := range h.let(t) {
		if err != nil {
			t.Errorf("three after the refill: %v", err)
		}
	}
	if s := n.Admission().Snapshot(); s.Throttles["FunctionInvocationRateLimitExceeded"] != 2 || s.InFlight != 0 {
		t.Errorf("after the test: %d throttles, %d in flight", s.Throttles["FunctionInvocationRateLimitExceeded"], s.InFlight)
	}
}
