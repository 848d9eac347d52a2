package chaos

import (
	"context"
	"os"
	"testing"
	"time"
)

// faultsFull reports whether every scenario runs on real processes:
// LOGMESH_FAULTS=1 (make test-faults, make test-docker: the long campaign)
// or ci (make test-ci-faults, which CI runs after make test); otherwise the
// real-process levels run a smoke subset in make test.
func faultsFull() bool { f := os.Getenv("LOGMESH_FAULTS"); return f == "1" || f == "ci" }

// faultsCampaign reports whether the long campaign runs (LOGMESH_FAULTS=1).
func faultsCampaign() bool { return os.Getenv("LOGMESH_FAULTS") == "1" }

// smoke are the scenarios the real-process levels run in make test.
var smoke = map[string]bool{"partition-halves": true, "kill9-replica-then-restart": true, "pause-sigstop": true}

// runScenarios runs the scenarios on targets made by start, with the seeds
// 200+i (or LOGMESH_SEED), and reports every run's figures.
func runScenarios(t *testing.T, level string, faults time.Duration, start func(t *testing.T, n int, o Options) Target) {
	for i, sc := range Scenarios(faults) {
		if !faultsFull() && !smoke[sc.Name] {
			continue
		}
		t.Run(sc.Name, func(t *testing.T) {
			s := seed(t, uint64(200+i))
			target := start(t, max(sc.Peers, 3), sc.Options)
			defer target.Close()
			r, err := Run(context.Background(), target, sc, s, t.Logf)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s %s", level, r.Summary())
			if f := r.Failures(); len(f) > 0 {
				t.Fatalf("%s failed: %v\n%s", sc.Name, f, r.Summary())
			}
		})
	}
}

// TestScenariosNetns runs the scenarios on real processes in network
// namespaces, cut by nftables (level 2).
func TestScenariosNetns(t *testing.T) {
	if testing.Short() {
		t.Skip("fault scenarios take minutes")
	}
	NeedRoot(t)
	runScenarios(t, "netns", 10*time.Second, func(t *testing.T, n int, o Options) Target {
		return NewNetns(t, n, 5*time.Second, o)
	})
}

// TestRandomSchedulesNetns runs seeded random schedules on real processes
// (seeds 600+i): 2 in CI's fault target, 10 in make test-faults,
// LOGMESH_RANDOM_SEEDS to choose.
func TestRandomSchedulesNetns(t *testing.T) {
	if testing.Short() {
		t.Skip("fault scenarios take minutes")
	}
	if !faultsFull() {
		t.Skip("skipped: random schedules on real processes run in make test-ci-faults and make test-faults")
	}
	NeedRoot(t)
	n := 2
	if faultsCampaign() {
		n = 10
	}
	runRandom(t, "netns", 600, randomSeeds(t, n), 10*time.Second, func(t *testing.T, n int, o Options) Target {
		return NewNetns(t, n, 5*time.Second, o)
	})
}
