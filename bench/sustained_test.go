package bench

import (
	"context"
	"testing"

	"github.com/logmesh/logmesh/testutil"
)

// TestSustainedCountsWhatItMeasures: a short sustained run against a real
// agent stores every line it sent, finds the rare word in exactly one line
// of a hundred (the run checks both and fails otherwise), and reports
// figures that are not zero. VictoriaLogs is never needed by the tests.
func TestSustainedCountsWhatItMeasures(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real agent")
	}
	const lines = 20_011
	res, err := RunSustained(context.Background(), SustainedConfig{Binary: testutil.Binary(t), Dir: t.TempDir(), Lines: lines},
		func(f string, a ...any) { t.Logf(f, a...) })
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 {
		t.Fatalf("%d results without VictoriaLogs, want 1", len(res))
	}
	r := res[0]
	if r.Lines != lines || r.WordMatches != (lines+99)/100 || r.Elapsed <= 0 || r.CPU <= 0 || r.PeakRSS <= 0 || r.PeakAnon <= 0 || r.PeakAnon > r.PeakRSS || r.DiskPerLine <= 0 || r.GCCycles <= 0 {
		t.Fatalf("figures %+v", r)
	}
}
