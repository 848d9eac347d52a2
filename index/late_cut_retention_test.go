package index

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/logmesh/logmesh/record"
)

// TestALateCutIntoAnExpiredWindowLeavesNothingVisible: a cut from memory
// reads the cutoff while its window is live, then (inside its copy
// transaction, before it commits) retention expires the window: DropPrefix
// of the loose space, the moved state forgotten, deleteMovedSpace run to
// the end. The cut then commits: its blocks are stale copies in the moved
// space of a slice no longer moved. The retention clock goes back (the
// window is kept again), with or without the cut loop forgetting the
// window's captures in between; records are written into the slice again
// (several shapes), the slice is moved, the loose records dropped, the
// store reopened, and the slice moved again after more writes. Every
// reader must read what a store holding only the records written after the
// cutoff went back reads. (Written by review, which found the stale copies
// harmless as the cut loop orders its steps, cutLoop.)
func TestALateCutIntoAnExpiredWindowLeavesNothingVisible(t *testing.T) {
	for _, mode := range []string{"keep", "forget", "reopen", "whole window"} {
		for _, again := range []string{"none", "same", "pending ones", "later", "earlier"} {
			t.Run(fmt.Sprintf("%s/%s", mode, again), func(t *testing.T) {
				testLateCut(t, mode, again)
			})
		}
	}
}

func testLateCut(t *testing.T, mode string, again string) {
	const s0 = 10
	forget := mode == "forget"
	from, to := uint8(s0), uint8(s0+1)
	if mode == "whole window" {
		from, to = 0, uint8(slicesPerWindow)
	}
	now := newRetentionClock()
	clock := func(c *Config) { now.set(c, 5*time.Hour) }
	t.Cleanup(func() { sealTxnFault = nil })
	dir := t.TempDir()
	db := openCaptured(t, dir, time.Now().Add(-4*time.Hour), clock)
	w := record.WindowOf(time.Now().UnixMilli() - 2*record.WindowMillis)
	const s = s0
	first := writeSpaced(t, db, w, s, 3, 100, 10)
	// a second slice captured, whose first block lands before the expire
	other := writeSpaced(t, db, w, s+2, 5, 100, 10)
	if err := db.cutCaptured(); err != nil {
		t.Fatal(err)
	}
	first = append(first, other...)
	for i := range 64 {
		e := entryAt(sliceStart(w, s)+1000+int64(5*i), 3, fmt.Sprintf("second batch %d", i))
		if res, err := db.Write(context.Background(), []Entry{e}, OriginLocal); err != nil || res.Written != 1 {
			t.Fatalf("write: %+v, %v", res, err)
		}
		first = append(first, e)
	}

	fired := false
	sealTxnFault = func() error {
		if fired {
			return nil
		}
		fired = true
		// inside the cut's copy transaction: it read the cutoff already
		now.Add(4 * record.WindowMillis)
		if err := db.expire(); err != nil {
			t.Errorf("expire: %v", err)
		}
		if db.cutoff() <= w || keysUnder(t, db, windowPrefix(w)) != 0 {
			t.Errorf("cutoff %d, window %d, keys %d: not expired", db.cutoff(), w, keysUnder(t, db, windowPrefix(w)))
		}
		return nil
	}
	if err := db.cutCaptured(); err != nil {
		t.Fatal(err)
	}
	sealTxnFault = nil
	if !fired {
		t.Fatal("no cut transaction")
	}
	stale := keysUnder(t, db, slicePrefix(w, s|movedSpace))
	if stale == 0 {
		t.Fatal("the late cut left nothing in the moved space")
	}
	t.Logf("stale keys in the moved space: %d; capture valid %v", stale, db.capture.valid(sliceRef{w, s}))
	if forget {
		db.capture.forgetBefore(db.cutoff()) // the cut loop's next turn
	}
	now.Add(-4 * record.WindowMillis)
	if err := db.expire(); err != nil {
		t.Fatal(err)
	}
	if db.cutoff() > w {
		t.Fatalf("cutoff %d, window %d: still expired", db.cutoff(), w)
	}
	if mode == "reopen" {
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		db = openCaptured(t, dir, time.Now().Add(-4*time.Hour), clock)
	}
	// the cut loop's next turn, with the window kept again
	db.capture.forgetBefore(db.cutoff())
	if err := db.cutCaptured(); err != nil {
		t.Fatal(err)
	}

	var es []Entry
	switch again {
	case "none":
	case "same":
		es = first
	case "cut ones":
		es = first[:96]
	case "pending ones":
		es = first[96:100]
	case "later":
		for i := range 40 {
			es = append(es, entryAt(sliceStart(w, s)+2000+int64(10*i)+3, 3, fmt.Sprintf("later %d", i)))
		}
	case "other partition":
		for i := range 40 {
			es = append(es, entryAt(sliceStart(w, s)+int64(10*i)+3, 8, fmt.Sprintf("other %d", i)))
		}
	case "earlier":
		for i := range 40 {
			es = append(es, entryAt(sliceStart(w, s)+int64(i)+1, 3, fmt.Sprintf("earlier %d", i)))
		}
	}
	write := func(es []Entry) {
		t.Helper()
		if len(es) == 0 {
			return
		}
		if res, err := db.Write(context.Background(), es, OriginRemote); err != nil || res.Written != len(es) {
			t.Fatalf("write: %+v, %v", res, err)
		}
	}
	write(es)
	all := es
	check := func(what string) {
		t.Helper()
		probe := all
		if len(probe) == 0 {
			probe = first[:2]
		}
		want := readEverything(t, reference(t, all), probe, 5)
		compareReads(t, what, want, readEverything(t, db, probe, 5))
		// nothing of the first records, unless written again
		kept := map[record.ID]bool{}
		for _, e := range all {
			kept[e.ID] = true
		}
		for _, e := range first {
			if _, err := db.Get(e.ID); err == nil && !kept[e.ID] {
				t.Fatalf("%s: record %s deleted by retention reads again", what, e.ID)
			}
		}
		n, err := db.Count(context.Background(), ScanOptions{})
		if err != nil {
			t.Fatal(err)
		}
		m := 0
		if err := db.Scan(context.Background(), ScanOptions{}, func(record.ID, []byte) error { m++; return nil }); err != nil {
			t.Fatal(err)
		}
		if int(n) != m || m != len(all) {
			t.Fatalf("%s: count %d, scan %d, written %d", what, n, m, len(all))
		}
	}
	check("before the move")
	if err := db.sealWindow(w, from, to); err != nil {
		t.Fatal(err)
	}
	st := db.Stats()
	t.Logf("moved %x, runs from memory %d, read back %d", db.movedNow(w), st.RunsFromMemory, st.RunsReadBack)
	check("after the move")
	db.allowDiscard()
	if err := db.dropMoved(true); err != nil {
		t.Fatal(err)
	}
	check("loose records dropped")
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openCaptured(t, dir, time.Now().Add(-4*time.Hour), clock)
	check("after a reopen")
	// more records into the slice, and a move (or a seal in place)
	var more []Entry
	for i := range 40 {
		more = append(more, entryAt(sliceStart(w, s)+5000+int64(10*i)+7, 3, fmt.Sprintf("more %d", i)))
	}
	write(more)
	all = append(append([]Entry(nil), all...), more...)
	check("more written after the reopen")
	if err := db.sealWindow(w, from, to); err != nil {
		t.Fatal(err)
	}
	check("sealed again after the reopen")
	db.allowDiscard()
	if err := db.dropMoved(true); err != nil {
		t.Fatal(err)
	}
	check("loose records dropped after the reopen")
}
