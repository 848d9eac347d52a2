package index

import (
	"bytes"
	"fmt"
	"slices"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/logmesh/logmesh/record"
)

// What a switch carries over (moveSlice, switchSlice).
//
// A move copies each run of a slice into the moved space from a snapshot;
// records written or deleted in the run after that snapshot (replication
// catching up, a repair, a removal) are not in the copy. The switch carries
// them over in its one transaction: for a run with a copy, only the keys
// changed since the copy's snapshot (the run's delta), each written into the
// moved space as a late write after the switch would be (a block there
// whose range holds a changed record goes back to loose records first, so
// the run keeps its rule); for a run without one, the whole run as it is.
// Carrying whole runs instead made a trickle of late records, one now and
// then in each of a slice's runs, keep the slice from ever moving: every
// round found every run changed again, and what was left for the switch
// never fitted a transaction.

// moveOp is one write of a switch into the moved space: a key set to value,
// or deleted.
type moveOp struct {
	key   []byte
	value []byte
	del   bool
}

// switchWork is what a switch of slice s of window w writes besides its
// markers.
type switchWork struct {
	whole    []record.Partition            // runs copied again as they are
	deltas   map[record.Partition][]moveOp // the changes of runs with a copy
	unsealed map[record.Partition]int      // records of moved blocks the deltas turn loose
	turned   int                           // those blocks
	size     int64                         // what it takes in a transaction, as Badger counts
	keys     int64
}

// runs is how many runs the switch changes in the moved space.
func (sw *switchWork) runs() int { return len(sw.whole) + len(sw.deltas) }

// planSwitch works out, from txn (a snapshot at or after every copy, or the
// committed state inside the committer), what switching slice s of window w
// writes: the runs changed after the listing at listTs and after their copy
// (copied: per partition), each as its delta or, without a copy, whole.
func planSwitch(txn *badger.Txn, w record.Window, s uint8, listTs uint64, copied map[record.Partition]runCopy) (switchWork, error) {
	sw := switchWork{deltas: map[record.Partition][]moveOp{}, unsealed: map[record.Partition]int{}}
	for p, v := range runVersionsSince(txn, slicePrefix(w, s), listTs) {
		c, ok := copied[p]
		if ok && v <= c.ts {
			continue
		}
		if ok {
			ops, n, blocks, whole, err := runDelta(txn, w, s, p, c.ts)
			if err != nil {
				return sw, err
			}
			if !whole {
				sw.deltas[p] = ops
				sw.unsealed[p] = n
				sw.turned += blocks
				for _, op := range ops {
					sw.size += entrySize(op.key, op.value)
					sw.keys++
				}
				continue
			}
		}
		sw.whole = append(sw.whole, p)
		// its keys in the moved space deleted, its loose records copied
		for _, at := range []uint8{s, s | movedSpace} {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: runPrefix(w, at, p), PrefetchValues: false})
			for it.Rewind(); it.Valid(); it.Next() {
				sw.keys++
				sw.size += entrySize(it.Item().Key(), nil)
				if at == s {
					sw.size += it.Item().ValueSize()
				}
			}
			it.Close()
		}
	}
	slices.Sort(sw.whole)
	return sw, nil
}

