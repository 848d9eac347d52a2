package index

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/logmesh/logmesh/record"
)

// BenchmarkMoveBesideATrickle moves a slice of 64 runs of 3 000 records,
// and one of 256 runs of 1 500, 4 ms apart (the default memtable, so Badger's
// transaction limits are a production store's), while a writer sends one
// late record into it every 200 µs, spread over its runs (a peer catching
// up, a repair). It reports the passes a move took (at most 5: "moved" is 0
// when none switched), the late records written meanwhile, the runs the
// switch carried over, the blocks it re-encoded with their late records and
// those it turned loose, the records it left loose in the moved space, and
// how long writes waited for the sealer. `go test -run '^$' -bench
// MoveBesideATrickle -benchtime 1x ./index`
func BenchmarkMoveBesideATrickle(b *testing.B) {
	for _, c := range []struct{ runs, records, step int }{{64, 3000, 1}, {256, 1500, 4}} {
		b.Run(fmt.Sprintf("runs=%d", c.runs), func(b *testing.B) {
			for b.Loop() {
				moveBesideATrickle(b, c.runs, c.records, c.step)
			}
		})
	}
}

// moveBesideATrickle: runs of records step ms apart (the trickle lands in
// the first seconds of the slice, inside the runs' ranges).
func moveBesideATrickle(b *testing.B, runs, records, step int) {
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
	for p := range runs {
		parts = append(parts, record.Partition(p*(256/runs)))
	}
	for _, p := range parts {
		es := mintRun(w, s, p, records)
		for i := range es {
			id := idIn(sliceStart(w, s)+int64(i*step), p)
			r := &record.Record{ID: id, Message: fmt.Sprintf("slice %d partition %d line %d", s, p, i)}
			es[i] = Entry{ID: id, Data: r.AppendEncode(nil)}
		}
		if res, err := db.Write(context.Background(), es, OriginLocal); err != nil || res.Written != len(es) {
			b.Fatalf("write: %+v, %v", res, err)
		}
	}
	held0 := db.stats.sealHeld.Load()
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
	loose, _ := keysIn(b, db, slicePrefix(w, s|movedSpace))
	b.ReportMetric(float64(passes), "passes")
	b.ReportMetric(float64(st.SlicesMoved), "moved")
	b.ReportMetric(float64(late), "late")
	b.ReportMetric(float64(st.MovedRunsRecopied), "runs-carried")
	b.ReportMetric(float64(st.BlocksMerged), "blocks-merged")
	b.ReportMetric(float64(db.stats.mergedInCommitter.Load()), "merged-in-committer")
	b.ReportMetric(float64(st.BlocksUnsealed), "blocks-turned-loose")
	b.ReportMetric(float64(loose), "loose-left")
	b.ReportMetric(float64(db.stats.sealHeld.Load()-held0)/1e6, "held-ms")
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
}
