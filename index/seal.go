package index

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/logmesh/logmesh/record"
)

// Sealed runs (store format 2, read side).
//
// A partition's run in a slice may hold blocks (block.go) besides loose
// records: a block replaces the loose records first..last of the run with
// one entry keyed at its last record (appendBlockKey). Two rules keep every
// reader simple: no loose record of a run lies inside the range of one of
// its blocks, and the blocks of a run do not overlap. Then a run read in key
// order yields its records in ID order, a forward seek to an ID lands on the
// block that may hold it, and the last key of a run names its newest record.
//
// A window that holds blocks carries a marker key (windowPrefix, then the
// slice byte blocksMarker), written with its first block and dropped with
// the window. Readers ask mayHaveBlocks where a block costs them a
// different path: a reverse seek to an ID in the middle of a run misses the
// block that straddles it, so in such a window a reverse read starts at the
// end of the run instead.
//
// The sealer (sealPass, every Config.SealInterval) seals the windows that
// ended Config.SealAfter ago, a batch of partition runs at a time: it reads
// and encodes them from a snapshot beside the writes (planSeal), then writes
// the blocks inside the committer, so no write or delete runs beside that
// (applySeal), unless a run changed after the snapshot. A record that arrives
// later inside a block's range, and a delete of a record in a block, turn
// that block back into loose records in the same transaction
// (builder.unseal); the next pass seals the run again. The first block
// marks the store format 4 (keys.go), which a logmesh that cannot read blocks,
// or would seal without naming the slice in its marker, refuses.

// blocksMarker is the slice byte of a window's blocks marker: no slice has it.
const blocksMarker = 0xff

func blocksMarkerKey(w record.Window) []byte { return append(windowPrefix(w), blocksMarker) }

// allSlices is the slice set of a window whose marker does not say which of
// its slices hold blocks (written before markers named them): all may.
const allSlices = ^uint64(0)

// blockWindows is, per window that may hold blocks, the set of its slices
// that may (bit s for slice s). A write into a slice that never held a block
// needs no look for the block that might cover its record, which is what
// keeps writes into the current slice as cheap as in a window without blocks
// while the window's older slices are sealed.
type blockWindows struct {
	mu sync.RWMutex
	m  map[record.Window]uint64
	// marked is, per window, the set its committed marker names: m may go
	// ahead of it (a slice is noted before its first block is written, and
	// stays noted if that transaction fails), so the sealer writes a
	// marker whenever the slice is missing here, not in m
	marked map[record.Window]uint64
}

// mayHaveBlocks reports whether any slice of window w may hold blocks.
func (db *DB) mayHaveBlocks(w record.Window) bool {
	db.blocks.mu.RLock()
	defer db.blocks.mu.RUnlock()
	return db.blocks.m[w] != 0
}

// sliceMayHaveBlocks reports whether slice s of window w may hold blocks.
func (db *DB) sliceMayHaveBlocks(w record.Window, s uint8) bool {
	db.blocks.mu.RLock()
	defer db.blocks.mu.RUnlock()
	return db.blocks.m[w]&sliceBit(s) != 0
}

// idMayBeInBlock reports whether the slice the record id belongs in may
// hold blocks.
func (db *DB) idMayBeInBlock(id record.ID) bool {
	return db.sliceMayHaveBlocks(id.Window(), sliceOf(id.Millis()))
}

func sliceBit(s uint8) uint64 {
	if int(s) >= 64 {
		return 0
	}
	return 1 << s
}

// noteBlocks adds the slices of set to window w's.
func (db *DB) noteBlocks(w record.Window, set uint64) {
	db.blocks.mu.Lock()
	defer db.blocks.mu.Unlock()
	if db.blocks.m == nil {
		db.blocks.m = map[record.Window]uint64{}
	}
	db.blocks.m[w] |= set
}

// moveBeforeSwitch, set by tests only, runs between writing a move's
// blocks and switching its slice (moveSlice).
var moveBeforeSwitch func(w record.Window, s uint8)

// moveListing, set by tests only, runs when a move has held its slice off
// the cuts and is about to list it (moveSlice).
var moveListing func(w record.Window, s uint8)

// switchPlanned, set by tests only, runs after a move encoded the blocks its
// switch re-encodes with their changes, before the switch.
var switchPlanned func(w record.Window, s uint8)

// sealTxnFault, set by tests only, fails a seal transaction when it
// returns an error (as a full disk would).
var sealTxnFault func() error

// sealTxnStart begins every transaction that writes blocks or switches a
// slice: the test fault, then, when upgrade is set (the stored format is
// older), the format mark. The store then holds blocks with slice markers
// and moved slices: a logmesh that cannot read them (or would seal without
// naming its slices) refuses it.
func sealTxnStart(txn *badger.Txn, upgrade bool) error {
	if sealTxnFault != nil {
		if err := sealTxnFault(); err != nil {
			return err
		}
	}
	if !upgrade {
		return nil
	}
	return txn.Set(metaKey(metaFormat), []byte(strconv.Itoa(formatVersion)))
}

// markedSlices is the set window w's committed marker names.
func (db *DB) markedSlices(w record.Window) uint64 {
	db.blocks.mu.RLock()
	defer db.blocks.mu.RUnlock()
	return db.blocks.marked[w]
}

// noteMarked records that window w's committed marker names set.
func (db *DB) noteMarked(w record.Window, set uint64) {
	db.blocks.mu.Lock()
	defer db.blocks.mu.Unlock()
	if db.blocks.marked == nil {
		db.blocks.marked = map[record.Window]uint64{}
	}
	db.blocks.marked[w] = set
}

// markerSlices decodes a blocks marker's value: the set of slices that may
// hold blocks, 8 bytes big endian; an empty value (a store sealed before
// markers named slices) stands for all of them.
func markerSlices(v []byte) uint64 {
	if len(v) != 8 {
		return allSlices
	}
	return binary.BigEndian.Uint64(v)
}

