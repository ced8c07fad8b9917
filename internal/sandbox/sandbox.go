// Package sandbox contains one execution environment's processes: each
// environment runs under an init process of its own, started by re-executing
// the server's binary inside new user, pid, mount, ipc, uts and network
// namespaces, placed in a cgroup of its own, that builds the environment's
// filesystem view and then starts the function's runtime as an unprivileged
// user with no_new_privs and a seccomp filter.
//
// The steps, in order, each checked (see initMain):
//
//  1. The server clones the init into new namespaces with two host uids
//     mapped: the init's (uid 0 inside, powerless outside) and the
//     function's (uid 993 inside, as sbx_user1051 on AWS). Neither is
//     root on the host nor the server's uid, and no two environments share
//     one. The init dies with the server (PR_SET_PDEATHSIG), and every
//     process of the environment dies with the init (it is pid 1 of the
//     environment's pid namespace).
//  2. The server puts the init into the environment's cgroup (memory limit
//     of the whole tree, pids limit, CPU weight, freezer) before the init
//     reads its configuration, so nothing of the environment runs outside it.
//  3. The init brings up the loopback interface of its network namespace,
//     listens there for the Runtime API (127.0.0.1:9001) and hands the
//     listening socket to the server, which serves the Runtime API on it:
//     only that environment can reach it.
//  4. The init mounts a fresh root: the system directories and the
//     interpreter read-only, the code read-only at /var/task, the runtime
//     shims at /var/runtime, a private /tmp of the ephemeral storage size,
//     a fresh /proc, a minimal /dev; then pivots into it and detaches the
//     old root, so nothing of the server's data dir is reachable.
//  5. With outbound network (NetworkPasta), the server attaches a pasta
//     process of the environment's own to its user and network
//     namespaces as soon as the init is started, while the init builds
//     the environment; the init makes link-local addresses (the cloud's
//     instance metadata) unreachable and starts the runtime only once
//     the server says pasta has configured the namespace's interface.
//     pasta forwards no port in either direction and does not map the
//     gateway to the host's loopback: the namespace reaches out, nothing
//     reaches in, and the host's loopback stays out of reach. pasta dies
//     with the environment, and with the server (PR_SET_PDEATHSIG).
//  6. The init sets no_new_privs and installs the seccomp filter on all its
//     threads, then starts the runtime as uid/gid 993 with no supplementary
//     groups (the change from uid 0 clears every capability), and reaps
//     processes until the runtime exits.
//
// Level says which of these a Host applies, and Network whether step 5
// is taken; Check and CheckNetwork say which guarantees this machine
// cannot give.
package sandbox

