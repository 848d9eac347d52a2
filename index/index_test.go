package index

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/logmesh/logmesh/record"
	"github.com/logmesh/logmesh/testutil/leaks"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, leaks.Options()...)
}

func openTest(t *testing.T, dir string, mut ...func(*Config)) *DB {
	t.Helper()
	cfg := TestConfig(dir)
	cfg.Logger = slog.New(slog.DiscardHandler)
	for _, m := range mut {
		m(&cfg)
	}
	db, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// makeEntries mints n records with receive times spread from base over span.
func makeEntries(n int, base time.Time, span time.Duration, seed uint64) []Entry {
	rng := rand.New(rand.NewPCG(seed, 7))
	out := make([]Entry, n)
	for i := range out {
		at := base.Add(time.Duration(rng.Int64N(int64(span) + 1)))
		g := record.NewGenerator(func() time.Time { return at })
		r := &record.Record{ID: g.Next(), Hostname: fmt.Sprintf("host-%d", rng.IntN(10)), AppName: "app",
			Message: fmt.Sprintf("message %d word%d", i, rng.IntN(100)), Severity: record.Severity(rng.IntN(8))}
		out[i] = Entry{ID: r.ID, Data: r.AppendEncode(nil)}
	}
	return out
}

func scanIDs(t *testing.T, db *DB, opts ScanOptions) []record.ID {
	t.Helper()
	var ids []record.ID
	err := db.Scan(context.Background(), opts, func(id record.ID, data []byte) error {
		var v record.View
		if err := v.Reset(data); err != nil {
			return err
		}
		ids = append(ids, id)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func sortedIDs(es []Entry) []record.ID {
	ids := make([]record.ID, len(es))
	for i, e := range es {
		ids[i] = e.ID
	}
	slices.SortFunc(ids, record.Compare)
	return ids
}

func TestWriteScanGetRoundTrip(t *testing.T) {
	db := openTest(t, t.TempDir())
	now := time.Now()
	es := makeEntries(3000, now.Add(-3*time.Hour), 3*time.Hour, 1)
	res, err := db.Write(context.Background(), es, OriginLocal)
	if err != nil || res.Written != len(es) {
		t.Fatalf("Write = %+v, %v", res, err)
	}
	want := sortedIDs(es)
	if got := scanIDs(t, db, ScanOptions{}); !slices.Equal(got, want) {
		t.Fatalf("ascending scan returned %d IDs, not the %d written in order", len(got), len(want))
	}
	rev := slices.Clone(want)
	slices.Reverse(rev)
	if got := scanIDs(t, db, ScanOptions{Reverse: true}); !slices.Equal(got, rev) {
		t.Fatal("descending scan is not the reverse order")
	}
	// a time range in the middle, both directions
	from, to := now.Add(-2*time.Hour).UnixMilli(), now.Add(-time.Hour).UnixMilli()
	var inRange []record.ID
	for _, id := range want {
		if id.Millis() >= from && id.Millis() <= to {
			inRange = append(inRange, id)
		}
	}
	if got := scanIDs(t, db, ScanOptions{FromMillis: from, ToMillis: to}); !slices.Equal(got, inRange) {
		t.Fatalf("range scan: got %d, want %d", len(got), len(inRange))
	}
	got := scanIDs(t, db, ScanOptions{FromMillis: from, ToMillis: to, Reverse: true})
	slices.Reverse(got)
	if !slices.Equal(got, inRange) {
		t.Fatal("reverse range scan differs")
	}
	for _, e := range es[:50] {
		data, err := db.Get(e.ID)
		if err != nil || string(data) != string(e.Data) {
			t.Fatalf("Get(%s) = %v", e.ID, err)
		}
	}
	if _, err := db.Get(record.NewGenerator(nil).Next()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of unknown ID: %v", err)
	}
}

func TestParallelScanMatchesSerial(t *testing.T) {
	db := openTest(t, t.TempDir())
	es := makeEntries(5000, time.Now().Add(-2*time.Hour), 2*time.Hour, 2)
	if _, err := db.Write(context.Background(), es, OriginLocal); err != nil {
		t.Fatal(err)
	}
	match := func(id record.ID, data []byte) bool { return id.Hash()%7 == 0 }
	for _, rev := range []bool{false, true} {
		serial := scanIDs(t, db, ScanOptions{Match: match, Reverse: rev})
		parallel := scanIDs(t, db, ScanOptions{Match: match, Reverse: rev, Workers: 3})
		if len(serial) == 0 || !slices.Equal(serial, parallel) {
			t.Fatalf("reverse=%v: serial %d IDs, parallel %d, or different order", rev, len(serial), len(parallel))
		}
	}
	// early stop from the callback ends a parallel scan cleanly
	n := 0
	err := db.Scan(context.Background(), ScanOptions{Match: match, Workers: 2}, func(record.ID, []byte) error {
		n++
		if n == 10 {
			return ErrStop
		}
		return nil
	})
	if err != nil || n != 10 {
		t.Fatalf("stopped scan: n=%d err=%v", n, err)
	}
	if held := sortedInUse.Load(); held != 0 {
		t.Fatalf("the stopped scan left %d bytes held by sorted scans", held)
	}
}

func TestRemoteWritesAreIdempotent(t *testing.T) {
	db := openTest(t, t.TempDir())
	es := makeEntries(500, time.Now().Add(-time.Hour), time.Hour, 3)
	ctx := context.Background()
	if _, err := db.Write(ctx, es[:300], OriginRemote); err != nil {
		t.Fatal(err)
	}
	res, err := db.Write(ctx, append(slices.Clone(es), es[:10]...), OriginRemote)
	if err != nil {
		t.Fatal(err)
	}
	if res.Written != 200 || res.Duplicates != 310 {
		t.Fatalf("second write = %+v, want 200 written and 310 duplicates", res)
	}
	if s := db.Stats(); s.Records != 500 {
		t.Fatalf("store counts %d records, want 500", s.Records)
	}
	if got := scanIDs(t, db, ScanOptions{}); len(got) != 500 {
		t.Fatalf("scan finds %d records, want 500", len(got))
	}
}

// digestsOf writes es into a fresh store in the given order and returns every digest.
func digestsOf(t *testing.T, es []Entry, batch int) map[record.Window][record.NumBuckets]record.Digest {
	t.Helper()
	db := openTest(t, t.TempDir())
	for i := 0; i < len(es); i += batch {
		if _, err := db.Write(context.Background(), es[i:min(i+batch, len(es))], OriginRemote); err != nil {
			t.Fatal(err)
		}
	}
	out := map[record.Window][record.NumBuckets]record.Digest{}
	for _, w := range db.AllWindows() {
		var all [record.NumBuckets]record.Digest
		for p := 0; p < record.NumPartitions; p++ {
			d, _ := db.WindowDigests(w, record.Partition(p))
			first, _ := record.Partition(p).Buckets()
			copy(all[first:], d[:])
		}
		out[w] = all
	}
	return out
}

func TestDigestsIgnoreOrderAndDuplicates(t *testing.T) {
	es := makeEntries(2000, time.Now().Add(-5*time.Hour), 5*time.Hour, 4)
	want := digestsOf(t, es, 2000)
	rng := rand.New(rand.NewPCG(9, 9))
	shuffled := slices.Clone(es)
	rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	withDups := append(shuffled, es[100:400]...)
	rng.Shuffle(len(withDups), func(i, j int) { withDups[i], withDups[j] = withDups[j], withDups[i] })
	for _, batch := range []int{1, 37, 5000} {
		if got := digestsOf(t, withDups, batch); !equalDigests(got, want) {
			t.Fatalf("batch %d: digests differ for the same set written in another order with duplicates", batch)
		}
	}
	if got := digestsOf(t, es[1:], 500); equalDigests(got, want) {
		t.Fatal("digests do not notice a missing record")
	}
}

func equalDigests(a, b map[record.Window][record.NumBuckets]record.Digest) bool {
	if len(a) != len(b) {
		return false
	}
	for w, d := range a {
		if b[w] != d {
			return false
		}
	}
	return true
}

func TestDigestsSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	cfg := TestConfig(dir)
	cfg.CheckpointInterval = time.Hour // force replay from the journal
	db, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	es := makeEntries(1000, time.Now().Add(-2*time.Hour), 2*time.Hour, 5)
	if _, err := db.Write(context.Background(), es[:600], OriginLocal); err != nil {
		t.Fatal(err)
	}
	if err := db.writeCheckpoint(); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Write(context.Background(), es[600:], OriginLocal); err != nil {
		t.Fatal(err)
	}
	before := db.Digest()
	// Close would checkpoint; skip it to replay the journal like after a crash.
	crash(db)
	db2 := openTest(t, dir)
	if got := db2.Digest(); got != before || got.Count != 1000 {
		t.Fatalf("digest after reopen %+v, want %+v", got, before)
	}
}

func TestRetentionDropsWholeWindowsAndRefusesExpiredWrites(t *testing.T) {
	now := time.Now()
	clock := now
	db := openTest(t, t.TempDir(), func(c *Config) {
		c.Retention = 2 * time.Hour
		c.Now = func() time.Time { return clock }
	})
	old := makeEntries(300, now.Add(-5*time.Hour), 10*time.Minute, 6)
	fresh := makeEntries(300, now.Add(-10*time.Minute), 10*time.Minute, 7)
	ctx := context.Background()
	if _, err := db.Write(ctx, append(slices.Clone(old), fresh...), OriginLocal); err != nil {
		t.Fatal(err)
	}
	clock = now.Add(30 * time.Minute) // the old records' windows are now past retention
	db.Maintain()
	got := scanIDs(t, db, ScanOptions{})
	if want := sortedIDs(fresh); !slices.Equal(got, want) {
		t.Fatalf("after retention %d records remain, want the %d fresh ones", len(got), len(want))
	}
	for _, id := range got {
		if id.Window() < db.Cutoff() {
			t.Fatalf("record %s of an expired window survived", id)
		}
	}
	if _, err := db.Get(old[0].ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("expired record still readable by ID: %v", err)
	}
	if uint64(len(got)) != db.Digest().Count {
		t.Fatal("digests and data disagree after retention")
	}
	res, err := db.Write(ctx, old[:5], OriginRemote)
	if err != nil || res.Expired != 5 || res.Written != 0 {
		t.Fatalf("write to expired window = %+v, %v; want 5 expired", res, err)
	}
}

// TestConcurrentCheckpointsAndPruningKeepDigestsWhole: checkpoints written
// from several goroutines while writes go on and the journal is pruned
// leave, after a crash, digests that count every stored record.
func TestConcurrentCheckpointsAndPruningKeepDigestsWhole(t *testing.T) {
	dir := t.TempDir()
	cfg := TestConfig(dir)
	cfg.CheckpointInterval = time.Hour // only the goroutines below checkpoint
	db, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	es := makeEntries(4000, time.Now().Add(-2*time.Hour), 2*time.Hour, 9)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if err := db.writeCheckpoint(); err != nil {
					t.Error(err)
					return
				}
				if err := db.pruneJournal(); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for i := 0; i < len(es); i += 100 {
		if _, err := db.Write(context.Background(), es[i:i+100], OriginLocal); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	wg.Wait()
	before := db.Digest()
	crash(db)
	db2 := openTest(t, dir)
	if got := db2.Digest(); got != before || got.Count != uint64(len(es)) {
		t.Fatalf("digest after a crash %+v, want %+v with %d records", got, before, len(es))
	}
}
