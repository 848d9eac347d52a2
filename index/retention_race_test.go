package index

import (
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/logmesh/logmesh/record"
)

// TestASwitchCommittedWhileRetentionListsTheWindowLeavesNoMarker: a switch
// inside the committer read the cutoff before retention moved it and
// commits its markers after retention listed the window's prefixes with
// keys (prefixesWithKeys; found by review, now listed in the committer). dropWindows then drops only the prefixes it
// listed, so the window's moves marker and blocks marker survive, while
// forgetWindows forgets the moved state in memory and deleteMovedSpace
// deletes the blocks. Once the cutoff moves back, writers write the window
// loose (nothing moved in memory); after a reopen the surviving marker
// says the slice is moved, readers look in the (empty) moved space, and
// the records written since are lost.
func TestASwitchCommittedWhileRetentionListsTheWindowLeavesNoMarker(t *testing.T) {
	now := newRetentionClock()
	dir := t.TempDir()
	config := func(c *Config) {
		c.MemTableBytes, c.SealBlockRecords = 1<<20, 8
		now.set(c, 5*time.Hour)
	}
	db := openTest(t, dir, config)
	w := record.WindowOf(time.Now().UnixMilli() - 2*record.WindowMillis)
	const s = 10
	writeSpaced(t, db, w, s, 3, 200, 10)

	var once sync.Once
	expired := make(chan error, 1)
	switchPlanned = func(pw record.Window, ps uint8) {
		if pw != w || ps != s {
			return
		}
		// the next seal transactions run inside switchSlice, after its
		// check of the cutoff
		sealTxnFault = func() error {
			once.Do(func() {
				now.Add(4 * record.WindowMillis)
				go func() { expired <- db.expire() }()
				for deadline := time.Now().Add(10 * time.Second); db.cutoff() <= w; time.Sleep(time.Millisecond) {
					if time.Now().After(deadline) {
						t.Error("retention did not move the cutoff past the window")
						return
					}
				}
				// let retention list the window's prefixes and wait for
				// the committer (dropInCommitter)
				waitForStack(t, "dropWindows", "inCommitter")
			})
			return nil
		}
	}
	t.Cleanup(func() { switchPlanned, sealTxnFault = nil, nil })
	if err := db.sealWindow(w, 0, uint8(slicesPerWindow)); err != nil {
		t.Fatal(err)
	}
	switchPlanned, sealTxnFault = nil, nil
	if err := <-expired; err != nil {
		t.Fatal(err)
	}
	if db.movedNow(w) != 0 {
		t.Fatalf("window %d still moved in memory after retention", w)
	}
	left := keysUnder(t, db, windowPrefix(w))
	if left != 0 {
		t.Errorf("%d keys of the expired window left after retention (markers %d/%d)", left,
			keysUnder(t, db, movesMarkerKey(w)), keysUnder(t, db, blocksMarkerKey(w)))
	}

	// the cutoff moves back: the window is kept again and written
	now.Add(-4 * record.WindowMillis)
	if err := db.expire(); err != nil {
		t.Fatal(err)
	}
	if db.cutoff() > w {
		t.Fatalf("cutoff %d: window %d still expired", db.cutoff(), w)
	}
	es := writeAgain(t, db, w, s, 5000)
	checkKeptAcrossAReopen(t, db, dir, config, es)
}

// waitForStack waits until a goroutine's stack names every one of fns
// (where no hook can say it got there: blocked on a channel inside them).
func waitForStack(t *testing.T, fns ...string) {
	t.Helper()
	buf := make([]byte, 1<<20)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
			all := true
			for _, fn := range fns {
				all = all && strings.Contains(g, fn)
			}
			if all {
				return
			}
		}
	}
	t.Errorf("no goroutine reached %v", fns)
}
