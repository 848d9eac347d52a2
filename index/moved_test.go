package index

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/logmesh/logmesh/record"
)

// keysUnder counts the keys under prefix at the newest version.
func keysUnder(t *testing.T, db *DB, prefix []byte) int {
	t.Helper()
	n := 0
	err := db.bdb.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: false})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// slicesWithRecords lists, per window, the slices of es.
func slicesWithRecords(es []Entry) map[record.Window][]uint8 {
	out := map[record.Window][]uint8{}
	for _, e := range es {
		w, s := e.ID.Window(), sliceOf(e.ID.Millis())
		if !slices.Contains(out[w], s) {
			out[w] = append(out[w], s)
		}
	}
	for w := range out {
		slices.Sort(out[w])
	}
	return out
}

// countAt counts the records a scan of window w through snapshot txn
// returns, reading the spaces that snapshot finds.
func countAt(t *testing.T, db *DB, txn *badger.Txn, w record.Window) int {
	t.Helper()
	n := 0
	opts := ScanOptions{moved: db.movedIn(txn.ReadTs(), w)}
	if err := scanStored(context.Background(), txn, w, 0, 1<<48-1, opts, func(record.ID, []byte) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestMovedSlicesReadExactly moves every other slice with records of a
// store (moved.go) and reads it through every reader: with the loose
// records still beside the blocks, after they are dropped, and after a
// reopen. A snapshot taken before the switch keeps reading the loose
// records, and they are not dropped while it is in use.
func TestMovedSlicesReadExactly(t *testing.T) {
	dir := t.TempDir()
	db := openTest(t, dir, func(c *Config) { c.SealBlockRecords = 16 })
	rng := rand.New(rand.NewPCG(31, 32))
	es := sealEntries(t, db, rng)
	want := readEverything(t, reference(t, es), es, 5)
	// a run sealed in place before: its block is copied as it is
	first := sortedIDs(es)[0]
	if _, err := db.sealRun(first.Window(), sliceOf(first.Millis()), first.Partition(), 7, 0); err != nil {
		t.Fatal(err)
	}
	perWindow := map[record.Window]int{}
	for _, e := range es {
		perWindow[e.ID.Window()]++
	}

	old, release := db.snapshot()
	var movedSlices [][]byte // loose prefixes of the slices moved
	for w, ss := range slicesWithRecords(es) {
		for i, s := range ss {
			if (len(ss)-1-i)%2 == 1 {
				continue // every other slice, the newest moved
			}
			if err := db.sealWindow(w, s, s+1); err != nil {
				t.Fatal(err)
			}
			if db.movedNow(w)&moved(sliceBit(s)) == 0 {
				t.Fatalf("window %d slice %d with records was not moved", w, s)
			}
			movedSlices = append(movedSlices, slicePrefix(w, s))
		}
	}
	if n := db.Stats().SlicesMoved; n != uint64(len(movedSlices)) || n == 0 {
		t.Fatalf("%d slices moved, want %d", n, len(movedSlices))
	}
	compareReads(t, "moved, loose records beside", want, readEverything(t, db, es, 5))
	checkRunRules(t, db)

	// the snapshot from before reads the loose records, and they stay
	for w, n := range perWindow {
		if got := countAt(t, db, old, w); got != n {
			t.Fatalf("a snapshot from before the moves reads %d records of window %d, want %d", got, w, n)
		}
	}
	db.allowDiscard()
	if err := db.dropMoved(); err != nil {
		t.Fatal(err)
	}
	if n := db.Stats().SlicesDropped; n != 0 {
		t.Fatalf("%d moved slices dropped while a snapshot from before the switch is in use", n)
	}
	for w, n := range perWindow {
		if got := countAt(t, db, old, w); got != n {
			t.Fatalf("after maintenance, a snapshot from before the moves reads %d records of window %d, want %d", got, w, n)
		}
	}
	release()

	db.allowDiscard()
	if err := db.dropMoved(); err != nil {
		t.Fatal(err)
	}
	if n := db.Stats().SlicesDropped; n != uint64(len(movedSlices)) {
		t.Fatalf("%d moved slices dropped, want %d", n, len(movedSlices))
	}
	for _, prefix := range movedSlices {
		if n := keysUnder(t, db, prefix); n != 0 {
			t.Fatalf("%d loose keys left under %x after the drop", n, prefix)
		}
		moved := append(bytes.Clone(prefix[:5]), prefix[5]|movedSpace)
		if n := keysUnder(t, db, moved); n == 0 {
			t.Fatalf("nothing under the moved space %x", moved)
		}
	}
	compareReads(t, "moved and dropped", want, readEverything(t, db, es, 5))
	checkRunRules(t, db)
	res, err := db.Write(context.Background(), es, OriginRemote)
	if err != nil || res.Written != 0 || res.Duplicates != len(es) {
		t.Fatalf("writing the moved records again: %+v, %v; want every one a duplicate", res, err)
	}
	sr, err := db.Scrub(context.Background(), 0)
	if err != nil || sr.Records != uint64(len(es)) || sr.Buckets != 0 || sr.DamagedBlocks != 0 {
		t.Fatalf("scrub of a moved store: %+v, %v; want %d records, nothing amiss", sr, err, len(es))
	}
	if v, _ := db.GetMeta(metaFormat); string(v) != fmt.Sprint(formatVersion) || formatVersion < 5 {
		t.Fatalf("a store with moved slices is marked format %q, want %d (at least 5)", v, formatVersion)
	}

	before := map[record.Window]moved{}
	for w := range perWindow {
		before[w] = db.movedNow(w)
	}
	newest := sortedIDs(es)[len(es)-1]
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openTest(t, dir)
	for w, set := range before {
		if got := db.movedNow(w); got != set {
			t.Fatalf("after a reopen window %d has moved slices %x, want %x", w, got, set)
		}
	}
	if db.newest.floor != newest {
		t.Fatalf("after a reopen the newest record is %s, want %s", db.newest.floor, newest)
	}
	compareReads(t, "moved, after a reopen", want, readEverything(t, db, es, 5))
}

// TestAMoveCopiesWhatChangedBeforeItsSwitch writes late records into the
// slices being moved, and deletes some of their records, after their blocks
// were written and before the switch: the switch copies those runs again,
// so the moved space holds the slice exactly.
func TestAMoveCopiesWhatChangedBeforeItsSwitch(t *testing.T) {
	db := openTest(t, t.TempDir(), func(c *Config) { c.SealBlockRecords = 16 })
	rng := rand.New(rand.NewPCG(41, 42))
	es := sealEntries(t, db, rng)
	all := slices.Clone(es)
	var deleted []record.ID
	t.Cleanup(func() { moveBeforeSwitch = nil })
	moveBeforeSwitch = func(w record.Window) {
		var late []Entry
		var del []record.ID
		for i, e := range es {
			if e.ID.Window() != w {
				continue
			}
			switch i % 13 {
			case 0:
				id := idIn(e.ID.Millis(), e.ID.Partition())
				r := &record.Record{ID: id, Message: fmt.Sprintf("late %d", i)}
				late = append(late, Entry{ID: id, Data: r.AppendEncode(nil)})
			case 1:
				del = append(del, e.ID)
			}
		}
		if res, err := db.Write(context.Background(), late, OriginRemote); err != nil || res.Written != len(late) {
			t.Errorf("late write: %+v, %v", res, err)
		}
		if res, err := db.Delete(context.Background(), del); err != nil || res.Written != len(del) {
			t.Errorf("delete: %+v, %v", res, err)
		}
		all = append(all, late...)
		deleted = append(deleted, del...)
	}
	moveAll(t, db)
	moveBeforeSwitch = nil
	if t.Failed() {
		t.FailNow()
	}
	st := db.Stats()
	if st.SlicesMoved == 0 || st.MovedRunsRecopied == 0 {
		t.Fatalf("%d slices moved, %d runs copied again: the changes missed the move", st.SlicesMoved, st.MovedRunsRecopied)
	}
	var kept []Entry
	for _, e := range all {
		if !slices.Contains(deleted, e.ID) {
			kept = append(kept, e)
		}
	}
	want := readEverything(t, reference(t, kept), all, 6)
	compareReads(t, "changed during the move", want, readEverything(t, db, all, 6))
	db.allowDiscard()
	if err := db.dropMoved(); err != nil {
		t.Fatal(err)
	}
	compareReads(t, "changed during the move, dropped", want, readEverything(t, db, all, 6))
	checkRunRules(t, db)
}

// TestAnUnfinishedMoveLeavesNothingBehind: blocks written into the moved
// space by a move that never switched (a crash, a failed switch) are read by
// no reader, and the next move drops them first, so records deleted
// meanwhile do not come back.
func TestAnUnfinishedMoveLeavesNothingBehind(t *testing.T) {
	dir := t.TempDir()
	db := openTest(t, dir, func(c *Config) { c.SealBlockRecords = 16 })
	rng := rand.New(rand.NewPCG(51, 52))
	es := sealEntries(t, db, rng)
	// the blocks of every slice written into the moved space, no switch
	for w, ss := range slicesWithRecords(es) {
		for _, s := range ss {
			var runs [][2]int
			var counts []int
			if err := db.bdb.View(func(txn *badger.Txn) error {
				runs, counts = listRuns(txn, w, s, s+1, func(s uint8) uint8 { return s }, true)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if _, _, err := db.sealRuns(w, runs, counts, true); err != nil {
				t.Fatal(err)
			}
		}
	}
	if st := db.Stats(); st.BlocksWritten == 0 || st.SlicesMoved != 0 {
		t.Fatalf("%d blocks written, %d slices moved: want blocks and no switch", st.BlocksWritten, st.SlicesMoved)
	}
	var del []record.ID
	var kept []Entry
	for i, e := range es {
		if i%5 == 0 {
			del = append(del, e.ID)
		} else {
			kept = append(kept, e)
		}
	}
	if res, err := db.Delete(context.Background(), del); err != nil || res.Written != len(del) {
		t.Fatalf("delete: %+v, %v", res, err)
	}
	want := readEverything(t, reference(t, kept), es, 7)
	compareReads(t, "beside an unfinished move", want, readEverything(t, db, es, 7))
	sr, err := db.Scrub(context.Background(), 0)
	if err != nil || sr.Records != uint64(len(kept)) || sr.Buckets != 0 {
		t.Fatalf("scrub beside an unfinished move: %+v, %v; want %d records", sr, err, len(kept))
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openTest(t, dir, func(c *Config) { c.SealBlockRecords = 16 })
	compareReads(t, "beside an unfinished move, reopened", want, readEverything(t, db, es, 7))
	moveAll(t, db)
	if db.Stats().SlicesMoved == 0 {
		t.Fatal("nothing moved")
	}
	compareReads(t, "moved after an unfinished move", want, readEverything(t, db, es, 7))
	checkRunRules(t, db)
}
