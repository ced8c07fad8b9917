package storetest

import (
	"errors"
	"testing"

	"github.com/lambdad/lambdad/internal/events"
	"github.com/lambdad/lambdad/internal/store"
)

// RunEvents runs the contract of the event queue's store against the
// stores open makes, a new empty one for each case: events keep their
// order, their account and their tenant, numbers are never reused, a failed transaction
// adds nothing, and the dead-letter list pages in order.
func RunEvents(t *testing.T, open func(t *testing.T) events.Store) {
	t.Run("events keep order and account", func(t *testing.T) { eventsInOrder(t, open(t)) })
	t.Run("dead letters page in order", func(t *testing.T) { deadLettersPage(t, open(t)) })
}

func eventsInOrder(t *testing.T, s events.Store) {
	var seqs []uint64
	err := s.Update(ctx, func(tx events.Tx) error {
		seqs = seqs[:0]
		for i, acct := range []string{A, B, A} {
			e := &store.Event{Account: acct, Function: "f", Payload: []byte{'0' + byte(i)}, TenantID: []string{"blue", "", "green"}[i]}
			if err := tx.AddEvent(e); err != nil {
				return err
			}
			seqs = append(seqs, e.Seq)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !(seqs[0] < seqs[1] && seqs[1] < seqs[2]) {
		t.Fatalf("sequence numbers %v do not increase", seqs)
	}
	err = s.Update(ctx, func(tx events.Tx) error {
		if err := tx.DeleteEvent(seqs[1]); err != nil {
			return err
		}
		return tx.UpdateEvent(&store.Event{Seq: seqs[2], Account: A, Function: "f", Attempts: 3, TenantID: "green"})
	})
	if err != nil {
		t.Fatal(err)
	}
	// A failed transaction adds nothing and uses no number a later event
	// gets twice.
	err = s.Update(ctx, func(tx events.Tx) error {
		if err := tx.AddEvent(&store.Event{Account: A, Function: "lost"}); err != nil {
			return err
		}
		return errRollback
	})
	if !errors.Is(err, errRollback) {
		t.Fatal(err)
	}
	var got []*store.Event
	err = s.View(ctx, func(tx events.Tx) error {
		got = got[:0]
		return tx.Events(func(e *store.Event) error { got = append(got, e); return nil })
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Seq != seqs[0] || got[1].Seq != seqs[2] || got[1].Attempts != 3 ||
		got[0].Account != A || got[0].Payload != nil || got[0].TenantID != "blue" || got[1].TenantID != "green" {
		t.Errorf("stored events: %+v", got)
	}
	// The payloads are read one at a time, and an update keeps them.
	err = s.View(ctx, func(tx events.Tx) error {
		for i, seq := range []uint64{seqs[0], seqs[2]} {
			p, err := tx.EventPayload(seq)
			if err != nil {
				return err
			}
			if want := []string{"0", "2"}[i]; string(p) != want {
				t.Errorf("payload of event %d: %q, want %q", seq, p, want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func deadLettersPage(t *testing.T, s events.Store) {
	err := s.Update(ctx, func(tx events.Tx) error {
		for range 5 {
			if err := tx.AddDeadLetter(&store.DeadLetter{Event: store.Event{Account: B, Function: "f", TenantID: "blue"}}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.View(ctx, func(tx events.Tx) error {
		first, err := tx.DeadLetters(0, 3)
		if err != nil || len(first) != 3 {
			t.Fatalf("first page: %d %v", len(first), err)
		}
		rest, err := tx.DeadLetters(first[2].Seq, 3)
		if err != nil || len(rest) != 2 || rest[0].Seq <= first[2].Seq || rest[0].Event.Account != B || rest[0].Event.TenantID != "blue" {
			t.Errorf("second page: %+v %v", rest, err)
		}
		if _, err := tx.DeadLetter(rest[1].Seq + 1); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("an absent dead letter: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
