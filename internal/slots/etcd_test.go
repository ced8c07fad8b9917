package slots

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

const etcdBinary = "/usr/bin/etcd"

// testEtcd is one etcd process shared by the package's tests (each test
// uses its own key prefix): starting one costs about a second.
type testEtcd struct {
	cmd      *exec.Cmd
	dir      string
	endpoint string
	exited   chan struct{}
}

var (
	etcdOnce sync.Once
	etcdProc *testEtcd
	etcdErr  error
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(childMain())
	}
	code := m.Run()
	if etcdProc != nil {
		etcdProc.stop()
	}
	os.Exit(code)
}

// needEtcd returns the endpoint of the shared etcd, starting it on first
// use; it skips the test when etcd is not installed, unless
// LAMBDAD_REQUIRE_E2E=1, which makes that a failure.
func needEtcd(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat(etcdBinary); err != nil {
		if os.Getenv("LAMBDAD_REQUIRE_E2E") == "1" {
			t.Fatalf("%s not found and LAMBDAD_REQUIRE_E2E=1: install etcd-server", etcdBinary)
		}
		t.Skipf("%s not found (Debian package etcd-server): skipping the tests against real etcd", etcdBinary)
	}
	etcdOnce.Do(func() { etcdProc, etcdErr = startEtcd() })
	if etcdErr != nil {
		t.Fatalf("start etcd: %v", etcdErr)
	}
	return etcdProc.endpoint
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func startEtcd() (*testEtcd, error) {
	var lastErr error
	for range 3 { // a port taken between probing and binding: try others
		e, err := startEtcdOnce()
		if err == nil {
			return e, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func startEtcdOnce() (*testEtcd, error) {
	// /dev/shm: Debian's etcd 3.4 has no --unsafe-no-fsync, and fsync on
	// disk doubles the cost of every request.
	dir, err := os.MkdirTemp("/dev/shm", "lambdad-slots-etcd-")
	if err != nil {
		return nil, err
	}
	cport, err1 := freePort()
	pport, err2 := freePort()
	if err1 != nil || err2 != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("free ports: %v %v", err1, err2)
	}
	name := "slots-test-" + strconv.Itoa(os.Getpid()) + "-" + strconv.Itoa(cport)
	client := "http://127.0.0.1:" + strconv.Itoa(cport)
	peer := "http://127.0.0.1:" + strconv.Itoa(pport)
	cmd := exec.Command(etcdBinary,
		"--name", name,
		"--data-dir", dir,
		"--listen-client-urls", client,
		"--advertise-client-urls", client,
		"--listen-peer-urls", peer,
		"--initial-advertise-peer-urls", peer,
		"--initial-cluster", name+"="+peer,
		"--initial-cluster-state", "new",
		"--initial-cluster-token", name,
		"--logger", "zap",
		"--log-level", "error",
	)
	cmd.Stdout = io.Discard
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	e := &testEtcd{cmd: cmd, dir: dir, endpoint: client, exited: make(chan struct{})}
	go func() { cmd.Wait(); close(e.exited) }()
	if err := e.waitHealthy(name); err != nil {
		e.stop()
		return nil, err
	}
	return e, nil
}

// waitHealthy waits until the etcd answering on the endpoint is the one
// started here (its member name), not a leftover of another run.
func (e *testEtcd) waitHealthy(name string) error {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{e.endpoint}, DialTimeout: time.Second})
	if err != nil {
		return err
	}
	defer cli.Close()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-e.exited:
			return fmt.Errorf("etcd exited early")
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		ml, err := cli.MemberList(ctx)
		if err == nil {
			_, err = cli.Get(ctx, "health")
		}
		cancel()
		if err == nil {
			if len(ml.Members) != 1 || ml.Members[0].Name != name {
				return fmt.Errorf("the etcd on %s is not ours: members %v", e.endpoint, ml.Members)
			}
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("etcd not healthy on %s within 15 s", e.endpoint)
}

func (e *testEtcd) stop() {
	e.cmd.Process.Kill()
	select {
	case <-e.exited:
	case <-time.After(10 * time.Second):
	}
	os.RemoveAll(e.dir)
}

// newClient dials endpoint; closed at the end of the test.
func newClient(t testing.TB, endpoint string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{endpoint},
		DialTimeout: 2 * time.Second,
		// Notice a dead connection quickly (the partition test).
		DialKeepAliveTime:    time.Second,
		DialKeepAliveTimeout: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// proxy is a TCP proxy between a node and etcd that the test can cut:
// after Cut it forwards nothing, in either direction, on old or new
// connections, like a network that drops every packet.
type proxy struct {
	l      net.Listener
	target string
	mu     sync.Mutex
	cut    bool
	conns  []net.Conn
	wg     sync.WaitGroup
}

func newProxy(t testing.TB, target string) *proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{l: l, target: target}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *proxy) endpoint() string { return "http://" + p.l.Addr().String() }

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.conns = append(p.conns, c)
		cut := p.cut
		p.mu.Unlock()
		if cut {
			p.wg.Add(1)
			go func() { defer p.wg.Done(); io.Copy(io.Discard, c) }()
			continue
		}
		u, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, u)
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(c, u)
		go p.pipe(u, c)
	}
}

// pipe copies from src to dst until the cut, then drops what src sends.
func (p *proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			cut := p.cut
			p.mu.Unlock()
			if !cut {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *proxy) Cut() {
	p.mu.Lock()
	p.cut = true
	p.mu.Unlock()
}

func (p *proxy) close() {
	p.l.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
