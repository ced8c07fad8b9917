package clock

import (
	"testing"
	"testing/synctest"
	"time"
)

func TestRealFollowsTheBubble(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := Real.Now()
		tm := Real.NewTimer(time.Hour)
		fired := make(chan struct{})
		Real.AfterFunc(30*time.Minute, func() { close(fired) })
		<-fired
		if got := Since(Real, start); got != 30*time.Minute {
			t.Fatalf("AfterFunc fired after %v", got)
		}
		at := <-tm.C()
		if got := at.Sub(start); got != time.Hour {
			t.Fatalf("timer fired after %v", got)
		}
		if tm.Reset(time.Minute) {
			t.Fatal("Reset of a fired timer reports it active")
		}
		if !tm.Stop() {
			t.Fatal("Stop of a reset timer reports it inactive")
		}
	})
}
