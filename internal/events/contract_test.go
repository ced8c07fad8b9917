package events_test

import (
	"testing"

	"github.com/lambdad/lambdad/internal/events"
	"github.com/lambdad/lambdad/internal/store"
	"github.com/lambdad/lambdad/internal/storetest"
)

// TestStoreContract holds the embedded store to the contract of the
// queue's store.
func TestStoreContract(t *testing.T) {
	storetest.RunEvents(t, func(t *testing.T) events.Store {
		db, err := store.Open(t.TempDir(), store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return events.Bolt(db)
	})
}
