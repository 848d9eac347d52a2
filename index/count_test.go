package index

import (
	"bytes"
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/logmesh/logmesh/record"
)

// TestCountAgreesWithAScan: Count, which takes the windows a range holds
// whole from their digests, gives what a scan counts, over ranges that
// hold whole windows, cut them, fall inside one slice or reach past every
// record; with a partition mask, with a filter, and after some records were
// deleted.
func TestCountAgreesWithAScan(t *testing.T) {
	db := openTest(t, t.TempDir())
	base := time.Now().Add(-5 * time.Hour).Truncate(time.Hour)
	es := makeEntries(6000, base, 4*time.Hour, 41)
	if _, err := db.Write(context.Background(), es, OriginLocal); err != nil {
		t.Fatal(err)
	}
	var gone []record.ID
	for i := 0; i < len(es); i += 9 {
		gone = append(gone, es[i].ID)
	}
	if _, err := db.Delete(context.Background(), gone); err != nil {
		t.Fatal(err)
	}
	w0 := record.WindowOf(base.UnixMilli())
	ranges := [][2]int64{{0, 0}, {w0.Start(), w0.End() - 1}, {w0.Start(), (w0 + 2).End() - 1},
		{w0.Start() + 1, (w0 + 1).End() - 1}, {w0.Start(), (w0 + 1).End() - 2},
		{w0.Start() + SliceMillis, w0.Start() + 2*SliceMillis - 1}, {(w0 + 3).Start() + 17, 0}}
	rng := rand.New(rand.NewPCG(5, 5))
	for range 20 {
		a := w0.Start() + rng.Int64N(4*record.WindowMillis)
		ranges = append(ranges, [2]int64{a, a + rng.Int64N(2*record.WindowMillis)})
	}
	var odd [record.NumPartitions]bool
	for p := range odd {
		odd[p] = p%2 == 1
	}
	word := []byte("word7")
	for _, r := range ranges {
		for _, v := range []struct {
			name string
			opts ScanOptions
		}{
			{"all", ScanOptions{FromMillis: r[0], ToMillis: r[1]}},
			{"odd partitions", ScanOptions{FromMillis: r[0], ToMillis: r[1], Partitions: &odd}},
			{"filtered", ScanOptions{FromMillis: r[0], ToMillis: r[1],
				Match: func(_ record.ID, data []byte) bool { return bytes.Contains(data, word) }}},
		} {
			want := uint64(len(scanIDs(t, db, v.opts)))
			got, err := db.Count(context.Background(), v.opts)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Fatalf("%s over [%d, %d]: Count %d, a scan %d", v.name, r[0], r[1], got, want)
			}
		}
	}
	if n, _ := db.Count(context.Background(), ScanOptions{}); n != uint64(len(es)-len(gone)) {
		t.Fatalf("Count of everything %d, want %d written less %d deleted", n, len(es), len(gone))
	}
}

// TestResentRecordsAfterARestartCountOnce: the newest window the digests
// list was emptied by deletes before a restart; records a peer sends again
// afterwards are already stored and must be found so (a review found the
// newest-ID floor left at zero, every resent record taken for new, written
// again and added to the digests twice: Count 100 for 50 records).
func TestResentRecordsAfterARestartCountOnce(t *testing.T) {
	dir := t.TempDir()
	db := openTest(t, dir)
	ctx := context.Background()
	base := time.Now().Add(-3 * time.Hour).Truncate(time.Hour)
	old := makeEntries(50, base, 30*time.Minute, 1)
	newer := makeEntries(1, base.Add(2*time.Hour), 0, 2)
	for _, es := range [][]Entry{old, newer} {
		if _, err := db.Write(ctx, es, OriginLocal); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Delete(ctx, []record.ID{newer[0].ID}); err != nil { // the newest window is now empty
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openTest(t, dir)
	res, err := db.Write(ctx, old, OriginRemote) // replication or repair sends them again
	if err != nil {
		t.Fatal(err)
	}
	if res.Duplicates != len(old) {
		t.Fatalf("resent %d stored records: %d taken as duplicates, %d written", len(old), res.Duplicates, res.Written)
	}
	want := uint64(len(scanIDs(t, db, ScanOptions{})))
	if got, err := db.Count(ctx, ScanOptions{}); err != nil || got != want || want != uint64(len(old)) {
		t.Fatalf("Count %d (%v), a scan %d, want %d", got, err, want, len(old))
	}
}
