// Package awserr defines the errors lambdad answers with, in the shape AWS
// Lambda uses on the wire: an error code (the X-Amzn-ErrorType value), the
// HTTP status that goes with it, a message and the optional Type and Reason
// body keys.
//
// Every layer returns *Error for what a client did wrong or what the client
// must be told; the api package is the one place that turns errors into
// responses. Any other error reaching the renderer is an internal fault and
// becomes a ServiceException.
package awserr

import (
	"errors"
	"fmt"
)

// Code is an AWS error code; its value is the wire name.
type Code string

// The codes lambdad produces. Status and body-key case come from the error
// shapes of the Lambda API model (see codes_test.go, which checks this table
// against the model).
const (
	InvalidParameterValue                Code = "InvalidParameterValueException"
	InvalidRequestContent                Code = "InvalidRequestContentException"
	PreconditionFailed                   Code = "PreconditionFailedException"
	ProvisionedConcurrencyConfigNotFound Code = "ProvisionedConcurrencyConfigNotFoundException"
	RequestTooLarge                      Code = "RequestTooLargeException"
	ResourceConflict                     Code = "ResourceConflictException"
	ResourceNotFound                     Code = "ResourceNotFoundException"
	ResourceNotReady                     Code = "ResourceNotReadyException"
	Service                              Code = "ServiceException"
	TooManyRequests                      Code = "TooManyRequestsException"
	UnsupportedMediaType                 Code = "UnsupportedMediaTypeException"
	CodeStorageExceeded                  Code = "CodeStorageExceededException"
	InvalidRuntime                       Code = "InvalidRuntimeException"
	// Validation is not an error shape of the model: it is what the AWS
	// front end answers when a request breaks a model constraint.
	Validation Code = "ValidationException"
	// UnknownOperation answers a path and method that match no operation.
	UnknownOperation Code = "UnknownOperationException"
	// AccessDenied is not an error shape of the Lambda model either: AWS
	// answers it for what the caller may not do, such as passing another
	// account's role.
	AccessDenied Code = "AccessDeniedException"
	// The answers of AWS's front end to a request it cannot authenticate
	// (not error shapes of the model either).
	MissingAuthenticationToken Code = "MissingAuthenticationTokenException"
	IncompleteSignature        Code = "IncompleteSignatureException"
	InvalidSignature           Code = "InvalidSignatureException"
	UnrecognizedClient         Code = "UnrecognizedClientException"
	ExpiredToken               Code = "ExpiredTokenException"
)

// FrontEnd are the codes AWS's front end answers with that are not error
// shapes of the Lambda model.
var FrontEnd = []Code{Validation, UnknownOperation, AccessDenied,
	MissingAuthenticationToken, IncompleteSignature, InvalidSignature, UnrecognizedClient, ExpiredToken}

type codeInfo struct {
	status int
	// upperMessage is true where the model's shape spells the key "Message".
	upperMessage bool
}

var codes = map[Code]codeInfo{
	InvalidParameterValue:                {400, false},
	InvalidRequestContent:                {400, false},
	PreconditionFailed:                   {412, false},
	ProvisionedConcurrencyConfigNotFound: {404, false},
	RequestTooLarge:                      {413, false},
	ResourceConflict:                     {409, false},
	ResourceNotFound:                     {404, true},
	ResourceNotReady:                     {502, false},
	Service:                              {500, true},
	TooManyRequests:                      {429, false},
	UnsupportedMediaType:                 {415, false},
	CodeStorageExceeded:                  {400, false},
	InvalidRuntime:                       {502, true},
	Validation:                           {400, false},
	UnknownOperation:                     {404, false},
	AccessDenied:                         {403, true},
	MissingAuthenticationToken:           {403, false},
	IncompleteSignature:                  {400, false},
	InvalidSignature:                     {403, false},
	UnrecognizedClient:                   {403, false},
	ExpiredToken:                         {403, false},
}

// Status is the HTTP status AWS answers this code with.
func (c Code) Status() int {
	if i, ok := codes[c]; ok {
		return i.status
	}
	return 500
}

// MessageKey is the JSON key that carries the message for this code:
// "Message" or "message", as the model's error shape spells it.
func (c Code) MessageKey() string {
	if codes[c].upperMessage {
		return "Message"
	}
	return "message"
}

// Throttle reasons (the ThrottleReason enum of the model).
const (
	ReasonConcurrentInvocationLimitExceeded                 = "ConcurrentInvocationLimitExceeded"
	ReasonFunctionInvocationRateLimitExceeded               = "FunctionInvocationRateLimitExceeded"
	ReasonReservedFunctionConcurrentInvocationLimitExceeded = "ReservedFunctionConcurrentInvocationLimitExceeded"
	ReasonReservedFunctionInvocationRateLimitExceeded       = "ReservedFunctionInvocationRateLimitExceeded"
)

// Error is an error with AWS's wire shape.
type Error struct {
	Code    Code
	Message string
	// Type is the body's "Type" key: "User" for the caller's faults,
	// "Service" for ours, "" where AWS leaves the key out.
	Type string
	// Reason is set on TooManyRequestsException only.
	Reason string
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// Status is the HTTP status of the error.
func (e *Error) Status() int { return e.Code.Status() }

// New returns an error with Type "User" (or "Service" for a 5xx code), the
// form most Lambda errors take.
func New(code Code, format string, args ...any) *Error {
	e := &Error{Code: code, Message: fmt.Sprintf(format, args...), Type: "User"}
	if code.Status() >= 500 {
		e.Type = "Service"
	}
	if code == Validation || code == UnknownOperation {
		e.Type = ""
	}
	return e
}

// NoType returns an error whose body has no "Type" key, as AWS answers some
// checks (the reserved-concurrency minimum, for one).
func NoType(code Code, format string, args ...any) *Error {
	e := New(code, format, args...)
	e.Type = ""
	return e
}

// Throttle returns the 429 AWS answers when a concurrency pool is full.
func Throttle(reason string) *Error {
	return &Error{Code: TooManyRequests, Message: "Rate Exceeded.", Type: "User", Reason: reason}
}

// As reports whether err is, or wraps, an *Error, and returns it.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// Is reports whether err is, or wraps, an *Error with the given code.
func Is(err error, code Code) bool {
	e, ok := As(err)
	return ok && e.Code == code
}

// FunctionNotFound is the 404 for a function, version or alias that does not
// exist; arn is the ARN AWS names in the message.
func FunctionNotFound(arn string) *Error {
	return New(ResourceNotFound, "Function not found: %s", arn)
}
