package index

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/logmesh/logmesh/record"
	"github.com/logmesh/logmesh/sample"
)

// benchStore fills a store with n sample records over 24h; 1% contain "zebracorn".
func benchStore(b *testing.B, n int) *DB { return benchStoreOver(b, n, 24*time.Hour) }

// benchStoreOver fills a store with n sample records over the span that
// ends at the last full hour; 1% contain "zebracorn".
func benchStoreOver(b *testing.B, n int, span time.Duration) *DB {
	b.Helper()
	cfg := DefaultConfig(b.TempDir())
	cfg.Logger = slog.New(slog.DiscardHandler)
	db, err := Open(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	g := sample.New(1)
	end := time.Now().Truncate(time.Hour)
	start := end.Add(-span)
	step := span / time.Duration(n)
	var es []Entry
	for i := 0; i < n; i++ {
		at := start.Add(time.Duration(i) * step)
		line := g.RFC5424(at)
		if i%100 == 7 {
			line += " zebracorn"
		}
		r := &record.Record{ID: record.NewGenerator(func() time.Time { return at }).Next(), Raw: []byte(line),
			Message: line[strings.LastIndex(line, " - ")+1:], Source: "10.0.0.1:514", Peer: "bench"}
		es = append(es, Entry{ID: r.ID, Data: r.AppendEncode(nil)})
		if len(es) == 4096 || i == n-1 {
			if _, err := db.Write(context.Background(), es, OriginLocal); err != nil {
				b.Fatal(err)
			}
			es = es[:0]
		}
	}
	return db
}

// BenchmarkScanWord: every line with a 1% word, newest first, over a sparse
// store (24 h) and a dense one (5 minutes, as after a burst): one goroutine
// merging runs, two merging shares (what a query with a limit does), two
// reading slices whole and sorting the matches (what one without a limit
// does), and a count of the matches with two.
func BenchmarkScanWord(b *testing.B) {
	word := []byte("zebracorn")
	match := func(id record.ID, data []byte) bool { return bytes.Contains(data, word) }
	for _, span := range []time.Duration{24 * time.Hour, 5 * time.Minute} {
		db := benchStoreOver(b, 300000, span)
		for _, way := range []struct {
			name           string
			workers, limit int
		}{{"serial", 1, 0}, {"merged", 2, 1 << 30}, {"sorted", 2, 0}} {
			b.Run(span.String()+"/"+way.name, func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					n := 0
					opts := ScanOptions{Match: match, Workers: way.workers, Limit: way.limit, Reverse: true}
					if err := db.Scan(context.Background(), opts, func(record.ID, []byte) error { n++; return nil }); err != nil {
						b.Fatal(err)
					}
					if n != 3000 {
						b.Fatalf("%d matches", n)
					}
				}
			})
		}
		b.Run(span.String()+"/count", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if n, err := db.Count(context.Background(), ScanOptions{Match: match, Workers: 2}); err != nil || n != 3000 {
					b.Fatalf("%d matches (%v)", n, err)
				}
			}
		})
	}
}

// BenchmarkScanNewest is a "last 100 lines" query (reverse, limit 100)
// over a sparse store: 300 000 records over 24 h, 208 per minute slice.
func BenchmarkScanNewest(b *testing.B) {
	db := benchStore(b, 300000)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		n := 0
		err := db.Scan(context.Background(), ScanOptions{Reverse: true, Limit: 100}, func(record.ID, []byte) error {
			n++
			if n == 100 {
				return ErrStop
			}
			return nil
		})
		if err != nil || n != 100 {
			b.Fatalf("%d records, %v", n, err)
		}
	}
}

// BenchmarkScanHour reads every record of one hour in order, by one
// goroutine and by two, against one raw pass in key order.
func BenchmarkScanHour(b *testing.B) {
	db := benchStore(b, 300000)
	to := time.Now().Truncate(time.Hour).Add(-2 * time.Hour)
	from := to.Add(-time.Hour)
	for _, way := range []struct {
		name string
		opts ScanOptions
	}{
		{"raw", ScanOptions{Unordered: true}}, // the baseline: one pass in key order, no order by ID
		{"oldest-first", ScanOptions{}},
		{"newest-first", ScanOptions{Reverse: true}},
		{"oldest-first-2-readers", ScanOptions{Workers: 2}}, // what a query of the agent does (peer.Config.QueryWorkers 2)
		{"newest-first-2-readers", ScanOptions{Reverse: true, Workers: 2}},
		{"merged-newest-first", ScanOptions{Reverse: true, Limit: 1 << 30}}, // what a query with a limit does
	} {
		b.Run(way.name, func(b *testing.B) {
			opts := way.opts
			opts.FromMillis, opts.ToMillis = from.UnixMilli(), to.UnixMilli()-1
			for i := 0; i < b.N; i++ {
				n := 0
				err := db.Scan(context.Background(), opts, func(record.ID, []byte) error {
					n++
					return nil
				})
				if err != nil || n != 12500 {
					b.Fatalf("%d records, %v", n, err)
				}
			}
		})
	}
}

