package index

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/logmesh/logmesh/record"
)

// BenchmarkMoveBesideATrickle moves a slice of 64 runs of 3 000 records
// (the default memtable, so Badger's transaction limits are a production
// store's) while a writer sends one late record into it every 200 µs,
// spread over its runs (a peer catching up, a repair). It reports the
// passes a move took (at most 5: "moved" is 0 when none switched), the late
// records written meanwhile, the runs the switch carried over and the
// blocks it turned loose. `go test -run '^$' -bench MoveBesideATrickle
// -benchtime 1x ./index`
func BenchmarkMoveBesideATrickle(b *testing.B) {
	for b.Loop() {
		cfg := DefaultConfig(b.TempDir())
		cfg.Logger = slog.New(slog.DiscardHandler)
		cfg.MaintenanceInterval = time.Hour
		db, err := Open(cfg)
		if err != nil {
			b.Fatal(err)
		}
		w := record.WindowOf(time.Now().UnixMilli() - 3*record.WindowMillis)
		const s = 5
		var parts []record.Partition
		for p := range 64 {
			parts = append(parts, record.Partition(p*4))
		}
		for _, p := range parts {
			es := mintRun(w, s, p, 3000)
			if res, err := db.Write(context.Background(), es, OriginLocal); err != nil || res.Written != len(es) {
				b.Fatalf("write: %+v, %v", res, err)
			}
		}
		stop := trickleLate(db, w, s, parts)
		passes := 0
		for ; passes < 5 && db.Stats().SlicesMoved == 0; passes++ {
			if err := db.sealWindow(w, s, s+1); err != nil {
				b.Logf("pass %d: %v", passes+1, err)
			}
		}
		late, err := stop()
		if err != nil {
			b.Fatal(err)
		}
		st := db.Stats()
		b.ReportMetric(float64(passes), "passes")
		b.ReportMetric(float64(st.SlicesMoved), "moved")
		b.ReportMetric(float64(late), "late")
		b.ReportMetric(float64(st.MovedRunsRecopied), "runs-carried")
		b.ReportMetric(float64(st.BlocksUnsealed), "blocks-turned-loose")
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
