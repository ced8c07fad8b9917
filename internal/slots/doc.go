// Package slots holds cluster-wide counting semaphores ("pools") on etcd:
// at most limit slots of a pool are held across all nodes at any instant,
// under node crashes and network partitions, while the common acquisition
// never leaves the node.
//
// # Layout in etcd
//
// A pool named N lives under <prefix>/<escaped N>/ (the name is path-escaped
// so that one pool's keys can never fall under another's prefix):
//
//	s/<index>   one key per held slot, index 0..limit-1 zero-padded to 6
//	            digits, value the holder's node id, attached to the
//	            holder's session lease
//	w/<node>    "wanted": the node has an acquisition waiting for a slot,
//	            attached to its lease
//
// A slot key is created in a transaction that fails if the key exists and
// if any key at an index at or above the limit exists. Each node has one
// session lease; every key it writes is attached to it, so a node that dies
// loses all its slots when its lease expires. The invariant is checkable by
// reading etcd: the number of keys under s/ (equivalently, with the lease of
// each, the number per node) is the number of slots held.
//
// # Why the limit is never exceeded
//
// Distinct indices below the limit are distinct keys, so while no key at or
// above the limit exists at most limit keys exist. A node hands a slot to a
// caller only out of the keys it holds (its batch), and only while it
// counts fewer callers than keys, so the callers of the whole cluster never
// outnumber the keys. When the limit is lowered under held slots, keys at
// the old, higher indices remain: every node then stops handing out
// (its view of the pool shows a key at or above the limit), creating keys
// fails in etcd (the range comparison), idle slots at high indices are
// deleted, and busy ones are moved to free low indices (delete and create
// in one transaction, the count unchanged) as indices free up. Grants resume
// once no key at or above the limit remains, which is exactly when the
// slots held fall to the limit or below. A node's view of the pool comes
// from a watch and lags etcd, but after a lowering high keys only
// disappear, so the lag only delays grants. Nodes are expected to set the
// same limit; while a change propagates, a node still on the old, higher
// limit may grant under it.
//
// A slot is deleted only by its holder, in a transaction that checks that
// the key is still attached to the holder's lease, so a delayed delete can
// never remove a slot that another node has since taken.
//
// # Fencing: the bound under partition
//
// The node renews its lease with one keep-alive request at a time. A
// response to a request sent at time t (on the node's monotonic clock)
// proves that the server renewed the lease after t, so the lease cannot
// expire on the server before t + TTL. The node fences at
//
//	fenceAt = t_last + TTL − margin     (t_last: send time of the last
//	                                     answered keep-alive)
//
// A watchdog goroutine fences at fenceAt: it sets the flag TryAcquire
// reads (one atomic load: the hot path reads no clock, which here costs
// more than the rest of TryAcquire) and closes Fenced(). Acquire, which
// goes to etcd anyway, also compares the clock with fenceAt. Holders of
// slots must stop within margin of Fenced() closing: the lease, and with it
// the slots, can be taken over by other nodes only after t_last + TTL,
// which is at least margin after fenceAt. A watchdog scheduled late (a
// loaded machine; measured up to ~150 ms here under the race detector)
// takes its delay out of that margin, which is why the margin is a third of
// the TTL by default (3.3 s of 10 s). (The server's clock is assumed to run at the node's rate
// within a small fraction of margin; etcd renews every lease when a new
// leader is elected, which only lengthens it.) A fenced Node is finished:
// it admits nothing again; the server makes a new Node (a new lease) once
// etcd is back and its fenced invocations have stopped. A fenced node that
// can still reach etcd revokes its lease once its holders have released, so
// its slots return before the TTL.
//
// # Hot path and batches
//
// Each node keeps per pool a small batch of slots: TryAcquire takes one
// under a short mutex and never calls etcd. A background goroutine per pool
// refills the batch when its free part falls under a spare count (1 +
// in-use/8, refilled to twice that) and returns slots that stayed unused for
// a whole idle window (IdleAfter, default 150 ms) beyond that spare, and
// returns every idle slot at once when another node writes its wanted key.
// When no local slot is free, Acquire claims a free index in one
// transaction, or, when every index is held by other nodes, writes its
// wanted key and waits at most MaxWait (default 100 ms; plus one etcd round
// trip when a claim is already on its way: a claim cut short would leave its
// outcome unknown) for one to be returned (its watch wakes it), so a limit
// split over nodes still admits the whole limit at whichever node the load
// arrives. Acquire refuses (a throttle) only when the cluster holds limit
// slots and none was returned within MaxWait, and at once when this node
// holds all limit slots busy. While other nodes wait, a node holding more
// than its share of the limit (rounded up) sends released slots back to
// etcd instead of reusing them, so that callers who come back at once
// cannot keep every slot on one node.
package slots