// BenchmarkMigrate opens a store of format 1 holding 1 M records (the
// migration rewrites every one) and reports records migrated per second.
func BenchmarkMigrate(b *testing.B) {
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		db := benchStore(b, 1_000_000)
		dir := db.cfg.Dir
		downgradeToV1(b, db)
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}
		cfg := DefaultConfig(dir)
		cfg.Logger = slog.New(slog.DiscardHandler)
		b.StartTimer()
		start := time.Now()
		db, err := Open(cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(1_000_000/time.Since(start).Seconds(), "records/s")
		b.StopTimer()
		db.Close()
	}
}

// BenchmarkScanDense reads 1 M records written within one minute (one
// slice), all of them, as a count query does after a burst of ingestion.
func BenchmarkScanDense(b *testing.B) {
	cfg := DefaultConfig(b.TempDir())
	cfg.Logger = slog.New(slog.DiscardHandler)
	db, err := Open(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	g := sample.New(1)
	at := time.Now().Truncate(time.Hour).Add(-90 * time.Minute)
	gen := record.NewGenerator(func() time.Time { return at })
	const n = 1_000_000
	var es []Entry
	for i := 0; i < n; i++ {
		line := g.RFC5424(at)
		r := &record.Record{ID: gen.Next(), Raw: []byte(line), Message: line[strings.LastIndex(line, " - ")+1:], Source: "10.0.0.1:514", Peer: "bench"}
		es = append(es, Entry{ID: r.ID, Data: r.AppendEncode(nil)})
		if len(es) == 4096 || i == n-1 {
			if _, err := db.Write(context.Background(), es, OriginLocal); err != nil {
				b.Fatal(err)
			}
			es = es[:0]
		}
	}
	for _, unordered := range []bool{false, true} {
		b.Run(map[bool]string{false: "merged", true: "unordered"}[unordered], func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				c := 0
				if err := db.Scan(context.Background(), ScanOptions{Unordered: unordered}, func(record.ID, []byte) error { c++; return nil }); err != nil || c != n {
					b.Fatalf("%d records, %v", c, err)
				}
			}
		})
	}
}

// BenchmarkIngestHour writes 4 M sample records whose receive times march
// through one hour (as 1,100 lines/s would), 4,096 to a write, and reports
// the rate of the first and of the last million: whether the cost of a
// write grows with what the window already holds.
func BenchmarkIngestHour(b *testing.B) {
	const n = 4_000_000
	for i := 0; i < b.N; i++ {
		cfg := DefaultConfig(b.TempDir())
		cfg.Logger = slog.New(slog.DiscardHandler)
		db, err := Open(cfg)
		if err != nil {
			b.Fatal(err)
		}
		g := sample.New(1)
		start := time.Now().Truncate(time.Hour).Add(-3 * time.Hour)
		var at time.Time
		gen := record.NewGenerator(func() time.Time { return at })
		step := time.Hour / n
		var es []Entry
		var first, last time.Duration
		t0 := time.Now()
		for j := 0; j < n; j++ {
			at = start.Add(time.Duration(j) * step)
			line := g.RFC5424(at)
			r := &record.Record{ID: gen.Next(), Raw: []byte(line), Message: line[strings.LastIndex(line, " - ")+1:], Source: "10.0.0.1:514", Peer: "bench"}
			es = append(es, Entry{ID: r.ID, Data: r.AppendEncode(nil)})
			if len(es) == 4096 || j == n-1 {
				if _, err := db.Write(context.Background(), es, OriginLocal); err != nil {
					b.Fatal(err)
				}
				es = es[:0]
			}
			switch j + 1 {
			case 1_000_000:
				first = time.Since(t0)
			case n - 1_000_000:
				last = time.Since(t0)
			}
		}
		last = time.Since(t0) - last
		b.ReportMetric(1e6/first.Seconds(), "firstM/s")
		b.ReportMetric(1e6/last.Seconds(), "lastM/s")
		b.ReportMetric(float64(n)/time.Since(t0).Seconds(), "records/s")
		db.Close()
	}
}
