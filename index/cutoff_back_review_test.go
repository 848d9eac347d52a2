package index

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/logmesh/logmesh/record"
)

// TestADropOfMovedSlicesListedBeforeAnExpireAndACutoffBackLosesNothing: a
// drop of moved slices' loose records (dropMoved: Compact, or maintenance)
// lists a moved slice; before it drops, retention expires the window (the
// drop of the window, the moved state forgotten), and the retention clock
// goes back (the window is kept again) and records are written into the
// slice again: they go into its loose space, for nothing says it is moved.
// The drop that listed the slice before must not drop them.
func TestADropOfMovedSlicesListedBeforeAnExpireAndACutoffBackLosesNothing(t *testing.T) {
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
	t.Cleanup(func() { dropListed = nil })
	dropListed = func() {
		dropListed = nil
		now.Add(2 * record.WindowMillis)
		if err := rs.db.expire(); err != nil {
			t.Errorf("expire: %v", err)
		}
		if rs.db.cutoff() <= w || rs.db.movedNow(w) != 0 {
			t.Errorf("cutoff %d, window %d, moved %x: not expired", rs.db.cutoff(), w, rs.db.movedNow(w))
		}
		now.Add(-2 * record.WindowMillis)
		if err := rs.db.expire(); err != nil {
			t.Errorf("expire: %v", err)
		}
		if rs.db.cutoff() > w {
			t.Errorf("cutoff %d, window %d: still expired", rs.db.cutoff(), w)
		}
		for i := range 20 {
			again = append(again, entryAt(sliceStart(w, reviewSlice)+int64(10*i)+5, 3, "written after the cutoff went back"))
		}
		res, err := rs.db.Write(context.Background(), again, OriginRemote)
		if err != nil || res.Written != len(again) {
			t.Errorf("write: %+v, %v", res, err)
		}
	}
	if err := rs.db.dropMoved(true); err != nil {
		t.Fatal(err)
	}
	if len(again) == 0 {
		t.Fatal("the drop listed nothing")
	}
	lost := 0
	for _, e := range again {
		if _, err := rs.db.Get(e.ID); err != nil {
			lost++
		}
	}
	n := 0
	if err := rs.db.Scan(context.Background(), ScanOptions{}, func(record.ID, []byte) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if lost > 0 || n != len(again) {
		t.Errorf("%d of the %d records written after the cutoff went back are lost (a scan reads %d)", lost, len(again), n)
	}
}

// TestAFailedMoveDoesNotClearTheCutsOfACaptureBegunAfterItsWindowCameBack:
// while a slice is moved (its capture closed), retention expires its
// window (dropped whole; the sealer's cut loop forgets the window's
// captures) and the retention clock goes back: records written into the
// slice again begin a new capture (the slice empty), whose blocks the cut
// loop copies into the moved space. The move is refused (the cutoff moved
// back) and clears the slice's moved space: the next move must not trust
// the new capture with the blocks that clear dropped.
func TestAFailedMoveDoesNotClearTheCutsOfACaptureBegunAfterItsWindowCameBack(t *testing.T) {
	now := newRetentionClock()
	clock := func(c *Config) {
		now.set(c, 5*time.Hour)
	}
	t.Cleanup(func() { moveBeforeSwitch, switchPlanned = nil, nil })
	db := openCaptured(t, t.TempDir(), time.Now().Add(-4*time.Hour), clock)
	w := record.WindowOf(time.Now().UnixMilli() - 2*record.WindowMillis)
	const s = 10
	writeSpaced(t, db, w, s, 3, 100, 10)
	writeSpaced(t, db, w, s, 8, 100, 10)
	var again []Entry
	moveBeforeSwitch = func(record.Window, uint8) {
		moveBeforeSwitch = nil
		now.Add(4 * record.WindowMillis)
		if err := db.expire(); err != nil {
			t.Errorf("expire: %v", err)
		}
		if db.cutoff() <= w || keysUnder(t, db, windowPrefix(w)) != 0 {
			t.Errorf("cutoff %d, window %d: not expired", db.cutoff(), w)
		}
		db.capture.forgetBefore(db.cutoff()) // the cut loop's turn
		now.Add(-4 * record.WindowMillis)
		if err := db.expire(); err != nil {
			t.Errorf("expire: %v", err)
		}
		if db.cutoff() > w {
			t.Errorf("cutoff %d, window %d: still expired", db.cutoff(), w)
		}
		for i := range 100 {
			again = append(again, entryAt(sliceStart(w, s)+int64(10*i)+3, 3, fmt.Sprintf("again %d", i)))
		}
		if res, err := db.Write(context.Background(), again, OriginRemote); err != nil || res.Written != len(again) {
			t.Errorf("write: %+v, %v", res, err)
		}
		before := db.Stats().CapturedBlocks
		if err := db.cutCaptured(); err != nil {
			t.Errorf("cut: %v", err)
		}
		if db.Stats().CapturedBlocks == before {
			t.Error("no block was cut from memory")
		}
	}
	err := db.sealWindow(w, s, s+1)
	t.Logf("the move across the expiry and the clock's jump back: %v", err)
	if t.Failed() {
		t.FailNow()
	}
	if err == nil || db.movedNow(w)&moved(sliceBit(s)) != 0 {
		t.Fatalf("the move switched (err %v, moved %x); want it refused", err, db.movedNow(w))
	}
	want := readEverything(t, reference(t, again), again, 5)
	if err := db.sealWindow(w, s, s+1); err != nil {
		t.Fatal(err)
	}
	if db.movedNow(w)&moved(sliceBit(s)) == 0 {
		t.Fatal("not moved")
	}
	t.Logf("runs from memory %d, read back %d", db.Stats().RunsFromMemory, db.Stats().RunsReadBack)
	lost := 0
	for _, e := range again {
		if _, err := db.Get(e.ID); err != nil {
			lost++
		}
	}
	if lost > 0 {
		t.Errorf("%d of the %d records written after the window came back are lost", lost, len(again))
	}
	compareReads(t, "moved after the window came back", want, readEverything(t, db, again, 5))
}

// TestACaptureThatOutlivedItsWindowsDropIsNotTrusted: blocks were cut from
// memory into a slice's moved space; retention expires the window (dropped
// whole, cut blocks and loose records) and the clock goes back before the
// cut loop forgets the window's captures, so the slice's capture still
// counts the blocks that the drop took. Records are written into the slice
// again (a peer sending the window again, or other records); the move must
// read back what the store holds, not trust the capture.
func TestACaptureThatOutlivedItsWindowsDropIsNotTrusted(t *testing.T) {
	for _, again := range []string{"the same records", "later records of the same run", "another partition"} {
		t.Run(again, func(t *testing.T) {
			now := newRetentionClock()
			clock := func(c *Config) {
				now.set(c, 5*time.Hour)
			}
			db := openCaptured(t, t.TempDir(), time.Now().Add(-4*time.Hour), clock)
			w := record.WindowOf(time.Now().UnixMilli() - 2*record.WindowMillis)
			const s = 10
			first := writeSpaced(t, db, w, s, 3, 100, 10)
			if err := db.cutCaptured(); err != nil {
				t.Fatal(err)
			}
			if db.Stats().CapturedBlocks == 0 {
				t.Fatal("no block was cut from memory")
			}
			now.Add(4 * record.WindowMillis)
			if err := db.expire(); err != nil {
				t.Fatal(err)
			}
			if db.cutoff() <= w || keysUnder(t, db, windowPrefix(w)) != 0 {
				t.Fatalf("cutoff %d, window %d: not expired", db.cutoff(), w)
			}
			now.Add(-4 * record.WindowMillis)
			if err := db.expire(); err != nil {
				t.Fatal(err)
			}
			if db.cutoff() > w || !db.capture.valid(sliceRef{w, s}) {
				t.Fatalf("cutoff %d, window %d, capture valid %v", db.cutoff(), w, db.capture.valid(sliceRef{w, s}))
			}
			var es []Entry
			switch again {
			case "the same records":
				es = first
			case "later records of the same run":
				for i := range 40 {
					es = append(es, entryAt(sliceStart(w, s)+1000+int64(10*i)+3, 3, fmt.Sprintf("later %d", i)))
				}
			case "another partition":
				for i := range 40 {
					es = append(es, entryAt(sliceStart(w, s)+int64(10*i)+3, 8, fmt.Sprintf("other %d", i)))
				}
			}
			if res, err := db.Write(context.Background(), es, OriginRemote); err != nil || res.Written != len(es) {
				t.Fatalf("write: %+v, %v", res, err)
			}
			want := readEverything(t, reference(t, es), es, 5)
			if err := db.sealWindow(w, s, s+1); err != nil {
				t.Fatal(err)
			}
			if db.movedNow(w)&moved(sliceBit(s)) == 0 {
				t.Fatal("not moved")
			}
			compareReads(t, "moved after the window came back", want, readEverything(t, db, es, 5))
			db.allowDiscard()
			if err := db.dropMoved(true); err != nil {
				t.Fatal(err)
			}
			compareReads(t, "loose records dropped", want, readEverything(t, db, es, 5))
		})
	}
}
