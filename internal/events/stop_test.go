package events_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/lambdad/lambdad/internal/events"
	"github.com/lambdad/lambdad/internal/store"
)

// gatedStore holds the first transaction that removes a finished event
// until the test opens the gate, so that removals pile up behind it as
// they do behind a slow disk.
type gatedStore struct {
	events.Store
	entered, gate chan struct{}
	once          sync.Once
}

type spyTx struct {
	events.Tx
	deleted *bool
}

func (s spyTx) DeleteEvent(seq uint64) error { *s.deleted = true; return s.Tx.DeleteEvent(seq) }

func (g *gatedStore) Update(ctx context.Context, fn func(events.Tx) error) error {
	return g.Store.Update(ctx, func(tx events.Tx) error {
		deleted := false
		if err := fn(spyTx{tx, &deleted}); err != nil {
			return err
		}
		if deleted {
			g.once.Do(func() { close(g.entered); <-g.gate })
		}
		return nil
	})
}

// TestCleanStopRunsNothingAgain stops the queue while the removals of
// events that have run are still waiting to be written: a clean stop
// writes them, so after it no finished event is stored (and none runs
// again after the next start).
func TestCleanStopRunsNothingAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, events.Options{Workers: 10})
		g := &gatedStore{entered: make(chan struct{}), gate: make(chan struct{})}
		e.wrap = func(s events.Store) events.Store { g.Store = s; return g }
		e.reopen()
		// The events are all accepted before any of them finishes.
		release := make(chan struct{})
		e.create("f", func(ctx context.Context, _ int, _ []byte) ([]byte, string, error) {
			<-release
			return []byte(`{}`), "", nil
		})
		for range 10 {
			e.send("f", `{}`)
		}
		close(release)
		<-g.entered
		synctest.Wait()
		if st := e.q.Stats(); st.Succeeded != 10 {
			t.Fatalf("%d of 10 events succeeded before the stop", st.Succeeded)
		}
		stopped := make(chan struct{})
		go func() { e.q.Close(); close(stopped) }()
		synctest.Wait()
		close(g.gate)
		<-stopped
		var left []*store.Event
		left = e.storedEvents()
		if len(left) != 0 {
			t.Errorf("%d finished events are still stored after a clean stop", len(left))
		}
		e.q = nil
		e.db.Close()
	})
}