// loadBlockWindows reads the windows' blocks markers.
func (db *DB) loadBlockWindows() error {
	loaded := map[record.Window]moved{} // published at once: noting one slice at a time copies the map each time
	defer db.changeMoved(func(m map[record.Window]movedWindow) {
		for w, set := range loaded {
			mw := m[w]
			mw.set |= set
			for s := range slicesPerWindow {
				if set&moved(sliceBit(uint8(s))) != 0 {
					mw.at[s] = 1 // every snapshot finds it; its loose records may not be dropped yet
				}
			}
			mw.latest = max(mw.latest, 1)
			m[w] = mw
		}
	})
	return db.bdb.View(func(txn *badger.Txn) error {
		for _, w := range recordWindows(txn) {
			item, err := txn.Get(movesMarkerKey(w))
			switch {
			case err == nil:
				if err := item.Value(func(v []byte) error {
					set, ok := movedMarkerSet(v)
					if !ok {
						return fmt.Errorf("index: window %d: moved marker of %d bytes", w, len(v))
					}
					loaded[w] = set
					return nil
				}); err != nil {
					return err
				}
			case !errors.Is(err, badger.ErrKeyNotFound):
				return err
			}
			item, err = txn.Get(blocksMarkerKey(w))
			if errors.Is(err, badger.ErrKeyNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if err := item.Value(func(v []byte) error {
				db.noteBlocks(w, markerSlices(v))
				db.noteMarked(w, markerSlices(v))
				return nil
			}); err != nil {
				return err
			}
		}
		return nil
	})
}

// findInRun looks id up, in a window whose moved slices are m, with a
// forward iterator positioned anywhere: the
// first key at or after id's key is either id's own or the block that may
// hold it. It calls fn with the record's encoding and reports whether it
// was found.
func findInRun(it *badger.Iterator, m moved, id record.ID, fn func(data []byte) error) (bool, error) {
	key := recordKeyIn(m, id)
	it.Seek(key)
	if !it.Valid() {
		return false, nil
	}
	item := it.Item()
	k := item.Key()
	if bytes.Equal(k, key) {
		return true, item.Value(fn)
	}
	first, last, ok := blockRange(k)
	if !ok || !bytes.HasPrefix(k, runOfKey(key)) ||
		record.Compare(id, first) < 0 || record.Compare(id, last) > 0 {
		return false, nil
	}
	var data []byte
	err := item.Value(func(v []byte) error {
		b, err := decodeBlock(v)
		if err != nil {
			return fmt.Errorf("block %x: %w", k, err)
		}
		if i, found := slices.BinarySearchFunc(b.IDs, id, record.Compare); found {
			data = b.Data[i]
		}
		return nil
	})
	if err != nil || data == nil {
		return false, err
	}
	return true, fn(data)
}

// blockRecords decodes the block of key k (value v) and returns its records
// in scan order (reverse: newest first).
func blockRecords(k, v []byte, reverse bool) (decodedBlock, error) {
	return blockRecordsFor(k, v, reverse, nil)
}

// blockRecordsFor is blockRecords for a scan that keeps only records holding
// word: the others have no Data (decodeBlockFor).
func blockRecordsFor(k, v []byte, reverse bool, word []byte) (decodedBlock, error) {
	b, err := decodeBlockFor(v, word)
	if err != nil {
		return b, fmt.Errorf("index: block %x: %w", k, err)
	}
	if reverse {
		slices.Reverse(b.IDs)
		slices.Reverse(b.Data)
	}
	return b, nil
}

// runUnit is a record stored loose or a block, in a run's key order.
type runUnit struct {
	key   []byte
	recs  []blockRecord // one for a loose record
	loose bool
}

// bytes is what the unit's records take as loose entries of a transaction.
func (u runUnit) bytes() int64 {
	var n int64
	for _, r := range u.recs {
		n += entrySize(u.key[:recordKeyLen], r.Data)
	}
	return n
}

// sealRun seals partition p's run in slice s of window w: its loose records
// and its blocks, taken in key order, are cut into groups of at most per
// records (a block is never split; one larger than per stays as it is), and
// every group that is not already a single block becomes one block, in a
// transaction that deletes what it replaces. Groups are contiguous in key
// order, so the run keeps its rule (no loose record inside a block's range,
// no overlapping blocks) after every transaction: a crash between two
// leaves a correct run. limit, when set, stops after that many loose
// records (the newer ones stay loose). It returns how many records it
// moved into new blocks, and must not run beside writes or deletes of the
// same run (the sealer plans outside the committer and applies inside it,
// sealRuns).
func (db *DB) sealRun(w record.Window, s uint8, p record.Partition, per, limit int) (int, error) {
	txn, release := db.snapshot()
	defer release()
	at := db.movedIn(txn.ReadTs(), w).at(s)
	plan, err := db.planRun(txn, w, at, at, p, per, limit)
	if err != nil {
		return 0, err
	}
	return db.applySeal(plan)
}

// sealGroup is one block a seal writes and the run's entries it replaces,
// or, with loose set, loose records a move copies into the moved space as
// they are (too few for a block of their own, Config.SealMinRecords; no
// first, last nor blk).
type sealGroup struct {
	units       []runUnit
	first, last record.ID
	blk         []byte
	loose       bool
}

// movedKeys returns the keys a loose group's records take under slice byte
// to (the moved space), in order.
func (g *sealGroup) movedKeys(to uint8) [][]byte {
	keys := make([][]byte, len(g.units))
	for i, u := range g.units {
		k := bytes.Clone(u.key)
		k[5] = to
		keys[i] = k
	}
	return keys
}

// size returns what writing the group under slice byte to takes in a
// transaction, as Badger counts, and how many keys.
func (g *sealGroup) size(w record.Window, to uint8, p record.Partition) (int64, int64) {
	if !g.loose {
		return entrySize(appendBlockKey(nil, w, to, p, g.first, g.last), g.blk), 1
	}
	var n int64
	for _, u := range g.units {
		n += u.bytes() // its key in the moved space is as long
	}
	return n, int64(len(g.units))
}

// sealPlan is the sealing of one run, read and encoded from a snapshot.
type sealPlan struct {
	w  record.Window
	s  uint8 // slice byte of the run read
	to uint8 // slice byte the blocks go under: s, or s|movedSpace for a move
	p  record.Partition
	ts uint64 // the snapshot's timestamp
	// applied: the blocks are written (applySeals)
	applied bool
	// replace: the run's keys in the moved space are deleted before its
	// first block is written there (a run copied again)
	replace bool
	groups  []sealGroup
}

// moving reports whether the plan copies its run into the moved space
// (moved.go) instead of sealing it in place.
func (plan *sealPlan) moving() bool { return plan.to != plan.s }

// planSeal reads partition p's run in slice s of window w from txn (a
// snapshot) and encodes the blocks that sealing it in place writes
// (sealRun). It writes nothing, so it runs beside writes.
func (db *DB) planSeal(txn *badger.Txn, w record.Window, s uint8, p record.Partition, per, limit int) (sealPlan, error) {
	return db.planRun(txn, w, s, s, p, per, limit)
}

// planRun reads partition p's run under slice byte s of window w from txn
// and encodes its blocks, to be written under slice byte to: s to seal it in
// place, s|movedSpace to move it, when every record of the run goes into
// a block, one that is a block already too. Loose records between blocks (or
// alone) too few for a block of their own (Config.SealMinRecords) stay
// loose: in place they are left as they are; a move copies them loose.
func (db *DB) planRun(txn *badger.Txn, w record.Window, s, to uint8, p record.Partition, per, limit int) (sealPlan, error) {
	plan := sealPlan{w: w, s: s, to: to, p: p, ts: txn.ReadTs()}
	if per < 1 {
		return plan, fmt.Errorf("index: seal: %d records per block", per)
	}
	var units []runUnit
	err := func() error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: runPrefix(w, s, p)})
		defer it.Close()
		loose := 0
		for it.Rewind(); it.Valid() && (limit == 0 || loose < limit); it.Next() {
			item := it.Item()
			k := item.KeyCopy(nil)
			if id, ok := idFromRecordKey(k); ok {
				v, err := item.ValueCopy(nil)
				if err != nil {
					return err
				}
				units = append(units, runUnit{key: k, recs: []blockRecord{{ID: id, Data: v}}, loose: true})
				loose++
				continue
			}
			if _, _, ok := blockRange(k); !ok {
				continue
			}
			var recs []blockRecord
			err := item.Value(func(v []byte) error {
				b, err := blockRecords(k, v, false)
				for i, id := range b.IDs {
					recs = append(recs, blockRecord{ID: id, Data: b.Data[i]})
				}
				return err
			})
			if err != nil {
				return err // a damaged block is the scrub's to delete, not the sealer's to rewrite
			}
			units = append(units, runUnit{key: k, recs: recs})
		}
		return nil
	}()
	if err != nil {
		return plan, fmt.Errorf("index: seal window %d slice %d partition %d: %w", w, s, p, err)
	}
	// a block must fit, as loose records, in one transaction beside a few
	// others: an unseal writes all of them back at once
	maxBytes, maxCount := db.bdb.MaxBatchSize()/4, int(db.bdb.MaxBatchCount()/4)
	per = min(per, maxCount)
	fewest := min(db.cfg.SealMinRecords, per)
	for i := 0; i < len(units); {
		j, n, size := i, 0, int64(0)
		for j < len(units) {
			us := units[j].bytes()
			if j > i && (n+len(units[j].recs) > per || size+us > maxBytes) {
				break
			}
			n += len(units[j].recs)
			size += us
			j++
		}
		group := units[i:j]
		i = j
		if len(group) == 1 && !group[0].loose && !plan.moving() {
			continue // a block already, alone
		}
		if n < fewest && !slices.ContainsFunc(group, func(u runUnit) bool { return !u.loose }) {
			// loose records too few for a block: they stay loose
			if plan.moving() {
				plan.groups = append(plan.groups, sealGroup{units: group, loose: true})
			}
			continue
		}
		var recs []blockRecord
		for _, u := range group {
			recs = append(recs, u.recs...)
		}
		blk, err := writeBlock(nil, recs)
		if err != nil {
			return plan, err
		}
		plan.groups = append(plan.groups, sealGroup{units: group, first: recs[0].ID, last: recs[len(recs)-1].ID, blk: blk})
	}
	return plan, nil
}

