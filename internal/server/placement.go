package server

import (
	"cmp"
	"hash/fnv"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/lambdad/lambdad/internal/function"
	"github.com/lambdad/lambdad/internal/store"
)

// placement divides the provisioned environments of each target among the
// nodes of a cluster, and gives each event source mapping to one of them: the members are ranked by a hash of the target and
// each (rendezvous hashing), and of n environments over m nodes each keeps
// n/m, the first n%m in that rank one more. Every node computes the same
// division from the same members, so the shares add up to n, and each
// environment is counted once, by the admission of the node it runs on.
// When a node leaves, the others' shares grow at their next check (the
// provisioner's, every second) after its lease has expired; each node
// reports what it has up under the target, for the status the API shows.
type placement struct {
	db   *store.DB
	self string
	log  *slog.Logger

	mu      sync.Mutex
	members []string
	read    time.Time
	// reported is the last allocation this node published per target.
	reported map[string]int
}

// membersFresh is how long a reading of the members serves.
const membersFresh = time.Second

func newPlacement(db *store.DB, self string, log *slog.Logger) *placement {
	return &placement{db: db, self: self, log: log, reported: map[string]int{}}
}

func placementKey(fn function.Key, qualifier string) string {
	return "provisioned/" + fn.Account + "/" + fn.Name + "/" + qualifier
}

func (p *placement) currentMembers() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if time.Since(p.read) < membersFresh && p.members != nil {
		return p.members
	}
	m, err := p.db.Members()
	if err != nil {
		p.log.Warn("placement: the cluster's members cannot be read; the last reading serves", "err", err)
		return p.members
	}
	p.members = p.members[:0]
	for id := range m {
		p.members = append(p.members, id)
	}
	p.read = time.Now()
	return p.members
}

// rank is this node's place among the members in the order of key (-1
// when it is not a member: its lease is gone), and the number of members.
func (p *placement) rank(key string) (int, int) {
	members := p.currentMembers()
	type ranked struct {
		id   string
		hash uint64
	}
	order := make([]ranked, 0, len(members))
	for _, id := range members {
		h := fnv.New64a()
		h.Write([]byte(key + "\x00" + id))
		order = append(order, ranked{id, h.Sum64()})
	}
	slices.SortFunc(order, func(a, b ranked) int { return cmp.Or(cmp.Compare(a.hash, b.hash), cmp.Compare(a.id, b.id)) })
	for i, r := range order {
		if r.id == p.self {
			return i, len(order)
		}
	}
	return -1, len(order)
}

func (p *placement) Share(fn function.Key, qualifier string, n int) int {
	i, m := p.rank(placementKey(fn, qualifier))
	if i < 0 {
		// Not a member: it keeps nothing, the others keep it all.
		return 0
	}
	share := n / m
	if i < n%m {
		share++
	}
	return share
}

// ownsMapping reports whether this node is the one of the cluster that
// polls an event source mapping: the first in the mapping's order.
func (p *placement) ownsMapping(account, uuid string) bool {
	i, _ := p.rank("mapping/" + account + "/" + uuid)
	return i == 0
}

func (p *placement) Report(fn function.Key, qualifier string, allocated int) {
	key := placementKey(fn, qualifier)
	p.mu.Lock()
	defer p.mu.Unlock() // held across the write: reports of one target stay in order
	if last, ok := p.reported[key]; ok && last == allocated {
		return
	}
	v := ""
	if allocated > 0 {
		v = strconv.Itoa(allocated)
	}
	if err := p.db.SetNodeValue(key, v); err != nil {
		p.log.Warn("placement: this node's allocation cannot be published", "err", err)
		return
	}
	if allocated == 0 {
		delete(p.reported, key)
	} else {
		p.reported[key] = allocated
	}
}

func (p *placement) Total(fn function.Key, qualifier string) (int, error) {
	vals, err := p.db.NodeValues(placementKey(fn, qualifier))
	if err != nil {
		return 0, err
	}
	total := 0
	for _, v := range vals {
		n, _ := strconv.Atoi(v)
		total += n
	}
	return total, nil
}
