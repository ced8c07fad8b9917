package store

import "time"

var bucketMappings = []byte("mappings") // UUID → EventSourceMapping

// EventSourceMapping is an account's mapping from an SQS queue to a
// function: the queue's messages are read in batches and handed to the
// function.
type EventSourceMapping struct {
	UUID           string `json:"uuid"`
	EventSourceArn string `json:"eventSourceArn"`
	Function       string `json:"function"`
	// Qualifier is the version or alias the mapping invokes; "" for
	// $LATEST.
	Qualifier             string `json:"qualifier,omitempty"`
	BatchSize             int    `json:"batchSize"`
	BatchingWindowSeconds int    `json:"batchingWindowSeconds"`
	Enabled               bool   `json:"enabled"`
	MaximumConcurrency    int    `json:"maximumConcurrency,omitempty"` // 0: none
	ReportBatchItemFail   bool   `json:"reportBatchItemFailures,omitempty"`
	// Filters are the patterns of FilterCriteria, as given; a message
	// passes when one matches (internal/esm/filter).
	Filters      []string  `json:"filters,omitempty"`
	LastModified time.Time `json:"lastModified"`
}

// EventSourceMapping reads one, or ErrNotFound.
func (t *Tx) EventSourceMapping(uuid string) (*EventSourceMapping, error) {
	b, err := t.read(bucketMappings)
	if err != nil {
		return nil, err
	}
	return get[EventSourceMapping](b, []byte(uuid))
}

// PutEventSourceMapping creates or replaces one.
func (t *Tx) PutEventSourceMapping(m *EventSourceMapping) error {
	b, err := t.write(bucketMappings)
	if err != nil {
		return err
	}
	if err := put(b, []byte(m.UUID), m); err != nil {
		return err
	}
	return t.record(Change{Kind: KindMapping, Function: m.Function, Key: m.UUID, Mapping: clone(m)})
}

// DeleteEventSourceMapping removes one.
func (t *Tx) DeleteEventSourceMapping(m *EventSourceMapping) error {
	b, err := t.write(bucketMappings)
	if err != nil {
		return err
	}
	if err := b.Delete([]byte(m.UUID)); err != nil {
		return err
	}
	return t.record(Change{Kind: KindMapping, Function: m.Function, Key: m.UUID})
}

// EventSourceMappings lists the account's mappings in UUID order after the
// UUID after ("" for the first), at most limit of them.
func (t *Tx) EventSourceMappings(after string, limit int) ([]*EventSourceMapping, error) {
	b, err := t.read(bucketMappings)
	if err != nil {
		return nil, err
	}
	var from []byte
	if after != "" {
		from = []byte(after)
	}
	return scan[EventSourceMapping](b, nil, from, limit)
}
