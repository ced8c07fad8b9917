package lambdatest

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Etcd starts a single-member etcd (Debian's etcd-server) on free loopback
// ports for the test, with its data in memory (/dev/shm where there is
// one: etcd fsyncs every write), stops it at the end and returns its
// client endpoint. It skips the test when etcd is not installed, and fails
// it under LAMBDAD_REQUIRE_E2E=1.
func Etcd(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		RequireE2E(t, "etcd is not installed (apt-get install etcd-server)")
	}
	base := os.TempDir()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		base = "/dev/shm"
	}
	dir, err := os.MkdirTemp(base, "lambdad-etcd-")
	if err != nil {
		t.Fatal(err)
	}
	client, peer := freePort(t), freePort(t)
	curl := "http://127.0.0.1:" + strconv.Itoa(client)
	purl := "http://127.0.0.1:" + strconv.Itoa(peer)
	name := fmt.Sprintf("lambdad-test-%d", time.Now().UnixNano())
	cmd := exec.Command(bin, "--name", name, "--data-dir", dir,
		"--listen-client-urls", curl, "--advertise-client-urls", curl,
		"--listen-peer-urls", purl, "--initial-advertise-peer-urls", purl,
		"--initial-cluster", name+"="+purl,
		"--log-level", "warn")
	cmd.Stdout, cmd.Stderr = t.Output(), t.Output()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited // its ports are free again before the next test takes any
		os.RemoveAll(dir)
	})
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		select {
		case <-exited:
			t.Fatal("etcd exited at start (a port taken?)")
		default:
		}
		if r, err := http.Get(curl + "/health"); err == nil {
			var b strings.Builder
			buf := make([]byte, 256)
			n, _ := r.Body.Read(buf)
			b.Write(buf[:n])
			r.Body.Close()
			if strings.Contains(b.String(), `"true"`) {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("etcd did not become healthy in 30 s")
		}
	}
	return curl
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
