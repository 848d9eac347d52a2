package index

// A review of the merging switch (switch.go): changes landing between the
// plan of a switch (the merge cache) and the switch itself, records
// deleted and written again with another value, retention dropping the
// window in the middle of a move, a kill right after the switch, a run
// emptied whole, and the duplicate check and digests after all of it.

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/logmesh/logmesh/record"
)

// reviewStore: partitions 3 and 8 of slice 4 of a window three hours old,
// 100 records each, 10 ms apart, blocks of 8 records, maintenance left to
// the test. ops are what a reference store replays.
type reviewStore struct {
	t    *testing.T
	db   *DB
	dir  string
	w    record.Window
	ops  []randomOp
	live map[record.ID]Entry
	mut  func(*Config)
}

const reviewSlice = 4

func newReviewStore(t *testing.T, extra ...func(*Config)) *reviewStore {
	rs := &reviewStore{t: t, dir: t.TempDir(), live: map[record.ID]Entry{}}
	rs.mut = func(c *Config) {
		c.SealBlockRecords = 8
		c.MaintenanceInterval = time.Hour
		c.MemTableBytes = 1 << 20
		for _, m := range extra {
			m(c)
		}
	}
	rs.db = openTest(t, rs.dir, rs.mut)
	rs.w = record.WindowOf(time.Now().UnixMilli() - 3*record.WindowMillis)
	for _, p := range []record.Partition{3, 8} {
		var es []Entry
		for i := range 100 {
			es = append(es, entryAt(sliceStart(rs.w, reviewSlice)+int64(10*i), p, fmt.Sprintf("orig %d/%d word%d", p, i, i%20)))
		}
		rs.write(es, OriginLocal)
	}
	t.Cleanup(func() { moveBeforeSwitch, switchPlanned = nil, nil })
	return rs
}

func (rs *reviewStore) write(es []Entry, origin Origin) {
	rs.t.Helper()
	res, err := rs.db.Write(context.Background(), es, origin)
	if err != nil || res.Written != len(es) {
		rs.t.Errorf("write: %+v, %v", res, err)
		return
	}
	rs.ops = append(rs.ops, randomOp{write: es, origin: origin})
	for _, e := range es {
		rs.live[e.ID] = e
	}
}

func (rs *reviewStore) remove(ids []record.ID) {
	rs.t.Helper()
	res, err := rs.db.Delete(context.Background(), ids)
	if err != nil || res.Written != len(ids) {
		rs.t.Errorf("delete: %+v, %v", res, err)
		return
	}
	rs.ops = append(rs.ops, randomOp{del: ids})
	for _, id := range ids {
		delete(rs.live, id)
	}
}

// at is the i-th original record of partition p.
func (rs *reviewStore) at(p record.Partition, i int) Entry {
	for _, op := range rs.ops[:2] {
		for _, e := range op.write {
			if e.ID.Partition() == p && e.ID.Millis() == sliceStart(rs.w, reviewSlice)+int64(10*i) {
				return e
			}
		}
	}
	rs.t.Fatalf("no record %d of partition %d", i, p)
	return Entry{}
}

// move moves the slice and fails unless it switched.
func (rs *reviewStore) move() {
	rs.t.Helper()
	if err := rs.db.sealWindow(rs.w, reviewSlice, reviewSlice+1); err != nil {
		rs.t.Fatal(err)
	}
	if rs.t.Failed() {
		rs.t.FailNow()
	}
	if rs.db.movedNow(rs.w)&moved(sliceBit(reviewSlice)) == 0 {
		rs.t.Fatal("not moved")
	}
}

