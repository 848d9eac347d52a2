package index

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/logmesh/logmesh/record"
)

// entriesAt mints one record at each of the given receive times.
func entriesAt(times []int64) []Entry {
	out := make([]Entry, len(times))
	for i, ms := range times {
		at := time.UnixMilli(ms)
		g := record.NewGenerator(func() time.Time { return at })
		r := &record.Record{ID: g.Next(), Hostname: "h", AppName: "app", Message: "m"}
		out[i] = Entry{ID: r.ID, Data: r.AppendEncode(nil)}
	}
	return out
}

// TestSlicesScanAsOneOrderedRun: records on both sides of every slice
// boundary of two windows, scanned over random ranges in both directions,
// with and without a limit, filtered serially and in parallel, come back
// exactly as a sorted list cut to the range would; PartitionIDs of every
// partition lists that partition's records of the window.
func TestSlicesScanAsOneOrderedRun(t *testing.T) {
	db := openTest(t, t.TempDir())
	w0 := record.WindowOf(time.Now().Add(-2 * time.Hour).UnixMilli())
	var times []int64
	rng := rand.New(rand.NewPCG(17, 3))
	for _, w := range []record.Window{w0, w0 + 1} {
		for s := 0; s < slicesPerWindow; s++ {
			if s%7 == 3 {
				continue // some empty slices
			}
			start := sliceStart(w, uint8(s))
			times = append(times, start, start+1, start+SliceMillis-1, start+rng.Int64N(SliceMillis))
			for range 20 {
				times = append(times, start+rng.Int64N(SliceMillis))
			}
		}
	}
	es := entriesAt(times)
	if _, err := db.Write(context.Background(), es, OriginLocal); err != nil {
		t.Fatal(err)
	}
	all := sortedIDs(es)
	inRange := func(from, to int64) []record.ID {
		var out []record.ID
		for _, id := range all {
			if id.Millis() >= from && id.Millis() <= to {
				out = append(out, id)
			}
		}
		return out
	}
	ranges := [][2]int64{{0, 0}, {w0.Start(), w0.End() - 1}, {w0.Start() + SliceMillis, w0.Start() + 2*SliceMillis - 1}}
	for range 60 {
		a := w0.Start() + rng.Int64N(2*record.WindowMillis)
		b := a + rng.Int64N(40*SliceMillis)
		if rng.IntN(3) == 0 { // on a slice boundary
			a -= a % SliceMillis
		}
		ranges = append(ranges, [2]int64{a, b})
	}
	match := func(id record.ID, _ []byte) bool { return id.Hash()%3 != 0 }
	for _, r := range ranges {
		to := r[1]
		if to == 0 {
			to = 1<<48 - 1
		}
		want := inRange(r[0], to)
		got := scanIDs(t, db, ScanOptions{FromMillis: r[0], ToMillis: r[1]})
		if !slices.Equal(got, want) {
			t.Fatalf("range %v: %d IDs, want %d in order", r, len(got), len(want))
		}
		rev := scanIDs(t, db, ScanOptions{FromMillis: r[0], ToMillis: r[1], Reverse: true})
		slices.Reverse(rev)
		if !slices.Equal(rev, want) {
			t.Fatalf("range %v reversed: %d IDs, want %d in order", r, len(rev), len(want))
		}
		// the same merged (a limit, or a window too large to sort)
		merged := scanIDs(t, db, ScanOptions{FromMillis: r[0], ToMillis: r[1], Limit: 1 << 30})
		mergedRev := scanIDs(t, db, ScanOptions{FromMillis: r[0], ToMillis: r[1], Reverse: true, Limit: 1 << 30})
		slices.Reverse(mergedRev)
		if !slices.Equal(merged, want) || !slices.Equal(mergedRev, want) {
			t.Fatalf("range %v merged: %d and %d (reversed) IDs, want %d in order", r, len(merged), len(mergedRev), len(want))
		}
		var filtered []record.ID
		for _, id := range want {
			if match(id, nil) {
				filtered = append(filtered, id)
			}
		}
		// with a limit: shares by slice, then by partition, merged; without:
		// slices read whole and sorted, and slices merged where their
		// matches are over the budget of a sorted scan
		for _, way := range []struct {
			dense         uint64
			limit         int
			budget, total int64
		}{{200_000, 1 << 30, 32 << 20, 128 << 20}, {1, 1 << 30, 32 << 20, 128 << 20}, {200_000, 0, 32 << 20, 128 << 20},
			{200_000, 0, 1, 128 << 20}, {200_000, 0, 2000, 128 << 20}, {200_000, 0, 32 << 20, 1500}, {1, 0, 32 << 20, 1}} {
			denseWindowRecords, sortedScanBudget, sortedScanTotal = way.dense, way.budget, way.total
			par := scanIDs(t, db, ScanOptions{FromMillis: r[0], ToMillis: r[1], Match: match, Workers: 2, Limit: way.limit})
			parRev := scanIDs(t, db, ScanOptions{FromMillis: r[0], ToMillis: r[1], Match: match, Workers: 2, Reverse: true, Limit: way.limit})
			slices.Reverse(parRev)
			denseWindowRecords, sortedScanBudget, sortedScanTotal = 200_000, 32<<20, 128<<20
			if n := sortedInUse.Load(); n != 0 {
				t.Fatalf("range %v %+v: sorted scans still hold %d bytes after they ended", r, way, n)
			}
			if !slices.Equal(par, filtered) || !slices.Equal(parRev, filtered) {
				t.Fatalf("range %v filtered in parallel %+v: %d and %d (reversed) IDs, want %d in order",
					r, way, len(par), len(parRev), len(filtered))
			}
		}
		// a process-wide total below what the range matches: the scan
		// merges rather than holding more
		sortedScanTotal = 1500
		capErr := db.Scan(context.Background(), ScanOptions{FromMillis: r[0], ToMillis: r[1], Match: match, Workers: 2}, func(record.ID, []byte) error {
			if n := sortedInUse.Load(); n > sortedScanTotal {
				return fmt.Errorf("sorted scans hold %d bytes, over the total of %d", n, sortedScanTotal)
			}
			return nil
		})
		sortedScanTotal = 128 << 20
		if capErr != nil {
			t.Fatalf("range %v: %v", r, capErr)
		}
		for _, workers := range []int{0, 2, 3} {
			n, err := db.Count(context.Background(), ScanOptions{FromMillis: r[0], ToMillis: r[1], Match: match, Workers: workers})
			if err != nil || n != uint64(len(filtered)) {
				t.Fatalf("range %v: %d workers count %d matches (%v), want %d", r, workers, n, err, len(filtered))
			}
		}
		// an unordered scan gives the same records (filtered: the same
		// matches), in any order
		un := scanIDs(t, db, ScanOptions{FromMillis: r[0], ToMillis: r[1], Unordered: true})
		slices.SortFunc(un, record.Compare)
		unf := scanIDs(t, db, ScanOptions{FromMillis: r[0], ToMillis: r[1], Unordered: true, Match: match})
		slices.SortFunc(unf, record.Compare)
		if !slices.Equal(un, want) || !slices.Equal(unf, filtered) {
			t.Fatalf("range %v unordered: %d IDs (%d filtered), want %d (%d)", r, len(un), len(unf), len(want), len(filtered))
		}
		var limited []record.ID
		err := db.Scan(context.Background(), ScanOptions{FromMillis: r[0], ToMillis: r[1], Reverse: true, Limit: 5},
			func(id record.ID, _ []byte) error {
				limited = append(limited, id)
				if len(limited) == 5 {
					return ErrStop
				}
				return nil
			})
		if err != nil {
			t.Fatal(err)
		}
		newest := want[max(0, len(want)-5):]
		slices.Reverse(limited)
		if !slices.Equal(limited, newest) {
			t.Fatalf("range %v: the 5 newest are %v, want %v", r, limited, newest)
		}
	}
	for _, w := range []record.Window{w0, w0 + 1} {
		for p := 0; p < record.NumPartitions; p++ {
			var want, got []record.ID
			for _, id := range all {
				if id.Window() == w && id.Partition() == record.Partition(p) {
					want = append(want, id)
				}
			}
			err := db.PartitionIDs(w, record.Partition(p), 0, record.NumBuckets, func(id record.ID) error {
				got = append(got, id)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("window %d partition %d: %d IDs, want %d in order", w, p, len(got), len(want))
			}
		}
	}
}

// downgradeToV1 rewrites every record key of db to format version 1 and
// removes the format marker: the store an earlier logmesh left.
func downgradeToV1(t testing.TB, db *DB) int {
	t.Helper()
	var keys, vals [][]byte
	err := db.bdb.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixRecord}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			keys, vals = append(keys, it.Item().KeyCopy(nil)), append(vals, v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for start := 0; start < len(keys); start += 1000 {
		end := min(start+1000, len(keys))
		err = db.update(func(txn *badger.Txn) error {
			for i, k := range keys[start:end] {
				id, ok := idFromRecordKey(k)
				if !ok {
					t.Fatalf("key %x is not of format 2", k)
				}
				old := append([]byte{prefixRecord}, binary.BigEndian.AppendUint32(nil, uint32(id.Window()))...)
				old = append(append(old, byte(id.Partition())), id[:]...)
				if err := txn.Set(old, vals[start+i]); err != nil {
					return err
				}
				if err := txn.Delete(k); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := db.SetMeta(metaFormat, nil); err != nil {
		t.Fatal(err)
	}
	return len(keys)
}

// logLines is an slog handler's output, safe for concurrent writes.
type logLines struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func checkHolds(t *testing.T, db *DB, es []Entry) {
	t.Helper()
	if got, want := scanIDs(t, db, ScanOptions{}), sortedIDs(es); !slices.Equal(got, want) {
		t.Fatalf("scan: %d IDs, want the %d written, in order", len(got), len(want))
	}
	for _, e := range es[:100] {
		if data, err := db.Get(e.ID); err != nil || !bytes.Equal(data, e.Data) {
			t.Fatalf("Get(%s) = %v", e.ID, err)
		}
	}
	n := 0
	for _, w := range db.AllWindows() {
		for p := 0; p < record.NumPartitions; p++ {
			err := db.PartitionIDs(w, record.Partition(p), 0, record.NumBuckets, func(record.ID) error { n++; return nil })
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	if n != len(es) {
		t.Fatalf("partition listings hold %d IDs, want %d", n, len(es))
	}
	// a rewrite is recognised as duplicates: nothing is stored twice
	res, err := db.Write(context.Background(), es, OriginRemote)
	if err != nil || res.Duplicates != len(es) {
		t.Fatalf("rewriting every record: %+v, %v; want all duplicates", res, err)
	}
}

// TestAStoreOfTheOldFormatIsMigratedOnStart: a store an earlier logmesh
// wrote (format 1) is rewritten on open, says so in the log, and then holds
// every record under the new keys: scans, gets, partition listings and the
// duplicate check all find them.
func TestAStoreOfTheOldFormatIsMigratedOnStart(t *testing.T) {
	dir := t.TempDir()
	db := openTest(t, dir)
	es := makeEntries(3000, time.Now().Add(-3*time.Hour), 3*time.Hour, 9)
	if _, err := db.Write(context.Background(), es, OriginLocal); err != nil {
		t.Fatal(err)
	}
	if n := downgradeToV1(t, db); n != len(es) {
		t.Fatalf("downgraded %d keys, want %d", n, len(es))
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	var logs logLines
	db = openTest(t, dir, func(c *Config) { c.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	for _, want := range []string{"migrating the store to a new key format", "records=3000", "store migrated"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the log does not say %q:\n%s", want, logs.String())
		}
	}
	checkHolds(t, db, es)
	if v, _ := db.GetMeta(metaFormat); string(v) != "2" {
		t.Fatalf("format marker %q after migration", v)
	}
}

// TestAMigrationStoppedHalfwayContinuesOnTheNextStart: a migration that
// stops after its first transaction (as a kill would stop it) leaves a
// store that the next start finishes, every record once.
func TestAMigrationStoppedHalfwayContinuesOnTheNextStart(t *testing.T) {
	dir := t.TempDir()
	db := openTest(t, dir)
	es := makeEntries(30000, time.Now().Add(-2*time.Hour), 2*time.Hour, 10)
	for i := 0; i < len(es); i += 5000 {
		if _, err := db.Write(context.Background(), es[i:i+5000], OriginLocal); err != nil {
			t.Fatal(err)
		}
	}
	downgradeToV1(t, db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	stop := errors.New("stopped")
	cfg := TestConfig(dir)
	cfg.Logger = slog.New(slog.DiscardHandler)
	var movedAtStop int
	cfg.migrateHook = func(moved int) error { movedAtStop = moved; return stop }
	if _, err := Open(cfg); !errors.Is(err, stop) {
		t.Fatalf("Open with a migration stopped half-way: %v", err)
	}
	if movedAtStop == 0 || movedAtStop >= len(es) {
		t.Fatalf("the first transaction moved %d of %d: not half-way", movedAtStop, len(es))
	}
	db = openTest(t, dir)
	checkHolds(t, db, es)
}

// TestAStoreOfANewerFormatIsRefused: a format this code does not know is
// refused with a message that says what to do, not read as empty.
func TestAStoreOfANewerFormatIsRefused(t *testing.T) {
	dir := t.TempDir()
	db := openTest(t, dir)
	newer := strconv.Itoa(formatVersion + 1)
	if err := db.SetMeta(metaFormat, []byte(newer)); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	cfg := TestConfig(dir)
	cfg.Logger = slog.New(slog.DiscardHandler)
	_, err := Open(cfg)
	if err == nil || !strings.Contains(err.Error(), "format version "+newer) || !strings.Contains(err.Error(), "newer logmesh") {
		t.Fatalf("Open of a format-%s store: %v", newer, err)
	}
}
