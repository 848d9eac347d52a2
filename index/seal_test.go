package index

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/logmesh/logmesh/record"
)

// sealEntries writes runs of 40 to 200 records into a few partitions of a
// few slices of three windows (dense runs, so that blocks of a few records
// make several blocks per run) and returns them.
func sealEntries(t *testing.T, db *DB, rng *rand.Rand, backs ...int64) []Entry {
	t.Helper()
	es := makeSealEntries(rng, backs...)
	if _, err := db.Write(context.Background(), es, OriginLocal); err != nil {
		t.Fatal(err)
	}
	return es
}

// makeSealEntries makes them in the windows backs hours ago (default 3, 2
// and 1: ended windows, whose slices are all in the past).
func makeSealEntries(rng *rand.Rand, backs ...int64) []Entry {
	now := time.Now().UnixMilli()
	parts := []record.Partition{3, 77, 150, 201}
	var es []Entry
	if len(backs) == 0 {
		backs = []int64{3, 2, 1}
	}
	for _, back := range backs {
		w := record.WindowOf(now - back*record.WindowMillis)
		for range 3 {
			s := rng.IntN(slicesPerWindow)
			start := sliceStart(w, uint8(s))
			if start+SliceMillis > now {
				start = now - SliceMillis // the current window: stay in the past
			}
			for _, p := range parts {
				for i := range 40 + rng.IntN(160) {
					id := idIn(start+rng.Int64N(SliceMillis), p)
					r := &record.Record{ID: id, Hostname: fmt.Sprintf("host-%d", rng.IntN(5)), AppName: "app",
						Message: fmt.Sprintf("message %d word%d", i, rng.IntN(20)), Raw: []byte(fmt.Sprintf("<13>raw line %d", i))}
					es = append(es, Entry{ID: id, Data: r.AppendEncode(nil)})
				}
			}
		}
	}
	return es
}

