// This file is the environments' outbound network: pasta (Debian's package
// passt), a user-mode network stack attached to an environment's network
// namespace, which turns the namespace's packets into the host's own
// sockets. Nothing reaches into the namespace: no port is forwarded in
// either direction, and the gateway is not mapped to the host's loopback.

package sandbox

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Network is how an environment's network namespace reaches out.
type Network string

const (
	// NetworkPasta gives every environment outbound IPv4 (TCP and UDP)
	// through a pasta process of its own; nothing inbound.
	NetworkPasta Network = "pasta"
	// NetworkNone leaves every environment's namespace with its
	// loopback only (the Runtime API).
	NetworkNone Network = "none"
)

// ParseNetwork parses a --function-network value.
func ParseNetwork(s string) (Network, error) {
	switch n := Network(s); n {
	case NetworkPasta, NetworkNone:
		return n, nil
	}
	return "", fmt.Errorf("function network %q: want %s or %s", s, NetworkPasta, NetworkNone)
}

// Inside an environment with outbound network: its interface, its address
// and the gateway pasta answers for. Link-local, as on AWS; the rest of
// 169.254.0.0/16 (the cloud's instance metadata among it) is unreachable.
const (
	NetInterface = "eth0"
	NetAddress   = "169.254.1.2"
	NetGateway   = "169.254.1.1"
	netMaskBits  = 30
	// NetDNS is the environment's name server, as on AWS: pasta answers
	// it by forwarding each query (UDP and TCP port 53) to the host's
	// first resolver, through the host's own socket, so that a resolver
	// on the host's loopback (systemd-resolved's 127.0.0.53) serves
	// functions too.
	NetDNS = "169.254.78.1"
)

// pastaBinary is the name pasta is looked up by on the server's PATH.
const pastaBinary = "pasta"

// lookPasta finds pasta, or says why it cannot be used.
func lookPasta() (string, error) {
	p, err := exec.LookPath(pastaBinary)
	if err != nil {
		return "", fmt.Errorf("pasta is not installed (Debian's package passt): %v", err)
	}
	return p, nil
}

// CheckNetwork returns what this machine cannot give of network n at
// level: nothing at Off or NetworkNone. It probes for real: pasta is
// attached to a short-lived process in new user and network namespaces,
// as to an environment's init.
func CheckNetwork(level Level, n Network) []Missing {
	if level == Off || n != NetworkPasta {
		return nil
	}
	path, err := lookPasta()
	if err == nil {
		err = probePasta(path)
	}
	if err != nil {
		return []Missing{{GuaranteeOutbound, err.Error()}}
	}
	return nil
}

// probePasta attaches pasta to a process in new user and network
// namespaces and waits for it to be ready.
func probePasta(path string) error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	cmd := probeCmd(r)
	if err := cmd.Start(); err != nil {
		w.Close()
		return fmt.Errorf("cannot start a process in new user and network namespaces: %v", err)
	}
	defer cmd.Wait()
	defer w.Close() // the probe exits when its pipe closes
	p, err := startPasta(path, cmd.Process.Pid)
	if err != nil {
		return err
	}
	err = p.ready(10 * time.Second)
	p.stop()
	return err
}

// probeWait is the probe process's life under probePasta: it waits until
// the server closes its pipe.
func probeWait() {
	var b [1]byte
	for {
		if _, err := unix.Read(3, b[:]); err != unix.EINTR {
			return
		}
	}
}

// pasta is one environment's pasta process.
type pasta struct {
	cmd     *exec.Cmd
	readyR  *os.File // pasta writes its pid here once the namespace is configured
	stderr  *capped
	waitOne sync.Once
	waitErr error

	readyOne sync.Once
	readyErr error
	up       atomic.Bool
}

