package index

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/logmesh/logmesh/record"
)

// blockRangesOf lists the block ranges of run p of slice byte at of window w.
func blockRangesOf(t *testing.T, db *DB, w record.Window, at uint8, p record.Partition) (out [][2]record.ID) {
	t.Helper()
	err := db.bdb.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: runPrefix(w, at, p)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if f, l, ok := blockRange(it.Item().Key()); ok {
				out = append(out, [2]record.ID{f, l})
			}
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	return out
}

// zzBlockSizes returns the largest block's record count under prefix.
func largestBlock(t *testing.T, db *DB, prefix []byte) int {
	t.Helper()
	m := 0
	err := db.bdb.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if len(it.Item().Key()) != blockKeyLen {
				continue
			}
			if err := it.Item().Value(func(v []byte) error {
				b, err := decodeBlock(v)
				m = max(m, len(b.IDs))
				return err
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// edgeMove: runs sealed in place in small blocks (some), moved, and
// changed at the edges of the moved blocks both before the switch's plan
// and between the plan and the switch (the merge cache): first or last
// record deleted, a block's whole range deleted, late records at the first
// or last millisecond, inside, between blocks and past the ends, a record
// deleted and written again, one written and deleted. Every reader must
// read what a store that never sealed reads, after the switch, the drop,
// sealing again and a reopen (written by a reviewer of the merge).
func edgeMove(t *testing.T, seed uint64) { edgeMoveBeside(t, seed, false) }

func edgeMoveBeside(t *testing.T, seed uint64, bg bool) { edgeMoveOf(t, seed, bg, 90) }

func edgeMoveOf(t *testing.T, seed uint64, bg bool, pad int) {
	rng := rand.New(rand.NewPCG(seed, 1234))
	per := []int{2, 3, 5, 16}[rng.IntN(4)]
	vt := []int64{0, 64}[rng.IntN(2)]
	dir := t.TempDir()
	mut := func(c *Config) {
		c.SealBlockRecords = per
		c.MaintenanceInterval = time.Hour
		c.MemTableBytes = 1 << 20
		if vt > 0 {
			c.ValueThreshold = vt
		}
	}
	db := openTest(t, dir, mut)
	w := record.WindowOf(time.Now().UnixMilli() - 3*record.WindowMillis)
	const s = 6
	parts := []record.Partition{3, 4, 77}
	var ops []randomOp
	live := map[record.ID]Entry{}
	n := 0
	mintAt := func(ms int64, p record.Partition) Entry {
		n++
		return entryAt(ms, p, fmt.Sprintf("rec %d word%d %s", n, n%20, string(bytes.Repeat([]byte{'x'}, pad/2+rng.IntN(pad/2+1)))))
	}
	write := func(es []Entry, origin Origin) {
		if len(es) == 0 {
			return
		}
		res, err := db.Write(context.Background(), es, origin)
		if err != nil || res.Written != len(es) {
			t.Errorf("write: %+v, %v", res, err)
			return
		}
		ops = append(ops, randomOp{write: es, origin: origin})
		for _, e := range es {
			live[e.ID] = e
		}
	}
	remove := func(ids []record.ID) {
		if len(ids) == 0 {
			return
		}
		slices.SortFunc(ids, record.Compare)
		ids = slices.Compact(ids)
		if _, err := db.Delete(context.Background(), ids); err != nil {
			t.Errorf("delete: %v", err)
			return
		}
		ops = append(ops, randomOp{del: ids})
		for _, id := range ids {
			delete(live, id)
		}
	}
	for _, p := range parts {
		var es []Entry
		for range 50 + rng.IntN(150) {
			es = append(es, mintAt(sliceStart(w, s)+rng.Int64N(SliceMillis), p))
		}
		write(es, OriginLocal)
	}
	for _, p := range parts {
		if rng.IntN(3) != 0 {
			if _, err := db.sealRun(w, s, p, 1+rng.IntN(7), rng.IntN(150)); err != nil {
				t.Fatal(err)
			}
		}
	}
	liveIn := func(p record.Partition, f, l record.ID) []record.ID {
		var out []record.ID
		for id := range live {
			if id.Partition() == p && record.Compare(id, f) >= 0 && record.Compare(id, l) <= 0 {
				out = append(out, id)
			}
		}
		slices.SortFunc(out, record.Compare)
		return out
	}
	var stepMu sync.Mutex
	step := func() {
		stepMu.Lock()
		defer stepMu.Unlock()
		p := parts[rng.IntN(len(parts))]
		blocks := blockRangesOf(t, db, w, s|movedSpace, p)
		if len(blocks) == 0 {
			return
		}
		b := blocks[rng.IntN(len(blocks))]
		in := liveIn(p, b[0], b[1])
		switch rng.IntN(8) {
		case 0: // delete the first live record of the block's range
			if len(in) > 0 {
				remove([]record.ID{in[0]})
			}
		case 1: // delete the last
			if len(in) > 0 {
				remove([]record.ID{in[len(in)-1]})
			}
		case 2: // delete all of its range
			remove(in)
		case 3: // a late record at the first's or last's millisecond
			ms := b[0].Millis()
			if rng.IntN(2) == 0 {
				ms = b[1].Millis()
			}
			write([]Entry{mintAt(ms, p)}, OriginRemote)
		case 4: // late records inside
			var es []Entry
			for range 1 + rng.IntN(5) {
				es = append(es, mintAt(b[0].Millis()+rng.Int64N(b[1].Millis()-b[0].Millis()+1), p))
			}
			write(es, OriginRemote)
		case 5: // deleted, then written again
			if len(in) > 0 {
				id := in[rng.IntN(len(in))]
				e := live[id]
				remove([]record.ID{id})
				write([]Entry{e}, OriginRemote)
			}
		case 6: // late records past the ends / between blocks
			ms := sliceStart(w, s) + rng.Int64N(SliceMillis)
			write([]Entry{mintAt(ms, p)}, OriginRemote)
		case 7: // written and deleted again
			e := mintAt(b[0].Millis()+rng.Int64N(b[1].Millis()-b[0].Millis()+1), p)
			write([]Entry{e}, OriginRemote)
			remove([]record.ID{e.ID})
		}
	}
	randN := func(n int) int { // rng beside the writer's steps
		stepMu.Lock()
		defer stepMu.Unlock()
		return rng.IntN(n)
	}
	t.Cleanup(func() { moveBeforeSwitch, switchPlanned = nil, nil })
	moveBeforeSwitch = func(mw record.Window, ms uint8) {
		if mw != w || ms != s {
			return
		}
		for range 2 + randN(25) {
			step()
		}
	}
	planned := 0
	switchPlanned = func(mw record.Window, ms uint8) {
		if mw != w || ms != s {
			return
		}
		planned++
		for range randN(12) {
			step()
		}
	}
	stop, done := make(chan struct{}), make(chan struct{})
	if bg {
		go func() {
			defer close(done)
			for {
				select {
				case <-stop:
					return
				case <-time.After(time.Duration(200+seed%5*300) * time.Microsecond):
				}
				step()
			}
		}()
	} else {
		close(done)
	}
	var passErr error
	for range 3 {
		if passErr = db.sealWindow(w, s, s+1); passErr == nil && db.movedNow(w) != 0 {
			break
		}
		t.Logf("pass: %v", passErr)
	}
	close(stop)
	<-done
	moveBeforeSwitch, switchPlanned = nil, nil
	if t.Failed() {
		t.FailNow()
	}
	if db.movedNow(w) == 0 || planned == 0 {
		t.Fatalf("not moved (%d plans of a switch): %v", planned, passErr)
	}
	st := db.Stats()
	t.Logf("per %d vt %d: %d ops, %d live, merged %d (in committer %d), unsealed %d, max block %d",
		per, vt, len(ops), len(live), st.BlocksMerged, db.stats.mergedInCommitter.Load(), st.BlocksUnsealed,
		largestBlock(t, db, slicePrefix(w, s|movedSpace)))
	want, everything := replayAndCompare(t, db, ops, func(ref *DB) {
		rsr, _ := ref.Scrub(context.Background(), 0)
		sr, err := db.Scrub(context.Background(), 0)
		if err != nil || sr.Records != uint64(len(live)) || sr.Buckets != rsr.Buckets {
			t.Fatalf("scrub: %+v, %v; want %d records; reference %+v", sr, err, len(live), rsr)
		}
	})
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openTest(t, dir, mut)
	compareReads(t, "reopened", want, readEverything(t, db, everything, 5))
}

// TestEdgeChangesOfMovedBlocksReadExactly: edgeMove, 12 seeds.
func TestEdgeChangesOfMovedBlocksReadExactly(t *testing.T) {
	seeds := uint64(12)
	if raceDetector || testing.Short() {
		seeds = 2
	}
	for seed := uint64(1); seed <= seeds; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { edgeMove(t, seed) })
	}
}

// TestEdgeChangesOfMovedBlocksBesideAWriter: edgeMove with a writer making
// the same changes all along the move, the plan and the switch.
func TestEdgeChangesOfMovedBlocksBesideAWriter(t *testing.T) {
	seeds := uint64(8)
	if raceDetector || testing.Short() {
		seeds = 2
	}
	for seed := uint64(1); seed <= seeds; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { edgeMoveBeside(t, seed+1000, true) })
	}
}

// TestEdgeChangesOfMovedBlocksOfLargeRecords: edgeMove with records of 2–4 KB
// and a 1 MB memtable, so merged blocks are cut by bytes.
func TestEdgeChangesOfMovedBlocksOfLargeRecords(t *testing.T) {
	if raceDetector || testing.Short() {
		t.Skip("a minute under the race detector; make test runs this test without -race")
	}
	seeds := uint64(6)
	for seed := uint64(1); seed <= seeds; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { edgeMoveOf(t, seed+2000, seed%2 == 0, 4000) })
	}
}
