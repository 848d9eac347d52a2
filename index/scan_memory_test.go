package index

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/logmesh/logmesh/record"
)

// TestMergerBuffersABoundedChunkPerRun: a scan holds one chunk of every
// partition run it merges; with large records a chunk is bounded by bytes,
// not only by count (128 records of 30 KB in each of 256 runs was ~1 GB for
// a limit=1 query).
func TestMergerBuffersABoundedChunkPerRun(t *testing.T) {
	db := openTest(t, t.TempDir())
	at := time.Now().Truncate(time.Hour).Add(-90 * time.Minute) // one window
	g := record.NewGenerator(func() time.Time { return at })
	big := strings.Repeat("x", 10<<10)
	var es []Entry
	per := map[record.Partition]int{}
	for len(es) < 4*60 {
		id := g.Next()
		if p := id.Partition(); p < 4 {
			r := &record.Record{ID: id, Hostname: "h", AppName: "app", Message: big}
			es = append(es, Entry{ID: id, Data: r.AppendEncode(nil)})
			per[p]++
		}
	}
	if _, err := db.Write(context.Background(), es, OriginLocal); err != nil {
		t.Fatal(err)
	}
	txn := db.bdb.NewTransactionAt(readAll, false)
	defer txn.Discard()
	w := es[0].ID.Window()
	m := newMerger(context.Background(), txn, w, sliceOf(es[0].ID.Millis()), []record.Partition{0, 1, 2, 3}, 0, 1<<48-1, false, nil, mergeChunk)
	defer m.close()
	for _, r := range m.runs {
		held := 0
		for _, s := range r.buf {
			held += len(s.data)
		}
		if held > mergeChunkBytes+len(es[0].Data) {
			t.Fatalf("partition %d (%d records): a run buffered %d bytes, more than %d and one record", r.p, per[r.p], held, mergeChunkBytes)
		}
		if len(r.buf) == 0 {
			t.Fatalf("partition %d: a run buffered nothing", r.p)
		}
	}
}

// TestALimitedScanBuffersNoMoreThanItsLimit: a scan for at most one record
// buffers one per partition run, not a chunk.
func TestALimitedScanBuffersNoMoreThanItsLimit(t *testing.T) {
	db := openTest(t, t.TempDir())
	at := time.Now().Truncate(time.Hour).Add(-90 * time.Minute)
	g := record.NewGenerator(func() time.Time { return at })
	var es []Entry
	for len(es) < 400 {
		id := g.Next()
		if id.Partition() < 2 {
			r := &record.Record{ID: id, Hostname: "h", AppName: "app", Message: "m"}
			es = append(es, Entry{ID: id, Data: r.AppendEncode(nil)})
		}
	}
	if _, err := db.Write(context.Background(), es, OriginLocal); err != nil {
		t.Fatal(err)
	}
	txn := db.bdb.NewTransactionAt(readAll, false)
	defer txn.Discard()
	m := newMerger(context.Background(), txn, es[0].ID.Window(), sliceOf(es[0].ID.Millis()), []record.Partition{0, 1}, 0, 1<<48-1, true, nil, chunkFor(1))
	defer m.close()
	for _, r := range m.runs {
		if len(r.buf) != 1 {
			t.Fatalf("partition %d: a limit=1 scan buffered %d records", r.p, len(r.buf))
		}
	}
	var n int
	if err := db.Scan(context.Background(), ScanOptions{Reverse: true, Limit: 1}, func(record.ID, []byte) error {
		n++
		return ErrStop
	}); err != nil || n != 1 {
		t.Fatalf("a limit=1 scan: %d records, %v", n, err)
	}
}
