package index

import (
	"sync"

	badger "github.com/dgraph-io/badger/v4"
)

// Reads of records run on a snapshot: a Badger transaction at readTs, the
// commit timestamp up to which every transaction that changes record keys
// is applied. Group commits advance it as they are applied, before their
// writers are acknowledged (so a read sees every acknowledged write); the
// sealer's transactions, which run alone inside the committer, advance it
// once each is applied. A read therefore never sees half of a transaction:
// a block and the loose records it replaced, or neither. Transactions of
// other keys (checkpoints, metadata) take timestamps from the same counter
// and may be half-visible at readTs, which record reads never look at.
//
// Badger drops old versions of a key once they are below the discard
// timestamp, so it is kept at or below the oldest snapshot in use.

// snapshots counts the snapshots in use, by timestamp.
type snapshots struct {
	mu     sync.Mutex
	active map[uint64]int
}

// snapshot returns a read-only transaction at readTs and its release.
func (db *DB) snapshot() (*badger.Txn, func()) {
	s := &db.snaps
	s.mu.Lock()
	ts := db.readTs.Load()
	if s.active == nil {
		s.active = map[uint64]int{}
	}
	s.active[ts]++
	s.mu.Unlock()
	txn := db.bdb.NewTransactionAt(ts, false)
	return txn, func() {
		txn.Discard()
		s.mu.Lock()
		if s.active[ts]--; s.active[ts] == 0 {
			delete(s.active, ts)
		}
		s.mu.Unlock()
	}
}

// view runs fn in a snapshot.
func (db *DB) view(fn func(txn *badger.Txn) error) error {
	txn, release := db.snapshot()
	defer release()
	return fn(txn)
}

// discardBelow is the highest timestamp Badger may discard versions at or
// below: no snapshot in use, nor one taken later, reads below it.
func (db *DB) discardBelow() uint64 {
	s := &db.snaps
	s.mu.Lock()
	defer s.mu.Unlock()
	ts := db.readTs.Load()
	for a := range s.active {
		ts = min(ts, a)
	}
	return ts
}

// advanceReadTs raises readTs to ts (never lowers it).
func (db *DB) advanceReadTs(ts uint64) {
	for {
		cur := db.readTs.Load()
		if ts <= cur || db.readTs.CompareAndSwap(cur, ts) {
			return
		}
	}
}
