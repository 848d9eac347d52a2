package index

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/logmesh/logmesh/record"
)

// getIn reads id as Get does, on a snapshot a reader holds (db.snapshot).
func getIn(db *DB, txn *badger.Txn, id record.ID) ([]byte, error) {
	var out []byte
	mv := db.movedIn(txn.ReadTs(), id.Window())
	if db.idMayBeInBlock(id) {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: idRunPrefixIn(mv, id)})
		defer it.Close()
		found, err := findInRun(it, mv, id, func(v []byte) error { out = bytes.Clone(v); return nil })
		if err == nil && !found {
			err = badger.ErrKeyNotFound
		}
		return out, err
	}
	item, err := txn.Get(recordKeyIn(mv, id))
	if err != nil {
		return nil, err
	}
	return item.ValueCopy(nil)
}

// TestADropOfMovedSlicesSparesASliceMovedAgainSinceItsListing: a drop of
// moved slices' loose records lists a moved slice; before it drops,
// retention expires the window (its moved state forgotten), the cutoff goes
// back, records are written into the slice's loose space, a reader takes a
// snapshot, and the sealer moves the slice again (a switch above what the
// drop listed up to). The drop must not drop the loose records of that new
// move: the reader's snapshot predates its switch and reads them there.
func TestADropOfMovedSlicesSparesASliceMovedAgainSinceItsListing(t *testing.T) {
	now := newRetentionClock()
	rs := newReviewStore(t, func(c *Config) {
		now.set(c, 4*time.Hour)
	})
	w := rs.w
	rs.move()
	rs.db.allowDiscard()
	if rs.db.movesToDrop(rs.db.discardBelow())[w] == 0 {
		t.Fatal("the moved slice is not to be dropped")
	}
	var again []Entry
	var snapTxn *badger.Txn
	var release func()
	t.Cleanup(func() {
		dropListed = nil
		if release != nil {
			release()
		}
	})
	dropListed = func() {
		dropListed = nil
		now.Add(2 * record.WindowMillis)
		if err := rs.db.expire(); err != nil {
			t.Errorf("expire: %v", err)
		}
		now.Add(-2 * record.WindowMillis)
		if err := rs.db.expire(); err != nil {
			t.Errorf("expire: %v", err)
		}
		if rs.db.cutoff() > w || rs.db.movedNow(w) != 0 {
			t.Errorf("cutoff %d, window %d, moved %x", rs.db.cutoff(), w, rs.db.movedNow(w))
		}
		for i := range 20 {
			again = append(again, entryAt(sliceStart(w, reviewSlice)+int64(10*i)+5, 3, "written after the cutoff went back"))
		}
		res, err := rs.db.Write(context.Background(), again, OriginRemote)
		if err != nil || res.Written != len(again) {
			t.Errorf("write: %+v, %v", res, err)
		}
		// a reader's snapshot, taken before the slice moves again
		snapTxn, release = rs.db.snapshot()
		for _, e := range again {
			if _, err := getIn(rs.db, snapTxn, e.ID); err != nil {
				t.Errorf("the snapshot misses %s before the drop: %v", e.ID, err)
			}
		}
		// the sealer moves the slice again
		if err := rs.db.sealWindow(w, reviewSlice, reviewSlice+1); err != nil {
			t.Errorf("move again: %v", err)
		}
		if rs.db.movedNow(w)&moved(sliceBit(reviewSlice)) == 0 {
			t.Errorf("not moved again")
		}
		if rs.db.movedIn(snapTxn.ReadTs(), w)&moved(sliceBit(reviewSlice)) != 0 {
			t.Errorf("the snapshot finds the slice moved")
		}
	}
	if err := rs.db.dropMoved(true); err != nil {
		t.Fatal(err)
	}
	if len(again) == 0 || snapTxn == nil {
		t.Fatal("the drop listed nothing")
	}
	lostLatest, lostSnap := 0, 0
	for _, e := range again {
		if _, err := rs.db.Get(e.ID); err != nil {
			lostLatest++
		}
		if _, err := getIn(rs.db, snapTxn, e.ID); err != nil {
			if !errors.Is(err, badger.ErrKeyNotFound) {
				t.Logf("snapshot read %s: %v", e.ID, err)
			}
			lostSnap++
		}
	}
	t.Logf("after the drop: latest view misses %d of %d, the snapshot taken before the second move misses %d", lostLatest, len(again), lostSnap)
	if lostLatest > 0 || lostSnap > 0 {
		t.Errorf("records lost: %d in the latest view, %d in a snapshot held since before the second switch (of %d)", lostLatest, lostSnap, len(again))
	}
}

