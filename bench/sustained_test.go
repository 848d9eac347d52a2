package bench

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/logmesh/logmesh/testutil"
)

// TestSustainedCountsWhatItMeasures: a short sustained run against a real
// agent stores every line it sent, finds the rare word in exactly one line
// of a hundred (the run checks both and fails otherwise), and reports
// figures that are not zero. The collections are read from the agent (-1 if
// they cannot be) but may be none: since the syslog parser's plain path,
// 20 000 lines make too little garbage to be sure of one. VictoriaLogs is
// never needed by the tests.
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
	if r.Lines != lines || r.WordMatches != (lines+99)/100 || r.Elapsed <= 0 || r.CPU <= 0 || r.PeakRSS <= 0 || r.PeakAnon <= 0 || r.PeakAnon > r.PeakRSS || r.DiskPerLine <= 0 || r.GCCycles < 0 ||
		!r.SettledIdle || r.WordQuerySettled <= 0 {
		t.Fatalf("figures %+v", r)
	}
}

// TestWaitIdleTellsBusyFromIdle: a process spinning a core is never idle
// (waitIdle gives up at its limit and says so); this test process, asleep
// in a wait, goes idle within the quiet span and a little more.
func TestWaitIdleTellsBusyFromIdle(t *testing.T) {
	if testing.Short() {
		t.Skip("spins a process for seconds")
	}
	cmd := exec.Command("sh", "-c", "while :; do :; done")
	if err := cmd.Start(); err != nil {
		t.Skipf("no shell to spin: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waited, idle, err := waitIdle(context.Background(), cmd.Process.Pid, idleQuiet+time.Second)
	if err != nil || idle || waited < idleQuiet {
		t.Fatalf("a spinning process: waited %v, idle %v, err %v; want busy until the limit", waited, idle, err)
	}
	sleeper := exec.Command("sleep", "30")
	if err := sleeper.Start(); err != nil {
		t.Skipf("no sleep: %v", err)
	}
	t.Cleanup(func() { sleeper.Process.Kill(); sleeper.Wait() })
	waited, idle, err = waitIdle(context.Background(), sleeper.Process.Pid, 4*idleQuiet)
	if err != nil || !idle || waited > idleQuiet {
		t.Fatalf("a sleeping process: waited %v (busy time), idle %v, err %v; want idle at once", waited, idle, err)
	}
}

// TestAnIncompleteAnswerIsNoCount: a query answer that ends with an error
// line (logmesh's --query-timeout) is reported as an error, not counted as
// lines: a sustained run once read a timed-out word query as records lost.
func TestAnIncompleteAnswerIsNoCount(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, `{"id":"a","msg":"one"}`)
		fmt.Fprintln(w, `{"id":"b","msg":"two"}`)
		if r.URL.Query().Get("cut") != "" {
			fmt.Fprintln(w, `{"error":"partial answer: the query ran past --query-timeout (5m0s) and was ended"}`)
		}
	}))
	defer srv.Close()
	if n, err := countLines(context.Background(), http.MethodGet, srv.URL, nil, nil); err != nil || n != 2 {
		t.Fatalf("a whole answer of 2 lines counted %d (%v)", n, err)
	}
	n, err := countLines(context.Background(), http.MethodGet, srv.URL+"?cut=1", nil, nil)
	if err == nil || !strings.Contains(err.Error(), "--query-timeout") {
		t.Fatalf("an answer that ends with an error counted %d lines, error %v", n, err)
	}
}

