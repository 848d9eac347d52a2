package index

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/logmesh/logmesh/record"
)

// Maintain runs retention, journal pruning and value-log garbage collection
// once. It runs periodically on its own; tests and tools may call it.
func (db *DB) Maintain() {
	log := db.cfg.Logger
	// the loose records of moved slices are dropped first, and even when
	// the disk is nearly full: dropping frees space
	if db.dropMovedDue() {
		if err := db.dropMoved(false); err != nil {
			log.Error("dropping the loose records of moved slices failed; the next maintenance tries again", "err", err)
		}
	}
	if !db.space.backgroundOK() {
		log.Warn("maintenance skipped: disk nearly full", "free_bytes", db.space.free.Load())
		return
	}
	db.allowDiscard()
	if err := db.expire(); err != nil {
		log.Error("retention failed", "err", err)
	}
	db.checkpoint(log)
	if err := db.pruneJournal(); err != nil {
		log.Error("journal pruning failed", "err", err)
	}
	for i := 0; i < 16 && db.ctx.Err() == nil; i++ { // rewrite until nothing is worth it
		err := db.collectValueLog(0.5)
		if errors.Is(err, badger.ErrNoRewrite) || errors.Is(err, badger.ErrRejected) {
			break // nothing worth rewriting, or another collection runs
		}
		db.wrote() // a collection rewrote live values through the log
		if err != nil {
			log.Warn("value-log GC failed", "err", err)
			break
		}
		db.stats.vlogGCRuns.Add(1)
	}
}

// allowDiscard lets compactions drop every version of a key that a newer one
// hides, and deleted keys, up to the oldest snapshot in use (snapshot.go);
// in managed mode Badger keeps all versions otherwise. It runs inside the
// committer with nothing in flight, so every record transaction so far is
// applied and readTs may first move up to the newest timestamp: otherwise,
// with no records written, readTs would hold back the versions of the
// metadata and checkpoint keys written meanwhile.
//
// Every delete at or below the new discard timestamp is settled first
// (settle.go), outside the committer: until then compactions must not drop
// it.
func (db *DB) allowDiscard() {
	done := make(chan uint64, 1)
	select {
	case db.exclCh <- func() {
		db.stamping.Lock() // the commits that took timestamps are applied
		db.advanceReadTs(db.ts.Load())
		done <- db.discardBelow()
		db.stamping.Unlock()
	}:
		upTo := <-done
		if _, err := db.settle(upTo); err != nil {
			db.cfg.Logger.Error("settling deletes failed; compactions keep them", "err", err)
			return
		}
		db.bdb.SetDiscardTs(upTo)
	case <-db.ctx.Done():
	}
}

// expire drops every window before the retention cutoff: records and digest
// checkpoints together, with the digests forgotten in memory first so that
// nothing compares or serves a window that is going.
func (db *DB) expire() error {
	// one at a time (Maintain is exported): the cutoff and what it drops
	// and forgets move together
	db.expireMu.Lock()
	defer db.expireMu.Unlock()
	cutoff := db.updateCutoff()
	dropped := db.dig.dropWindows(cutoff)
	var stale [][]byte // checkpoint keys of expired windows
	err := db.bdb.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixCheckpoint}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()
			if len(k) == 5 && record.Window(binary.BigEndian.Uint32(k[1:])) < cutoff {
				stale = append(stale, it.Item().KeyCopy(nil))
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	// records of windows before the cutoff, including any without digests
	var expired []record.Window
	err = db.bdb.View(func(txn *badger.Txn) error {
		for _, w := range recordWindows(txn) {
			if w < cutoff {
				expired = append(expired, w)
			}
		}
		return nil
	})
	if err != nil || (len(expired) == 0 && len(stale) == 0) {
		return err
	}
	if len(expired) > 0 {
		if err := db.dropWindows(expired, cutoff); err != nil {
			return fmt.Errorf("drop expired windows: %w", err)
		}
	}
	if len(stale) > 0 {
		err := db.inCommitter(func() error {
			return db.update(func(txn *badger.Txn) error {
				if err := db.settleLater(txn, prefixRanges(stale)); err != nil {
					return err
				}
				for _, k := range stale {
					if err := txn.Delete(k); err != nil {
						return err
					}
				}
				return nil
			})
		})
		if err != nil {
			return fmt.Errorf("drop the checkpoints of expired windows: %w", err)
		}
	}
	db.stats.windowsDropped.Add(uint64(len(expired)))
	db.forgetWindowsBefore(cutoff) // windows with no record key left too
	if len(expired) > 0 || len(dropped) > 0 {
		db.cfg.Logger.Info("retention dropped expired windows", "windows", len(expired), "before", time.UnixMilli(cutoff.Start()).UTC())
	}
	return nil
}

