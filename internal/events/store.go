package events

import (
	"context"

	"github.com/lambdad/lambdad/internal/store"
)

// Tx is what the queue reads and writes in one transaction: the stored
// events and the dead-letter list, by the records of package store. As
// for every transaction, a body may run more than once and must depend
// only on what it reads through tx.
type Tx interface {
	AddEvent(e *store.Event) error
	UpdateEvent(e *store.Event) error
	DeleteEvent(seq uint64) error
	// Events lists the stored events without their payloads, which
	// EventPayload reads one at a time: the queue keeps a backlog's
	// payloads on disk.
	Events(fn func(*store.Event) error) error
	EventPayload(seq uint64) ([]byte, error)
	AddDeadLetter(d *store.DeadLetter) error
	DeadLetters(after uint64, limit int) ([]*store.DeadLetter, error)
	DeadLetter(seq uint64) (*store.DeadLetter, error)
	DeleteDeadLetter(seq uint64) error
}

// Store is what the queue needs of the store: transactions over the
// events, which every account's events share. Bolt adapts the embedded
// store; a store shared by several nodes provides the same.
type Store interface {
	View(ctx context.Context, fn func(Tx) error) error
	Update(ctx context.Context, fn func(Tx) error) error
}

// Bolt is the Store of the embedded database.
func Bolt(db *store.DB) Store { return boltStore{db} }

type boltStore struct{ db *store.DB }

// View and Update start no transaction for a caller that has gone.
func (b boltStore) View(ctx context.Context, fn func(Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return b.db.View(func(tx *store.Tx) error { return fn(tx) })
}

func (b boltStore) Update(ctx context.Context, fn func(Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return b.db.Update(func(tx *store.Tx) error { return fn(tx) })
}
