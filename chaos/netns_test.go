package chaos

import (
	"context"
	"os"
	"testing"
	"time"
)

// faultsFull reports whether the full fault campaign runs
// (make test-faults / make test-docker set LOGMESH_FAULTS=1); otherwise the
// real-process levels run a smoke subset in make test.
func faultsFull() bool { return os.Getenv("LOGMESH_FAULTS") == "1" }

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