// applySeal writes a plan's blocks (applySeals).
func (db *DB) applySeal(plan sealPlan) (int, error) { return db.applySeals([]sealPlan{plan}) }

// applySeals writes the blocks of plans, skipping a plan that seals in place
// whose run changed after its snapshot (a late record, a delete, an
// unseal): that run is planned again by the next pass. It packs the groups of several runs into
// one transaction, up to half of what Badger takes in one (a group alone
// takes at most a quarter, planSeal), so that the writes it holds off wait
// for one commit per few thousand records rather than one per block; a
// group is never split between transactions, so a crash between two leaves
// every run correct. It must run inside the committer, and the plans'
// snapshots must still be held (so that no version the check looks for has
// been discarded). It returns how many records it moved into blocks.
func (db *DB) applySeals(plans []sealPlan) (int, error) {
	maxBytes, maxCount := db.bdb.MaxBatchSize()/2, db.bdb.MaxBatchCount()/2
	type pending struct {
		plan  *sealPlan
		group *sealGroup
		stale [][]byte // keys of the run to delete first (a plan's first group, replace)
	}
	var (
		txnGroups         []pending
		txnBytes, txnKeys int64
		moved             int
	)
	commit := func() error {
		if len(txnGroups) == 0 {
			return nil
		}
		// what is committed decides what this transaction must write; a
		// failed one leaves it unchanged, so the next writes it again
		upgrade := db.storedFormat.Load() < formatVersion
		markers := map[record.Window]uint64{} // the markers this transaction writes
		for _, g := range txnGroups {
			if g.plan.moving() {
				continue // the switch marks the slice (switchSlice)
			}
			w, s := g.plan.w, g.plan.s&^movedSpace
			if db.markedSlices(w)&sliceBit(s) == 0 {
				if _, ok := markers[w]; !ok {
					markers[w] = db.markedSlices(w)
				}
				markers[w] |= sliceBit(s)
			}
			db.noteBlocks(w, sliceBit(s)) // before any reader or writer can meet the block
		}
		err := db.updateRecords(func(txn *badger.Txn) error {
			if err := sealTxnStart(txn, upgrade); err != nil {
				return err
			}
			for w, set := range markers {
				// the sealer alone writes markers, inside the committer
				if err := txn.Set(blocksMarkerKey(w), binary.BigEndian.AppendUint64(nil, set)); err != nil {
					return err
				}
			}
			var runs [][]byte // the runs it deletes in
			for i, g := range txnGroups {
				if !g.plan.moving() && (i == 0 || g.plan != txnGroups[i-1].plan) {
					runs = append(runs, runPrefix(g.plan.w, g.plan.s, g.plan.p))
				}
				if len(g.stale) > 0 {
					runs = append(runs, runPrefix(g.plan.w, g.plan.to, g.plan.p))
				}
			}
			if err := db.settleLater(txn, prefixRanges(runs)); err != nil {
				return err
			}
			for _, g := range txnGroups {
				for _, k := range g.stale {
					if err := txn.Delete(k); err != nil {
						return err
					}
				}
				p := g.plan
				if !p.moving() {
					// a move leaves the loose records to be dropped whole
					for _, u := range g.group.units {
						if err := txn.Delete(u.key); err != nil {
							return err
						}
					}
				}
				if g.group.loose {
					for i, k := range g.group.movedKeys(p.to) {
						if err := txn.Set(k, g.group.units[i].recs[0].Data); err != nil {
							return err
						}
					}
					continue
				}
				if err := txn.Set(appendBlockKey(nil, p.w, p.to, p.p, g.group.first, g.group.last), g.group.blk); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			p := txnGroups[0].plan
			return fmt.Errorf("index: seal window %d slice %d partition %d: %w", p.w, p.s, p.p, err)
		}
		if upgrade {
			db.storedFormat.Store(formatVersion)
		}
		for w, set := range markers {
			db.noteMarked(w, set)
		}
		for _, g := range txnGroups {
			if g.group.loose {
				continue // copied loose: no block
			}
			n := 0
			for _, u := range g.group.units {
				n += len(u.recs)
			}
			db.stats.blocksWritten.Add(1)
			if !g.plan.moving() { // a move's count as sealed at its switch
				db.stats.recordsSealed.Add(uint64(n))
			}
			moved += n
		}
		txnGroups, txnBytes, txnKeys = txnGroups[:0], 0, 0
		return nil
	}
	for i := range plans {
		plan := &plans[i]
		if len(plan.groups) == 0 {
			continue
		}
		if !plan.moving() && db.changedSince(runPrefix(plan.w, plan.s, plan.p), plan.ts) {
			// (a move's copy stays right as of its snapshot: its switch
			// carries over what changed after it, switch.go)
			db.stats.sealsRetried.Add(1)
			continue
		}
		if !plan.moving() {
			db.capture.touchedRun(plan.w, plan.s, plan.p)
		}
		plan.applied = true // once every transaction below commits (else applySeals fails)
		var stale [][]byte
		if plan.replace {
			// what the run has in the moved space, committed (inside the
			// committer nothing is in flight)
			rtxn := db.bdb.NewTransactionAt(readAll, false)
			_, err := eachKey(rtxn, runPrefix(plan.w, plan.to, plan.p), false, func(k []byte, _ *badger.Item) error {
				stale = append(stale, k)
				return nil
			})
			rtxn.Discard()
			if err != nil {
				return moved, err
			}
		}
		for j := range plan.groups {
			g := &plan.groups[j]
			size, keys := g.size(plan.w, plan.to, plan.p)
			if j == 0 {
				for _, k := range stale {
					size += entrySize(k, nil)
					keys++
				}
			}
			for _, u := range g.units {
				if !plan.moving() {
					size += entrySize(u.key, nil)
					keys++
				}
			}
			if len(txnGroups) > 0 && (txnBytes+size > maxBytes || txnKeys+keys > maxCount) {
				if err := commit(); err != nil {
					return moved, err
				}
			}
			pg := pending{plan: plan, group: g}
			if j == 0 {
				pg.stale = stale
			}
			txnGroups = append(txnGroups, pg)
			txnBytes += size
			txnKeys += keys
		}
	}
	return moved, commit()
}

// changedSince reports whether any key under prefix was written or deleted
// at a timestamp above ts. Inside the committer nothing is in flight, so
// every such write is seen.
func (db *DB) changedSince(prefix []byte, ts uint64) bool {
	txn := db.bdb.NewTransactionAt(readAll, false)
	defer txn.Discard()
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, SinceTs: ts, AllVersions: true})
	defer it.Close()
	it.Rewind()
	return it.Valid()
}

