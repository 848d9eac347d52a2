package chaos

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/logmesh/logmesh/peer"
	"github.com/logmesh/logmesh/testutil"
	"github.com/logmesh/logmesh/testutil/leaks"
)

func TestMain(m *testing.M) {
	code := m.Run()
	RemoveDockerImage()
	testutil.CleanupBinary()
	if code == 0 {
		if err := goleak.Find(leaks.Options()...); err != nil {
			fmt.Fprintln(os.Stderr, "goroutine leak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// seed is the run's seed: fixed, or LOGMESH_SEED to replay another run.
func seed(t *testing.T, def uint64) uint64 {
	if s := os.Getenv("LOGMESH_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("LOGMESH_SEED=%q is not a number", s)
		}
		return n
	}
	return def
}

// TestScenariosInProcess runs every scenario on in-process peers through
// the fault network, with fixed seeds.
func TestScenariosInProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("fault scenarios take a few minutes")
	}
	for i, sc := range Scenarios(6 * time.Second) {
		t.Run(sc.Name, func(t *testing.T) {
			n := max(sc.Peers, 3)
			s := seed(t, uint64(100+i))
			target := NewInProcess(t, n, s, time.Second, sc.Options, nil)
			defer target.Close()
			r, err := Run(context.Background(), target, sc, s, t.Logf)
			if err != nil {
				t.Fatal(err)
			}
			if f := r.Failures(); len(f) > 0 {
				t.Fatalf("%s failed: %v\n%s\nreplay: LOGMESH_SEED=%d go test -count=1 -run '%s' ./chaos", sc.Name, f, r.Summary(), s, t.Name())
			}
		})
	}
}

// TestCheckerCatchesLostReplicas: a peer that drops every tenth batch pushed
// to it, with anti-entropy off, must fail the check.
// randomSeeds is how many seeded random schedules a level runs:
// LOGMESH_RANDOM_SEEDS, or def.
func randomSeeds(t *testing.T, def int) int {
	if s := os.Getenv("LOGMESH_RANDOM_SEEDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			t.Fatalf("LOGMESH_RANDOM_SEEDS=%q is not a count", s)
		}
		return n
	}
	return def
}

// runRandom runs n seeded random schedules (seeds base+i, or LOGMESH_SEED
// once) on targets made by start.
func runRandom(t *testing.T, level string, base uint64, n int, d time.Duration, start func(t *testing.T, n int, o Options) Target) {
	sc := RandomScenario(d)
	seeds := make([]uint64, n)
	for i := range seeds {
		seeds[i] = base + uint64(i)
	}
	if s := os.Getenv("LOGMESH_SEED"); s != "" {
		seeds = []uint64{seed(t, 0)}
	}
	for _, s := range seeds {
		t.Run(fmt.Sprintf("random-%d", s), func(t *testing.T) {
			target := start(t, sc.Peers, sc.Options)
			defer target.Close()
			r, err := Run(context.Background(), target, sc, s, t.Logf)
			if err != nil {
				t.Fatalf("%v (replay: LOGMESH_SEED=%d go test -run '%s' ./chaos)", err, s, t.Name())
			}
			t.Logf("%s %s", level, r.Summary())
			if f := r.Failures(); len(f) > 0 {
				t.Fatalf("%s failed: %v\n%s\nreplay: LOGMESH_SEED=%d go test -count=1 -run '%s' ./chaos", sc.Name, f, r.Summary(), s, t.Name())
			}
		})
	}
}

// TestRandomSchedulesInProcess runs seeded random schedules in process.
func TestRandomSchedulesInProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("fault scenarios take minutes")
	}
	runRandom(t, "in-process", 500, randomSeeds(t, 2), 6*time.Second, func(t *testing.T, n int, o Options) Target {
		return NewInProcess(t, n, 500, time.Second, o, nil)
	})
}

func TestCheckerCatchesLostReplicas(t *testing.T) {
	target := NewInProcess(t, 3, 7, time.Second, Options{}, func(i int, c *peer.Config) {
		c.DisableAntiEntropy = true
		if i == 1 {
			c.TestDropPushEvery = 10
		}
	})
	defer target.Close()
	r, err := Run(context.Background(), target, Scenario{Name: "broken-peer", Kind: "baseline", Faults: 4 * time.Second}, 7, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.LostPerReplica) == 0 || len(r.Failures()) == 0 {
		t.Fatalf("the checker passed a peer that drops replicated batches: %s", r.Summary())
	}
}

// TestCheckerCatchesDuplicates: a query path that returns records twice
// must fail the check.
func TestCheckerCatchesDuplicates(t *testing.T) {
	target := NewInProcess(t, 3, 8, time.Second, Options{}, func(i int, c *peer.Config) { c.TestDuplicateAnswers = true })
	defer target.Close()
	r, err := Run(context.Background(), target, Scenario{Name: "duplicating-queries", Kind: "baseline", Faults: 3 * time.Second}, 8, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Duplicated) == 0 || len(r.Failures()) == 0 {
		t.Fatalf("the checker passed a query path that returns records twice: %s", r.Summary())
	}
}

func TestScheduleReplaysFromTheSeed(t *testing.T) {
	names := []string{"p1", "p2", "p3", "p4", "p5"}
	for _, kind := range []string{"partition-halves", "bridge", "kill9-during-hint-drain", "majorities-ring", "random", "two-down"} {
		a, b := schedule(kind, 42, names, 10*time.Second), schedule(kind, 42, names, 10*time.Second)
		if a.String() != b.String() || a.String() == "" {
			t.Fatalf("%s: the same seed gave\n%s\nand\n%s", kind, a, b)
		}
		if c := schedule(kind, 43, names, 10*time.Second); c.String() == a.String() && kind != "majorities-ring" {
			t.Logf("%s: seeds 42 and 43 happen to give the same schedule", kind)
		}
	}
}
