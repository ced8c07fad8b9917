package events_test

import (
	"fmt"
	"testing"

	"github.com/lambdad/lambdad/internal/events"
	"github.com/lambdad/lambdad/internal/lambdatest"
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

// TestEtcdStoreContract holds the store kept in etcd to the same contract,
// on a real etcd, each case under a prefix of its own.
func TestEtcdStoreContract(t *testing.T) {
	endpoint := lambdatest.Etcd(t)
	n := 0
	storetest.RunEvents(t, func(t *testing.T) events.Store {
		n++
		db, err := store.OpenEtcd(t.TempDir(), store.EtcdOptions{Endpoints: []string{endpoint}, Prefix: fmt.Sprintf("/events-%d/", n)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return events.Bolt(db)
	})
}