// sealBatchRecords bounds the loose records one turn of the sealer seals
// inside the committer, while writes wait.
const sealBatchRecords = 16384

// sealPass seals every live window that ended Config.SealAfter ago and still
// holds loose records, and the minute slices of younger windows that ended
// Config.SealAfter ago. It returns ErrClosed once the DB closes.
func (db *DB) sealPass() error {
	defer db.sealPasses.Add(1)
	if !db.space.writable.Load() {
		// a move holds a slice twice until its drop: not while writes are
		// refused for lack of space (maintenance still drops)
		return nil
	}
	now, ok := db.retentionNow()
	if !ok {
		now = db.cfg.Now()
	}
	limit := now.UnixMilli() - db.cfg.SealAfter.Milliseconds() // slices that ended by then are sealed
	for _, w := range db.AllWindows() {
		if !db.space.writable.Load() {
			return nil // (the check above, again: a pass may take long)
		}
		if w < db.cutoff() || sliceStart(w, 0)+SliceMillis > limit {
			continue
		}
		if w.End() > limit {
			// the window is still being written: seal the slices that
			// ended, from the first not sealed yet; late records in them
			// wait for the pass after the window ends
			to := uint8((limit - w.Start()) / SliceMillis)
			from := db.sealedSlices[w]
			if from >= to {
				continue
			}
			if err := db.sealWindow(w, from, to); err != nil {
				if errors.Is(err, ErrClosed) || db.closed.Load() {
					return ErrClosed
				}
				db.cfg.Logger.Warn("sealer: cannot seal a window's slices; the next pass tries again", "window", w, "err", err)
				continue
			}
			db.sealedSlices[w] = to
			continue
		}
		// a window sealed whole and not written since is not read again
		// (every write and delete moves its generation; an unseal comes
		// with one)
		gen := db.windowGen(w)
		if g, ok := db.sealedGen[w]; ok && g == gen {
			continue
		}
		if err := db.sealWindow(w, 0, uint8(slicesPerWindow)); err != nil {
			if errors.Is(err, ErrClosed) || db.closed.Load() {
				return ErrClosed
			}
			db.cfg.Logger.Warn("sealer: cannot seal a window; the next pass tries again", "window", w, "err", err)
			continue
		}
		db.sealedGen[w] = gen
		delete(db.sealedSlices, w)
	}
	dropped := func(w record.Window) bool { return w < db.cutoff() }
	maps.DeleteFunc(db.sealedGen, func(w record.Window, _ uint64) bool { return dropped(w) })
	maps.DeleteFunc(db.sealedSlices, func(w record.Window, _ uint8) bool { return dropped(w) })
	return nil
}

// looseRuns lists the runs of slices from..to-1 of window w that hold loose
// records where writers put them now (the moved space of a moved slice),
// and how many: run[0] is the slice byte, run[1] the partition.
func (db *DB) looseRuns(w record.Window, from, to uint8) (runs [][2]int, counts []int, err error) {
	mv := db.movedNow(w)
	err = db.bdb.View(func(txn *badger.Txn) error {
		runs, counts = listRuns(txn, w, from, to, mv.at, false)
		return nil
	})
	return runs, counts, err
}

// lateRuns lists the loose runs of the slices from..to-1 of window w that
// are moved already (records that arrived after their move), and how many.
// A slice not moved yet is listed by its move, at the move's snapshot:
// listing it here too read every key of it once more (a profile of the
// sealer beside sustained writes had 6% of the process's CPU in that).
func (db *DB) lateRuns(w record.Window, from, to uint8) (runs [][2]int, counts []int, err error) {
	mv := db.movedNow(w)
	err = db.bdb.View(func(txn *badger.Txn) error {
		for s := from; s < to; s++ {
			if mv&moved(sliceBit(s)) == 0 {
				continue
			}
			r, c := listRuns(txn, w, s, s+1, mv.at, false)
			runs, counts = append(runs, r...), append(counts, c...)
		}
		return nil
	})
	return runs, counts, err
}

