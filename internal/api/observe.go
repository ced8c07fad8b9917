package api

import "time"

// RequestObserver hears how long each API operation took, for metrics. It
// is called on every request, the invocations' included, so it must
// neither block nor allocate.
type RequestObserver interface {
	ObserveRequest(operation string, status int, took time.Duration)
}

type noRequestObserver struct{}

func (noRequestObserver) ObserveRequest(string, int, time.Duration) {}
