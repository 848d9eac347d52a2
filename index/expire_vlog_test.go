package index

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/logmesh/logmesh/record"
)

// valueLogBytes is what the value-log files of the store in dir take.
func valueLogBytes(t *testing.T, dir string) int64 {
	t.Helper()
	des, err := os.ReadDir(filepath.Join(dir, "badger"))
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, de := range des {
		if !strings.HasSuffix(de.Name(), ".vlog") {
			continue
		}
		fi, err := os.Stat(filepath.Join(dir, "badger", de.Name()))
		if err != nil {
			t.Fatal(err)
		}
		n += fi.Size()
	}
	return n
}

// TestRetentionReclaimsTheValueLogOfExpiredBlocks: with blocks in Badger's
// value log (--value-threshold below a block's size, loose records in the
// tree), retention must leave the value-log files of an expired window's
// blocks to the collection. Badger's DropPrefix removes a table lying
// wholly under a dropped prefix without counting its values discarded, so
// dropping the window whole left its blocks on disk for good; retention
// now deletes the blocks one by one. A window still kept reads whole.
func TestRetentionReclaimsTheValueLogOfExpiredBlocks(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for seconds")
	}
	now := newRetentionClock()
	dir := t.TempDir()
	config := func(c *Config) {
		c.ValueThreshold, c.ValueLogFileBytes, c.SealBlockRecords, c.MemTableBytes = 256, 1<<20, 16, 1<<20
		c.BaseTableBytes, c.BlockBytes = 16<<10, 4<<10 // tables wholly inside one window
		now.set(c, 4 * time.Hour)
	}
	db := openTest(t, dir, config)
	current := record.WindowOf(now.Load())
	old, kept := current-3, current-1
	rng := rand.New(rand.NewPCG(23, 29))
	before := valueLogBytes(t, dir)
	oldEs := vlogSlices(t, db, old, 1200, rng)
	if err := db.sealWindow(old, 0, uint8(slicesPerWindow)); err != nil {
		t.Fatal(err)
	}
	keptEs := vlogSlices(t, db, kept, 100, rng)
	if err := db.sealWindow(kept, 0, uint8(slicesPerWindow)); err != nil {
		t.Fatal(err)
	}
	want := readEverything(t, reference(t, keptEs), keptEs, 3)
	db.allowDiscard()
	if err := db.dropMoved(true); err != nil {
		t.Fatal(err)
	}
	if n := db.movedNow(old); n == 0 {
		t.Fatal("no slice of the old window was moved into blocks")
	}
	sealed := valueLogBytes(t, dir)
	oldBlocks := 0
	for s := range slicesPerWindow {
		oldBlocks += keysUnder(t, db, slicePrefix(old, uint8(s)|movedSpace))
	}
	t.Logf("%d records of the old window in %d blocks; value log %d bytes before, %d after sealing both windows",
		len(oldEs), oldBlocks, before, sealed)
	if sealed-before < 2<<20 {
		t.Fatalf("the blocks took %d bytes of value log; want them there (above 2 MiB)", sealed-before)
	}

	now.Add(2 * record.WindowMillis)
	if err := db.expire(); err != nil {
		t.Fatal(err)
	}
	if db.cutoff() <= old || db.cutoff() > kept {
		t.Fatalf("cutoff %d: want the old window %d expired and %d kept", db.cutoff(), old, kept)
	}
	if n := keysUnder(t, db, windowPrefix(old)); n != 0 {
		t.Fatalf("%d keys of the expired window left", n)
	}
	deleted := db.Stats().ExpiredBlocksDeleted
	// compactions merge the deletes with the blocks (counting them
	// discarded); then the collection takes the files. The reopen
	// flushes the memtable that holds the deletes.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openTest(t, dir, config)
	db.allowDiscard()
	if err := db.bdb.Flatten(2); err != nil {
		t.Fatal(err)
	}
	rewrites := 0
	for range 32 {
		err := db.collectValueLog(0.5)
		if err == badger.ErrNoRewrite {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		rewrites++
	}
	after := valueLogBytes(t, dir)
	t.Logf("retention deleted %d blocks; %d collections; value log %d bytes after", deleted, rewrites, after)
	if got := deleted; got != uint64(oldBlocks) {
		t.Errorf("retention deleted %d blocks one by one; want the %d of the expired window", got, oldBlocks)
	}
	if reclaimed := sealed - after; reclaimed < (sealed-before)/2 {
		t.Errorf("the value log went from %d to %d bytes; want at least half of the %d the blocks took reclaimed", sealed, after, sealed-before)
	}
	compareReads(t, "the kept window after retention and collections", want, readEverything(t, db, keptEs, 3))
}
