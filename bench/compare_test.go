package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/logmesh/logmesh/testutil"
)

// TestCompareAlternatesVariants: each variant runs its rounds, in turn, on a
// fresh agent started with its own flags, and every run is timed and costed.
func TestCompareAlternatesVariants(t *testing.T) {
	if testing.Short() {
		t.Skip("starts agents")
	}
	bin := testutil.Binary(t)
	var report strings.Builder
	out := func(f string, a ...any) { fmt.Fprintf(&report, f, a...) }
	cfg := CompareConfig{
		A: Variant{Binary: bin}, B: Variant{Binary: bin, Flags: []string{"--memtables", "3"}},
		Dir: t.TempDir(), Messages: 5000, Rounds: 2,
	}
	runs, err := RunCompare(context.Background(), cfg, out)
	if err != nil {
		t.Fatal(err)
	}
	for side, rs := range runs {
		if len(rs) != cfg.Rounds {
			t.Fatalf("variant %c ran %d times, want %d", 'A'+side, len(rs), cfg.Rounds)
		}
		for _, r := range rs {
			if r.Elapsed <= 0 || (runtime.GOOS == "linux" && r.CPU <= 0) {
				t.Fatalf("variant %c run not measured: %+v", 'A'+side, r)
			}
		}
	}
	lines := strings.Split(strings.TrimSpace(report.String()), "\n")
	want := []string{"round 1 A", "round 1 B", "round 2 A", "round 2 B", "B against A"}
	if len(lines) != len(want) {
		t.Fatalf("report:\n%s\nwant %d lines", report.String(), len(want))
	}
	for i, w := range want {
		if !strings.Contains(lines[i], w) {
			t.Fatalf("report line %d = %q, want it to say %q (alternating runs)", i+1, lines[i], w)
		}
	}
	if !strings.Contains(lines[1], "--memtables 3") {
		t.Fatalf("B's run does not name its flags: %q", lines[1])
	}
}

// TestCompareFailsOnFlagsTheAgentRefuses: a variant whose agent does not
// start is an error naming it, at once rather than after the health wait.
func TestCompareFailsOnFlagsTheAgentRefuses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts agents")
	}
	bin := testutil.Binary(t)
	cfg := CompareConfig{
		A: Variant{Binary: bin}, B: Variant{Binary: bin, Flags: []string{"--no-such-flag"}},
		Dir: t.TempDir(), Messages: 1000, Rounds: 1,
	}
	_, err := RunCompare(context.Background(), cfg, func(string, ...any) {})
	if err == nil || !strings.Contains(err.Error(), "--no-such-flag") || !strings.Contains(err.Error(), "agent exited") {
		t.Fatalf("RunCompare = %v, want an error naming the variant and its exit", err)
	}
}

// TestWorkDirNeverRemovesWhatItDidNotMake: the work directory is a fresh one
// inside the given directory, and its cleanup removes that one only.
func TestWorkDirNeverRemovesWhatItDidNotMake(t *testing.T) {
	parent := t.TempDir()
	mine := filepath.Join(parent, "agent-4")
	if err := os.WriteFile(filepath.Join(parent, "precious"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(mine, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, keep := range []bool{false, true} {
		dir, cleanup, err := WorkDir(parent, keep)
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Dir(dir) != parent || dir == mine {
			t.Fatalf("work directory %s, want a new one inside %s", dir, parent)
		}
		if err := os.WriteFile(filepath.Join(dir, "data"), []byte("y"), 0o644); err != nil {
			t.Fatal(err)
		}
		cleanup()
		if _, err := os.Stat(dir); keep != (err == nil) {
			t.Fatalf("keep %v: work directory after cleanup: %v", keep, err)
		}
		for _, p := range []string{filepath.Join(parent, "precious"), mine} {
			if _, err := os.Stat(p); err != nil {
				t.Fatalf("keep %v: %s, which the bench did not make, is gone: %v", keep, p, err)
			}
		}
	}
	// a directory that does not exist yet is made
	dir, cleanup, err := WorkDir(filepath.Join(parent, "new", "deeper"), false)
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	if _, err := os.Stat(dir); err != nil {
		t.Fatal(err)
	}
}