// listRuns lists, for each slice s of from..to-1 of window w, the runs under
// slice byte at(s) that hold loose records (and, with blocks, those that
// hold blocks: a block counts as blockWeight records), and how many.
func listRuns(txn *badger.Txn, w record.Window, from, to uint8, at func(uint8) uint8, blocks bool) (runs [][2]int, counts []int) {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: windowPrefix(w), PrefetchValues: false})
	defer it.Close()
	for s := from; s < to; s++ {
		prefix := slicePrefix(w, at(s))
		for it.Seek(prefix); it.Valid() && bytes.HasPrefix(it.Item().Key(), prefix); it.Next() {
			k := it.Item().Key()
			n := 1
			if len(k) != recordKeyLen {
				if !blocks {
					continue
				}
				n = blockWeight
			}
			run := [2]int{int(sliceOfKey(k)), int(k[6])<<8 | int(k[7])}
			if i := len(runs); i > 0 && runs[i-1] == run {
				counts[i-1] += n
				continue
			}
			runs, counts = append(runs, run), append(counts, n)
		}
	}
	return runs, counts
}

// blockWeight is what a block counts for in a batch of runs to move.
const blockWeight = 256

// sealWindow seals slices from..to-1 of window w: a slice not moved yet is
// moved (moveSlices), a batch of runs at a time; the late records of a
// slice moved already are sealed in place, in the moved space.
func (db *DB) sealWindow(w record.Window, from, to uint8) error {
	start := time.Now()
	blocksBefore, sealedBefore := db.stats.blocksWritten.Load(), db.stats.recordsSealed.Load()
	mv := db.movedNow(w)
	var toMove []uint8
	for s := from; s < to; s++ {
		if mv&moved(sliceBit(s)) == 0 {
			toMove = append(toMove, s)
		}
	}
	late, lateCounts, err := db.lateRuns(w, from, to) // all in the moved space
	if err != nil {
		return err
	}
	var held time.Duration
	if len(late) > 0 {
		if _, held, err = db.sealRuns(w, late, lateCounts, sealInPlace); err != nil {
			return err
		}
	}
	moves := 0
	if len(toMove) > 0 {
		h, n, err := db.moveSlices(w, toMove)
		held += h
		moves = n
		if err != nil {
			return err
		}
	}
	if sealed := db.stats.recordsSealed.Load() - sealedBefore; sealed > 0 || moves > 0 {
		db.cfg.Logger.Info("sealed a window into blocks", "window", w, "start", time.UnixMilli(w.Start()).UTC(),
			"records", sealed, "blocks", db.stats.blocksWritten.Load()-blocksBefore, "slices_moved", moves,
			"took", time.Since(start).Round(time.Millisecond), "writes_held", held.Round(time.Millisecond))
	}
	return nil
}

// moveSlices moves the slices of window w listed (none of them moved yet)
// that hold records, one after the other: it writes each run's records as
// blocks into the moved space, a batch of runs at a time (sealRuns), copies
// again the runs that changed meanwhile, then switches the slice over in one
// transaction (switchSlice). It returns how long it held the writes off and
// how many slices it switched.
func (db *DB) moveSlices(w record.Window, list []uint8) (time.Duration, int, error) {
	// what an earlier move left in the moved space (a crash, a failed
	// switch) is stale: no reader looks there yet; but not the blocks cut
	// from memory of a slice still captured (capture.go)
	unlock := db.capture.lockCuts()
	held, err := db.clearMoveSpace(w, slices.DeleteFunc(slices.Clone(list), func(s uint8) bool { return db.capture.valid(sliceRef{w, s}) }))
	unlock()
	if err != nil {
		return held, 0, err
	}
	n := 0
	for _, s := range list {
		h, moved, err := db.moveSlice(w, s)
		held += h
		if moved {
			n++
		}
		if err != nil {
			// leave no copies on the disk until the next move
			if h, cerr := db.clearMoveSpace(w, []uint8{s}); cerr == nil {
				held += h
			}
			return held, n, err
		}
	}
	return held, n, nil
}

// errNoSpaceToMove: the store refuses writes for lack of space, and a move
// would hold a slice twice until its drop.
var errNoSpaceToMove = errors.New("index: the store refuses writes for lack of space: no slice is moved")

// moveSlice moves slice s of window w (moveSlices), and reports whether it
// switched it (not if it holds no records).
func (db *DB) moveSlice(w record.Window, s uint8) (time.Duration, bool, error) {
	// the listing's snapshot is held until the switch: it keeps
	// allowDiscard below listTs, so every version that says a run changed
	// after its copy (a delete's tombstone among them) is still there when
	// the switch looks for it
	// a copy left out for a window dropped meanwhile (sealTurn, writeCuts)
	// is not written: if the cutoff then moved back, the switch would
	// read a moved space without it. A cutoff that only rose since here and
	// is at or below w at the switch was so at every copy.
	backs := db.cutoffBacks.Load()
	db.capture.holdSlice(sliceRef{w, s}) // no copy of this slice in flight, nor any later
	if moveListing != nil {
		moveListing(w, s)
	}
	txn, release := db.snapshot()
	defer release()
	listTs := txn.ReadTs()
	runs, counts := listRuns(txn, w, s, s+1, func(s uint8) uint8 { return s }, true)
	got, back, whole := db.capture.finish(sliceRef{w, s}, listTs, runs, counts)
	if len(runs) == 0 {
		return 0, false, nil // (copies the capture cut are cleared by the next move)
	}
	var held time.Duration
	copied, h, err := db.copyRuns(w, s, listTs, runs, counts, got, back, whole)
	held += h
	if err != nil {
		return held, false, err
	}
	if moveBeforeSwitch != nil {
		moveBeforeSwitch(w, s)
	}
	// while what the switch would carry over does not fit a transaction
	// well, the runs that changed since their copy are copied again as
	// blocks, beside the writes
	fits := false
	for round := 0; ; round++ {
		rr, cc, size, keys, err := db.changedRuns(w, s, listTs, copied)
		if err != nil {
			return held, false, err
		}
		if fits = size <= switchBudget*db.bdb.MaxBatchSize() && keys <= switchBudget*db.bdb.MaxBatchCount(); fits || round == switchRounds {
			break
		}
		again, h, err := db.sealRuns(w, rr, cc, sealRecopy)
		held += h
		if err != nil {
			return held, false, err
		}
		maps.Copy(copied, again[s])
	}
	if !fits {
		db.stats.sealsRetried.Add(1)
		return held, false, fmt.Errorf("index: window %d slice %d changes faster than it is copied; the next pass moves it", w, s)
	}
	if !db.space.writable.Load() {
		return held, false, errNoSpaceToMove
	}
	// the moved blocks the switch re-encodes with their changes are
	// encoded here, beside the writes; the switch encodes again only those
	// whose changes changed meanwhile
	merges := mergeCache{}
	if err := db.bdb.View(func(txn *badger.Txn) error {
		_, err := db.planSwitch(txn, w, s, listTs, copied, merges)
		return err
	}); err != nil {
		return held, false, fmt.Errorf("index: window %d slice %d: plan the switch: %w", w, s, err)
	}
	if switchPlanned != nil {
		switchPlanned(w, s)
	}
	t0 := time.Now()
	err = db.inCommitter(func() error { return db.switchSlice(w, s, listTs, backs, copied, merges) })
	held += time.Since(t0)
	db.stats.sealHeld.Add(int64(time.Since(t0)))
	if errors.Is(err, errExpiredMeanwhile) {
		return held, false, nil // retention drops the window and its copies
	}
	return held, err == nil, err
}

