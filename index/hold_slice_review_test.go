package index

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/logmesh/logmesh/record"
)

// TestACutOfASliceCapturedDuringItsListingLandsBeforeItsSwitch: a move
// holds its slice off the cuts (holdSlice) while that slice holds no
// record, so it has no sliceCapture to mark moving. Records then arrive
// (late, replicated) before the listing's snapshot: their capture begins
// (not broken: the slice was empty) and the cutter, no longer held off,
// cuts a block of them and counts it copied at once. The move's finish
// trusts that count while the copy is still in flight, switches the slice
// without it, and when the copy then fails (breakSlice on a closed slice
// does nothing) the block's records are gone for good. (Written by review
// of 03dd497; with lockCuts held from before the snapshot to finish, as
// before, the cut could not be in flight at finish.)
func TestACutOfASliceCapturedDuringItsListingLandsBeforeItsSwitch(t *testing.T) {
	db := openCaptured(t, t.TempDir(), time.Now().Add(-time.Hour))
	ms := time.Now().Add(-10 * time.Minute).UnixMilli()
	a := sliceRef{record.WindowOf(ms), sliceOf(ms)}
	es := slicePartitionRun(a.w, a.s, 9, 40, 0, "arrived while the move held its slice")
	want := readEverything(t, reference(t, es), es, 3)

	blocked, release := make(chan struct{}), make(chan error)
	var once sync.Once
	cutDone := make(chan error, 1)
	t.Cleanup(func() { moveListing, sealTxnFault = nil, nil })
	moveListing = func(w record.Window, s uint8) {
		if (sliceRef{w, s}) != a {
			return
		}
		moveListing = nil
		// the slice was empty at holdSlice: the records arrive now
		if _, err := db.Write(context.Background(), es, OriginRemote); err != nil {
			t.Error(err)
			return
		}
		// the cutter's copy is the next seal transaction: it is held in flight
		sealTxnFault = func() error {
			first := false
			once.Do(func() { first = true })
			if !first {
				return nil
			}
			close(blocked)
			return <-release
		}
		go func() { cutDone <- db.cutCaptured() }()
		select {
		case <-blocked: // a cut of the slice being listed, in flight
		case err := <-cutDone: // the slice held off the cuts: nothing cut
			sealTxnFault = nil
			cutDone <- err
		case <-time.After(5 * time.Second):
			t.Error("the cutter neither cut nor ended")
		}
	}
	if err := db.sealWindow(a.w, a.s, a.s+1); err != nil {
		t.Fatal(err)
	}
	st := db.Stats()
	t.Logf("the move: %d runs from memory, %d read back; moved %v", st.RunsFromMemory, st.RunsReadBack, db.movedNow(a.w))
	inFlight := missingOf(t, db, es)
	// the cut's copy fails (Badger refused the writes a minute, the disk filled, ...)
	select {
	case release <- errors.New("copy refused"):
		if err := <-cutDone; err == nil {
			t.Fatal("the held cut did not fail")
		}
	case err := <-cutDone:
		if err != nil {
			t.Fatal(err)
		}
	}
	lost := missingOf(t, db, es)
	if inFlight > 0 || lost > 0 {
		t.Errorf("a cut taken during the move's listing (slice empty at holdSlice): %d of %d records missing after the switch while the copy was in flight, %d once it failed", inFlight, len(es), lost)
	}
	moveAll(t, db)
	compareReads(t, "a cut in flight across a move's finish", want, readEverything(t, db, es, 3))
}
