package api

import (
	"strings"

	"github.com/lambdad/lambdad/internal/awserr"
)

// notServed answers an operation of the API model that this server does
// not run, with an error that names it and says why, in the shape every
// Lambda operation's errors share (400 InvalidParameterValueException), so
// that SDKs report it as the caller's error and do not retry.
func notServed(op string) handler {
	why := "it is not available on this server"
	switch {
	case strings.Contains(op, "CapacityProvider") || strings.Contains(op, "FunctionScalingConfig"):
		why = "Lambda Managed Instances (capacity providers) are not available on this server"
	case strings.Contains(op, "DurableExecution"):
		why = "durable executions are not available on this server"
	}
	return func(*call) (any, error) {
		return nil, awserr.New(awserr.InvalidParameterValue, "lambdad does not support %s: %s.", op, why)
	}
}
