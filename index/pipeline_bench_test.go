package index

import (
	"context"
	"encoding/binary"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/logmesh/logmesh/record"
	"github.com/logmesh/logmesh/sample"
	"github.com/logmesh/logmesh/syslog"
)

// BenchmarkIngestPipelines measures what issue 17's redesign would save,
// before it is built: the same sample lines, parsed and encoded, go
//
//   - "store": into index.DB as a peer stores them today (loose records in
//     Badger's tree, --fsync 100ms, batches of 1 000);
//   - "direct": into a journal file of logmesh's own (written per batch,
//     fdatasync every 100 ms), and once a partition holds 1 024 of them, as
//     a layout-2 block into a bare Badger whose values from 4 KiB go to its
//     value log — records written once to the journal and once in a block,
//     never through the tree. It reads nothing back and serves no query: it
//     is the floor of the write path such a store would have, not a store.
//
// Both sides do the parsing and encoding, from one goroutine; the wall time
// and the process's CPU time per line of each, in one run. The store's
// figure is taken when its writes are synced, not when its compactions end
// (nor the direct side's): a run of 2 M lines is the start of a sustained
// run, not all of it.
// `go test -run '^$' -bench IngestPipelines -benchtime 1x ./index`.
func BenchmarkIngestPipelines(b *testing.B) {
	const lines = 2_000_000
	start := time.Now()
	g := sample.New(17)
	raw := make([][]byte, lines)
	for i := range raw {
		raw[i] = []byte(g.RFC5424(start.Add(time.Duration(i) * 10 * time.Microsecond)))
	}
	ingest := func(b *testing.B, put func(batch []Entry) error) {
		now := start
		gen := record.NewGenerator(func() time.Time { return now })
		var p syslog.Parser
		var r record.Record
		batch := make([]Entry, 0, 1000)
		for i, line := range raw {
			now = start.Add(time.Duration(i) * 10 * time.Microsecond)
			p.Parse(line, now, &r)
			r.ID = gen.Next()
			batch = append(batch, Entry{ID: r.ID, Data: r.AppendEncode(nil)})
			if len(batch) == cap(batch) || i == len(raw)-1 {
				if err := put(batch); err != nil {
					b.Fatal(err)
				}
				batch = batch[:0]
			}
		}
	}
	// the process's CPU (every goroutine: Badger's flushes and
	// compactions too)
	cpu := func() time.Duration {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	report := func(b *testing.B, took, cpuTook time.Duration) {
		b.ReportMetric(float64(took.Nanoseconds())/lines, "ns/line")
		b.ReportMetric(float64(cpuTook.Nanoseconds())/lines, "cpu-ns/line")
		b.ReportMetric(0, "ns/op")
	}

	b.Run("store", func(b *testing.B) {
		for b.Loop() {
			cfg := DefaultConfig(b.TempDir())
			cfg.FsyncInterval = 100 * time.Millisecond
			cfg.Logger = slog.New(slog.DiscardHandler)
			db, err := Open(cfg)
			if err != nil {
				b.Fatal(err)
			}
			t0, c0 := time.Now(), cpu()
			ingest(b, func(batch []Entry) error {
				_, err := db.Write(context.Background(), batch, OriginLocal)
				return err
			})
			if err := db.Sync(); err != nil {
				b.Fatal(err)
			}
			report(b, time.Since(t0), cpu()-c0)
			if err := db.Close(); err != nil {
				b.Fatal(err)
			}
		}
	})

	b.Run("direct", func(b *testing.B) {
		for b.Loop() {
			dir := b.TempDir()
			cfg := DefaultConfig(filepath.Join(dir, "blocks"))
			cfg.ValueThreshold = 4 << 10
			bdb, err := badger.Open(engineOptions(cfg, cfg.Dir).WithLogger(nil))
			if err != nil {
				b.Fatal(err)
			}
			journal, err := os.Create(filepath.Join(dir, "journal"))
			if err != nil {
				b.Fatal(err)
			}
			runs := make(map[record.Partition][]blockRecord)
			var buf []byte
			lastSync := time.Now()
			t0, c0 := time.Now(), cpu()
			ingest(b, func(batch []Entry) error {
				buf = buf[:0]
				for _, e := range batch {
					buf = binary.AppendUvarint(buf, uint64(len(e.Data)))
					buf = append(buf, e.ID[:]...)
					buf = append(buf, e.Data...)
				}
				if _, err := journal.Write(buf); err != nil {
					return err
				}
				if time.Since(lastSync) >= 100*time.Millisecond {
					if err := journal.Sync(); err != nil {
						return err
					}
					lastSync = time.Now()
				}
				wb := bdb.NewWriteBatch()
				defer wb.Cancel()
				for _, e := range batch {
					p := e.ID.Partition()
					run := append(runs[p], blockRecord{ID: e.ID, Data: e.Data})
					if len(run) < 1024 {
						runs[p] = run
						continue
					}
					blk, err := appendBlock(nil, run)
					if err != nil {
						return err
					}
					key := binary.BigEndian.AppendUint16([]byte{'b'}, uint16(p))
					if err := wb.Set(append(key, run[0].ID[:]...), blk); err != nil {
						return err
					}
					runs[p] = run[:0:0]
				}
				return wb.Flush()
			})
			if err := journal.Sync(); err != nil {
				b.Fatal(err)
			}
			report(b, time.Since(t0), cpu()-c0)
			if err := journal.Close(); err != nil {
				b.Fatal(err)
			}
			if err := bdb.Close(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