// check compares every reader with a store that never sealed (after the
// switch, the drop and sealing again), the digests and a scrub with it,
// and writes every live record again as a replica would: all duplicates.
func (rs *reviewStore) check() {
	t := rs.t
	t.Helper()
	replayAndCompare(t, rs.db, rs.ops, func(ref *DB) {
		if a, b := rs.db.Digest(), ref.Digest(); a != b {
			t.Errorf("digest %+v; the reference's %+v", a, b)
		}
		for _, p := range []record.Partition{3, 8} {
			if a, _ := rs.db.WindowDigests(rs.w, p); a != func() [record.BucketsPerPartition]record.Digest { d, _ := ref.WindowDigests(rs.w, p); return d }() {
				t.Errorf("partition %d: window digests differ from the reference's", p)
			}
		}
		compareReads(t, "partition scans", partitionReads(t, ref), partitionReads(t, rs.db))
		sr, err := rs.db.Scrub(context.Background(), 0)
		if err != nil || sr.Records != uint64(len(rs.live)) || sr.Buckets != 0 || sr.DamagedBlocks != 0 {
			t.Errorf("scrub: %+v, %v; want %d records, nothing amiss", sr, err, len(rs.live))
		}
	})
	var again []Entry
	for _, e := range rs.live {
		again = append(again, e)
	}
	res, err := rs.db.Write(context.Background(), again, OriginRemote)
	if err != nil || res.Duplicates != len(again) || res.Written != 0 {
		t.Errorf("writing the live records again: %+v, %v; want %d duplicates", res, err, len(again))
	}
}

// TestSwitchValueChangedBetweenThePlanAndTheSwitch: a late record merged
// into a block by the plan (the merge cache) is deleted and written again
// with another value before the switch: the switch must not reuse the
// plan's encoding. The same for a record of the copy changed twice (deleted
// before the plan, written again with another value after it).
func TestSwitchValueChangedBetweenThePlanAndTheSwitch(t *testing.T) {
	rs := newReviewStore(t)
	base := sliceStart(rs.w, reviewSlice)
	late := entryAt(base+255, 3, "late first value word7")
	var orig Entry
	moveBeforeSwitch = func(record.Window, uint8) {
		moveBeforeSwitch = nil
		rs.write([]Entry{late}, OriginRemote)
		orig = rs.at(8, 40)
		rs.remove([]record.ID{orig.ID})
	}
	planned := 0
	switchPlanned = func(record.Window, uint8) {
		switchPlanned = nil
		planned++
		rs.remove([]record.ID{late.ID})
		changed := late
		r := &record.Record{ID: late.ID, Message: "late second value", Raw: []byte("<13>late second value")}
		changed.Data = r.AppendEncode(nil)
		rs.write([]Entry{changed}, OriginRemote)
		back := orig
		r = &record.Record{ID: orig.ID, Message: "written back with another value word7", Raw: []byte("<13>back")}
		back.Data = r.AppendEncode(nil)
		rs.write([]Entry{back}, OriginRemote)
	}
	rs.move()
	if planned != 1 {
		t.Fatalf("%d plans", planned)
	}
	for _, id := range []record.ID{late.ID, orig.ID} {
		data, err := rs.db.Get(id)
		if err != nil || string(data) != string(rs.live[id].Data) {
			t.Errorf("Get %s after the switch: %q, %v; want the value written last", id, data, err)
		}
	}
	rs.check()
}

// TestSwitchChangesAtEveryPointOfTheSwitch: the same record changed before
// the copy, between the copy and the plan, and between the plan and the
// switch, in every order of set and delete, in blocks the plan merged and
// in blocks it did not.
func TestSwitchChangesAtEveryPointOfTheSwitch(t *testing.T) {
	rs := newReviewStore(t)
	base := sliceStart(rs.w, reviewSlice)
	mk := func(ms int64, p record.Partition, v string) Entry { return entryAt(base+ms, p, v+" word7") }
	a, b, c := mk(15, 3, "a"), mk(405, 3, "b"), mk(995, 8, "c")
	moveBeforeSwitch = func(record.Window, uint8) {
		moveBeforeSwitch = nil
		rs.write([]Entry{a, b}, OriginRemote)                   // merged by the plan
		rs.remove([]record.ID{rs.at(3, 0).ID, rs.at(8, 99).ID}) // the first and the last of runs
		rs.remove([]record.ID{rs.at(3, 7).ID, rs.at(3, 8).ID})  // the edges of two blocks
		rs.write([]Entry{rs.at(3, 7)}, OriginRemote)            // one written back
	}
	switchPlanned = func(record.Window, uint8) {
		switchPlanned = nil
		rs.remove([]record.ID{a.ID})                 // a merged late record goes
		rs.write([]Entry{c}, OriginRemote)           // a block not merged gets one
		rs.remove([]record.ID{rs.at(3, 7).ID})       // deleted again
		rs.write([]Entry{rs.at(3, 8)}, OriginRemote) // written back
		rs.remove([]record.ID{rs.at(8, 98).ID})      // the new last of a run
	}
	rs.move()
	rs.check()
}