// looseKeys counts the keys under slice s's loose space (slice byte s).
func looseKeys(t *testing.T, db *DB, w record.Window, s uint8) int {
	t.Helper()
	n := 0
	if err := db.bdb.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: slicePrefix(w, s), PrefetchValues: false})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			n++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestADropOfMovedSlicesNotesDroppedOnlyWhatItDropped: after a reopen
// every moved slice is listed to drop again (what was dropped is kept in
// memory only), those whose loose records went already among them. If,
// between the listing and the end of the drop, retention expires the
// window, the cutoff goes back, records are written into the slice and the
// sealer moves it again, the drop must not note the new move dropped: its
// loose records would stay on the disk until retention drops the window.
func TestADropOfMovedSlicesNotesDroppedOnlyWhatItDropped(t *testing.T) {
	now := newRetentionClock()
	rs := newReviewStore(t, func(c *Config) {
		now.set(c, 4*time.Hour)
	})
	w := rs.w
	rs.move()
	rs.db.allowDiscard()
	if err := rs.db.dropMoved(true); err != nil {
		t.Fatal(err)
	}
	if n := looseKeys(t, rs.db, w, reviewSlice); n != 0 {
		t.Fatalf("%d loose keys left after the first drop", n)
	}
	if err := rs.db.Close(); err != nil {
		t.Fatal(err)
	}
	rs.db = openTest(t, rs.dir, rs.mut)
	rs.db.allowDiscard()
	if rs.db.movesToDrop(rs.db.discardBelow())[w]&moved(sliceBit(reviewSlice)) == 0 {
		t.Fatal("reopened: the moved slice is not listed to drop")
	}
	var again []Entry
	t.Cleanup(func() { dropListed = nil })
	dropListed = func() {
		dropListed = nil
		now.Add(2 * record.WindowMillis)
		if err := rs.db.expire(); err != nil {
			t.Errorf("expire: %v", err)
		}
		now.Add(-2 * record.WindowMillis)
		if err := rs.db.expire(); err != nil {
			t.Errorf("expire: %v", err)
		}
		for i := range 20 {
			again = append(again, entryAt(sliceStart(w, reviewSlice)+int64(10*i)+5, 3, "written after the cutoff went back"))
		}
		res, err := rs.db.Write(context.Background(), again, OriginRemote)
		if err != nil || res.Written != len(again) {
			t.Errorf("write: %+v, %v", res, err)
		}
		if err := rs.db.sealWindow(w, reviewSlice, reviewSlice+1); err != nil {
			t.Errorf("move again: %v", err)
		}
		if rs.db.movedNow(w)&moved(sliceBit(reviewSlice)) == 0 {
			t.Errorf("not moved again")
		}
	}
	if err := rs.db.dropMoved(true); err != nil {
		t.Fatal(err)
	}
	if len(again) == 0 {
		t.Fatal("the hook did not run")
	}
	// every later maintenance: nothing holds a snapshot now
	for range 3 {
		rs.db.allowDiscard()
		if err := rs.db.dropMoved(true); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range again {
		if _, err := rs.db.Get(e.ID); err != nil {
			t.Errorf("get %s: %v", e.ID, err)
		}
	}
	n := looseKeys(t, rs.db, w, reviewSlice)
	t.Logf("loose keys of the moved slice after the drops: %d (of the %d written before its second move); to drop: %x",
		n, len(again), rs.db.movesToDrop(rs.db.discardBelow())[w])
	if n > 0 {
		t.Errorf("the loose records of a moved slice are never dropped: %d keys left, the slice noted dropped", n)
	}
}