// dropWindows drops every record key of the windows ws, all before the
// retention cutoff. Blocks may
// be in Badger's value log: with --value-threshold, and without it too, for
// Badger takes values from min(256 KiB, 7.5% of a memtable) there
// (valueThreshold) and a block may take more. DropPrefix removes a table
// that lies wholly under a dropped prefix without counting the values it
// pointed to as discarded (Badger's keepTable), so the value-log collection
// would never pick the files holding an expired window's blocks, and the
// disk would grow for good. So the moved space (the blocks) is deleted key
// by key, a tombstone per block, whose compaction with the block counts it
// discarded; the rest of the window (loose records and the markers) goes
// with DropPrefix first, and the windows' moved state in memory with it, so
// that no reader or writer looks in the moved space any more, even if a
// delete below fails. A copy into the moved space that lands after this (a
// cut that read the cutoff before it moved) keeps the window listed, and the
// next retention deletes it.
func (db *DB) dropWindows(ws []record.Window, cutoff record.Window) error {
	var candidates [][]byte
	for _, w := range ws {
		for b := 0; b < 0x100; b++ {
			if b&^(movedSpace-1) != movedSpace { // not in the moved space
				candidates = append(candidates, slicePrefix(w, uint8(b)))
			}
		}
	}
	// listed inside the committer, where markers and loose records are
	// written: a switch or a write that read the cutoff before it moved has
	// committed before this and is listed with the rest (listed before, its
	// markers outlived the drop: found by review)
	err := db.inCommitter(func() error {
		prefixes, err := db.prefixesWithKeys(candidates)
		if err != nil || len(prefixes) == 0 {
			return err
		}
		db.collecting.RLock() // no collection writes back what this drops
		defer db.collecting.RUnlock()
		defer db.wrote()
		return db.dropPrefix(prefixes)
	})
	if err != nil {
		return err
	}
	// the markers are gone: a window kept again (the cutoff moved back)
	// after a failure below must not read or write its moved space
	db.forgetWindowsBefore(cutoff)
	for _, w := range ws {
		n, err := db.deleteMovedSpace(w)
		if err != nil {
			return fmt.Errorf("window %d: delete its blocks: %w", w, err)
		}
		db.stats.expiredBlocks.Add(uint64(n))
	}
	return nil
}

// deleteMovedSpace deletes every key of window w's moved space, a
// tombstone each, in transactions of at most half what Badger takes in
// one, and notes them for settling (settle.go: a value-log collection
// must not write a deleted block back). It returns how many it deleted.
func (db *DB) deleteMovedSpace(w record.Window) (int, error) {
	r := keyRange{slicePrefix(w, movedSpace), slicePrefix(w, 2*movedSpace)}
	maxBytes, maxCount := db.bdb.MaxBatchSize()/2, db.bdb.MaxBatchCount()/2
	deleted := 0
	// each listing goes on after the last key deleted: a copy landing behind
	// it meanwhile keeps the window listed for the next retention
	from := r.start
	for {
		var keys [][]byte
		size := int64(0)
		err := db.bdb.View(func(txn *badger.Txn) error {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: windowPrefix(w), PrefetchValues: false})
			defer it.Close()
			for it.Seek(from); it.Valid() && bytes.Compare(it.Item().Key(), r.end) < 0; it.Next() {
				k := it.Item().KeyCopy(nil)
				size += int64(len(k)) + 16
				if len(keys) > 0 && (int64(len(keys)) >= maxCount-2 || size > maxBytes) {
					break
				}
				keys = append(keys, k)
			}
			return nil
		})
		if err != nil || len(keys) == 0 {
			return deleted, err
		}
		if movedSpaceDeleteFails != nil {
			if err := movedSpaceDeleteFails(w); err != nil {
				return deleted, err
			}
		}
		err = db.inCommitter(func() error {
			return db.updateRecords(func(txn *badger.Txn) error {
				if err := db.settleLater(txn, []keyRange{r}); err != nil {
					return err
				}
				for _, k := range keys {
					if err := txn.Delete(k); err != nil {
						return err
					}
				}
				return nil
			})
		})
		if err != nil {
			return deleted, err
		}
		deleted += len(keys)
		from = append(slices.Clip(keys[len(keys)-1]), 0)
	}
}

// movedSpaceDeleteFails, set by tests only, makes a delete transaction of
// deleteMovedSpace fail with the error it returns.
var movedSpaceDeleteFails func(w record.Window) error

// forgetWindowsBefore forgets, in memory, which slices of the windows
// before cutoff are moved and which hold blocks.
func (db *DB) forgetWindowsBefore(cutoff record.Window) {
	db.blocks.mu.Lock()
	for w := range db.blocks.m {
		if w < cutoff {
			delete(db.blocks.m, w)
			delete(db.blocks.marked, w)
		}
	}
	db.blocks.mu.Unlock()
	db.forgetMovedBefore(cutoff)
}

// SetJournalFloor tells the DB the lowest journal sequence still needed by
// replication; entries below it (and below the digest checkpoint) may be pruned.
func (db *DB) SetJournalFloor(seq uint64) {
	db.journalFloor.Store(seq)
	db.floorSet.Store(true)
}