// errExpiredMeanwhile: the window of a slice being moved passed the
// retention cutoff before its switch, which is not made.
var errExpiredMeanwhile = errors.New("index: the window expired during the move")

// copyRuns copies the runs of slice s of window w listed at listTs into the
// moved space as blocks: those the capture held (got) from memory, the rest
// (back, or all of them when whole) read back from the store. It returns
// the copy of each run and how long it held the writes off.
func (db *DB) copyRuns(w record.Window, s uint8, listTs uint64, runs [][2]int, counts []int, got map[record.Partition]capturedRun, back []record.Partition, whole bool) (map[record.Partition]runCopy, time.Duration, error) {
	var held time.Duration
	if whole {
		if db.capture != nil {
			// copies of a capture that turned out wrong
			h, err := db.clearMoveSpace(w, []uint8{s})
			held += h
			if err != nil {
				return nil, held, err
			}
		}
		all, h, err := db.sealRuns(w, runs, counts, sealMove)
		held += h
		db.stats.runsReadBack.Add(uint64(len(runs)))
		copied := all[s]
		if copied == nil {
			copied = map[record.Partition]runCopy{}
		}
		return copied, held, err
	}
	copied := map[record.Partition]runCopy{}
	plans := make([]sealPlan, 0, len(got))
	for _, p := range slices.Sorted(maps.Keys(got)) {
		run := got[p]
		plan, err := db.capturedPlan(w, s, p, listTs, run.recs)
		if err != nil {
			return copied, held, err
		}
		plans = append(plans, plan)
	}
	h, err := db.writeSealPlans(plans)
	held += h
	if err != nil {
		return copied, held, err
	}
	for _, p := range slices.Sorted(maps.Keys(got)) {
		copied[p] = runCopy{ts: listTs, records: got[p].cut + len(got[p].recs)}
	}
	db.stats.runsFromMemory.Add(uint64(len(got)))
	if len(back) > 0 {
		var bruns [][2]int
		var bcounts []int
		for i, r := range runs {
			if slices.Contains(back, record.Partition(r[1])) {
				bruns, bcounts = append(bruns, r), append(bcounts, counts[i])
			}
		}
		// their copies, if the capture cut any, are replaced
		all, h, err := db.sealRuns(w, bruns, bcounts, sealRecopy)
		held += h
		if err != nil {
			return copied, held, err
		}
		maps.Copy(copied, all[s])
		db.stats.runsReadBack.Add(uint64(len(bruns)))
	}
	return copied, held, nil
}

// switchRounds bounds the rounds that copy again, before a switch, the runs
// of a slice that changed since their copy, until what the switch writes
// (switch.go), holding the writes off meanwhile, takes at most switchBudget
// times what Badger takes in one transaction.
const switchRounds = 3

// switchBudget: see switchRounds.
const switchBudget = 4

// changedRuns lists the runs of slice s of window w (loose space) that
// changed since their copy (copied: per partition; one not there since the
// listing at listTs), with their records now, and what carrying their
// changes over takes in the switch's transaction (planSwitch): bytes and
// keys.
func (db *DB) changedRuns(w record.Window, s uint8, listTs uint64, copied map[record.Partition]runCopy) (runs [][2]int, counts []int, size, keys int64, err error) {
	err = db.bdb.View(func(txn *badger.Txn) error {
		sw, err := db.planSwitch(txn, w, s, listTs, copied, nil)
		if err != nil || sw.runs() == 0 {
			return err
		}
		size, keys = sw.size, sw.keys
		all, allCounts := listRuns(txn, w, s, s+1, func(s uint8) uint8 { return s }, true)
		for i, r := range all {
			p := record.Partition(r[1])
			if _, ok := sw.deltas[p]; ok || slices.Contains(sw.whole, p) {
				runs, counts = append(runs, r), append(counts, allCounts[i])
			}
		}
		return nil
	})
	return runs, counts, size, keys, err
}

// runVersionsSince returns, per partition run under prefix (a slice), the
// newest version above ts of any of its keys, deletes included.
func runVersionsSince(txn *badger.Txn, prefix []byte, ts uint64) map[record.Partition]uint64 {
	out := map[record.Partition]uint64{}
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, SinceTs: ts, AllVersions: true, PrefetchValues: false})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		if k := it.Item().Key(); len(k) >= 8 {
			p := record.Partition(binary.BigEndian.Uint16(k[6:8]))
			out[p] = max(out[p], it.Item().Version())
		}
	}
	return out
}

// inCommitter runs fn inside the committer, with no write in flight, and
// returns its error (ErrClosed if the DB closes first).
func (db *DB) inCommitter(fn func() error) error {
	done := make(chan error, 1)
	select {
	case db.exclCh <- func() { done <- fn() }:
	case <-db.ctx.Done():
		return ErrClosed
	}
	return <-done
}

// prefixesWithKeys lists those of the record prefixes (keys.go) under which
// the store holds a key.
func (db *DB) prefixesWithKeys(candidates [][]byte) ([][]byte, error) {
	var out [][]byte
	err := db.bdb.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixRecord}, PrefetchValues: false})
		defer it.Close()
		for _, prefix := range candidates {
			if it.Seek(prefix); it.Valid() && bytes.HasPrefix(it.Item().Key(), prefix) {
				out = append(out, prefix)
			}
		}
		return nil
	})
	return out, err
}

// dropInCommitter drops every key under prefixes with DropPrefix, which
// blocks writes while it runs, so inside the committer (after check, if
// given, returns nil there). No value-log collection may run meanwhile: one
// that read a dropped key as live would write it back after the drop, with
// nothing to hide it. Unless wait is set, it returns errCollecting at once
// while a collection runs.
func (db *DB) dropInCommitter(prefixes [][]byte, wait bool, check func() error) error {
	return db.inCommitter(func() error {
		if check != nil {
			if err := check(); err != nil {
				return err
			}
		}
		if wait {
			db.collecting.RLock()
		} else if !db.collecting.TryRLock() {
			return errCollecting
		}
		defer db.collecting.RUnlock()
		defer db.wrote()
		return db.dropPrefix(prefixes)
	})
}

