package index

import (
	"context"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/logmesh/logmesh/record"
)

// A retention clock can go back (in a cluster it is the cluster's time,
// which moves with its members): the cutoff then moves back, and a window
// that had expired without being dropped yet is kept again. Copies into
// the moved space left out while the window had expired were never
// written; a move must not switch to a moved space without them.

// TestACutoffThatMovesBackDuringAMoveLosesNothing: the window expires (its
// drop not run yet) before the move copies its runs, and the clock goes
// back before the switch. The move is refused; the next one moves the
// slice, and every reader reads what a store that never sealed reads.
func TestACutoffThatMovesBackDuringAMoveLosesNothing(t *testing.T) {
	now := newRetentionClock()
	rs := newReviewStore(t, func(c *Config) {
		now.set(c, 4*time.Hour)
	})
	w := rs.w
	shift := func(d int64) {
		now.Add(d)
		rs.db.updateCutoff()
	}
	shift(2 * record.WindowMillis)
	if rs.db.cutoff() <= w {
		t.Fatalf("cutoff %d, window %d: not expired", rs.db.cutoff(), w)
	}
	moveBeforeSwitch = func(record.Window, uint8) {
		moveBeforeSwitch = nil
		shift(-2 * record.WindowMillis)
		if rs.db.cutoff() > w {
			t.Errorf("cutoff %d, window %d: still expired", rs.db.cutoff(), w)
		}
	}
	err := rs.db.sealWindow(w, reviewSlice, reviewSlice+1)
	t.Logf("the move across the clock's jumps: %v", err)
	if err == nil || rs.db.movedNow(w)&moved(sliceBit(reviewSlice)) != 0 {
		t.Errorf("the move switched (err %v, moved %x); want it refused", err, rs.db.movedNow(w))
	}
	rs.move()
	rs.check()
}

// TestACutLeftOutForAnExpiredWindowIsReadBack: blocks cut from memory are
// left out of the moved space while their window has expired (its drop not
// run yet); the clock goes back before the slice moves. The capture must
// not be trusted with the copies it counted: the slices are read back, and
// every record reads as before.
func TestACutLeftOutForAnExpiredWindowIsReadBack(t *testing.T) {
	now := newRetentionClock()
	clock := func(c *Config) {
		now.set(c, 5*time.Hour)
	}
	dir := t.TempDir()
	db := openCaptured(t, dir, time.Now().Add(-4*time.Hour), clock)
	es := makeSealEntries(rand.New(rand.NewPCG(17, 18)), 2)
	if _, err := db.Write(context.Background(), es, OriginLocal); err != nil {
		t.Fatal(err)
	}
	w := es[0].ID.Window()
	want := readEverything(t, reference(t, es), es, 5)

	now.Add(4 * record.WindowMillis)
	db.updateCutoff()
	if db.cutoff() <= w {
		t.Fatalf("cutoff %d, window %d: not expired", db.cutoff(), w)
	}
	if err := db.cutCaptured(); err != nil {
		t.Fatal(err)
	}
	if db.Stats().CapturedBlocks == 0 {
		t.Fatal("no block was cut from memory")
	}
	now.Add(-4 * record.WindowMillis)
	db.updateCutoff()
	if db.cutoff() > w {
		t.Fatalf("cutoff %d, window %d: still expired", db.cutoff(), w)
	}
	if err := db.sealWindow(w, 0, uint8(slicesPerWindow)); err != nil {
		t.Fatal(err)
	}
	if db.movedNow(w) == 0 {
		t.Fatal("nothing moved")
	}
	if st := db.Stats(); st.RunsFromMemory != 0 {
		t.Errorf("%d runs taken from memory; want every run read back", st.RunsFromMemory)
	}
	compareReads(t, "moved after the cutoff went back", want, readEverything(t, db, es, 5))
	db.allowDiscard()
	if err := db.dropMoved(true); err != nil {
		t.Fatal(err)
	}
	compareReads(t, "loose records dropped", want, readEverything(t, db, es, 5))
}

// TestAMoveWhoseWindowExpiresBeforeItsSwitchSwitchesNothing: the window
// passes the cutoff between a move's copies and its switch. The switch is
// not made, and the move says it switched nothing (it used to count the
// slice moved); retention drops the window and the copies.
func TestAMoveWhoseWindowExpiresBeforeItsSwitchSwitchesNothing(t *testing.T) {
	now := newRetentionClock()
	rs := newReviewStore(t, func(c *Config) {
		now.set(c, 4*time.Hour)
	})
	w := rs.w
	moveBeforeSwitch = func(record.Window, uint8) {
		moveBeforeSwitch = nil
		now.Add(2 * record.WindowMillis)
		rs.db.updateCutoff()
	}
	_, n, err := rs.db.moveSlices(w, []uint8{reviewSlice})
	if err != nil {
		t.Fatal(err)
	}
	if rs.db.cutoff() <= w {
		t.Fatalf("cutoff %d, window %d: not expired", rs.db.cutoff(), w)
	}
	if n != 0 || rs.db.movedNow(w) != 0 || rs.db.Stats().SlicesMoved != 0 {
		t.Errorf("the move of an expired window says %d switched (moved %x, %d counted); want none", n, rs.db.movedNow(w), rs.db.Stats().SlicesMoved)
	}
	if err := rs.db.expire(); err != nil {
		t.Fatal(err)
	}
	if k := keysUnder(t, rs.db, windowPrefix(w)); k != 0 {
		t.Errorf("%d keys of the expired window left after retention", k)
	}
}

// retentionClock is a retention clock (Unix milliseconds) a test moves.
type retentionClock struct{ atomic.Int64 }

func newRetentionClock() *retentionClock {
	rc := &retentionClock{}
	rc.Store(time.Now().UnixMilli())
	return rc
}

// set makes c keep records for retention by this clock.
func (rc *retentionClock) set(c *Config, retention time.Duration) {
	c.Retention = retention
	c.RetentionClock = func() (time.Time, bool) { return time.UnixMilli(rc.Load()), true }
}
