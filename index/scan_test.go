package index

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/logmesh/logmesh/record"
)

// idIn mints an ID received at ms that falls in partition p.
func idIn(ms int64, p record.Partition) record.ID {
	g := record.NewGenerator(func() time.Time { return time.UnixMilli(ms) })
	for {
		if id := g.Next(); id.Partition() == p {
			return id
		}
	}
}

// TestScanReturnsRecordsAfterARunEndsOnAChunkBoundary covers the merger's
// shared iterator: a partition holding exactly one chunk of records refills,
// seeks past its end and finds nothing. That seek moved the iterator without
// consuming a key, and the next run to refill must not believe the iterator
// still stands just after the key it consumed last (it used to, and lost the
// rest of its partition).
func TestScanReturnsRecordsAfterARunEndsOnAChunkBoundary(t *testing.T) {
	f := func(reverse bool) {
		t.Helper()
		db := openTest(t, t.TempDir())
		base := record.WindowOf(time.Now().UnixMilli()).Start() // offsets below stay in one window
		// in scan order: p1 (first in key order) holds 300 records, the first
		// 128 read early and the rest late; p2 exactly mergeChunk, read in
		// between; p3 a few keys after p2's, read last
		p1, p2, p3 := record.Partition(10), record.Partition(20), record.Partition(30)
		offset := func(ms int64) int64 { return base + ms }
		if reverse {
			p1, p3 = p3, p1
			offset = func(ms int64) int64 { return base + 3000 - ms }
		}
		var es []Entry
		add := func(p record.Partition, ms int64) {
			id := idIn(offset(ms), p)
			es = append(es, Entry{ID: id, Data: (&record.Record{ID: id, Message: "m"}).AppendEncode(nil)})
		}
		for i := range int64(300) {
			ms := 1 + i
			if i >= mergeChunk {
				ms = 1000 + i
			}
			add(p1, ms)
		}
		for i := range int64(mergeChunk) {
			add(p2, 500+i)
		}
		for i := range int64(5) {
			add(p3, 2000+i)
		}
		if _, err := db.Write(context.Background(), es, OriginLocal); err != nil {
			t.Fatal(err)
		}
		want := sortedIDs(es)
		if reverse {
			slices.Reverse(want)
		}
		if got := scanIDs(t, db, ScanOptions{Reverse: reverse}); !slices.Equal(got, want) {
			t.Errorf("reverse=%v: scan returned %d of the %d records", reverse, len(got), len(want))
		}
	}
	f(false)
	f(true)
}

// TestCancelledFilteredScanStops: a filter that keeps nothing scans whole
// windows inside one fill; a cancelled scan (its client gone) must stop
// within a chunk, not read on to the end.
func TestCancelledFilteredScanStops(t *testing.T) {
	db := openTest(t, t.TempDir())
	es := makeEntries(60000, time.Now().Add(-30*time.Minute), 20*time.Minute, 9)
	if _, err := db.Write(context.Background(), es, OriginLocal); err != nil {
		t.Fatal(err)
	}
	for _, workers := range []int{1, 2} {
		ctx, cancel := context.WithCancel(context.Background())
		var calls atomic.Int64
		err := db.Scan(ctx, ScanOptions{Workers: workers, Match: func(record.ID, []byte) bool {
			if calls.Add(1) == 1000 {
				cancel()
			}
			return false
		}}, func(record.ID, []byte) error { return nil })
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("workers=%d: a cancelled scan returned %v", workers, err)
		}
		// each run (partition) finishes at most the chunk it is in
		if n := calls.Load(); n > 1000+int64(2*workers*maxScan) {
			t.Fatalf("workers=%d: the filter ran %d times of %d after the scan was cancelled at 1000", workers, n, len(es))
		}
	}
}