// dropPrefix runs Badger's DropPrefix, counting the drop and how long it
// held the writes: it refuses every write while it flushes the memtables,
// waits for the compactions running to end and rewrites the tables that
// straddle a prefix.
func (db *DB) dropPrefix(prefixes [][]byte) error {
	t0 := time.Now()
	err := db.bdb.DropPrefix(prefixes...)
	db.stats.drops.Add(1)
	db.stats.dropNanos.Add(int64(time.Since(t0)))
	return err
}

// clearMoveSpace drops whatever the moved space of the listed slices of
// window w holds (none of them is moved, so no reader looks there).
func (db *DB) clearMoveSpace(w record.Window, list []uint8) (time.Duration, error) {
	candidates := make([][]byte, 0, len(list))
	for _, s := range list {
		candidates = append(candidates, slicePrefix(w, s|movedSpace))
	}
	prefixes, err := db.prefixesWithKeys(candidates)
	if err != nil || len(prefixes) == 0 {
		return 0, err
	}
	t0 := time.Now()
	// a collection running holds the drop off for all of its rewrite: the next pass
	err = db.dropInCommitter(prefixes, false, func() error {
		if db.movedNow(w)&moved(movedSetOf(prefixes)) != 0 {
			return fmt.Errorf("index: window %d: a slice to clear is moved", w)
		}
		// a capture begun since (the window dropped by retention and
		// written again) counts blocks this drops: read the slice back
		for _, p := range prefixes {
			db.capture.breakSlice(sliceRef{w, sliceOfKey(p) &^ movedSpace})
		}
		return nil
	})
	if err != nil {
		return time.Since(t0), fmt.Errorf("index: window %d: clear the moved space: %w", w, err)
	}
	db.cfg.Logger.Info("sealer: dropped the copies an unfinished move left", "window", w, "slices", len(prefixes))
	return time.Since(t0), nil
}

// movedSetOf is the set of slices of slice prefixes.
func movedSetOf(prefixes [][]byte) uint64 {
	var set uint64
	for _, p := range prefixes {
		set |= sliceBit(sliceOfKey(p) &^ movedSpace)
	}
	return set
}

// switchSlice switches slice s of window w over to the moved space, inside
// the committer. copied holds, per partition, the timestamp of the snapshot
// its blocks were read from (runs not there were not copied). What changed
// in a run after its copy's snapshot is carried over in the same
// transaction that writes the moved marker (switch.go): a run's delta, or,
// for a run without a copy that changed after the listing at listTs, the
// whole run verbatim. From its commit on, readers at or after it read the
// moved space, which then holds the slice exactly. backs is the count of
// the cutoff's moves back when the move began: a move it missed is not
// switched (moveSlice).
func (db *DB) switchSlice(w record.Window, s uint8, listTs, backs uint64, copied map[record.Partition]runCopy, merges mergeCache) error {
	if w < db.cutoff() {
		return errExpiredMeanwhile
	}
	if db.cutoffBacks.Load() != backs {
		return fmt.Errorf("index: window %d slice %d: the retention cutoff moved back during its move; the next pass moves it", w, s)
	}
	rtxn := db.bdb.NewTransactionAt(readAll, false)
	defer rtxn.Discard()
	sw, err := db.planSwitch(rtxn, w, s, listTs, copied, merges)
	if err != nil {
		return fmt.Errorf("index: switch window %d slice %d to its blocks: %w", w, s, err)
	}
	// the writes into the moved space go in transactions of their own
	// before the one that switches: nothing reads the moved space before
	// it, and nothing else writes while the committer runs this
	var ops []moveOp
	var cleared [][]byte // the moved runs it deletes in
	for _, p := range sw.whole {
		dst := runPrefix(w, s|movedSpace, p)
		n, err := eachKey(rtxn, dst, false, func(k []byte, _ *badger.Item) error {
			ops = append(ops, moveOp{key: k, del: true})
			return nil
		})
		if err != nil {
			return fmt.Errorf("index: switch window %d slice %d to its blocks: %w", w, s, err)
		}
		if n > 0 {
			cleared = append(cleared, dst)
		}
		if _, err := eachKey(rtxn, runPrefix(w, s, p), true, func(k []byte, item *badger.Item) error {
			v, err := item.ValueCopy(nil)
			k[5] |= movedSpace
			ops = append(ops, moveOp{key: k, value: v})
			return err
		}); err != nil {
			return fmt.Errorf("index: switch window %d slice %d to its blocks: %w", w, s, err)
		}
	}
	for _, p := range slices.Sorted(maps.Keys(sw.deltas)) {
		deletes := false
		for _, op := range sw.deltas[p] {
			deletes = deletes || op.del
		}
		if deletes {
			cleared = append(cleared, runPrefix(w, s|movedSpace, p))
		}
		ops = append(ops, sw.deltas[p]...)
	}
	upgrade := db.storedFormat.Load() < formatVersion
	if err := db.writeMoveOps(ops, cleared, upgrade); err != nil {
		return fmt.Errorf("index: switch window %d slice %d to its blocks: %w", w, s, err)
	}
	bit := sliceBit(s)
	marked := db.markedSlices(w) | bit
	db.noteBlocks(w, bit) // before any reader or writer can meet the moved blocks
	ts, err := db.commitWith(func(txn *badger.Txn) error {
		if err := sealTxnStart(txn, upgrade); err != nil {
			return err
		}
		if err := txn.Set(blocksMarkerKey(w), binary.BigEndian.AppendUint64(nil, marked)); err != nil {
			return err
		}
		return txn.Set(movesMarkerKey(w), movedMarkerValue(db.movedNow(w)|moved(bit)))
	})
	if err == nil {
		// before readTs passes the switch: a snapshot at or after it finds
		// the slice moved
		db.noteMoved(w, s, ts)
		db.noteMarked(w, marked)
		if upgrade {
			db.storedFormat.Store(formatVersion)
		}
		db.stats.slicesMoved.Add(1)
		db.stats.movedRecopied.Add(uint64(sw.runs()))
		db.stats.movedWhole.Add(uint64(len(sw.whole)))
		db.stats.blocksMerged.Add(uint64(sw.merged))
		db.stats.mergedInCommitter.Add(uint64(sw.encoded))
		// its blocks are now what readers read: the records they took
		// loose count as sealed (not those of runs copied again whole
		// here), and so do the late records the deltas merged into blocks
		n := sw.added
		for p, c := range copied {
			if !slices.Contains(sw.whole, p) {
				n += c.records
			}
		}
		db.stats.recordsSealed.Add(uint64(n))
	}
	db.advanceReadTs(ts)
	if err != nil {
		return fmt.Errorf("index: switch window %d slice %d to its blocks: %w", w, s, err)
	}
	return nil
}