// pastaArgs are pasta's options for the namespaces of process pid.
func pastaArgs(pid int) []string {
	return []string{
		pastaBinary,
		"--foreground", "--quiet",
		// Run as root, pasta would change to nobody before joining the
		// namespaces, which nobody may not. It keeps the server's ids and
		// then, in the environment's user namespace, only the
		// capabilities it needs there: none on the host.
		"--runas", strconv.Itoa(os.Geteuid()) + ":" + strconv.Itoa(os.Getegid()),
		// AWS gives functions (outside a VPC) IPv4 only.
		"--ipv4-only",
		"--config-net", "--ns-ifname", NetInterface,
		"--address", NetAddress, "--netmask", strconv.Itoa(netMaskBits), "--gateway", NetGateway,
		"--no-dhcp", "--no-dhcpv6", "--no-ndp", "--no-ra",
		// Nothing inbound: no port of the host forwarded into the
		// namespace, none of the namespace's out to the host's loopback.
		"--tcp-ports", "none", "--udp-ports", "none", "--tcp-ns", "none", "--udp-ns", "none",
		// The gateway is an address like any other, not the host's
		// loopback.
		"--no-map-gw",
		// Name resolution: queries to NetDNS go to the host's resolver.
		"--dns-forward", NetDNS,
		// Written once the namespace's interface is up: the server's
		// readiness signal.
		"--pid", "/proc/self/fd/3",
		strconv.Itoa(pid),
	}
}

// startPasta starts pasta on the user and network namespaces of process
// pid. It dies with the server (PR_SET_PDEATHSIG: pasta keeps the
// server's ids, so the kernel keeps the signal across its setup).
func startPasta(path string, pid int) (*pasta, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer w.Close()
	p := &pasta{readyR: r, stderr: &capped{max: 4096}}
	p.cmd = &exec.Cmd{
		Path:        path,
		Args:        pastaArgs(pid),
		Env:         []string{},
		Stdout:      p.stderr,
		Stderr:      p.stderr,
		ExtraFiles:  []*os.File{w},
		SysProcAttr: &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL},
	}
	if err := p.cmd.Start(); err != nil {
		r.Close()
		return nil, fmt.Errorf("starting pasta: %w", err)
	}
	return p, nil
}

// ready waits until pasta has configured the namespace, or has failed;
// once it has answered, it answers the same again at once.
func (p *pasta) ready(timeout time.Duration) error {
	p.readyOne.Do(func() {
		p.readyErr = p.awaitReady(timeout)
		p.up.Store(p.readyErr == nil)
	})
	return p.readyErr
}

// isReady says whether ready has returned nil, without waiting.
func (p *pasta) isReady() bool { return p.up.Load() }

func (p *pasta) awaitReady(timeout time.Duration) error {
	p.readyR.SetReadDeadline(time.Now().Add(timeout))
	var b [32]byte
	n, err := p.readyR.Read(b[:])
	p.readyR.Close()
	if err == nil && n > 0 {
		return nil
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("pasta was not ready after %v", timeout)
	}
	// It closed the pipe without a word: it has exited.
	werr := p.wait()
	msg := strings.TrimSpace(p.stderr.String())
	if msg == "" {
		msg = fmt.Sprint(werr)
	}
	return fmt.Errorf("pasta: %s", msg)
}

// Pid is pasta's pid.
func (p *pasta) Pid() int { return p.cmd.Process.Pid }

// kill kills pasta; stop kills and reaps it.
func (p *pasta) kill() { p.cmd.Process.Signal(syscall.SIGKILL) }

func (p *pasta) stop() {
	p.kill()
	p.wait()
	p.readyR.Close()
}

func (p *pasta) wait() error {
	p.waitOne.Do(func() { p.waitErr = p.cmd.Wait() })
	return p.waitErr
}

// capped keeps the first max bytes written to it.
type capped struct {
	mu  sync.Mutex
	max int
	b   bytes.Buffer
}

func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := c.max - c.b.Len(); room > 0 {
		c.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (c *capped) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.b.String()
}

// route is an IPv4 destination: an address and a prefix length.
type route struct {
	addr [4]byte
	bits uint8
	via  [4]byte // a gateway: a route through it; zero: unreachable
}