import (
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// Level is how much of the sandbox is applied.
type Level string

// Levels, strongest first.
const (
	// Full applies everything: namespaces, uids, filesystem view,
	// seccomp, and the cgroup (memory, pids, CPU weight, freezer).
	Full Level = "full"
	// NoCgroup applies everything but the cgroup: for machines without
	// cgroup delegation. Memory is then bounded per process only
	// (RLIMIT_DATA), there is no pids limit, CPU weight or freezing.
	NoCgroup Level = "no-cgroup"
	// Off runs functions as the server's own child processes, as the
	// server's user.
	Off Level = "off"
)

// ParseLevel parses a --sandbox value.
func ParseLevel(s string) (Level, error) {
	switch l := Level(s); l {
	case Full, NoCgroup, Off:
		return l, nil
	case "on", "true":
		return Full, nil
	case "false":
		return Off, nil
	}
	return "", fmt.Errorf("sandbox level %q: want %s, %s or %s", s, Full, NoCgroup, Off)
}

// Guarantee is one property the sandbox enforces.
type Guarantee string

// The guarantees, as the README's table lists them.
const (
	GuaranteeUID     Guarantee = "own unprivileged uid/gid (not root, not the server's)"
	GuaranteeUserNS  Guarantee = "user namespace"
	GuaranteePidNS   Guarantee = "pid namespace (every process dies with the environment, and with the server)"
	GuaranteeMountNS Guarantee = "mount namespace and private filesystem view (/var/task read-only, private /tmp, own /proc)"
	GuaranteeNetNS   Guarantee = "network namespace (Runtime API reachable only inside the environment)"
	GuaranteeIPCUTS  Guarantee = "ipc and uts namespaces"
	GuaranteeSeccomp Guarantee = "no_new_privs and seccomp filter"
	GuaranteeMemory  Guarantee = "memory limit of the whole process tree (cgroup)"
	GuaranteePids    Guarantee = "pids limit (cgroup)"
	GuaranteeCPU     Guarantee = "CPU weight in proportion to memory (cgroup)"
	GuaranteeFreezer Guarantee = "frozen between invocations (cgroup freezer)"
	// GuaranteeOutbound is asked for by --function-network pasta (see
	// CheckNetwork), not by a level.
	GuaranteeOutbound Guarantee = "outbound network through pasta (nothing inbound, nothing of the host's loopback)"
)

// Missing is a guarantee this machine cannot give, and why.
type Missing struct {
	Guarantee Guarantee
	Reason    string
}

func (m Missing) String() string { return string(m.Guarantee) + ": " + m.Reason }

func (g Guarantee) String() string { return string(g) }

// Check returns what this machine cannot give at level: nothing at Off.
// It probes for real (it starts a short-lived process in new namespaces
// and creates and removes a cgroup), so it takes a few milliseconds.
func Check(level Level) []Missing {
	if level == Off {
		return nil
	}
	var out []Missing
	if os.Geteuid() != 0 {
		// Mapping host uids other than one's own needs root (or setuid
		// newuidmap, which lambdad does not use).
		out = append(out, Missing{GuaranteeUID, "lambdad runs as uid " + fmt.Sprint(os.Geteuid()) + ", and only root can give each environment a uid of its own"})
	}
	if err := probeNamespaces(); err != nil {
		for _, g := range []Guarantee{GuaranteeUserNS, GuaranteePidNS, GuaranteeMountNS, GuaranteeNetNS, GuaranteeIPCUTS} {
			out = append(out, Missing{g, err.Error()})
		}
	}
	if err := probeSeccomp(); err != nil {
		out = append(out, Missing{GuaranteeSeccomp, err.Error()})
	}
	if level == Full {
		out = append(out, probeCgroups()...)
	}
	return out
}

// Report formats what Check found for a refusal to start.
func Report(level Level, missing []Missing) string {
	var b strings.Builder
	fmt.Fprintf(&b, "the sandbox (--sandbox=%s) cannot be set up on this machine; missing:\n", level)
	// A weaker level or no network is offered only when it would do
	// without everything that is missing.
	weaker, cgroup, network := true, false, false
	for _, m := range missing {
		fmt.Fprintf(&b, "  - %s\n", m)
		switch m.Guarantee {
		case GuaranteeMemory, GuaranteePids, GuaranteeCPU, GuaranteeFreezer:
			cgroup = true
		case GuaranteeOutbound:
			network = true
		default:
			weaker = false
		}
	}
	var fixes, without []string
	if cgroup {
		if level != Full {
			weaker = false
		}
		fixes, without = append(fixes, "--sandbox="+string(NoCgroup)), append(without, "the cgroup guarantees")
	}
	if network {
		fixes, without = append(fixes, "--function-network="+string(NetworkNone)), append(without, "network")
	}
	if weaker && len(fixes) > 0 {
		b.WriteString("start with " + strings.Join(fixes, " ") + " to run functions without " + strings.Join(without, " and ") + ", or ")
	} else {
		b.WriteString("start ")
	}
	b.WriteString("with --sandbox=off to run functions unsandboxed, as the server's user")
	return b.String()
}

// probeSeccomp checks that the kernel has seccomp filters.
func probeSeccomp() error {
	// PR_GET_SECCOMP fails with EINVAL without CONFIG_SECCOMP.
	if _, err := unix.PrctlRetInt(unix.PR_GET_SECCOMP, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("the kernel has no seccomp: %v", err)
	}
	return nil
}
