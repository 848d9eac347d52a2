package index

import (
	badger "github.com/dgraph-io/badger/v4"

	"github.com/logmesh/logmesh/record"
)

// newest lets remote writes skip the existence check for records that
// cannot be stored yet. IDs from one generator (one instance tag) only grow,
// so an ID above the largest stored ID with the same instance tag is new.
// It is used by the committer goroutine only.
//
// The check matters: replicated records are nearly always new, and a Badger
// lookup of a missing key can still decompress a table block.
type newest struct {
	// floor is at or above every ID stored when the DB opened.
	floor record.ID
	// bound holds, per instance tag, an ID at or above every stored ID
	// with that tag (never below floor).
	bound map[[6]byte]record.ID
}

func (n *newest) isNew(id record.ID) bool {
	b, ok := n.bound[instanceOf(id)]
	if !ok {
		b = n.floor
	}
	return record.Compare(id, b) > 0
}

func (n *newest) note(id record.ID) {
	inst := instanceOf(id)
	b, ok := n.bound[inst]
	if !ok {
		b = n.floor
	}
	if record.Compare(id, b) > 0 {
		n.bound[inst] = id
	} else if !ok {
		n.bound[inst] = b
	}
}

func instanceOf(id record.ID) (inst [6]byte) {
	copy(inst[:], id[6:12])
	return inst
}

// loadNewest finds the largest stored ID: the last key of each partition of
// the newest window with records. A window the digests still list may hold
// none (every record of it deleted): the search goes on to the one before,
// or every resent record would pass for new and count twice in the digests.
func (db *DB) loadNewest() error {
	db.newest.bound = map[[6]byte]record.ID{}
	ws := db.AllWindows()
	return db.bdb.View(func(txn *badger.Txn) error {
		for i := len(ws) - 1; i >= 0; i-- {
			if found := db.newestIn(txn, ws[i]); found {
				return nil
			}
		}
		return nil
	})
}

// newestIn raises the floor to the largest ID stored in window w, and
// reports whether w holds any record.
func (db *DB) newestIn(txn *badger.Txn, w record.Window) bool {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: windowPrefix(w), Reverse: true})
	defer it.Close()
	// slices are time-ordered: the newest record is in the last slice
	// with records, at the end of one of its partition runs
	// (a reverse Rewind with a prefix seeks to the prefix itself)
	// The loose space and the moved one (moved.go) are each looked at: a
	// record may be in either, or in both while its slice is being moved or
	// its loose records wait to be dropped (a floor too high costs only
	// duplicate checks).
	found := false
	for _, top := range []uint8{uint8(slicesPerWindow - 1), movedSpace | uint8(slicesPerWindow-1)} {
		it.Seek(append(slicePrefix(w, top), sliceEnd...)) // before the markers
		if !it.Valid() || len(it.Item().Key()) < 6 {
			continue
		}
		s := sliceOfKey(it.Item().Key())
		if s&movedSpace != top&movedSpace {
			continue // nothing in this space
		}
		found = true
		for p := 0; p < record.NumPartitions; p++ {
			it.Seek(appendRunKey(nil, w, s, record.Partition(p), record.MaxID(1<<48-1)))
			if !it.Valid() {
				continue
			}
			if id, ok := lastIDOfKey(it.Item().Key()); ok && record.Compare(id, db.newest.floor) > 0 {
				db.newest.floor = id
			}
		}
	}
	return found
}
