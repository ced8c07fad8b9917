package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

var (
	bucketEvents       = []byte("events")       // seq → Event: accepted asynchronous invocations not yet finished
	bucketDeadLetters  = []byte("deadletters")  // seq → DeadLetter: events that failed with no destination
	bucketEventConfigs = []byte("eventconfigs") // name \x00 qualifier → EventConfig
	// seq → the payload of the event of that seq in bucketEvents. Kept
	// apart so that listing the backlog (at every start) reads none of
	// them: the queue holds only the records in memory, and asks for a
	// payload when the event runs. Records written before this bucket
	// carry their payload themselves (Event.Payload).
	bucketEventPayloads = []byte("eventpayloads")
)

// Event is one accepted asynchronous invocation. It stays in the store
// until it has run, or reached a destination or the dead-letter list.
type Event struct {
	Seq       uint64 `json:"seq"`
	RequestID string `json:"requestId"`
	Account   string `json:"account"`
	Function  string `json:"function"`
	Qualifier string `json:"qualifier,omitempty"`
	// Payload is the event's payload. The store keeps it apart from the
	// record (see EventPayload): Events leaves it nil.
	Payload      []byte    `json:"payload,omitempty"`
	ReceivedAt   time.Time `json:"receivedAt"`
	Attempts     int       `json:"attempts"`
	FunctionErrs int       `json:"functionErrors"`
	// Node is the node of a cluster that runs the event: the one that
	// accepted it, or one that took it over from a node gone. "" on a
	// node of its own.
	Node string `json:"node,omitempty"`
	// TenantID is the tenant the event was invoked for (X-Amz-Tenant-Id),
	// "" for none; every attempt runs in that tenant's environments.
	TenantID string `json:"tenantId,omitempty"`
}

// DeadLetter is an event that failed and had no destination to go to.
type DeadLetter struct {
	Seq    uint64          `json:"seq"`
	Event  Event           `json:"event"`
	Record json.RawMessage `json:"record"`
	At     time.Time       `json:"at"`
}

// EventConfig is a function's (or qualifier's) asynchronous invocation
// configuration.
type EventConfig struct {
	Function                 string    `json:"function"`
	Qualifier                string    `json:"qualifier"`
	MaximumRetryAttempts     *int      `json:"maximumRetryAttempts,omitempty"`
	MaximumEventAgeInSeconds *int      `json:"maximumEventAgeInSeconds,omitempty"`
	OnSuccess                string    `json:"onSuccess,omitempty"`
	OnFailure                string    `json:"onFailure,omitempty"`
	LastModified             time.Time `json:"lastModified"`
}

func (t *Tx) bucket(name []byte) (kvBucket, error) { return t.tx.CreateBucketIfNotExists(name) }