// pruneJournal deletes journal entries that the checkpoint covers and no
// replication cursor needs.
func (db *DB) pruneJournal() error {
	limit := db.ckptSeq.Load() + 1 // entries <= ckpt are covered
	switch {
	case db.floorSet.Load():
		limit = min(limit, db.journalFloor.Load())
	case db.cfg.KeepJournal:
		return nil // replication has not said yet what it needs
	}
	db.stamping.RLock() // from taking its timestamp until applied (allowDiscard)
	defer db.stamping.RUnlock()
	wb := db.bdb.NewWriteBatchAt(db.commitTs())
	defer wb.Cancel()
	n := 0
	err := db.bdb.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixJournal}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()
			if binary.BigEndian.Uint64(k[1:]) >= limit {
				break
			}
			if n == 0 { // first in the batch, so that it goes with its first deletes
				if err := db.settleLater(wb, []keyRange{{[]byte{prefixJournal}, journalKey(limit)}}); err != nil {
					return err
				}
			}
			if err := wb.Delete(it.Item().KeyCopy(nil)); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return err
	}
	err = wb.Flush()
	if n > 0 {
		db.wrote()
	}
	if err != nil {
		return err
	}
	db.stats.journalPruned.Add(uint64(n))
	return nil
}

// collectValueLog runs one value-log collection (Badger's RunValueLogGC),
// alone with respect to the writes that must not fall inside one
// (db.collecting: DropPrefix, settle.go).
func (db *DB) collectValueLog(ratio float64) error {
	db.collecting.Lock()
	defer db.collecting.Unlock()
	return db.bdb.RunValueLogGC(ratio)
}

// dropMovedDue reports whether maintenance drops the loose records of
// moved slices now: Config.DropMovedEvery after the last drop of some, or
// at once while the disk is nearly full.
func (db *DB) dropMovedDue() bool {
	last := db.lastMovedDrop.Load()
	return db.cfg.DropMovedEvery < 0 || last == 0 || !db.space.backgroundOK() ||
		time.Since(time.Unix(0, last)) >= db.cfg.DropMovedEvery
}

// dropListed, set by tests only, runs between listing the slices a drop
// of moved slices drops and dropping them (dropMoved).
var dropListed func()

// dropMoved drops the loose records of moved slices (moved.go) that no
// snapshot in use, nor any later one, reads: with DropPrefix, which writes
// no tombstones, inside the committer (it blocks writes while it runs).
// Unless wait is set, it leaves them for the next turn while a value-log
// collection or another drop runs.
func (db *DB) dropMoved(wait bool) error {
	if wait {
		db.dropping.Lock()
	} else if !db.dropping.TryLock() {
		return nil
	}
	defer db.dropping.Unlock()
	listed := db.moves.m.Load()
	todo := movesToDropIn(listed, db.discardBelow())
	if len(todo) == 0 {
		return nil
	}
	var candidates [][]byte
	for w, set := range todo {
		for s := range slicesPerWindow {
			if set&moved(sliceBit(uint8(s))) != 0 {
				candidates = append(candidates, slicePrefix(w, uint8(s)))
			}
		}
	}
	slices.SortFunc(candidates, bytes.Compare) // the listing seeks forward
	prefixes, err := db.prefixesWithKeys(candidates)
	if err != nil {
		return err
	}
	if dropListed != nil {
		dropListed()
	}
	if len(prefixes) > 0 {
		// unless it waits, a collection running holds the drop off for all
		// of its rewrite: the next maintenance. A slice whose move is not
		// the one listed (its window dropped by retention, kept again as
		// the cutoff moved back, and written, perhaps moved again) keeps
		// its loose records: the writes went there, and a snapshot from
		// before a new switch reads them there
		err := db.dropInCommitter(prefixes, wait, func() error {
			now := db.moves.m.Load()
			for _, p := range prefixes {
				w, s := record.Window(binary.BigEndian.Uint32(p[1:5])), sliceOfKey(p)
				if movedAt(now, w, s) != movedAt(listed, w, s) {
					return errNoLongerMoved
				}
			}
			return nil
		})
		if errors.Is(err, errCollecting) || errors.Is(err, errNoLongerMoved) {
			return nil // the next turn lists again
		}
		if err != nil {
			return fmt.Errorf("drop moved slices: %w", err)
		}
	}
	for w, set := range todo {
		db.noteDropped(w, set, (*listed)[w])
	}
	db.stats.slicesDropped.Add(uint64(len(prefixes)))
	if len(prefixes) > 0 {
		db.lastMovedDrop.Store(time.Now().UnixNano())
		db.cfg.Logger.Debug("dropped the loose records of moved slices", "slices", len(prefixes))
	}
	return nil
}

// errNoLongerMoved: a slice listed to drop is no longer moved as listed,
// so the drop waits for the next turn's listing.
var errNoLongerMoved = errors.New("index: a slice listed to drop is no longer moved as listed")

// errCollecting: a value-log collection runs, so a drop waits for the next
// turn.
var errCollecting = errors.New("index: a value-log collection runs")
