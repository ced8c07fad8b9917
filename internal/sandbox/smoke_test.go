package sandbox

import (
	"os"
	"testing"
)

func TestSmoke(t *testing.T) {
	if m := Check(Full); len(m) > 0 {
		t.Skip(Report(Full, m))
	}
	h, err := NewHost(HostConfig{Level: Full})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	r, w, _ := os.Pipe()
	e, err := h.Start(&Spec{ID: "smoke", Argv: []string{"/bin/sh", "-c", "id; ls -la / /var/task /tmp; cat /proc/self/status | grep -i -e cap -e seccomp -e nonew; df -h /tmp; hostname; cat /proc/1/environ | tr '\\0' ' '; echo; ps ax 2>&1 | head"}, Env: []string{"PATH=/usr/bin:/bin"}, Dir: "/",
		Binds: []Bind{{Source: t.TempDir(), Target: "/var/task"}}, MemoryMB: 128, TmpMB: 512, Output: w})
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1<<16)
	n, _ := r.Read(b)
	all := b[:n]
	for n > 0 {
		n, _ = r.Read(b)
		all = append(all, b[:n]...)
	}
	st, err := e.Wait()
	t.Logf("%s\n%v %v peak=%d", all, st, err, e.PeakBytes())
	e.Release()
}