// linkLocal is unreachable from an environment with outbound network:
// clouds serve their instance metadata and its credentials there
// (169.254.169.254). The environment's own link is more specific, so
// its route wins; the gateway is made unreachable too (gatewayRoute) once
// the default route through it is in place.
var linkLocal = []route{{addr: [4]byte{169, 254, 0, 0}, bits: 16}}

// gatewayRoute makes the gateway, which carries the environment's traffic
// as the next hop of its default route, no destination of its own: with
// the gateway not mapped to the host, pasta would connect to whatever has
// that address on the host's network. A route to it is looked up only
// when it is the destination, not to reach it as the next hop.
func gatewayRoute() route {
	ip := net.ParseIP(NetGateway).To4()
	return route{addr: [4]byte(ip), bits: 32}
}

// dnsRoute leads to NetDNS through the gateway: it is in 169.254.0.0/16,
// which is unreachable otherwise. It must be added before the gateway is
// made unreachable (gatewayRoute), while the kernel still finds the
// gateway on the link.
func dnsRoute() route {
	return route{addr: [4]byte(net.ParseIP(NetDNS).To4()), bits: 32, via: [4]byte(net.ParseIP(NetGateway).To4())}
}

// blockRoutes adds each of routes to the init's network namespace
// (rtnetlink): unreachable, or through its gateway. The function, without
// CAP_NET_ADMIN, cannot remove them.
func blockRoutes(routes []route) error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	for i, r := range routes {
		const attrLen = unix.SizeofRtAttr + 4
		attrs := 1
		if r.via != [4]byte{} {
			attrs = 2
		}
		msg := make([]byte, unix.SizeofNlMsghdr+unix.SizeofRtMsg+attrs*attrLen)
		ne := binary.NativeEndian
		ne.PutUint32(msg[0:], uint32(len(msg)))
		ne.PutUint16(msg[4:], unix.RTM_NEWROUTE)
		ne.PutUint16(msg[6:], unix.NLM_F_REQUEST|unix.NLM_F_ACK|unix.NLM_F_CREATE|unix.NLM_F_EXCL)
		ne.PutUint32(msg[8:], uint32(i+1)) // sequence
		rt := msg[unix.SizeofNlMsghdr:]
		rt[0] = unix.AF_INET
		rt[1] = r.bits // dst_len
		rt[4] = unix.RT_TABLE_MAIN
		rt[5] = unix.RTPROT_BOOT
		rt[6] = unix.RT_SCOPE_UNIVERSE
		rt[7] = unix.RTN_UNREACHABLE
		attr := rt[unix.SizeofRtMsg:]
		ne.PutUint16(attr[0:], attrLen)
		ne.PutUint16(attr[2:], unix.RTA_DST)
		copy(attr[unix.SizeofRtAttr:], r.addr[:])
		if attrs == 2 {
			rt[7] = unix.RTN_UNICAST
			gw := attr[attrLen:]
			ne.PutUint16(gw[0:], attrLen)
			ne.PutUint16(gw[2:], unix.RTA_GATEWAY)
			copy(gw[unix.SizeofRtAttr:], r.via[:])
		}
		if err := unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
			return err
		}
		buf := make([]byte, 4096)
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return err
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if m.Header.Type == unix.NLMSG_ERROR && len(m.Data) >= 4 {
				if e := int32(ne.Uint32(m.Data)); e != 0 {
					return fmt.Errorf("route to %v/%d: %w", r.addr, r.bits, syscall.Errno(-e))
				}
			}
		}
	}
	return nil
}

// probeCmd is a process in new user and network namespaces that waits
// until the other end of r closes.
func probeCmd(r *os.File) *exec.Cmd {
	return &exec.Cmd{
		Path:       "/proc/self/exe",
		Args:       []string{probeArg0, "wait"},
		Env:        []string{},
		ExtraFiles: []*os.File{r},
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags:  unix.CLONE_NEWUSER | unix.CLONE_NEWNET,
			UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}},
			GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}},
			Pdeathsig:   syscall.SIGKILL,
		},
	}
}
