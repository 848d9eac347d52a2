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
// them over: for a run with a copy, only the keys changed since the copy's
// snapshot (the run's delta); for a run without one, the whole run as it is.
// A moved block whose range holds changed records is re-encoded with them
// (as one block, or several if they outgrow it), so the run keeps its rule (no loose
// record inside a block's range) and the slice stays sealed; changes outside
// every block's range go in loose, for the next pass. The blocks are encoded
// before the switch, beside the writes, and the switch inside the committer
// encodes again only those whose changes changed meanwhile.
//
// Carrying whole runs instead made a trickle of late records, one now and
// then in each of a slice's runs, keep the slice from ever moving: every
// round found every run changed again, and what was left for the switch
// never fitted a transaction. Turning the blocks with changes back into
// loose records instead of re-encoding them left up to 1 024 loose records
// per changed block in the moved space, for the next pass to seal again in
// place with a tombstone each, and held the writes off longer
// (BenchmarkMoveBesideATrickle).

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
	whole   []record.Partition            // runs copied again as they are
	deltas  map[record.Partition][]moveOp // the changes of runs with a copy
	merged  int                           // moved blocks the deltas re-encode with their changes
	added   int                           // records those take in that no block held
	encoded int                           // of the merged blocks, those encoded by this plan
	size    int64                         // what it takes in transactions, as Badger counts
	keys    int64
}

// runs is how many runs the switch changes in the moved space.
func (sw *switchWork) runs() int { return len(sw.whole) + len(sw.deltas) }

