package control_test

import (
	"testing"

	"github.com/lambdad/lambdad/internal/control"
	"github.com/lambdad/lambdad/internal/store"
	"github.com/lambdad/lambdad/internal/storetest"
)

// TestStoreContract holds the embedded store to the contract every store
// behind the control plane keeps.
func TestStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) control.Store {
		db, err := store.Open(t.TempDir(), store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return control.Bolt(db)
	})
}
