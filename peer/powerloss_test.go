package peer_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/logmesh/logmesh/client"
	"github.com/logmesh/logmesh/faults"
	"github.com/logmesh/logmesh/index"
	"github.com/logmesh/logmesh/record"
	"github.com/logmesh/logmesh/testutil"
)

// TestPowerCutKeepsWhatFsyncAlwaysAcknowledged cuts the power under an agent
// ingesting over HTTP: its data directory is an ext4 loop disk, and the cut
// keeps only what reached the device (faults.Disk.PowerCut), as a real cut
// would. With --fsync always every acknowledged record must be there after
// the restart. With --fsync 100ms losses are allowed and measured: they must
// be recent (acknowledged within about one interval of the cut).
//
// After every cut the store's digests must equal the digest of the records
// it holds.
//
// One cut per mode in the normal run (make test, which CI runs): with
// --fsync always after 12-14 s of load, past the store's first digest
// checkpoint; with 100ms early. LOGMESH_FAULTS=1 makes it five early cuts
// and one after the checkpoint, per mode.
func TestPowerCutKeepsWhatFsyncAlwaysAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes on loop disks")
	}
	faults.RequireRoot(t, "put the agent's data on a loop device")
	cuts := 1
	if os.Getenv("LOGMESH_FAULTS") == "1" { // the campaign (make test-faults)
		cuts = 5
	}
	for _, fsync := range []string{"always", "100ms"} {
		t.Run("fsync="+fsync, func(t *testing.T) {
			var acked, lost int
			loads := make([]time.Duration, 0, cuts+1)
			for range cuts {
				loads = append(loads, 1500*time.Millisecond+time.Duration(rand.Int64N(int64(2*time.Second))))
			}
			if cuts == 1 && fsync == "always" {
				loads = loads[:0] // the one cut of a normal run comes after the checkpoint
			}
			if cuts > 1 || fsync == "always" {
				// one cut after the store's first digest checkpoint (every
				// 10 s) and many memtable flushes: recovery then starts
				// from a checkpoint, not from an empty store
				loads = append(loads, 12*time.Second+time.Duration(rand.Int64N(int64(2*time.Second))))
			}
			for _, d := range loads {
				a, l := powerCutOnce(t, fsync, d)
				acked, lost = acked+a, lost+l
			}
			t.Logf("fsync=%s: %d power cuts under 4 HTTP writers: %d records acknowledged, %d lost", fsync, len(loads), acked, lost)
		})
	}
}

// powerCutOnce runs one agent, cuts the power after load ran for d,
// restarts it and checks what survived. It returns the acknowledged and
// lost record counts.
func powerCutOnce(t *testing.T, fsync string, d time.Duration) (acked, lost int) {
	t.Helper()
	p := testutil.NewProcess(t, "cut", "--fsync", fsync, "--memtable-size", "8MiB", "--cache-size", "8MiB")
	disk := faults.NewDisk(t, p.DataDir(), 512<<20)
	t.Cleanup(p.Kill) // before the unmount
	p.Start()
	c, err := client.New(p.APIAddr)
	if err != nil {
		t.Fatal(err)
	}
	ws := startWriters([]*client.Client{c, c, c, c}, nil)
	time.Sleep(d) // the load runs for d: the moment of the cut is the test's input
	p.Kill()
	cutAt := time.Now()
	disk.PowerCut() // the agent restarts on the disk as the cut left it
	t.Cleanup(p.Kill)
	batches := ws.stop()

	p.Start()
	stored := map[string]bool{}
	if _, err := c.Query(context.Background(), mustQuery(t, "limit=0&order=asc"), func(j *record.JSON) error {
		stored[j.ID] = true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var lostAges []time.Duration // from ack to cut, per lost batch
	var lostIDs []record.ID
	for _, b := range batches {
		n := 0
		for _, id := range b.ids {
			if !stored[id.String()] {
				n++
				lostIDs = append(lostIDs, id)
			}
		}
		acked += len(b.ids)
		if n > 0 {
			lost += n
			lostAges = append(lostAges, cutAt.Sub(b.at))
		}
	}
	p.Stop()
	if len(lostIDs) > 0 {
		t.Logf("lost records: %s", onDisk(t, p.DataDir(), lostIDs))
	}
	if n, digest, data := digestsOnDisk(t, p.DataDir()); digest != data {
		t.Fatalf("after the cut the store's digests (%d records) are out of step with its data (%d records)", digest.Count, n)
	}
	oldest := time.Duration(0)
	if len(lostAges) > 0 {
		oldest = slices.Max(lostAges)
	}
	t.Logf("cut after %v: %d acknowledged, %d stored after the cut, %d lost (%d batches; oldest acknowledged %v before the cut)",
		d.Round(time.Millisecond), acked, len(stored), lost, len(lostAges), oldest.Round(time.Millisecond))
	switch {
	case acked < 1000:
		t.Fatalf("only %d records acknowledged before the cut: the load did not run", acked)
	case fsync == "always" && lost > 0:
		t.Fatalf("fsync=always lost %d of %d acknowledged records at a power cut", lost, acked)
	case fsync != "always" && oldest > 2*time.Second:
		// the sync loop runs every 100ms; a loss this old means it is not syncing
		t.Fatalf("fsync=%s lost a batch acknowledged %v before the cut", fsync, oldest)
	}
	return acked, lost
}

// digestsOnDisk opens the store in dataDir directly and returns its record
// count, its digests (rebuilt from checkpoint and journal at open) and the
// digest of the records it holds: a cut must never leave them out of step,
// or anti-entropy would chase differences that are not there, or miss ones
// that are.
func digestsOnDisk(t *testing.T, dataDir string) (n int, digest, data record.Digest) {
	t.Helper()
	db, err := openStore(dataDir)
	if err != nil {
		t.Fatalf("open the store after the cut: %v", err)
	}
	defer db.Close()
	if err := db.Scan(context.Background(), index.ScanOptions{}, func(id record.ID, _ []byte) error {
		data.Add(id)
		n++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n, db.Digest(), data
}

// onDisk says which of ids the store in dataDir holds, read directly: it
// tells a record lost on disk from one a query missed.
func onDisk(t *testing.T, dataDir string, ids []record.ID) string {
	t.Helper()
	db, err := openStore(dataDir)
	if err != nil {
		return "cannot open the store: " + err.Error()
	}
	defer db.Close()
	found := 0
	for _, id := range ids {
		if _, err := db.Get(id); err == nil {
			found++
		}
	}
	return fmt.Sprintf("%d of %d on disk when read directly (first lost: %s, window %d partition %d)",
		found, len(ids), ids[0], ids[0].Window(), ids[0].Partition())
}

// openStore opens the store of a stopped agent's data directory directly.
func openStore(dataDir string) (*index.DB, error) {
	cfg := index.TestConfig(filepath.Join(dataDir, "store"))
	cfg.Logger = slog.New(slog.DiscardHandler)
	return index.Open(cfg)
}