// planSwitch works out, from txn (a snapshot at or after every copy, or the
// committed state inside the committer), what switching slice s of window w
// writes: the runs changed after the listing at listTs and after their copy
// (copied: per partition), each as its delta or, without a copy, whole.
// With merges nil it only sizes the blocks the deltas re-encode (runDelta).
func (db *DB) planSwitch(txn *badger.Txn, w record.Window, s uint8, listTs uint64, copied map[record.Partition]runCopy, merges mergeCache) (switchWork, error) {
	sw := switchWork{deltas: map[record.Partition][]moveOp{}}
	for p, v := range runVersionsSince(txn, slicePrefix(w, s), listTs) {
		c, ok := copied[p]
		if ok && v <= c.ts {
			continue
		}
		if ok {
			d, err := db.runDelta(txn, w, s, p, c.ts, merges)
			if err != nil {
				return sw, err
			}
			if !d.whole {
				sw.deltas[p] = d.ops
				sw.merged += d.merged
				sw.added += d.added
				sw.encoded += d.encoded
				sw.size += d.size
				sw.keys += d.keys
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
// slice s of window w made after ts into its copy in the moved space: each
// moved block whose range holds a changed record re-encoded with the changes
// of its range (as more than one block if they took in more than a block
// holds), then each other changed key's newest state. With merges nil it
// only sizes the blocks it would re-encode (their old size and the changes'
// values); otherwise it encodes them, reusing those of merges whose changes
// are still the same (before decoding anything), and notes each in merges. whole is set
// when the run must be copied again as it is instead (a block written in it
// after ts).
func (db *DB) runDelta(txn *badger.Txn, w record.Window, s uint8, p record.Partition, ts uint64, merges mergeCache) (d runDeltaPlan, err error) {
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
				d.whole = true
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
	if err != nil || d.whole {
		return runDeltaPlan{whole: d.whole}, err
	}
	handled := make([]bool, len(changes)) // written with a block merged
	it := txn.NewIterator(badger.IteratorOptions{Prefix: runPrefix(w, s|movedSpace, p)})
	defer it.Close()
	done := map[string]bool{} // moved blocks merged
	add := func(op moveOp, size int64) {
		d.ops = append(d.ops, op)
		d.size += size
		d.keys++
	}
	set := func(k, v []byte) { add(moveOp{key: k, value: v}, entrySize(k, v)) }
	del := func(k []byte) { add(moveOp{key: k, del: true}, entrySize(k, nil)) }
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
			if bytes.Equal(next, c.key) && !done[string(next)] {
				del(c.key)
			}
			continue
		}
		if id, ok := idFromRecordKey(c.key); ok && next != nil && !done[string(next)] {
			if first, last, ok := blockRange(next); ok && record.Compare(id, first) >= 0 && record.Compare(id, last) <= 0 {
				bk := it.Item().KeyCopy(nil)
				done[string(bk)] = true
				// the changes of its range: from c on, up to its last record
				end := appendRunKey(nil, w, s|movedSpace, p, last)
				var in []change
				for j := i; j < len(changes) && bytes.Compare(changes[j].key[:recordKeyLen], end) <= 0; j++ {
					if len(changes[j].key) == recordKeyLen {
						in = append(in, changes[j])
						handled[j] = true
					}
				}
				if m, ok := merges[string(bk)]; ok && sameChanges(m.changes, in) {
					d.write(bk, m) // encoded before the switch, and nothing changed since
					continue
				}
				oldSize := it.Item().ValueSize()
				var blk decodedBlock
				if err := it.Item().Value(func(v []byte) error {
					var err error
					blk, err = blockRecords(bk, v, false)
					return err
				}); err != nil {
					return runDeltaPlan{}, fmt.Errorf("index: merge changes into a moved block: %w", err)
				}
				recs, added := mergeBlock(blk, in)
				m := mergedBlock{changes: in, added: added}
				if merges == nil {
					// sized only: its old size and the changes' values, in
					// as many blocks as it will take
					m.blocks = make([]keyValue, len(db.cutBlocks(recs)))
					for k := range m.blocks {
						m.blocks[k].key = bk // as long as a block key
					}
					m.sized = oldSize
					for _, c := range in {
						m.sized += int64(len(c.value))
					}
				} else {
					for _, g := range db.cutBlocks(recs) {
						v, err := writeBlock(nil, g)
						if err != nil {
							return runDeltaPlan{}, fmt.Errorf("index: merge changes into moved block %x: %w", bk, err)
						}
						m.blocks = append(m.blocks, keyValue{key: appendBlockKey(nil, w, s|movedSpace, p, g[0].ID, g[len(g)-1].ID), value: v})
					}
					merges[string(bk)] = m
					d.encoded++
				}
				d.write(bk, m)
				continue
			}
		}
		switch {
		case !c.del:
			set(c.key, c.value)
		case bytes.Equal(next, c.key):
			// deleted since, and loose in the copy (a move copies loose
			// the records too few for a block, Config.SealMinRecords)
			del(c.key)
		}
	}
	return d, nil
}

// change is the newest state, after a copy's snapshot, of a key of a run
// (key in the moved space).
type change struct {
	key   []byte
	value []byte
	del   bool
}

// runDeltaPlan is what carrying a run's changes over writes (runDelta).
type runDeltaPlan struct {
	ops        []moveOp
	size, keys int64 // what ops take in transactions, as Badger counts (blocks not yet encoded: their old size and the changes' values)
	merged     int   // moved blocks re-encoded with the changes of their range
	encoded    int   // of those, encoded here (not taken from merges)
	added      int   // records those took in that no block held
	whole      bool  // copy the run again as it is instead
}

// keyValue is a key and its value.
type keyValue struct{ key, value []byte }

// mergedBlock is a moved block re-encoded with the changes of its range
// (runDelta), as the blocks that replace it (none when the changes deleted
// every record; more than one when they took in more than a block holds):
// kept from a plan outside the committer so that the switch inside it
// reuses the encoding while the block's changes are still the same.
type mergedBlock struct {
	changes []change
	blocks  []keyValue
	added   int   // records it took in that the block did not hold
	sized   int64 // when only sized (blocks without values): what their values take
}

// mergeCache holds merged blocks by the key of the block they replace.
type mergeCache map[string]mergedBlock

// write adds the writes that replace moved block bk with m's blocks.
func (d *runDeltaPlan) write(bk []byte, m mergedBlock) {
	d.merged++
	d.added += m.added
	if !slices.ContainsFunc(m.blocks, func(b keyValue) bool { return bytes.Equal(b.key, bk) }) {
		d.ops = append(d.ops, moveOp{key: bk, del: true})
		d.size += entrySize(bk, nil)
		d.keys++
	}
	for _, b := range m.blocks {
		d.ops = append(d.ops, moveOp{key: b.key, value: b.value})
		d.size += entrySize(b.key, b.value)
		d.keys++
	}
	d.size += m.sized
}

// cutBlocks cuts recs (in ID order) into blocks as the sealer does (planRun):
// at most SealBlockRecords records each, evened out, and no more than a block
// may hold (blockFits; a single record always makes a block).
func (db *DB) cutBlocks(recs []blockRecord) [][]blockRecord {
	if len(recs) == 0 {
		return nil
	}
	per := max(db.cfg.SealBlockRecords, 1)
	n := (len(recs) + per - 1) / per
	per = min((len(recs)+n-1)/n, maxBlockRecords, int(db.bdb.MaxBatchCount()/4))
	maxBytes := db.bdb.MaxBatchSize() / 4
	var out [][]blockRecord
	for i := 0; i < len(recs); {
		j, size := i, int64(0)
		for j < len(recs) {
			rs := int64(recordKeyLen+len(recs[j].Data)) + 12 // entrySize
			if j > i && (j-i >= per || size+rs > maxBytes) {
				break
			}
			size += rs
			j++
		}
		out = append(out, recs[i:j])
		i = j
	}
	return out
}

// sameChanges reports whether a and b are the same changes.
func sameChanges(a, b []change) bool {
	return slices.EqualFunc(a, b, func(x, y change) bool {
		return x.del == y.del && bytes.Equal(x.key, y.key) && bytes.Equal(x.value, y.value)
	})
}

// mergeBlock returns blk's records with the changes of its range in (record
// keys, in key order): a record set is added or replaced, one deleted
// removed. added is how many it adds that blk did not hold.
func mergeBlock(blk decodedBlock, in []change) (recs []blockRecord, added int) {
	recs = make([]blockRecord, 0, len(blk.IDs)+len(in))
	i := 0
	for _, c := range in {
		id, _ := idFromRecordKey(c.key)
		for i < len(blk.IDs) && record.Compare(blk.IDs[i], id) < 0 {
			recs = append(recs, blockRecord{ID: blk.IDs[i], Data: blk.Data[i]})
			i++
		}
		held := i < len(blk.IDs) && blk.IDs[i] == id
		if held {
			i++
		}
		if c.del {
			continue
		}
		if !held {
			added++
		}
		recs = append(recs, blockRecord{ID: id, Data: c.value})
	}
	for ; i < len(blk.IDs); i++ {
		recs = append(recs, blockRecord{ID: blk.IDs[i], Data: blk.Data[i]})
	}
	return recs, added
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
