// Package replicate pushes the records a peer receives to the other owners
// of their partitions, and knows exactly what it has not delivered yet.
//
// There is no separate hint queue: the store's journal (the append-ordered
// log of every commit) is the queue, and each target peer has a durable
// cursor into it. A target's goroutine reads journal entries after its
// cursor, picks the locally received records the target owns (in the
// placement of the moment), pushes them in one binary batch and advances the
// cursor once the target has made them durable. Cursors survive restarts of
// either side and outages of any length; nothing expires.
//
// What a cursor cannot cover is a debt: when this peer starts tracking a
// target afresh (the target is new, or came back after losing its place in
// the placement) or stops queueing for it (its backlog outgrew
// MaxHintsBytes), the records of the target's partitions that this peer
// already held may be missing there. A debt names those partitions; it is
// settled by anti-entropy (package repair pushes them) and until then it
// counts as undelivered everywhere: in the backlog, in the delivered-through
// time published in gossip, in what queries read from this peer, and in
// what a graceful leave waits for.
//
// A record is delivered to an owner only when the cursor passed it while
// pushing under the current placement: a cursor that passed a record when
// the owner did not own it yet proves nothing (see Replicator.Copies and
// the deletion of hints).
package replicate