// TestSwitchRunEmptiedWholeThenAddedTo: every record of a run deleted
// after its copy (every moved block merged into nothing), then, after the
// plan, a record written into its old range and one past it.
func TestSwitchRunEmptiedWholeThenAddedTo(t *testing.T) {
	rs := newReviewStore(t)
	base := sliceStart(rs.w, reviewSlice)
	moveBeforeSwitch = func(record.Window, uint8) {
		moveBeforeSwitch = nil
		var ids []record.ID
		for id := range rs.live {
			if id.Partition() == 8 {
				ids = append(ids, id)
			}
		}
		rs.remove(ids)
	}
	switchPlanned = func(record.Window, uint8) {
		switchPlanned = nil
		rs.write([]Entry{entryAt(base+505, 8, "into the emptied range word7"), entryAt(base+5_000, 8, "past it")}, OriginRemote)
	}
	rs.move()
	if l, b := keysIn(t, rs.db, runPrefix(rs.w, reviewSlice|movedSpace, 8)); l+b == 0 {
		t.Errorf("the run's moved space holds nothing; want its two records")
	}
	rs.check()
}

// TestSwitchRetentionDropsTheWindowDuringAMove: the window expires (and
// is dropped) between the plan of the switch and the switch, or between
// the copy and the plan: nothing of it may be left, nor marked moved, nor
// found after a reopen.
func TestSwitchRetentionDropsTheWindowDuringAMove(t *testing.T) {
	for _, when := range []string{"before the plan", "after the plan"} {
		t.Run(when, func(t *testing.T) {
			now := newRetentionClock()
			rs := newReviewStore(t, func(c *Config) {
				now.set(c, 4*time.Hour)
			})
			w := rs.w
			expire := func() {
				now.Add(2 * record.WindowMillis)
				if err := rs.db.expire(); err != nil {
					t.Errorf("expire: %v", err)
				}
				if rs.db.cutoff() <= w {
					t.Errorf("cutoff %d, window %d: not expired", rs.db.cutoff(), w)
				}
			}
			late := entryAt(sliceStart(w, reviewSlice)+255, 3, "late")
			moveBeforeSwitch = func(record.Window, uint8) {
				moveBeforeSwitch = nil
				rs.write([]Entry{late}, OriginRemote)
				if when == "before the plan" {
					expire()
				}
			}
			switchPlanned = func(record.Window, uint8) {
				switchPlanned = nil
				if when == "after the plan" {
					expire()
				}
			}
			err := rs.db.sealWindow(w, reviewSlice, reviewSlice+1)
			t.Logf("pass: %v; moved %x", err, rs.db.movedNow(w))
			if t.Failed() {
				t.FailNow()
			}
			if n := keysUnder(t, rs.db, windowPrefix(w)); n != 0 {
				t.Errorf("%d keys of the expired window left", n)
			}
			if rs.db.movedNow(w) != 0 || rs.db.mayHaveBlocks(w) {
				t.Errorf("the expired window is still noted: moved %x, blocks %v", rs.db.movedNow(w), rs.db.mayHaveBlocks(w))
			}
			if _, err := rs.db.Get(late.ID); err == nil {
				t.Error("a record of the expired window still reads")
			}
			var n int
			if err := rs.db.Scan(context.Background(), ScanOptions{}, func(record.ID, []byte) error { n++; return nil }); err != nil || n != 0 {
				t.Errorf("scan after the drop: %d records, %v", n, err)
			}
			if err := rs.db.Close(); err != nil {
				t.Fatal(err)
			}
			db := openTest(t, rs.dir, rs.mut, func(c *Config) {
				now.set(c, 4*time.Hour)
			})
			if n := keysUnder(t, db, windowPrefix(w)); n != 0 || db.movedNow(w) != 0 {
				t.Errorf("reopened: %d keys of the expired window, moved %x", n, db.movedNow(w))
			}
		})
	}
}