func seqKey(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

// AddEvent stores a new event and gives it its sequence number.
func (t *Tx) AddEvent(e *Event) error {
	b, err := t.bucket(bucketEvents)
	if err != nil {
		return err
	}
	if e.Seq, err = b.NextSequence(); err != nil {
		return err
	}
	p, err := t.bucket(bucketEventPayloads)
	if err != nil {
		return err
	}
	payload := e.Payload
	if payload == nil {
		payload = []byte{}
	}
	if err := p.Put(seqKey(e.Seq), payload); err != nil {
		return err
	}
	rec := *e
	rec.Payload = nil
	return put(b, seqKey(e.Seq), &rec)
}

// UpdateEvent rewrites an event's record (its attempt counts); its payload
// stays as stored, whatever e.Payload holds.
func (t *Tx) UpdateEvent(e *Event) error {
	b, err := t.bucket(bucketEvents)
	if err != nil {
		return err
	}
	p, err := t.bucket(bucketEventPayloads)
	if err != nil {
		return err
	}
	key := seqKey(e.Seq)
	if p.Get(key) == nil {
		// A record from before the payload bucket: its payload moves
		// there before the record is rewritten without it.
		old, err := get[Event](b, key)
		if err != nil {
			return err
		}
		payload := old.Payload
		if payload == nil {
			payload = []byte{}
		}
		if err := p.Put(key, payload); err != nil {
			return err
		}
	}
	rec := *e
	rec.Payload = nil
	return put(b, key, &rec)
}

// EventPayload reads the payload of a stored event.
func (t *Tx) EventPayload(seq uint64) ([]byte, error) {
	key := seqKey(seq)
	if p := t.tx.Bucket(bucketEventPayloads); p != nil {
		if v := p.Get(key); v != nil {
			return append([]byte(nil), v...), nil // v lives only as long as the transaction
		}
	}
	b := t.tx.Bucket(bucketEvents)
	if b == nil {
		return nil, ErrNotFound
	}
	old, err := get[Event](b, key)
	if err != nil {
		return nil, err
	}
	return old.Payload, nil
}

// DeleteEvent removes a finished event.
func (t *Tx) DeleteEvent(seq uint64) error {
	b, err := t.bucket(bucketEvents)
	if err != nil {
		return err
	}
	if p := t.tx.Bucket(bucketEventPayloads); p != nil {
		if err := p.Delete(seqKey(seq)); err != nil {
			return err
		}
	}
	return b.Delete(seqKey(seq))
}

// eventRecord is an Event as listed: without its payload, which JSON then
// skips over in records that still hold one.
type eventRecord struct {
	Seq          uint64    `json:"seq"`
	RequestID    string    `json:"requestId"`
	Account      string    `json:"account"`
	Function     string    `json:"function"`
	Qualifier    string    `json:"qualifier,omitempty"`
	ReceivedAt   time.Time `json:"receivedAt"`
	Attempts     int       `json:"attempts"`
	FunctionErrs int       `json:"functionErrors"`
	Node         string    `json:"node,omitempty"`
	TenantID     string    `json:"tenantId,omitempty"`
}

// Events calls fn for every stored event in arrival order, without its
// payload (EventPayload reads it).
func (t *Tx) Events(fn func(*Event) error) error {
	b := t.tx.Bucket(bucketEvents)
	if b == nil {
		return nil
	}
	return b.ForEach(func(k, v []byte) error {
		var r eventRecord
		if err := json.Unmarshal(v, &r); err != nil {
			return err
		}
		return fn(&Event{Seq: r.Seq, RequestID: r.RequestID, Account: r.Account, Function: r.Function, Qualifier: r.Qualifier,
			ReceivedAt: r.ReceivedAt, Attempts: r.Attempts, FunctionErrs: r.FunctionErrs, Node: r.Node, TenantID: r.TenantID})
	})
}

// AddDeadLetter keeps a failed event in the dead-letter list.
func (t *Tx) AddDeadLetter(d *DeadLetter) error {
	b, err := t.bucket(bucketDeadLetters)
	if err != nil {
		return err
	}
	if d.Seq, err = b.NextSequence(); err != nil {
		return err
	}
	return put(b, seqKey(d.Seq), d)
}

// DeadLetters lists dead letters oldest first, after sequence after, at
// most limit of them.
func (t *Tx) DeadLetters(after uint64, limit int) ([]*DeadLetter, error) {
	return scan[DeadLetter](t.tx.Bucket(bucketDeadLetters), nil, seqKey(after), limit)
}

// DeadLetter reads one dead letter.
func (t *Tx) DeadLetter(seq uint64) (*DeadLetter, error) {
	b := t.tx.Bucket(bucketDeadLetters)
	if b == nil {
		return nil, ErrNotFound
	}
	return get[DeadLetter](b, seqKey(seq))
}

// DeleteDeadLetter removes a dead letter (after it is replayed).
func (t *Tx) DeleteDeadLetter(seq uint64) error {
	b, err := t.bucket(bucketDeadLetters)
	if err != nil {
		return err
	}
	return b.Delete(seqKey(seq))
}

func configKey(name, qualifier string) []byte {
	return append(append([]byte(name), 0), qualifier...)
}

// EventConfig reads the asynchronous invocation configuration of a
// function's qualifier ("$LATEST", a version or an alias).
func (t *Tx) EventConfig(name, qualifier string) (*EventConfig, error) {
	b, err := t.read(bucketEventConfigs)
	if err != nil {
		return nil, err
	}
	return get[EventConfig](b, configKey(name, qualifier))
}

// PutEventConfig stores an asynchronous invocation configuration.
func (t *Tx) PutEventConfig(c *EventConfig) error {
	b, err := t.write(bucketEventConfigs)
	if err != nil {
		return err
	}
	return put(b, configKey(c.Function, c.Qualifier), c)
}

// DeleteEventConfig removes one.
func (t *Tx) DeleteEventConfig(name, qualifier string) error {
	b, err := t.write(bucketEventConfigs)
	if err != nil {
		return err
	}
	return b.Delete(configKey(name, qualifier))
}

// EventConfigs lists a function's configurations in qualifier order.
func (t *Tx) EventConfigs(name string) ([]*EventConfig, error) {
	b, err := t.read(bucketEventConfigs)
	if err != nil {
		return nil, err
	}
	return scan[EventConfig](b, append([]byte(name), 0), nil, -1)
}

// setEventAccounts gives account to the queued events and dead letters of
// a database from before records were kept per account.
func setEventAccounts(tx *bolt.Tx, account string) error {
	for _, name := range [][]byte{bucketEvents, bucketDeadLetters} {
		b := tx.Bucket(name)
		if b == nil {
			continue
		}
		var keys, vals [][]byte
		err := b.ForEach(func(k, v []byte) error {
			var m map[string]json.RawMessage
			if err := json.Unmarshal(v, &m); err != nil {
				return fmt.Errorf("store: decode %s %x: %w", name, k, err)
			}
			acct, _ := json.Marshal(account)
			if ev, ok := m["event"]; ok { // a dead letter: the event inside it
				var e map[string]json.RawMessage
				if err := json.Unmarshal(ev, &e); err != nil {
					return fmt.Errorf("store: decode %s %x: %w", name, k, err)
				}
				e["account"] = acct
				m["event"], _ = json.Marshal(e)
			} else {
				m["account"] = acct
			}
			nv, err := json.Marshal(m)
			keys, vals = append(keys, bytes.Clone(k)), append(vals, nv)
			return err
		})
		if err != nil {
			return err
		}
		for i := range keys {
			if err := b.Put(keys[i], vals[i]); err != nil {
				return err
			}
		}
	}
	return nil
}
