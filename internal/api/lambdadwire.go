package api

import (
	"encoding/json"
	"time"

	"github.com/lambdad/lambdad/internal/store"
)

// The answers of lambdad's own endpoints. They are their own types, not
// the store's records, so that the store can change how it keeps things
// without changing what clients (the CLI, the console, scripts) read.

// AuditRecord is one change to a concurrency setting.
type AuditRecord struct {
	Seq         uint64    `json:"seq"`
	Time        time.Time `json:"time"`
	RequestID   string    `json:"requestId"`
	AccessKeyID string    `json:"accessKeyId,omitempty"`
	Principal   string    `json:"principal,omitempty"`
	SourceIP    string    `json:"sourceIp,omitempty"`
	Decision    string    `json:"decision,omitempty"`
	Error       string    `json:"error,omitempty"`
	Operation   string    `json:"operation"`
	Function    string    `json:"function"`
	Qualifier   string    `json:"qualifier,omitempty"`
	Old         *int      `json:"old"`
	New         *int      `json:"new"`
}

// AuditPage is GET /lambdad/audit's answer.
type AuditPage struct {
	Records    []AuditRecord `json:"Records"`
	NextBefore uint64        `json:"NextBefore,omitempty"`
}

// QueuedEvent is an accepted asynchronous invocation.
type QueuedEvent struct {
	Seq            uint64    `json:"seq"`
	RequestID      string    `json:"requestId"`
	Function       string    `json:"function"`
	Qualifier      string    `json:"qualifier,omitempty"`
	Payload        []byte    `json:"payload"`
	ReceivedAt     time.Time `json:"receivedAt"`
	Attempts       int       `json:"attempts"`
	FunctionErrors int       `json:"functionErrors"`
	// TenantID is the tenant the event was invoked for, if any.
	TenantID string `json:"tenantId,omitempty"`
}

// DeadLetter is an event that failed with no destination to go to, with
// the record a destination would have received.
type DeadLetter struct {
	Seq    uint64          `json:"seq"`
	Event  QueuedEvent     `json:"event"`
	Record json.RawMessage `json:"record"`
	At     time.Time       `json:"at"`
}

// DeadLetterPage is GET /lambdad/events/dead-letters' answer.
type DeadLetterPage struct {
	DeadLetters []DeadLetter `json:"DeadLetters"`
}

// Replayed is the answer of a dead letter's replay.
type Replayed struct {
	Replayed  uint64 `json:"Replayed"`
	Event     uint64 `json:"Event"`
	RequestID string `json:"RequestId"`
}

func auditRecordOf(r *store.AuditRecord) AuditRecord {
	return AuditRecord{Seq: r.Seq, Time: r.Time, RequestID: r.RequestID, AccessKeyID: r.AccessKeyID,
		Principal: r.Principal, SourceIP: r.SourceIP, Decision: r.Decision, Error: r.Error,
		Operation: r.Operation, Function: r.Function, Qualifier: r.Qualifier, Old: r.Old, New: r.New}
}

func queuedEventOf(e *store.Event) QueuedEvent {
	return QueuedEvent{Seq: e.Seq, RequestID: e.RequestID, Function: e.Function, Qualifier: e.Qualifier,
		Payload: e.Payload, ReceivedAt: e.ReceivedAt, Attempts: e.Attempts, FunctionErrors: e.FunctionErrs,
		TenantID: e.TenantID}
}

func deadLetterOf(d *store.DeadLetter) DeadLetter {
	return DeadLetter{Seq: d.Seq, Event: queuedEventOf(&d.Event), Record: d.Record, At: d.At}
}