// runDelta lists the writes that carry the changes of partition p's run of
// slice s of window w made after ts into its copy in the moved space: first
// the moved blocks whose range holds a changed record, back to loose
// records, then each changed key's newest state. It returns how many
// records those blocks hold and how many they are, and whole set when the
// run must be copied again as it is instead (a block written in it after
// ts).
func runDelta(txn *badger.Txn, w record.Window, s uint8, p record.Partition, ts uint64) (ops []moveOp, unsealed, blocks int, whole bool, err error) {
	type change struct {
		key   []byte // in the moved space
		value []byte
		del   bool
	}
	var changes []change
	err = func() error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: runPrefix(w, s, p), SinceTs: ts, AllVersions: true})
		defer it.Close()
		var last []byte
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			if bytes.Equal(item.Key(), last) {
				continue // an older version: the newest comes first
			}
			last = item.KeyCopy(last[:0])
			k := bytes.Clone(last)
			k[5] |= movedSpace
			if item.IsDeletedOrExpired() {
				changes = append(changes, change{key: k, del: true})
				continue
			}
			if len(k) != recordKeyLen {
				whole = true
				return nil
			}
			v, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			changes = append(changes, change{key: k, value: v})
		}
		return nil
	}()
	if err != nil || whole {
		return nil, 0, 0, whole, err
	}
	at := make(map[string]int, len(changes)) // change by key
	for i, c := range changes {
		at[string(c.key)] = i
	}
	handled := make([]bool, len(changes)) // written with a block turned loose
	it := txn.NewIterator(badger.IteratorOptions{Prefix: runPrefix(w, s|movedSpace, p)})
	defer it.Close()
	turned := map[string]bool{} // moved blocks turned loose
	for i, c := range changes {
		if handled[i] {
			continue
		}
		it.Seek(c.key)
		var next []byte // the first key of the moved run at or after c.key
		if it.Valid() {
			next = it.Item().Key()
		}
		if len(c.key) == blockKeyLen {
			// a block of the loose run deleted since (a late record turned
			// it loose; its records are among the changes): so is its copy
			if bytes.Equal(next, c.key) && !turned[string(next)] {
				ops = append(ops, moveOp{key: c.key, del: true})
			}
			continue
		}
		if id, ok := idFromRecordKey(c.key); ok && next != nil && !turned[string(next)] {
			if first, last, ok := blockRange(next); ok && record.Compare(id, first) >= 0 && record.Compare(id, last) <= 0 {
				bk := it.Item().KeyCopy(nil)
				var blk decodedBlock
				if err := it.Item().Value(func(v []byte) error {
					var err error
					blk, err = blockRecords(bk, v, false)
					return err
				}); err != nil {
					return nil, 0, 0, false, fmt.Errorf("index: turn a moved block loose: %w", err)
				}
				turned[string(bk)] = true
				ops = append(ops, moveOp{key: bk, del: true})
				// its records go back loose, as the changes left them: one
				// deleted since is not written at all
				for j, rid := range blk.IDs {
					k := appendRunKey(nil, w, s|movedSpace, p, rid)
					v := blk.Data[j]
					if ci, ok := at[string(k)]; ok {
						handled[ci] = true
						if changes[ci].del {
							continue
						}
						v = changes[ci].value
					}
					ops = append(ops, moveOp{key: k, value: v})
				}
				unsealed += len(blk.IDs)
				if handled[i] {
					continue
				}
			}
		}
		switch {
		case !c.del:
			ops = append(ops, moveOp{key: c.key, value: c.value})
		case bytes.Equal(next, c.key):
			// deleted since, and loose in the copy (a move copies a run
			// into blocks only, so this is for safety: a record of the
			// copy is in a block, turned loose above without it)
			ops = append(ops, moveOp{key: c.key, del: true})
		}
	}
	return ops, unsealed, len(turned), false, nil
}

// writeMoveOps writes ops into the moved space, in order, in transactions of
// up to half what Badger takes in one; each notes the deletes to settle in
// the runs of cleared (settle.go). It runs inside the committer.
func (db *DB) writeMoveOps(ops []moveOp, cleared [][]byte, upgrade bool) error {
	maxBytes, maxCount := db.bdb.MaxBatchSize()/2, db.bdb.MaxBatchCount()/2
	for len(ops) > 0 {
		n, size := 0, int64(0)
		for n < len(ops) && (n == 0 || (size+entrySize(ops[n].key, ops[n].value) <= maxBytes && int64(n+8) < maxCount)) {
			size += entrySize(ops[n].key, ops[n].value)
			n++
		}
		chunk := ops[:n]
		ops = ops[n:]
		deletes := slices.ContainsFunc(chunk, func(op moveOp) bool { return op.del })
		err := db.updateRecords(func(txn *badger.Txn) error {
			if err := sealTxnStart(txn, upgrade); err != nil {
				return err
			}
			if deletes {
				if err := db.settleLater(txn, prefixRanges(cleared)); err != nil {
					return err
				}
			}
			for _, op := range chunk {
				var err error
				if op.del {
					err = txn.Delete(op.key)
				} else {
					err = txn.Set(op.key, op.value)
				}
				if err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}
