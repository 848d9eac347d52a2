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
func benchStore(b *testing.B, n int) *DB {
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
	start := end.Add(-24 * time.Hour)
	step := 24 * time.Hour / time.Duration(n)
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

func BenchmarkScanWord(b *testing.B) {
	db := benchStore(b, 300000)
	word := []byte("zebracorn")
	match := func(id record.ID, data []byte) bool { return bytes.Contains(data, word) }
	for _, workers := range []int{1, 2} {
		b.Run(map[int]string{1: "serial", 2: "parallel"}[workers], func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				n := 0
				if err := db.Scan(context.Background(), ScanOptions{Match: match, Workers: workers}, func(record.ID, []byte) error { n++; return nil }); err != nil {
					b.Fatal(err)
				}
				if n != 3000 {
					b.Fatalf("%d matches", n)
				}
			}
		})
	}
}