// readEverything reads the store through every reader, into one text per
// reader, so that two stores (or one before and after sealing) compare.
func readEverything(t *testing.T, db *DB, es []Entry, seed uint64) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	rng := rand.New(rand.NewPCG(seed, 1))
	digest := func(id record.ID, data []byte) string {
		h := fnv.New64a()
		h.Write(data)
		return fmt.Sprintf("%s:%x ", id, h.Sum64())
	}
	scan := func(name string, opts ScanOptions, stopAfter int) {
		var b strings.Builder
		n := 0
		err := db.Scan(ctx, opts, func(id record.ID, data []byte) error {
			b.WriteString(digest(id, data))
			if n++; stopAfter > 0 && n >= stopAfter {
				return ErrStop
			}
			return nil
		})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out[name] = b.String()
	}
	ids := sortedIDs(es)
	lo, hi := ids[0].Millis(), ids[len(ids)-1].Millis()
	// a whole-word match, as a query's word= makes, so that scans may skip
	// the blocks whose filter rules the word out (ScanOptions.Word)
	word := func(_ record.ID, data []byte) bool {
		var v record.View
		if err := v.Reset(data); err != nil {
			return false
		}
		return record.ContainsWord(v.Message(), []byte("word7")) || record.ContainsWord(v.Raw(), []byte("word7"))
	}
	for i := range 24 {
		from := lo + rng.Int64N(hi-lo)
		to := from + rng.Int64N(hi-from+1)
		if i == 0 {
			from, to = 0, 0
		}
		for _, reverse := range []bool{false, true} {
			opts := ScanOptions{FromMillis: from, ToMillis: to, Reverse: reverse}
			scan(fmt.Sprintf("scan %d reverse=%v", i, reverse), opts, 0)
			opts.Limit = 5
			scan(fmt.Sprintf("first 17 of %d reverse=%v", i, reverse), opts, 17)
			opts.Limit, opts.Match, opts.Workers, opts.Word = 0, word, 2, []byte("word7")
			scan(fmt.Sprintf("word scan %d reverse=%v", i, reverse), opts, 0)
			// the same through merged shares, and through sorted slices
			// that fall back to a merge over the budget
			opts.Limit = 1 << 30
			scan(fmt.Sprintf("merged word scan %d reverse=%v", i, reverse), opts, 0)
			opts.Limit, sortedScanBudget = 0, 3000
			scan(fmt.Sprintf("word scan over budget %d reverse=%v", i, reverse), opts, 0)
			sortedScanBudget = 32 << 20
			if a, b, c := out[fmt.Sprintf("word scan %d reverse=%v", i, reverse)], out[fmt.Sprintf("merged word scan %d reverse=%v", i, reverse)],
				out[fmt.Sprintf("word scan over budget %d reverse=%v", i, reverse)]; a != b || a != c {
				t.Fatalf("word scan %d reverse=%v: sorted, merged and over the budget differ:\n%.300s\n%.300s\n%.300s", i, reverse, a, b, c)
			}
		}
		var got []string
		err := db.Scan(ctx, ScanOptions{FromMillis: from, ToMillis: to, Unordered: true}, func(id record.ID, data []byte) error {
			got = append(got, digest(id, data))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		out[fmt.Sprintf("unordered %d", i)] = strings.Join(got, "")
		for _, m := range []func(record.ID, []byte) bool{nil, word} {
			var w []byte
			if m != nil {
				w = []byte("word7")
			}
			n, err := db.Count(ctx, ScanOptions{FromMillis: from, ToMillis: to, Match: m, Word: w})
			if err != nil {
				t.Fatal(err)
			}
			if n2, err := db.Count(ctx, ScanOptions{FromMillis: from, ToMillis: to, Match: m, Word: w, Workers: 3}); err != nil || n2 != n {
				t.Fatalf("count %d match=%v: %d with 3 workers (%v), %d with one", i, m != nil, n2, err, n)
			}
			out[fmt.Sprintf("count %d match=%v", i, m != nil)] = fmt.Sprint(n)
		}
	}
	// every ID one by one, and some that were never stored
	var b strings.Builder
	var missing []record.ID // never stored: an existing ID with another sequence
	for _, i := range []int{0, len(ids) / 2, len(ids) - 1} {
		id := ids[i]
		id[12] ^= 0x5a
		missing = append(missing, id)
	}
	for _, id := range append(slices.Clone(ids), missing...) {
		data, err := db.Get(id)
		if err != nil {
			b.WriteString(id.String() + ":" + err.Error() + " ")
			continue
		}
		b.WriteString(digest(id, data))
	}
	out["get"] = b.String()
	b.Reset()
	shuffled := append(slices.Clone(ids), missing...)
	rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	if err := db.GetMany(shuffled, func(id record.ID, data []byte) error { b.WriteString(digest(id, data)); return nil }); err != nil {
		t.Fatal(err)
	}
	out["get many"] = b.String()
	for _, w := range db.AllWindows() {
		for _, p := range []record.Partition{3, 77, 150, 201, 9} {
			first := record.Bucket(int(p) * record.BucketsPerPartition)
			for _, r := range [][2]record.Bucket{{first, first + record.BucketsPerPartition}, {first + 1, first + 3}} {
				b.Reset()
				err := db.PartitionIDs(w, p, r[0], r[1], func(id record.ID) error { b.WriteString(id.String() + " "); return nil })
				if err != nil {
					t.Fatal(err)
				}
				out[fmt.Sprintf("partition ids %d %d %v", w, p, r)] = b.String()
			}
		}
	}
	return out
}

func compareReads(t *testing.T, what string, before, after map[string]string) {
	t.Helper()
	bad := 0
	for k, v := range before {
		if after[k] != v {
			if bad++; bad <= 5 {
				i := 0
				for i < len(v) && i < len(after[k]) && v[i] == after[k][i] {
					i++
				}
				i = max(0, i-60)
				t.Errorf("%s: %s differs from byte %d:\nbefore %.300s\nafter  %.300s", what, k, i, v[i:], after[k][min(i, len(after[k])):])
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%s: %d of %d reads differ", what, bad, len(before))
	}
}

// TestSealedRunsReadAsLooseRecords seals runs into blocks (whole runs,
// the first part of runs, blocks of 1 to 37 records) and reads the store
// through every reader before, after, and after a reopen: every answer is
// the same. A remote write of the same records finds every one a duplicate,
// and a scrub finds every record where its digest says.
func TestSealedRunsReadAsLooseRecords(t *testing.T) {
	dir := t.TempDir()
	db := openTest(t, dir)
	rng := rand.New(rand.NewPCG(11, 12))
	es := sealEntries(t, db, rng)
	before := readEverything(t, db, es, 5)

	sealed, blocks := 0, 0
	for _, w := range db.AllWindows() {
		for s := range slicesPerWindow {
			for _, p := range []record.Partition{3, 77, 150, 201} {
				limit := 0
				switch rng.IntN(4) {
				case 0:
					continue // left loose
				case 1:
					limit = 1 + rng.IntN(60) // the older part: newer records stay loose
				}
				per := 1 + rng.IntN(37)
				n, err := db.sealRun(w, uint8(s), p, per, limit)
				if err != nil {
					t.Fatal(err)
				}
				sealed += n
				blocks += (n + per - 1) / per
			}
		}
	}
	// the newest record sealed too: a reopen finds it as a block's last
	newest := sortedIDs(es)[len(es)-1]
	if _, err := db.sealRun(newest.Window(), sliceOf(newest.Millis()), newest.Partition(), 5, 0); err != nil {
		t.Fatal(err)
	}
	if sealed < len(es)/3 || blocks < 100 {
		t.Fatalf("sealed %d of %d records in %d blocks: too few to prove anything", sealed, len(es), blocks)
	}
	skipped := db.Stats().BlocksSkipped
	compareReads(t, "after sealing", before, readEverything(t, db, es, 5))
	// word scans read the same as on loose records, and skipped blocks to
	// do so: most blocks of a few records lack the word
	if n := db.Stats().BlocksSkipped - skipped; n < uint64(blocks)/4 {
		t.Fatalf("word scans skipped %d blocks by their filter, in a store of %d small blocks", n, blocks)
	}

	res, err := db.Write(context.Background(), es, OriginRemote)
	if err != nil || res.Written != 0 || res.Duplicates != len(es) {
		t.Fatalf("writing the sealed records again: %+v, %v; want every one a duplicate", res, err)
	}
	sr, err := db.Scrub(context.Background(), 0)
	if err != nil || sr.Records != uint64(len(es)) || sr.Buckets != 0 || len(sr.Undecodable) != 0 || sr.DamagedBlocks != 0 {
		t.Fatalf("scrub of a sealed store: %+v, %v; want %d records, nothing amiss", sr, err, len(es))
	}

	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openTest(t, dir)
	if db.newest.floor != newest {
		t.Fatalf("after a reopen the store takes %s for its newest record, not %s", db.newest.floor, newest)
	}
	compareReads(t, "after a reopen", before, readEverything(t, db, es, 5))
}

// sealAll seals every run of db's windows in blocks of at most per records.
func sealAll(t *testing.T, db *DB, per int) {
	t.Helper()
	for _, w := range db.AllWindows() {
		for s := range slicesPerWindow {
			for p := range record.NumPartitions {
				if _, err := db.sealRun(w, uint8(s), record.Partition(p), per, 0); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

// TestLateWritesAndDeletesInsideBlocks compares a sealed store with one
// that never seals, after the same writes and deletes: records replicated
// late into the ranges of blocks, duplicates of sealed records, local
// records of old times, deletes of sealed records (several from one block,
// from writers at once, so that transactions in flight touch the same
// blocks). Every reader answers the same after the writes, after the
// sealed store seals again, and after it reopens.
func TestLateWritesAndDeletesInsideBlocks(t *testing.T) {
	t.Run("in place", func(t *testing.T) {
		testLateWritesAndDeletes(t, func(t *testing.T, db *DB) { sealAll(t, db, 9) })
	})
	// the sealer's way: slices moved, their loose records dropped after
	// the first sealing, left beside the blocks after the second
	drop := true
	t.Run("moved", func(t *testing.T) {
		testLateWritesAndDeletes(t, func(t *testing.T, db *DB) {
			moveAll(t, db)
			if drop {
				db.allowDiscard()
				if err := db.dropMoved(true); err != nil {
					t.Fatal(err)
				}
				drop = false
			}
		})
	})
}

// moveAll seals every window of db the sealer's way (sealWindow): slices
// not moved yet are moved, the loose records of moved ones sealed in place.
func moveAll(t *testing.T, db *DB) {
	t.Helper()
	for _, w := range db.AllWindows() {
		if err := db.sealWindow(w, 0, uint8(slicesPerWindow)); err != nil {
			t.Fatal(err)
		}
	}
}

func testLateWritesAndDeletes(t *testing.T, seal func(*testing.T, *DB)) {
	rng := rand.New(rand.NewPCG(21, 22))
	es := makeSealEntries(rng)
	dir := t.TempDir()
	sealed := openTest(t, dir, func(c *Config) { c.SealBlockRecords = 9 })
	ref := openTest(t, t.TempDir())
	for _, db := range []*DB{sealed, ref} {
		if _, err := db.Write(context.Background(), es, OriginLocal); err != nil {
			t.Fatal(err)
		}
	}
	seal(t, sealed)
	compareReads(t, "after sealing", readEverything(t, ref, es, 7), readEverything(t, sealed, es, 7))

	// four writers: late records in the ranges of blocks (minted at the
	// times of sealed records, in their partitions), duplicates, and
	// deletes of sealed records
	all := slices.Clone(es)
	var late, dups, deletes [4][]Entry
	var local [4][]Entry
	for i, e := range es {
		g := i % 4
		switch rng.IntN(10) {
		case 0, 1:
			id := idIn(e.ID.Millis(), e.ID.Partition())
			r := &record.Record{ID: id, Message: fmt.Sprintf("late word7 %d", i)}
			late[g] = append(late[g], Entry{ID: id, Data: r.AppendEncode(nil)})
		case 2:
			dups[g] = append(dups[g], e)
		case 3:
			deletes[g] = append(deletes[g], e)
		case 4:
			if i%5 == 0 {
				id := idIn(e.ID.Millis()+1, e.ID.Partition())
				r := &record.Record{ID: id, Message: fmt.Sprintf("old local %d", i)}
				local[g] = append(local[g], Entry{ID: id, Data: r.AppendEncode(nil)})
			}
		}
	}
	for g := range 4 {
		all = append(all, late[g]...)
		all = append(all, local[g]...)
	}
	apply := func(db *DB, g int) error {
		ctx := context.Background()
		ids := make([]record.ID, len(deletes[g]))
		for i, e := range deletes[g] {
			ids[i] = e.ID
		}
		// deletes first, while the blocks are whole: several of one block
		// in one request
		if res, err := db.Delete(ctx, ids); err != nil || res.Written != len(ids) {
			return fmt.Errorf("delete: %+v, %v; want %d deleted", res, err, len(ids))
		}
		for start := 0; start < len(late[g]); start += 17 {
			batch := late[g][start:min(start+17, len(late[g]))]
			if res, err := db.Write(ctx, append(slices.Clone(batch), dups[g]...), OriginRemote); err != nil || res.Written != len(batch) {
				return fmt.Errorf("late write: %+v, %v; want %d written", res, err, len(batch))
			}
		}
		if res, err := db.Write(ctx, local[g], OriginLocal); len(local[g]) > 0 && (err != nil || res.Written != len(local[g])) {
			return fmt.Errorf("local write: %+v, %v", res, err)
		}
		return nil
	}
	for g := range 4 {
		if err := apply(ref, g); err != nil {
			t.Fatal(err)
		}
	}
	errs := make(chan error, 4)
	for g := range 4 {
		go func() { errs <- apply(sealed, g) }()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := sealed.Stats().BlocksUnsealed; n == 0 {
		t.Fatal("no block was unsealed: the late writes and deletes missed every block")
	}
	checkRunRules(t, sealed)
	want := readEverything(t, ref, all, 8)
	compareReads(t, "after late writes and deletes", want, readEverything(t, sealed, all, 8))

	seal(t, sealed)
	compareReads(t, "sealed again", want, readEverything(t, sealed, all, 8))
	if err := sealed.Close(); err != nil {
		t.Fatal(err)
	}
	sealed = openTest(t, dir)
	compareReads(t, "after a reopen", want, readEverything(t, sealed, all, 8))
	if sr, err := sealed.Scrub(context.Background(), 0); err != nil || sr.Buckets != 0 || sr.DamagedBlocks != 0 {
		t.Fatalf("scrub after late writes and deletes: %+v, %v", sr, err)
	}
}

// TestDeletesOfOneBlockInOneRequest: two records of one block deleted by
// one request are both gone, and the block's other records stay.
func TestDeletesOfOneBlockInOneRequest(t *testing.T) {
	db := openTest(t, t.TempDir())
	ms := time.Now().Add(-2 * time.Hour).UnixMilli()
	var es []Entry
	for i := range 9 {
		id := idIn(ms+int64(i), 5)
		es = append(es, Entry{ID: id, Data: (&record.Record{ID: id, Message: fmt.Sprint(i)}).AppendEncode(nil)})
	}
	if _, err := db.Write(context.Background(), es, OriginLocal); err != nil {
		t.Fatal(err)
	}
	w, s := es[0].ID.Window(), sliceOf(ms)
	if n, err := db.sealRun(w, s, 5, 9, 0); err != nil || n != 9 {
		t.Fatalf("sealRun = %d, %v", n, err)
	}
	res, err := db.Delete(context.Background(), []record.ID{es[2].ID, es[6].ID})
	if err != nil || res.Written != 2 {
		t.Fatalf("Delete = %+v, %v; want 2 deleted", res, err)
	}
	for i, e := range es {
		_, err := db.Get(e.ID)
		if gone := err != nil; gone != (i == 2 || i == 6) {
			t.Errorf("record %d: Get error %v after deleting records 2 and 6", i, err)
		}
	}
}

// TestSealerSealsEndedWindows runs the background sealer: the windows that
// ended are sealed whole, the current one is left alone, every reader
// answers as before, the store is marked format 3, and a record replicated
// late into a sealed window is sealed at a later pass.
func TestSealerSealsEndedWindows(t *testing.T) {
	dir := t.TempDir()
	db := openTest(t, dir) // no sealer: reads do not yet run beside one (Config.SealAfter)
	rng := rand.New(rand.NewPCG(31, 32))
	es := sealEntries(t, db, rng, 2, 1, 0) // two ended windows and the current one
	nowID := idIn(time.Now().UnixMilli(), 3)
	nowRec := &record.Record{ID: nowID, Hostname: "host-0", AppName: "app", Message: "now", Raw: []byte("<13>now")}
	es = append(es, Entry{ID: nowID, Data: nowRec.AppendEncode(nil)})
	if _, err := db.Write(context.Background(), es[len(es)-1:], OriginLocal); err != nil {
		t.Fatal(err)
	}
	ws := db.AllWindows()
	if len(ws) != 3 {
		t.Fatalf("the records fill %d windows, not 3", len(ws))
	}
	before := readEverything(t, db, es, 9)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openTest(t, dir, func(c *Config) {
		c.SealAfter, c.SealInterval, c.SealBlockRecords = time.Millisecond, 20*time.Millisecond, 50
	})
	sealedAll := func() bool {
		for _, w := range ws[:2] {
			if runs, _, err := db.looseRuns(w, 0, uint8(slicesPerWindow)); err != nil || len(runs) > 0 {
				return false
			}
		}
		return true
	}
	waitFor(t, 10*time.Second, "the ended windows sealed", sealedAll)
	// the current window: the slices that ended are sealed, the current one
	// is left loose
	cur := ws[2]
	waitFor(t, 10*time.Second, "the current window's ended slices sealed", func() bool {
		before := time.Now().UnixMilli()
		runs, _, err := db.looseRuns(cur, 0, uint8(slicesPerWindow))
		if err != nil {
			return false
		}
		for _, r := range runs {
			if sliceStart(cur, uint8(r[0]))+SliceMillis <= before-50 {
				return false // an ended slice still loose
			}
		}
		return true
	})
	// a record of the current slice stays loose over a few passes
	passes := db.sealPasses.Load()
	waitFor(t, 10*time.Second, "three passes of the sealer", func() bool { return db.sealPasses.Load() >= passes+3 })
	if s := sliceOf(nowID.Millis()); record.WindowOf(nowID.Millis()) == cur && sliceStart(cur, s)+SliceMillis > time.Now().UnixMilli() {
		if runs, _, _ := db.looseRuns(cur, s, s+1); len(runs) == 0 {
			t.Fatal("the sealer sealed the current slice")
		}
	} else {
		t.Log("the slice of the record written now ended during the test: the current slice was not checked")
	}
	compareReads(t, "after the sealer", before, readEverything(t, db, es, 9))
	if v, err := db.GetMeta(metaFormat); err != nil || string(v) != strconv.Itoa(formatVersion) {
		t.Fatalf("a store with blocks is marked format %q (%v), not %d", v, err, formatVersion)
	}
	st := db.Stats()
	if st.BlocksWritten == 0 || st.RecordsSealed == 0 {
		t.Fatalf("stats after sealing: %+v", st)
	}

	old := es[0]
	id := idIn(old.ID.Millis(), old.ID.Partition())
	late := Entry{ID: id, Data: (&record.Record{ID: id, Message: "late"}).AppendEncode(nil)}
	if res, err := db.Write(context.Background(), []Entry{late}, OriginRemote); err != nil || res.Written != 1 {
		t.Fatalf("late write: %+v, %v", res, err)
	}
	waitFor(t, 10*time.Second, "the late record sealed", sealedAll)
	if data, err := db.Get(id); err != nil || string(data) != string(late.Data) {
		t.Fatalf("the late record after sealing: %v", err)
	}
}

const sealCrashDirEnv = "LOGMESH_INDEX_SEAL_CRASH_DIR"

// TestCrashSealerProcess is the child of TestSIGKILLDuringSealingKeepsEveryRecord:
// it writes records into ended windows while the sealer seals them (and the
// writes unseal them again), reporting every acknowledged ID.
func TestCrashSealerProcess(t *testing.T) {
	dir := os.Getenv(sealCrashDirEnv)
	if dir == "" {
		t.Skip("helper process for the SIGKILL-during-sealing test")
	}
	cfg := TestConfig(dir)
	cfg.SealAfter, cfg.SealInterval, cfg.SealBlockRecords = time.Millisecond, 5*time.Millisecond, 40
	db, err := Open(cfg)
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	out := bufio.NewWriter(os.Stdout)
	for i := uint64(0); ; i++ {
		es := makeEntries(100, time.Now().Add(-3*time.Hour), 2*time.Hour, i+500)
		if _, err := db.Write(context.Background(), es, OriginRemote); err != nil {
			fmt.Println("write:", err)
			os.Exit(1)
		}
		for _, e := range es {
			fmt.Fprintln(out, hex.EncodeToString(e.ID[:]))
		}
		out.Flush()
	}
}

// TestSIGKILLDuringSealingKeepsEveryRecord kills a process that seals and
// unseals while it writes: after a reopen every acknowledged record is
// there, every run keeps its rules, the digests agree with the data, and a
// scrub finds nothing amiss.
func TestSIGKILLDuringSealingKeepsEveryRecord(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashSealerProcess$")
	cmd.Env = append(os.Environ(), sealCrashDirEnv+"="+dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var acked []record.ID
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && len(acked) < 30000 {
		b, err := hex.DecodeString(strings.TrimSpace(sc.Text()))
		if err != nil || len(b) != record.IDLen {
			t.Fatalf("child said %q", sc.Text())
		}
		acked = append(acked, record.ID(b))
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for sc.Scan() {
		if b, err := hex.DecodeString(strings.TrimSpace(sc.Text())); err == nil && len(b) == record.IDLen {
			acked = append(acked, record.ID(b))
		}
	}
	_ = cmd.Wait()
	if len(acked) < 30000 {
		t.Fatalf("child acknowledged only %d records before dying", len(acked))
	}

	db := openTest(t, dir)
	if !db.mayHaveBlocks(acked[0].Window()) && !db.mayHaveBlocks(acked[len(acked)-1].Window()) {
		t.Fatal("the child sealed nothing before it died: the test proves nothing")
	}
	missing := 0
	for _, id := range acked {
		if _, err := db.Get(id); err != nil {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged records lost after SIGKILL during sealing", missing, len(acked))
	}
	blocks := checkRunRules(t, db)
	var fromData record.Digest
	var last record.ID
	n := 0
	if err := db.Scan(context.Background(), ScanOptions{}, func(id record.ID, _ []byte) error {
		if n > 0 && record.Compare(id, last) <= 0 {
			return fmt.Errorf("scan order: %s after %s", id, last)
		}
		last = id
		fromData.Add(id)
		n++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got := db.Digest(); got != fromData {
		t.Fatalf("digests out of step with data: digests count %d, data %d", got.Count, n)
	}
	if sr, err := db.Scrub(context.Background(), 0); err != nil || sr.Buckets != 0 || sr.DamagedBlocks != 0 || len(sr.Undecodable) != 0 {
		t.Fatalf("scrub after the kill: %+v, %v", sr, err)
	}
	t.Logf("%d acknowledged, %d on disk, %d blocks in windows %v", len(acked), n, blocks, db.AllWindows())
}

// checkRunRules fails t unless every run of db holds blocks that decode, do
// not overlap, and have no loose record inside their ranges.
func checkRunRules(t *testing.T, db *DB) (blocks int) {
	t.Helper()
	err := db.bdb.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixRecord}})
		defer it.Close()
		var prevRun []byte
		var prevLast record.ID
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()
			var first, last record.ID
			switch len(k) {
			case recordKeyLen:
				first, _ = idFromRecordKey(k)
				last = first
			case blockKeyLen:
				first, last, _ = blockRange(k)
				blocks++
				if err := it.Item().Value(func(v []byte) error {
					b, err := decodeBlock(v)
					if err == nil && (b.IDs[0] != first || b.IDs[len(b.IDs)-1] != last) {
						err = fmt.Errorf("holds %s..%s", b.IDs[0], b.IDs[len(b.IDs)-1])
					}
					return err
				}); err != nil {
					return fmt.Errorf("block %x: %w", k, err)
				}
			default:
				continue
			}
			run := k[:recordKeyLen-record.IDLen]
			if bytes.Equal(run, prevRun) && record.Compare(first, prevLast) <= 0 {
				return fmt.Errorf("key %x (from %s) overlaps what came before (to %s)", k, first, prevLast)
			}
			prevRun, prevLast = append(prevRun[:0], run...), last
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return blocks
}

// TestReadsBesideTheSealerAreExact reads while the sealer seals and
// replicated writes unseal the same windows: every scan (both ways), count
// and Get sees each record it should exactly once, in order — every record
// acknowledged before it started, and nothing never written.
//
// With the capture (capture.go), the same slices are moved from memory:
// the sealer cuts blocks beside the writes every pass.
func TestReadsBesideTheSealerAreExact(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for seconds")
	}
	t.Run("read back", func(t *testing.T) { testReadsBesideTheSealer(t, time.Time{}) })
	t.Run("from memory", func(t *testing.T) { testReadsBesideTheSealer(t, time.Now().Add(-4*time.Hour)) })
}

func testReadsBesideTheSealer(t *testing.T, captureSince time.Time) {
	db := openTest(t, t.TempDir(), func(c *Config) {
		c.SealAfter, c.SealInterval, c.SealBlockRecords = time.Millisecond, 5*time.Millisecond, 40
		c.captureSince = captureSince
	})
	var mu sync.Mutex
	acked := map[record.ID]bool{}
	var ackedList []record.ID
	tried := map[record.ID]bool{}
	stop := make(chan struct{})
	writerDone := make(chan error, 1)
	go func() {
		rng := rand.New(rand.NewPCG(77, 78))
		for i := uint64(0); ; i++ {
			select {
			case <-stop:
				writerDone <- nil
				return
			default:
			}
			es := makeEntries(200, time.Now().Add(-3*time.Hour), 2*time.Hour, i+900)
			if !captureSince.IsZero() {
				// and a run of 60 records within a few milliseconds, so
				// the capture cuts blocks beside the writes
				ms, p := time.Now().Add(-3*time.Hour).UnixMilli()+rng.Int64N(2*record.WindowMillis), record.Partition(rng.IntN(256))
				for j := range 60 {
					id := idIn(ms+int64(j%5), p)
					es = append(es, Entry{ID: id, Data: (&record.Record{ID: id, Message: fmt.Sprintf("dense %d %d", i, j)}).AppendEncode(nil)})
				}
			}
			mu.Lock()
			// and records at the millisecond of some already in moved
			// slices: inside their blocks' ranges, so writes unseal
			// blocks beside the scans however the timing falls
			for range min(len(ackedList), 100) {
				id := ackedList[rng.IntN(len(ackedList))]
				if db.movedNow(id.Window())&moved(sliceBit(sliceOf(id.Millis()))) == 0 {
					continue
				}
				nid := idIn(id.Millis(), id.Partition())
				r := &record.Record{ID: nid, Message: fmt.Sprintf("inside a moved slice %d", i)}
				es = append(es, Entry{ID: nid, Data: r.AppendEncode(nil)})
				if len(es) >= 220 {
					break
				}
			}
			for _, e := range es {
				tried[e.ID] = true
			}
			mu.Unlock()
			if _, err := db.Write(context.Background(), es, OriginRemote); err != nil {
				writerDone <- err
				return
			}
			mu.Lock()
			for _, e := range es {
				if !acked[e.ID] {
					ackedList = append(ackedList, e.ID)
				}
				acked[e.ID] = true
			}
			mu.Unlock()
		}
	}()
	check := func(reverse, sorted bool) error {
		opts := ScanOptions{Reverse: reverse}
		if sorted { // slices read whole by two goroutines, their records sorted
			opts.Match, opts.Workers = func(record.ID, []byte) bool { return true }, 2
		}
		mu.Lock()
		before := maps.Clone(acked)
		mu.Unlock()
		seen := map[record.ID]bool{}
		var last record.ID
		err := db.Scan(context.Background(), opts, func(id record.ID, _ []byte) error {
			if len(seen) > 0 && (record.Compare(id, last) <= 0) != reverse {
				return fmt.Errorf("reverse=%v: %s after %s", reverse, id, last)
			}
			if seen[id] {
				return fmt.Errorf("reverse=%v: %s twice", reverse, id)
			}
			seen[id], last = true, id
			return nil
		})
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		for id := range seen {
			if !tried[id] {
				return fmt.Errorf("reverse=%v: %s was never written", reverse, id)
			}
		}
		for id := range before {
			if !seen[id] {
				return fmt.Errorf("reverse=%v: %s, acknowledged before the scan, is missing (%d of %d seen)", reverse, id, len(seen), len(before))
			}
		}
		n, err := db.Count(context.Background(), ScanOptions{FromMillis: 1, Match: opts.Match, Workers: opts.Workers})
		if err != nil || n < uint64(len(before)) {
			return fmt.Errorf("count %d (%v), %d acknowledged before", n, err, len(before))
		}
		return nil
	}
	// maintenance drops the loose records of moved slices beside the scans
	maintDone := make(chan struct{})
	go func() {
		defer close(maintDone)
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
				db.Maintain()
			}
		}
	}()
	// four seconds, and on (up to a minute, on a loaded machine) until
	// everything the test reads beside has happened at least once
	deadline, last := time.Now().Add(4*time.Second), time.Now().Add(time.Minute)
	happened := func() bool {
		st := db.Stats()
		return st.BlocksWritten > 0 && st.BlocksUnsealed > 0 && st.SlicesMoved > 0 && st.SlicesDropped > 0
	}
	scans := 0
	for now := time.Now(); now.Before(deadline) || (now.Before(last) && !happened()); now = time.Now() {
		if err := check(scans%2 == 1, scans%4 >= 2); err != nil {
			close(stop)
			<-writerDone
			<-maintDone
			t.Fatalf("scan %d beside the sealer: %v", scans, err)
		}
		scans++
	}
	close(stop)
	<-maintDone
	if err := <-writerDone; err != nil {
		t.Fatal(err)
	}
	st := db.Stats()
	if st.BlocksWritten == 0 || st.BlocksUnsealed == 0 || st.SlicesMoved == 0 || st.SlicesDropped == 0 {
		t.Fatalf("the sealer wrote %d blocks, moved %d slices (%d dropped) and writes unsealed %d: nothing ran beside the scans",
			st.BlocksWritten, st.SlicesMoved, st.SlicesDropped, st.BlocksUnsealed)
	}
	// (blocks cut ahead depend on how the cutter's ticks fall against the
	// sealer's: TestMovesBesideCutsWritesAndDeletesReadExactly cuts for sure)
	if !captureSince.IsZero() && st.RunsFromMemory == 0 {
		t.Fatalf("moves took %d runs from memory (%d read back), %d blocks cut ahead", st.RunsFromMemory, st.RunsReadBack, st.CapturedBlocks)
	}
	t.Logf("%d scans beside %d blocks written, %d slices moved (%d runs copied again at the switch), %d dropped and %d blocks unsealed; %d runs from memory, %d read back, %d blocks cut ahead",
		scans, st.BlocksWritten, st.SlicesMoved, st.MovedRunsRecopied, st.SlicesDropped, st.BlocksUnsealed, st.RunsFromMemory, st.RunsReadBack, st.CapturedBlocks)
}

// oneRun writes n records into one partition's run of a slice two hours ago.
func oneRun(t *testing.T, db *DB, n int, p record.Partition) []Entry {
	t.Helper()
	ms := time.Now().Add(-2 * time.Hour).UnixMilli()
	ms -= ms % SliceMillis
	var es []Entry
	for i := range n {
		id := idIn(ms+int64(i*(SliceMillis-1)/n), p)
		es = append(es, Entry{ID: id, Data: (&record.Record{ID: id, Message: fmt.Sprint(i)}).AppendEncode(nil)})
	}
	if res, err := db.Write(context.Background(), es, OriginLocal); err != nil || res.Written != n {
		t.Fatalf("write: %+v %v", res, err)
	}
	return es
}

// TestDeletingOneRecordOfEachOfManyBlocks: a delete that unseals a thousand
// blocks splits into transactions Badger takes.
func TestDeletingOneRecordOfEachOfManyBlocks(t *testing.T) {
	db := openTest(t, t.TempDir())
	es := oneRun(t, db, 9000, 5)
	if _, err := db.sealRun(es[0].ID.Window(), sliceOf(es[0].ID.Millis()), 5, 9, 0); err != nil {
		t.Fatal(err)
	}
	var ids []record.ID
	for i := 0; i < len(es); i += 9 {
		ids = append(ids, es[i].ID)
	}
	res, err := db.Delete(context.Background(), ids)
	if err != nil || res.Written != len(ids) {
		t.Fatalf("delete of one record in each of %d blocks = %+v, %v", len(ids), res, err)
	}
	checkRunRules(t, db)
}

// TestBlocksOfLargeRecordsUnseal: a block is cut small enough that its
// records, written back loose, fit in one transaction; a late record and a
// delete inside it succeed, and a retry of the late record finds it stored.
func TestBlocksOfLargeRecordsUnseal(t *testing.T) {
	db := openTest(t, t.TempDir())
	ms := time.Now().Add(-2 * time.Hour).UnixMilli()
	ms -= ms % SliceMillis
	var es []Entry
	raw := []byte(strings.Repeat("a fairly long and very repetitive log line ", 100)) // 4.3 KB
	for i := range 400 {
		id := idIn(ms+int64(i*10), 5)
		es = append(es, Entry{ID: id, Data: (&record.Record{ID: id, Message: fmt.Sprint(i), Raw: raw}).AppendEncode(nil)})
	}
	if res, err := db.Write(context.Background(), es, OriginLocal); err != nil || res.Written != len(es) {
		t.Fatalf("write: %+v %v", res, err)
	}
	if n, err := db.sealRun(es[0].ID.Window(), sliceOf(ms), 5, 1024, 0); err != nil || n != len(es) {
		t.Fatalf("sealRun = %d, %v", n, err)
	}
	id := idIn(ms+55, 5)
	late := Entry{ID: id, Data: (&record.Record{ID: id, Message: "late"}).AppendEncode(nil)}
	if res, err := db.Write(context.Background(), []Entry{late}, OriginRemote); err != nil || res.Written != 1 {
		t.Fatalf("late write into a block: %+v, %v", res, err)
	}
	if res, err := db.Write(context.Background(), []Entry{late}, OriginRemote); err != nil || res.Duplicates != 1 {
		t.Fatalf("the late write again: %+v, %v", res, err)
	}
	if _, err := db.Get(id); err != nil {
		t.Fatalf("the late record: %v", err)
	}
	if res, err := db.Delete(context.Background(), []record.ID{es[3].ID}); err != nil || res.Written != 1 {
		t.Fatalf("delete from a block: %+v, %v", res, err)
	}
	checkRunRules(t, db)
}

// TestDuplicatesAfterUnsealsInOneRequest: late records that unseal several
// blocks (more than one transaction's worth), then copies of records of
// those blocks, in one request: the copies are duplicates, and the digests
// count each record once.
func TestDuplicatesAfterUnsealsInOneRequest(t *testing.T) {
	db := openTest(t, t.TempDir())
	es := oneRun(t, db, 10000, 5)
	if _, err := db.sealRun(es[0].ID.Window(), sliceOf(es[0].ID.Millis()), 5, 2000, 0); err != nil {
		t.Fatal(err)
	}
	var req []Entry
	for i := 0; i < len(es); i += 1000 {
		id := idIn(es[i].ID.Millis()+1, 5)
		req = append(req, Entry{ID: id, Data: (&record.Record{ID: id, Message: "late"}).AppendEncode(nil)})
	}
	for i := 0; i < len(es); i += 100 {
		req = append(req, es[i])
	}
	res, err := db.Write(context.Background(), req, OriginRemote)
	if err != nil || res.Written != 10 || res.Duplicates != 100 {
		t.Fatalf("Write = %+v, %v; want 10 written, 100 duplicates", res, err)
	}
	digestsAgree(t, db)
}

// TestDuplicateCheckBesideUnsealsInFlight: copies of sealed records arrive
// while other writes unseal their blocks; none is stored twice.
func TestDuplicateCheckBesideUnsealsInFlight(t *testing.T) {
	db := openTest(t, t.TempDir())
	es := oneRun(t, db, 5000, 5)
	if _, err := db.sealRun(es[0].ID.Window(), sliceOf(es[0].ID.Millis()), 5, 2, 0); err != nil {
		t.Fatal(err)
	}
	var written atomic.Int64
	var wg sync.WaitGroup
	for g := range 20 {
		wg.Go(func() {
			for i := g * 2; i+1 < len(es); i += 40 {
				id := idIn(es[i].ID.Millis()+1, 5)
				late := Entry{ID: id, Data: (&record.Record{ID: id, Message: "late"}).AppendEncode(nil)}
				var inner sync.WaitGroup
				inner.Go(func() { _, _ = db.Write(context.Background(), []Entry{late}, OriginRemote) })
				inner.Go(func() {
					res, _ := db.Write(context.Background(), []Entry{es[i], es[i+1]}, OriginRemote)
					written.Add(int64(res.Written))
				})
				inner.Wait()
			}
		})
	}
	wg.Wait()
	if n := written.Load(); n > 0 {
		t.Fatalf("%d records already stored were written again as new", n)
	}
	digestsAgree(t, db)
	checkRunRules(t, db)
}

// digestsAgree fails t unless the digests count what a scan finds.
func digestsAgree(t *testing.T, db *DB) {
	t.Helper()
	var fromData record.Digest
	if err := db.Scan(context.Background(), ScanOptions{}, func(id record.ID, _ []byte) error { fromData.Add(id); return nil }); err != nil {
		t.Fatal(err)
	}
	if got := db.Digest(); got != fromData {
		t.Fatalf("the digests count %d records, the store holds %d", got.Count, fromData.Count)
	}
}

// TestSealerLeavesARunThatChangedWhileItEncoded: the sealer reads and encodes
// a run from a snapshot beside the writes, and writes the blocks only if
// nothing in the run changed since. A late record inside the planned range,
// a delete of a planned record, and a record after it each make the plan
// write nothing (counted, for the next pass); a plan of an unchanged run
// writes. Every record stays readable exactly once, the deleted one stays
// deleted.
func TestSealerLeavesARunThatChangedWhileItEncoded(t *testing.T) {
	for _, change := range []string{"late record inside", "delete", "record after", "none"} {
		t.Run(change, func(t *testing.T) {
			db := openTest(t, t.TempDir())
			es := oneRun(t, db, 100, 5)
			w, s := es[0].ID.Window(), sliceOf(es[0].ID.Millis())
			txn, release := db.snapshot()
			defer release()
			plan, err := db.planSeal(txn, w, s, 5, 16, 0)
			if err != nil || len(plan.groups) != 7 {
				t.Fatalf("plan: %d groups, %v; want 7", len(plan.groups), err)
			}
			want := map[record.ID]bool{}
			for _, e := range es {
				want[e.ID] = true
			}
			var late record.ID
			switch change {
			case "late record inside", "record after":
				late = idIn(es[50].ID.Millis()+1, 5) // between es[50] and es[51]
				if change == "record after" {
					late = idIn(es[len(es)-1].ID.Millis()+1, 5)
				}
				e := Entry{ID: late, Data: (&record.Record{ID: late, Message: "late"}).AppendEncode(nil)}
				if res, err := db.Write(context.Background(), []Entry{e}, OriginRemote); err != nil || res.Written != 1 {
					t.Fatalf("late write: %+v, %v", res, err)
				}
				want[late] = true
			case "delete":
				if res, err := db.Delete(context.Background(), []record.ID{es[30].ID}); err != nil || res.Written != 1 {
					t.Fatalf("delete: %+v, %v", res, err)
				}
				delete(want, es[30].ID)
			}
			retried := db.Stats().SealsRetried
			n, err := db.applySeal(plan)
			if err != nil {
				t.Fatal(err)
			}
			if change == "none" {
				if n != len(es) || db.Stats().SealsRetried != retried {
					t.Fatalf("an unchanged run: sealed %d of %d", n, len(es))
				}
			} else if n != 0 || db.Stats().SealsRetried != retried+1 {
				t.Fatalf("a run that changed after the plan: sealed %d records, retries %d → %d; want none sealed, one retry",
					n, retried, db.Stats().SealsRetried)
			}
			checkRunRules(t, db)
			got := map[record.ID]int{}
			err = db.Scan(context.Background(), ScanOptions{}, func(id record.ID, _ []byte) error { got[id]++; return nil })
			if err != nil {
				t.Fatal(err)
			}
			for id := range want {
				if got[id] != 1 {
					t.Errorf("record %v read %d times, want once", id, got[id])
				}
			}
			if len(got) != len(want) {
				t.Errorf("scan read %d records, want %d", len(got), len(want))
			}
			// the next pass seals what changed
			if _, err := db.sealRun(w, s, 5, 16, 0); err != nil {
				t.Fatal(err)
			}
			checkRunRules(t, db)
		})
	}
}

// TestSliceMarkersSayWhichSlicesHoldBlocks: the blocks marker names the
// slices that hold blocks, so a write into a slice never sealed skips the
// look for a covering block, and a write into a sealed one still finds it,
// also after a reopen. A marker without slices (written by an older
// logmesh) stands for all of them.
func TestSliceMarkersSayWhichSlicesHoldBlocks(t *testing.T) {
	dir := t.TempDir()
	db := openTest(t, dir)
	w := record.WindowOf(time.Now().UnixMilli() - 2*record.WindowMillis)
	const p, sealedSlice, looseSlice = record.Partition(3), uint8(10), uint8(20)
	es := writeSlices(t, db, w, p, 40, sealedSlice, looseSlice)
	// the first transaction of the slice's sealing fails (a full disk):
	// the next pass must still write the marker it did not write
	sealTxnFault = func() error { return errors.New("injected: no space left on device") }
	n, err := db.sealRun(w, sealedSlice, p, 8, 0)
	sealTxnFault = nil
	if err == nil || n != 0 {
		t.Fatalf("sealing with a failing transaction: %d records, %v; want an error", n, err)
	}
	if n, err := db.sealRun(w, sealedSlice, p, 8, 0); err != nil || n != 40 {
		t.Fatalf("sealing slice %d: %d records, %v; want 40", sealedSlice, n, err)
	}
	// a logmesh that seals without naming slices must refuse the store
	if v, err := db.GetMeta(metaFormat); err != nil || string(v) != strconv.Itoa(formatVersion) || formatVersion < 4 {
		t.Fatalf("a store with slice markers is marked format %q (%v), want %d (at least 4)", v, err, formatVersion)
	}
	check := func(when string, wantLoose bool) {
		t.Helper()
		if !db.sliceMayHaveBlocks(w, sealedSlice) {
			t.Fatalf("%s: the sealed slice is not known to hold blocks", when)
		}
		if got := db.sliceMayHaveBlocks(w, looseSlice); got != !wantLoose {
			t.Fatalf("%s: the slice never sealed may hold blocks: %v, want %v", when, got, !wantLoose)
		}
	}
	check("after sealing", true)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openTest(t, dir)
	check("after a reopen", true)

	// late records inside the sealed slice's blocks, and one into the
	// loose slice: only the first kind unseals
	all := slices.Clone(es)
	var late []Entry
	for i := 0; i < 40; i += 5 {
		id := idIn(es[i].ID.Millis(), p)
		r := &record.Record{ID: id, Message: fmt.Sprintf("late %d", i)}
		late = append(late, Entry{ID: id, Data: r.AppendEncode(nil)})
	}
	loose := idIn(sliceStart(w, looseSlice)+50, p)
	late = append(late, Entry{ID: loose, Data: (&record.Record{ID: loose, Message: "late loose"}).AppendEncode(nil)})
	all = append(all, late...)
	if res, err := db.Write(context.Background(), late, OriginRemote); err != nil || res.Written != len(late) {
		t.Fatalf("late writes: %+v, %v; want %d written", res, err, len(late))
	}
	if n := db.Stats().BlocksUnsealed; n == 0 {
		t.Fatal("late records inside the sealed slice's blocks unsealed none of them")
	}
	checkRunRules(t, db)
	compareReads(t, "after late writes", readEverything(t, reference(t, all), all, 3), readEverything(t, db, all, 3))

	// an older logmesh's marker, without slices
	updateInCommitter(t, db, func(txn *badger.Txn) error { return txn.Set(blocksMarkerKey(w), nil) })
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openTest(t, dir)
	check("with a marker that names no slice", false)
}

// BenchmarkWritesBesideSealedSlices writes batches of new records, as a
// peer's own (local) and as replicated ones (remote, which are checked for
// duplicates), into a slice of a window whose 30 older slices are sealed,
// and the same into a window that holds no block, in the same run: ns per
// record of each and their ratio. Before blocks markers named their slices,
// a write anywhere in a window with blocks looked for a covering block.
func BenchmarkWritesBesideSealedSlices(b *testing.B) {
	cfg := DefaultConfig(b.TempDir())
	cfg.Logger = slog.New(slog.DiscardHandler)
	db, err := Open(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	now := time.Now().UnixMilli()
	sealedW := record.WindowOf(now - 2*record.WindowMillis)
	plainW := record.WindowOf(now - 3*record.WindowMillis)
	gens := map[record.Window]*record.Generator{}
	entries := func(w record.Window, s uint8, n int) []Entry {
		key := w*100 + record.Window(s) // a generator per slice of each window
		g := gens[key]
		if g == nil {
			ms := sliceStart(w, s) + 1000
			g = record.NewGenerator(func() time.Time { return time.UnixMilli(ms) })
			gens[key] = g
		}
		es := make([]Entry, n)
		for i := range es {
			r := &record.Record{ID: g.Next(), Hostname: "web-7", AppName: "api",
				Message: fmt.Sprintf("GET /v1/orders/%d 200 in %d ms", i, i%97)}
			es[i] = Entry{ID: r.ID, Data: r.AppendEncode(nil)}
		}
		return es
	}
	for _, w := range []record.Window{sealedW, plainW} {
		for s := range uint8(30) {
			if _, err := db.Write(ctx, entries(w, s, 4000), OriginLocal); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := db.sealWindow(sealedW, 0, 30); err != nil {
		b.Fatal(err)
	}
	if !db.mayHaveBlocks(sealedW) || db.mayHaveBlocks(plainW) {
		b.Fatal("the sealed window holds no block, or the plain one does")
	}
	const batch = 512
	var took [2][2]time.Duration // [sealed, plain][local, remote]
	var n int
	for b.Loop() {
		order := []int{0, 1}
		if n/batch%2 == 1 {
			order = []int{1, 0} // neither goes first every time
		}
		for _, i := range order {
			w := []record.Window{sealedW, plainW}[i]
			for j, origin := range []Origin{OriginLocal, OriginRemote} {
				es := entries(w, 40+uint8(j), batch)
				start := time.Now()
				if res, err := db.Write(ctx, es, origin); err != nil || res.Written != batch {
					b.Fatalf("write: %+v, %v", res, err)
				}
				took[i][j] += time.Since(start)
			}
		}
		n += batch
	}
	per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(n) }
	b.ReportMetric(per(took[0][0]), "ns/local_sealed")
	b.ReportMetric(per(took[1][0]), "ns/local_plain")
	b.ReportMetric(per(took[0][1]), "ns/remote_sealed")
	b.ReportMetric(per(took[1][1]), "ns/remote_plain")
	b.ReportMetric(per(took[0][0])/per(took[1][0]), "×plain_local")
	b.ReportMetric(per(took[0][1])/per(took[1][1]), "×plain_remote")
}

// rawMarker returns the value of window w's blocks marker, and whether it
// exists.
func rawMarker(t *testing.T, db *DB, w record.Window) ([]byte, bool) {
	t.Helper()
	var v []byte
	found := false
	err := db.bdb.View(func(txn *badger.Txn) error {
		item, err := txn.Get(blocksMarkerKey(w))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		found = true
		v, err = item.ValueCopy(nil)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return v, found
}

// updateInCommitter runs fn as a transaction that changes record keys,
// inside the committer, as the sealer's do.
func updateInCommitter(t *testing.T, db *DB, fn func(txn *badger.Txn) error) {
	t.Helper()
	done := make(chan error, 1)
	db.exclCh <- func() { done <- db.updateRecords(fn) }
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// writeSlices writes n records of partition p into each of slices ss of
// window w.
func writeSlices(t *testing.T, db *DB, w record.Window, p record.Partition, n int, ss ...uint8) []Entry {
	t.Helper()
	var es []Entry
	for _, s := range ss {
		for i := range n {
			id := idIn(sliceStart(w, s)+int64(i)*100, p)
			r := &record.Record{ID: id, Message: fmt.Sprintf("slice %d line %d", s, i)}
			es = append(es, Entry{ID: id, Data: r.AppendEncode(nil)})
		}
	}
	if _, err := db.Write(context.Background(), es, OriginLocal); err != nil {
		t.Fatal(err)
	}
	return es
}

// reference is a store that never seals, holding es.
func reference(t *testing.T, es []Entry) *DB {
	t.Helper()
	ref := openTest(t, t.TempDir())
	if _, err := ref.Write(context.Background(), es, OriginRemote); err != nil {
		t.Fatal(err)
	}
	return ref
}

// TestSliceMarkerKeepsEarlierSlicesAcrossAReopen: sealing a second slice
// after a reopen (its first transaction failing) names both slices.
// (Written by review.)
func TestSliceMarkerKeepsEarlierSlicesAcrossAReopen(t *testing.T) {
	dir := t.TempDir()
	db := openTest(t, dir)
	w := record.WindowOf(time.Now().UnixMilli() - 2*record.WindowMillis)
	const p = record.Partition(1)
	es := writeSlices(t, db, w, p, 20, 10, 20)
	if _, err := db.sealRun(w, 10, p, 8, 0); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openTest(t, dir)
	sealTxnFault = func() error { return errors.New("injected") }
	_, err := db.sealRun(w, 20, p, 8, 0)
	sealTxnFault = nil
	if err == nil {
		t.Fatal("the failing seal transaction did not fail the seal")
	}
	if _, err := db.sealRun(w, 20, p, 8, 0); err != nil {
		t.Fatal(err)
	}
	v, _ := rawMarker(t, db, w)
	if got, want := markerSlices(v), sliceBit(10)|sliceBit(20); got != want {
		t.Fatalf("the marker names slices %x, want %x", got, want)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openTest(t, dir)
	for _, s := range []uint8{10, 20} {
		if !db.sliceMayHaveBlocks(w, s) {
			t.Fatalf("slice %d is not known to hold blocks after a reopen", s)
		}
	}
	compareReads(t, "two sealed slices", readEverything(t, reference(t, es), es, 3), readEverything(t, db, es, 3))
}

// TestAFormat3StoreWithAnOldMarker: a store the previous logmesh sealed
// (format 3, a marker without slices) reads right, becomes format 4 with
// the next block, and its marker never narrows to the slices sealed since.
// (Written by review.)
func TestAFormat3StoreWithAnOldMarker(t *testing.T) {
	dir := t.TempDir()
	db := openTest(t, dir)
	w := record.WindowOf(time.Now().UnixMilli() - 2*record.WindowMillis)
	const p = record.Partition(2)
	es := writeSlices(t, db, w, p, 20, 10, 20, 30)
	if _, err := db.sealRun(w, 10, p, 8, 0); err != nil {
		t.Fatal(err)
	}
	updateInCommitter(t, db, func(txn *badger.Txn) error {
		if err := txn.Set(metaKey(metaFormat), []byte("3")); err != nil {
			return err
		}
		return txn.Set(blocksMarkerKey(w), nil)
	})
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openTest(t, dir)
	if got := db.storedFormat.Load(); got != 3 {
		t.Fatalf("a format 3 store opens as format %d", got)
	}
	ref := reference(t, es)
	compareReads(t, "format 3 reopened", readEverything(t, ref, es, 3), readEverything(t, db, es, 3))
	if _, err := db.sealRun(w, 20, p, 8, 0); err != nil {
		t.Fatal(err)
	}
	if v, _ := db.GetMeta(metaFormat); string(v) != strconv.Itoa(formatVersion) {
		t.Fatalf("format %q after sealing, want %d", v, formatVersion)
	}
	if v, ok := rawMarker(t, db, w); !ok || markerSlices(v) != allSlices {
		t.Fatalf("the old marker was narrowed to %x (found %v)", v, ok)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openTest(t, dir)
	if !db.sliceMayHaveBlocks(w, 30) || !db.sliceMayHaveBlocks(w, 10) {
		t.Fatal("the old marker no longer stands for every slice")
	}
	if _, err := db.sealRun(w, 30, p, 8, 0); err != nil {
		t.Fatal(err)
	}
	compareReads(t, "format 4", readEverything(t, ref, es, 3), readEverything(t, db, es, 3))
}

// BenchmarkSealBesideWrites seals one minute slice of 131 072 sample
// records while two writers go on writing new records into the current
// slice, as an agent's ingestion does (--fsync 100ms), and measures in the
// same round the same writers alone. It reports the writers' rate beside the sealer as a
// share of their rate alone (what sealing costs ingestion) and the sealer's
// rate as a share of the writers' rate beside it: at 1 or more, a sealer
// keeps up with the ingestion that goes on beside it and the store ends an
// hour in blocks; below, loose records pile up.
func BenchmarkSealBesideWrites(b *testing.B) {
	for _, store := range []struct {
		name      string
		threshold int64
	}{{"default", 0}, {"value-log", 64}} {
		b.Run("store="+store.name, func(b *testing.B) {
			cfg := DefaultConfig(b.TempDir())
			cfg.Logger = slog.New(slog.DiscardHandler)
			cfg.ValueThreshold = store.threshold
			cfg.FsyncInterval = 100 * time.Millisecond // as logmesh bench --sustained runs the agent
			db, err := Open(cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			const n, batch, writers = 131072, 512, 2
			templates := sampleBlockRecords(4096, 1000)
			recs := make([]record.Record, len(templates))
			for i, t := range templates {
				r, err := record.Decode(t.ID, t.Data)
				if err != nil {
					b.Fatal(err)
				}
				recs[i] = *r
			}
			entries := func(g *record.Generator, k int) []Entry {
				es := make([]Entry, k)
				for i := range es {
					r := recs[(i*7919+k)%len(recs)]
					r.ID = g.Next()
					es[i] = Entry{ID: r.ID, Data: r.AppendEncode(nil)}
				}
				return es
			}
			ctx := context.Background()
			now := time.Now().UnixMilli()
			current := record.WindowOf(now)
			// write k records into slice s of window w, from writers goroutines
			// at once, until k are written or stop closes (k 0: until stop)
			write := func(w record.Window, s uint8, k int, stop <-chan struct{}) int64 {
				var written atomic.Int64
				var wg sync.WaitGroup
				for range writers {
					wg.Go(func() {
						ms := sliceStart(w, s) + 1000
						g := record.NewGenerator(func() time.Time { return time.UnixMilli(ms) })
						for k == 0 || written.Load() < int64(k) {
							select {
							case <-stop:
								return
							default:
							}
							if _, err := db.Write(ctx, entries(g, batch), OriginLocal); err != nil {
								b.Error(err)
								return
							}
							written.Add(batch)
						}
					})
				}
				wg.Wait()
				return written.Load()
			}
			var alone, beside, sealing time.Duration
			var aloneN, besideN, toSeal int64
			round := 0
			for b.Loop() {
				b.StopTimer()
				w := record.WindowOf(now - int64(2+round/59)*record.WindowMillis)
				s := uint8(round % 59)
				round++
				toSeal += write(w, s, n, nil)
				b.StartTimer()
				start := time.Now()
				aloneN += write(current, uint8(round%60), n, nil)
				alone += time.Since(start)
				stop := make(chan struct{})
				sealed := make(chan error, 1)
				start = time.Now()
				go func() {
					defer close(stop)
					sealed <- db.sealWindow(w, s, s+1)
				}()
				besideN += write(current, uint8(round%60), 0, stop)
				beside += time.Since(start)
				if err := <-sealed; err != nil {
					b.Fatal(err)
				}
				sealing += time.Since(start)
			}
			if got := db.Stats().RecordsSealed; got != uint64(toSeal) {
				b.Fatalf("sealed %d of %d records", got, toSeal)
			}
			// what maintenance then spends settling the seal's deletes
			// (settle.go), against the sealing itself
			b.StopTimer()
			start := time.Now()
			db.allowDiscard()
			settling := time.Since(start)
			if got := db.Stats().DeletesSettled; got < uint64(toSeal) {
				b.Fatalf("settled %d deleted versions of %d sealed records", got, toSeal)
			}
			b.ReportMetric(settling.Seconds()/sealing.Seconds(), "settle×seal")
			rate := func(k int64, d time.Duration) float64 { return float64(k) / d.Seconds() }
			sealRate := rate(toSeal, sealing)
			b.ReportMetric(rate(aloneN, alone), "writes/s_alone")
			b.ReportMetric(rate(besideN, beside), "writes/s_beside")
			b.ReportMetric(sealRate, "sealed/s")
			b.ReportMetric(rate(besideN, beside)/rate(aloneN, alone), "×alone")
			b.ReportMetric(sealRate/rate(besideN, beside), "keeps_up")
		})
	}
}

// TestSealPacksRunsIntoTransactionsBadgerTakes: the sealer writes the
// blocks of many runs in one transaction, up to half of what Badger takes
// in one, and in more where they do not fit. With 1 MiB memtables (Badger
// takes about 150 KB in one transaction) the 24 runs of a slice need
// several; every record is sealed, the run rules hold, every reader
// answers as a store that never sealed, and the marker names the slice.
func TestSealPacksRunsIntoTransactionsBadgerTakes(t *testing.T) {
	dir := t.TempDir()
	db := openTest(t, dir, func(c *Config) { c.MemTableBytes = 1 << 20 })
	w := record.WindowOf(time.Now().Add(-2 * time.Hour).UnixMilli())
	var all []Entry
	for p := range record.Partition(24) {
		all = append(all, writeSlices(t, db, w, p*10, 300, 7)...)
	}
	before := readEverything(t, reference(t, all), all, 4)
	txns := 0
	sealTxnFault = func() error { txns++; return nil }
	defer func() { sealTxnFault = nil }()
	if err := db.sealWindow(w, 7, 8); err != nil {
		t.Fatal(err)
	}
	if n := db.Stats().RecordsSealed; n != uint64(len(all)) {
		t.Fatalf("sealed %d of %d records", n, len(all))
	}
	batches := (len(all) + sealBatchRecords - 1) / sealBatchRecords
	txns -= int(db.Stats().SlicesMoved) // the switches' transactions
	if txns <= batches || txns >= 24 {
		t.Fatalf("%d seal transactions for 24 runs in %d batches: want more than one per batch (they do not fit in one) and fewer than one per run", txns, batches)
	}
	t.Logf("%d transactions, %d batches", txns, batches)
	if blocks := checkRunRules(t, db); blocks < 24 {
		t.Fatalf("%d blocks for 24 runs", blocks)
	}
	compareReads(t, "sealed in packed transactions", before, readEverything(t, db, all, 4))
	if v, ok := rawMarker(t, db, w); !ok || markerSlices(v) != sliceBit(7) {
		t.Fatalf("the marker names slices %#x (found: %v), want slice 7 only", markerSlices(v), ok)
	}
}

// TestAPackedSealTransactionThatFailsLeavesEveryRunCorrect (from a review): the runs
// of two slices sealed in packed transactions, the second transaction
// failing; after a reopen every run keeps its rules, reads are exact and
// each slice that holds a block is named by the marker; the next pass
// seals the rest and names both slices.
func TestAPackedSealTransactionThatFailsLeavesEveryRunCorrect(t *testing.T) {
	dir := t.TempDir()
	small := func(c *Config) { c.MemTableBytes = 1 << 20 }
	db := openTest(t, dir, small)
	w := record.WindowOf(time.Now().Add(-2 * time.Hour).UnixMilli())
	var all []Entry
	for p := range record.Partition(12) {
		all = append(all, writeSlices(t, db, w, p*10, 300, 7, 8)...)
	}
	before := readEverything(t, reference(t, all), all, 4)
	txns := 0
	sealTxnFault = func() error {
		txns++
		if txns == 2 {
			return errors.New("injected: no space left on device")
		}
		return nil
	}
	err := db.sealWindow(w, 7, 9)
	sealTxnFault = nil
	if err == nil {
		t.Fatal("the failing second transaction did not fail the turn")
	}
	// (a move's records count as sealed at its switch, which never came)
	if st := db.Stats(); st.BlocksWritten == 0 || st.SlicesMoved != 0 || st.RecordsSealed != 0 {
		t.Fatalf("%d blocks written, %d slices switched, %d records sealed before the failure; want blocks and no switch",
			st.BlocksWritten, st.SlicesMoved, st.RecordsSealed)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openTest(t, dir, small)
	checkRunRules(t, db)
	compareReads(t, "after a failed packed transaction and a reopen", before, readEverything(t, db, all, 4))
	if err := db.sealWindow(w, 7, 9); err != nil {
		t.Fatal(err)
	}
	if v, ok := rawMarker(t, db, w); !ok || markerSlices(v) != sliceBit(7)|sliceBit(8) {
		t.Fatalf("marker names %#x (found %v), want slices 7 and 8", markerSlices(v), ok)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openTest(t, dir, small)
	for _, s := range []uint8{7, 8} {
		if !db.sliceMayHaveBlocks(w, s) {
			t.Fatalf("slice %d not known to hold blocks after a reopen", s)
		}
	}
	checkRunRules(t, db)
	compareReads(t, "sealed after a failed transaction", before, readEverything(t, db, all, 4))
}

// One pass seals every batch of a slice: the sealer reads the next batch
// while the one before is written, and none is planned twice or left out.
func TestOneSealPassSealsEveryBatch(t *testing.T) {
	db := openTest(t, t.TempDir())
	w := record.WindowOf(time.Now().Add(-2 * time.Hour).UnixMilli())
	var all []Entry
	for p := range record.Partition(40) {
		all = append(all, writeSlices(t, db, w, p*4, 450, 7)...)
	}
	if batches := (len(all) + sealBatchRecords - 1) / sealBatchRecords; batches < 2 {
		t.Fatalf("%d records make %d batches: the test proves nothing", len(all), batches)
	}
	if err := db.sealWindow(w, 7, 8); err != nil {
		t.Fatal(err)
	}
	if n := db.Stats().RecordsSealed; n != uint64(len(all)) {
		t.Fatalf("one pass sealed %d of %d records", n, len(all))
	}
	if runs, _, err := db.looseRuns(w, 7, 8); err != nil || len(runs) != 0 {
		t.Fatalf("%d runs still hold loose records after one pass (%v)", len(runs), err)
	}
	if blocks := checkRunRules(t, db); blocks < 40 {
		t.Fatalf("%d blocks for 40 runs", blocks)
	}
}
