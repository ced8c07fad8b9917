package sandbox

import (
	"os"
	"testing"
	"time"
)

func BenchmarkFreezeThaw(b *testing.B) {
	if m := Check(Full); len(m) > 0 {
		b.Skip(Report(Full, m))
	}
	h, err := NewHost(HostConfig{Level: Full})
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	dir := b.TempDir()
	os.Chmod(dir, 0o755)
	e, err := h.Start(&Spec{Argv: []string{"/bin/sleep", "60"}, Dir: "/", MemoryMB: 128, TmpMB: 16,
		Binds: []Bind{{Source: dir, Target: TaskRoot}}, Output: os.Stderr})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { e.Kill(); e.Wait(); e.Release() }()
	var fr, th time.Duration
	for b.Loop() {
		t0 := time.Now()
		e.Freeze()
		t1 := time.Now()
		e.Thaw()
		th += time.Since(t1)
		fr += t1.Sub(t0)
	}
	b.ReportMetric(float64(fr.Microseconds())/float64(b.N), "freeze-us")
	b.ReportMetric(float64(th.Microseconds())/float64(b.N), "thaw-us")
}

// BenchmarkStart is one environment's whole life around /bin/true: start
// (namespaces, cgroup, filesystem view), the runtime's exit, and release.
func BenchmarkStart(b *testing.B) {
	requireFull(b)
	h, err := NewHost(HostConfig{Level: Full})
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	dir := b.TempDir()
	os.Chmod(dir, 0o755)
	var start, wait, release time.Duration
	for b.Loop() {
		t0 := time.Now()
		e, err := h.Start(&Spec{Argv: []string{"/bin/true"}, Dir: "/", MemoryMB: 128, TmpMB: 16,
			Binds: []Bind{{Source: dir, Target: TaskRoot}}, Output: os.Stderr})
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		e.Wait()
		t2 := time.Now()
		e.Listener().Close()
		e.Release()
		start += t1.Sub(t0)
		wait += t2.Sub(t1)
		release += time.Since(t2)
	}
	n := float64(b.N) * 1000
	b.ReportMetric(float64(start.Microseconds())/n, "start-ms")
	b.ReportMetric(float64(wait.Microseconds())/n, "wait-ms")
	b.ReportMetric(float64(release.Microseconds())/n, "release-ms")
}