// TestSustainedCompareRunsBothSidesAndRatios: two variants (one build, B
// with other agent flags) each run the sustained benchmark, their stores
// removed once measured, and the ratios are printed.
func TestSustainedCompareRunsBothSidesAndRatios(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real agents")
	}
	const lines = 10_007
	dir := t.TempDir()
	var printed strings.Builder
	bin := testutil.Binary(t)
	a, b, err := RunSustainedCompare(context.Background(), SustainedCompareConfig{
		A: Variant{Binary: bin}, B: Variant{Binary: bin, Flags: []string{"--seal-after", "1h"}},
		Dir: dir, Lines: lines, Rounds: 1,
	}, func(f string, args ...any) { fmt.Fprintf(&printed, f, args...) })
	t.Log(printed.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != 1 || len(b) != 1 || a[0].System != "A round 1" || b[0].System != "B round 1" {
		t.Fatalf("results %+v and %+v; want a run each", a, b)
	}
	for _, r := range []SustainedResult{a[0], b[0]} {
		if r.Lines != lines || r.WordMatches != (lines+99)/100 || r.CPU <= 0 || r.DiskPerLine <= 0 {
			t.Errorf("figures %+v", r)
		}
	}
	for _, run := range []string{"a1", "b1"} {
		if _, err := os.Stat(filepath.Join(dir, run, "data")); !os.IsNotExist(err) {
			t.Errorf("the store of run %s is still there (%v)", run, err)
		}
		if _, err := os.Stat(filepath.Join(dir, run, "agent.log")); err != nil {
			t.Errorf("run %s: its agent's log: %v", run, err)
		}
	}
	if !strings.Contains(printed.String(), "B / A") || !strings.Contains(printed.String(), "--seal-after 1h") {
		t.Errorf("printed:\n%s\nwant the variants and the ratios", printed.String())
	}
}

// TestCompareFigureIsTheRatioOfTheMedians: B/A of the sides' medians, the
// range of the rounds' ratios, and n/a where a side has no figure.
func TestCompareFigureIsTheRatioOfTheMedians(t *testing.T) {
	rate := func(rs ...float64) []SustainedResult {
		var out []SustainedResult
		for _, r := range rs {
			out = append(out, SustainedResult{Lines: 1000, Elapsed: time.Duration(float64(time.Second) * 1000 / r)})
		}
		return out
	}
	got := compareFigure(rate(100, 200, 150), rate(120, 200, 300), SustainedResult.Rate)
	// medians 150 and 200; rounds 1.2, 1.0, 2.0
	if got != "1.33× [1.00–2.00]" {
		t.Errorf("got %q", got)
	}
	if got := compareFigure(rate(100), rate(100, 200), func(r SustainedResult) float64 { return float64(r.Sealed) }); got != "n/a" {
		t.Errorf("a figure no run has: got %q", got)
	}
	if got := compareFigure(nil, rate(100), SustainedResult.Rate); got != "n/a" {
		t.Errorf("no rounds: got %q", got)
	}
}

// TestUntilNextMinuteStartsOneSecondIntoTheNextMinute: a sustained run
// aligned to the minute starts one second after the next minute begins,
// whatever second it is asked at.
func TestUntilNextMinuteStartsOneSecondIntoTheNextMinute(t *testing.T) {
	base := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	for _, at := range []time.Duration{0, time.Second, 1500 * time.Millisecond, 30 * time.Second, 59*time.Second + 999*time.Millisecond} {
		now := base.Add(at)
		got := untilNextMinute(now)
		if start := now.Add(got); !start.Equal(base.Add(time.Minute+time.Second)) || got <= 0 || got > time.Minute+time.Second {
			t.Errorf("at %v: wait %v, start %v; want 08:01:01", at, got, start)
		}
	}
}

// TestTheDiskIsMeasuredByTheBinaryThatWroteTheStore: a compared binary
// compacts its own store (`bench --compact-store`), since the bench's binary
// may not read a newer store format; a binary too old to have the flag is
// told apart from one that fails, which is an error naming it.
func TestTheDiskIsMeasuredByTheBinaryThatWroteTheStore(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	_, lines, _ := payloads(2000, 1, 7)
	dir := t.TempDir()
	if _, err := storeWrite(dir, encodeLines(lines), 2, 100, 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	perLine, err := compactWith(context.Background(), testutil.Binary(t), dir, 2000)
	if err != nil || perLine <= 0 {
		t.Fatalf("the binary measured %v B/line: %v", perLine, err)
	}
	script := func(body string) string {
		p := filepath.Join(t.TempDir(), "logmesh")
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	old := script(`echo "Incorrect Usage: flag provided but not defined: -compact-store" >&2; exit 1`)
	if _, err := compactWith(context.Background(), old, dir, 2000); err != errNoCompactStore {
		t.Fatalf("a binary without the flag: %v, want errNoCompactStore", err)
	}
	failing := script(`echo "store has format version 9" >&2; exit 1`)
	if _, err := compactWith(context.Background(), failing, dir, 2000); err == nil || err == errNoCompactStore ||
		!strings.Contains(err.Error(), failing) || !strings.Contains(err.Error(), "format version 9") {
		t.Fatalf("a binary that fails: %v", err)
	}
}