// eachKey calls fn with a copy of every key under prefix in txn (and its
// item, with values when values is set), and returns how many.
func eachKey(txn *badger.Txn, prefix []byte, values bool, fn func(k []byte, item *badger.Item) error) (int, error) {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: values})
	defer it.Close()
	n := 0
	for it.Rewind(); it.Valid(); it.Next() {
		n++
		if err := fn(it.Item().KeyCopy(nil), it.Item()); err != nil {
			return n, err
		}
	}
	return n, nil
}

// runCopy is a run's copy into the moved space: the timestamp of the
// snapshot it was read from, and how many records its blocks hold.
type runCopy struct {
	ts      uint64
	records int
}

// records is how many records the plan's blocks hold that were loose (those
// of blocks it copies were counted sealed when those were written).
func (plan *sealPlan) records() int {
	n := 0
	for _, g := range plan.groups {
		if g.loose {
			continue // copied loose: not sealed
		}
		for _, u := range g.units {
			if u.loose {
				n += len(u.recs)
			}
		}
	}
	return n
}

// sealMode says where sealRuns writes a run's blocks.
type sealMode int

const (
	sealInPlace sealMode = iota // in the run's own space, deleting what they replace
	sealMove                    // into the moved space, empty for the run (moveSlices)
	sealRecopy                  // into the moved space, replacing what the run has there
)

// sealRuns seals runs of window w (slice byte, partition), a batch at a time
// inside the committer, as mode says. It returns, for a move, the snapshot
// timestamp of each run copied (by slice and partition), and how long it
// held the writes off.
func (db *DB) sealRuns(w record.Window, runs [][2]int, counts []int, mode sealMode) (map[uint8]map[record.Partition]runCopy, time.Duration, error) {
	copied := map[uint8]map[record.Partition]runCopy{}
	var held time.Duration // how long writes waited for the sealer
	var batches [][][2]int
	for i := 0; i < len(runs); {
		j, n := i, 0
		for j < len(runs) && (j == i || n+counts[j] <= sealBatchRecords) {
			n += counts[j]
			j++
		}
		batches = append(batches, runs[i:j])
		i = j
	}
	// a batch is read and encoded beside the writes, from a snapshot held
	// until its blocks are written; only writing them holds the writes off.
	// The next batch is read while this one waits for the committer and is
	// written: its runs are others, and a run changed meanwhile is still
	// caught by applySeals.
	next := make(chan sealBatch, 1)
	planning := false
	planNext := func(i int) {
		if i >= len(batches) {
			return
		}
		planning = true
		go func() { next <- db.planBatch(w, batches[i], mode) }()
	}
	defer func() {
		if planning { // an early return: wait for the reader and let go of its snapshot
			b := <-next
			b.release()
		}
	}()
	planNext(0)
	for i := range batches {
		cur := <-next
		planning = false
		if cur.err != nil {
			cur.release()
			return copied, held, cur.err
		}
		if mode != sealInPlace && !db.space.writable.Load() {
			cur.release()
			return copied, held, errNoSpaceToMove
		}
		planNext(i + 1)
		hold, err := db.sealTurn(cur.plans) // how long this turn held the writes off
		held += hold
		cur.release()
		if err != nil {
			return copied, held, err
		}
		for _, p := range cur.plans {
			if p.applied && p.moving() {
				s := p.s &^ movedSpace
				if copied[s] == nil {
					copied[s] = map[record.Partition]runCopy{}
				}
				copied[s][p.p] = runCopy{ts: p.ts, records: p.records()}
			}
		}
		// writes waited while the blocks were written: give them at least
		// as long (not as long as this turn waited in line: the writes
		// went on meanwhile)
		if !sleepCtx(db.ctx, max(10*time.Millisecond, hold)) {
			return copied, held, ErrClosed
		}
	}
	return copied, held, nil
}

// sealTurn writes the blocks of plans inside the committer (applySeals),
// leaving out those of windows dropped meanwhile, and returns how long it
// held the writes off.
func (db *DB) sealTurn(plans []sealPlan) (time.Duration, error) {
	var hold time.Duration
	done := make(chan error, 1)
	select {
	case db.exclCh <- func() {
		t0 := time.Now()
		cutoff := db.cutoff()
		for i := range plans {
			if plans[i].w < cutoff {
				plans[i].groups = nil // dropped meanwhile: nothing to write
			}
		}
		_, err := db.applySeals(plans)
		hold = time.Since(t0)
		db.stats.sealHeld.Add(int64(hold))
		done <- err
	}:
	case <-db.ctx.Done():
		return 0, ErrClosed
	}
	err := <-done
	return hold, err
}

// writeSealPlans writes the blocks of plans (encoded already) inside the
// committer, a turn of at most sealBatchRecords records at a time, giving
// the writes after each turn at least as long as it held them off, and
// returns how long it held them in all.
func (db *DB) writeSealPlans(plans []sealPlan) (time.Duration, error) {
	var held time.Duration
	for i := 0; i < len(plans); {
		j, n := i, 0
		for j < len(plans) && (j == i || n+plans[j].blocked() <= sealBatchRecords) {
			n += plans[j].blocked()
			j++
		}
		if !db.space.writable.Load() {
			return held, errNoSpaceToMove
		}
		hold, err := db.sealTurn(plans[i:j])
		held += hold
		if err != nil {
			return held, err
		}
		i = j
		if !sleepCtx(db.ctx, max(10*time.Millisecond, hold)) {
			return held, ErrClosed
		}
	}
	return held, nil
}

// blocked is how many records the plan's groups hold.
func (plan *sealPlan) blocked() int {
	n := 0
	for _, g := range plan.groups {
		for _, u := range g.units {
			n += len(u.recs)
		}
	}
	return n
}

// sealBatch is a batch of runs read and encoded from one snapshot, which
// release lets go of.
type sealBatch struct {
	plans   []sealPlan
	release func()
	err     error
}

// planBatch reads and encodes the runs of window w in batch (pairs of slice
// byte and partition) from one snapshot (planRun), as mode says.
func (db *DB) planBatch(w record.Window, batch [][2]int, mode sealMode) sealBatch {
	txn, release := db.snapshot()
	b := sealBatch{plans: make([]sealPlan, 0, len(batch)), release: release}
	for _, r := range batch {
		s, to := uint8(r[0]), uint8(r[0])
		if mode != sealInPlace {
			to |= movedSpace
		}
		plan, err := db.planRun(txn, w, s, to, record.Partition(r[1]), db.cfg.SealBlockRecords, 0)
		if err != nil {
			b.err = err
			return b
		}
		plan.replace = mode == sealRecopy
		b.plans = append(b.plans, plan)
	}
	return b
}

// sleepCtx sleeps d unless ctx ends first, and reports whether it slept.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