// TestSwitchKillRightAfterTheSwitch: the process dies right after the
// switch (no close, nothing dropped): the reopened store reads exactly,
// finds every record a duplicate, drops the loose records and seals again.
func TestSwitchKillRightAfterTheSwitch(t *testing.T) {
	rs := newReviewStore(t)
	base := sliceStart(rs.w, reviewSlice)
	moveBeforeSwitch = func(record.Window, uint8) {
		moveBeforeSwitch = nil
		rs.write([]Entry{entryAt(base+255, 3, "late word7"), entryAt(base+4_000, 8, "late past word7")}, OriginRemote)
		rs.remove([]record.ID{rs.at(8, 10).ID, rs.at(3, 99).ID})
	}
	switchPlanned = func(record.Window, uint8) {
		switchPlanned = nil
		rs.write([]Entry{entryAt(base+256, 3, "later word7")}, OriginRemote)
	}
	rs.move()
	digest := rs.db.Digest()
	crash(rs.db)
	rs.db = openTest(t, rs.dir, rs.mut)
	if rs.db.movedNow(rs.w)&moved(sliceBit(reviewSlice)) == 0 {
		t.Fatal("reopened: not moved")
	}
	if got := rs.db.Digest(); got != digest {
		t.Errorf("reopened: digest %+v, want %+v", got, digest)
	}
	rs.check()
}

// TestSwitchKillBetweenThePlanAndTheSwitch: the process dies after the
// plan, before the switch: the copies in the moved space must not show, and
// the next move must carry the changes made after the plan.
func TestSwitchKillBetweenThePlanAndTheSwitch(t *testing.T) {
	rs := newReviewStore(t)
	base := sliceStart(rs.w, reviewSlice)
	moveBeforeSwitch = func(record.Window, uint8) {
		moveBeforeSwitch = nil
		rs.write([]Entry{entryAt(base+255, 3, "late word7")}, OriginRemote)
	}
	switchPlanned = func(record.Window, uint8) {
		switchPlanned = nil
		rs.write([]Entry{entryAt(base+256, 3, "later word7")}, OriginRemote)
		crash(rs.db)
	}
	err := rs.db.sealWindow(rs.w, reviewSlice, reviewSlice+1)
	t.Logf("pass on a killed store: %v", err)
	if err == nil {
		t.Error("a move of a killed store succeeded")
	}
	rs.db = openTest(t, rs.dir, rs.mut)
	if rs.db.movedNow(rs.w) != 0 {
		t.Fatal("reopened: moved")
	}
	want, everything := func() (map[string]string, []Entry) {
		ref := openTest(t, t.TempDir())
		var all []Entry
		for _, op := range rs.ops {
			if op.write != nil {
				ref.Write(context.Background(), op.write, op.origin)
				all = append(all, op.write...)
			} else {
				ref.Delete(context.Background(), op.del)
			}
		}
		return readEverything(t, ref, all, 5), all
	}()
	compareReads(t, "reopened beside the copies", want, readEverything(t, rs.db, everything, 5))
	rs.move()
	rs.check()
}

