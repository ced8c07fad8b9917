package invoke

import "time"

// Observer hears of every invocation that ran (throttled ones do not run,
// and admission counts them), with the account of the function that ran.
// It is called on the invoke path, once per invocation, so it must neither
// block nor allocate.
type Observer interface {
	Invoked(account, function string, o Outcome)
}

// Outcome is what one invocation did, by CloudWatch's measures.
type Outcome struct {
	Duration     time.Duration
	InitDuration time.Duration // 0 when warm
	// Error is a function error, a timeout or a crash (CloudWatch's Errors).
	Error bool
	// Provisioned: it ran on a provisioned environment; Spillover: on an
	// on-demand one because the target's provisioned ones were busy.
	Provisioned, Spillover bool
}

type noObserver struct{}

func (noObserver) Invoked(string, string, Outcome) {}