// TestASwitchSettlesItsDeletes: the moved blocks a switch replaces
// with their merged encodings are deleted; those deletes must be settled
// (settle.go) like every other, or a value-log collection may write the
// replaced blocks back beside the merged ones.
func TestASwitchSettlesItsDeletes(t *testing.T) {
	rs := newReviewStore(t, func(c *Config) { c.ValueThreshold = 1 })
	base := sliceStart(rs.w, reviewSlice)
	moveBeforeSwitch = func(record.Window, uint8) {
		moveBeforeSwitch = nil
		// a late record inside a block (9 records: cut in two) and the
		// last record of another deleted: both change their block's key
		rs.write([]Entry{entryAt(base+255, 3, "late word7"), entryAt(base+255, 8, "late word7")}, OriginRemote)
		rs.remove([]record.ID{rs.at(3, 47).ID, rs.at(8, 47).ID})
	}
	rs.move()
	if rs.db.Stats().BlocksMerged == 0 {
		t.Fatal("no block merged")
	}
	rs.db.allowDiscard()
	if n := unsettledValues(t, rs.db); n != 0 {
		t.Fatalf("%d values the switch replaced or deleted are not settled", n)
	}
	rs.check()
}

// TestSwitchMoreSeeds runs edgeMove, edgeMoveBeside and randomMove over
// more seeds than make test (LOGMESH_SWITCH_SEEDS=from-to; skipped without it).
func TestSwitchMoreSeeds(t *testing.T) {
	var from, to uint64
	if _, err := fmt.Sscanf(os.Getenv("LOGMESH_SWITCH_SEEDS"), "%d-%d", &from, &to); err != nil {
		t.Skip("LOGMESH_SWITCH_SEEDS=from-to")
	}
	kind := os.Getenv("LOGMESH_SWITCH_KIND")
	for seed := from; seed <= to; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			switch kind {
			case "beside":
				edgeMoveBeside(t, seed, true)
			case "large":
				edgeMoveOf(t, seed, seed%2 == 0, 4000)
			case "random":
				randomMove(t, seed)
			default:
				edgeMove(t, seed)
			}
		})
	}
}

// partitionReads reads partitions 3 and 8 alone and together (Scan's
// Partitions, which readEverything does not use), in every order and way.
func partitionReads(t *testing.T, db *DB) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, set := range [][]record.Partition{{3}, {8}, {3, 8}} {
		var parts [record.NumPartitions]bool
		for _, p := range set {
			parts[p] = true
		}
		for _, reverse := range []bool{false, true} {
			for _, o := range []ScanOptions{{}, {Limit: 3}, {Workers: 2}, {Unordered: true}, {Limit: 1 << 20, Workers: 2}} {
				o.Partitions, o.Reverse = &parts, reverse
				o.Unordered = o.Unordered && !reverse
				var b strings.Builder
				err := db.Scan(context.Background(), o, func(id record.ID, data []byte) error {
					fmt.Fprintf(&b, "%s:%x ", id, data)
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				n, err := db.Count(context.Background(), o)
				if err != nil {
					t.Fatal(err)
				}
				out[fmt.Sprintf("%v reverse=%v limit=%d workers=%d unordered=%v", set, reverse, o.Limit, o.Workers, o.Unordered)] = fmt.Sprintf("%d: %s", n, b.String())
			}
		}
	}
	return out
}

// TestSwitchMergedBlocksNeverExceedSealBlockRecords: a block of 8 records
// (SealBlockRecords) merged with 8 late records is cut in two blocks of 8,
// not 9 and 7 (cutBlocks' bound, which the other tests do not reach
// exactly: their merged record counts are not multiples of the bound).
func TestSwitchMergedBlocksNeverExceedSealBlockRecords(t *testing.T) {
	rs := newReviewStore(t)
	base := sliceStart(rs.w, reviewSlice)
	moveBeforeSwitch = func(record.Window, uint8) {
		moveBeforeSwitch = nil
		var late []Entry
		for _, ms := range []int64{5, 15, 25, 35, 45, 55, 65, 69} { // inside the first block (0 .. 70 ms)
			late = append(late, entryAt(base+ms, 3, fmt.Sprintf("late %d word7", ms)))
		}
		rs.write(late, OriginRemote)
	}
	rs.move()
	if m := largestBlock(t, rs.db, slicePrefix(rs.w, reviewSlice|movedSpace)); m > 8 {
		t.Errorf("a merged block holds %d records, more than SealBlockRecords (8)", m)
	}
	checkBlockBound(t, rs.db)
	checkRunRules(t, rs.db)
	rs.check()
}
