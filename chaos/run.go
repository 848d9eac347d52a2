package chaos

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/logmesh/logmesh/api"
)

// Scenario is one fault test.
type Scenario struct {
	Name string
	// Kind names the schedule (see schedule).
	Kind string
	// Peers the scenario needs (default 3).
	Peers int
	// Faults is the length of the fault phase (default 10s).
	Faults time.Duration
	// Options the target must start its peers with.
	Options Options
}

// Options are peer settings a scenario needs.
type Options struct {
	// DisableReplication: pushes off, anti-entropy alone restores replicas.
	DisableReplication bool
	// DisableAntiEntropy: no anti-entropy; pushes alone must reach every
	// replica.
	DisableAntiEntropy bool
	// Skew shifts the clock of the first peer by this much.
	Skew time.Duration
	// FailedReassignAfter, when set, is every peer's --failed-reassign-after.
	FailedReassignAfter time.Duration
	// MaintenanceInterval, when set, runs retention this often (so that a
	// peer that wrongly used its own clock would delete within the run).
	MaintenanceInterval time.Duration
	// LastMaxHintsBytes, when set, is the last peer's --max-hints-bytes.
	LastMaxHintsBytes int64
	// NoWrites names peers the workload sends no client writes to (a peer
	// whose disk a scenario wipes: records only it held would be destroyed).
	NoWrites []string
}

// Scenarios returns the standard scenarios, each with a fault phase of d.
func Scenarios(d time.Duration) []Scenario {
	return []Scenario{
		{Name: "baseline", Kind: "baseline", Faults: d},
		{Name: "partition-halves", Kind: "partition-halves", Peers: 4, Faults: d},
		{Name: "majorities-ring", Kind: "majorities-ring", Peers: 5, Faults: d},
		{Name: "bridge", Kind: "bridge", Peers: 5, Faults: d},
		{Name: "isolate-one-long-then-rejoin", Kind: "isolate-one-long", Faults: 2 * d},
		{Name: "kill9-replica-then-restart", Kind: "kill9-restart", Faults: d},
		{Name: "kill9-during-hint-drain", Kind: "kill9-during-hint-drain", Faults: d},
		{Name: "pause-sigstop", Kind: "pause", Faults: d},
		{Name: "clock-skew", Kind: "partition-halves", Faults: d, Options: Options{Skew: 2 * time.Hour}},
		{Name: "anti-entropy-only", Kind: "kill9-restart", Faults: d, Options: Options{DisableReplication: true}},
		{Name: "slow-and-flaky", Kind: "slow", Faults: d},
		{Name: "one-way-loss", Kind: "one-way-loss", Faults: d},

		// clocks: retention runs every 2 s, so a peer that used its own
		// clock for it would delete records within the run
		{Name: "clock-ahead", Kind: "partition-halves", Faults: d, Options: Options{Skew: 5 * day, MaintenanceInterval: 2 * time.Second}},
		{Name: "clock-behind", Kind: "partition-halves", Faults: d, Options: Options{Skew: -5 * day, MaintenanceInterval: 2 * time.Second}},
		{Name: "clock-beyond-retention", Kind: "kill9-restart", Faults: d, Options: Options{Skew: 8 * day, MaintenanceInterval: 2 * time.Second}},
		{Name: "clock-step-back", Kind: "clock-step-back", Faults: d, Options: Options{MaintenanceInterval: 2 * time.Second}},
		// two owners of many partitions down past --failed-reassign-after
		{Name: "two-owners-down-past-reassign", Kind: "two-down", Peers: 5, Faults: 2 * d,
			Options: Options{FailedReassignAfter: 3 * time.Second}},
		{Name: "wipe-and-rejoin", Kind: "wipe", Faults: d, Options: Options{NoWrites: []string{"p3"}}},
		{Name: "backlog-overflow-then-leave", Kind: "overflow-then-leave", Faults: 2 * d, Options: Options{LastMaxHintsBytes: 16 << 10}},
		{Name: "one-way-api-cut", Kind: "one-way-api-cut", Peers: 4, Faults: d},
		// anti-entropy off: pushes alone must reach every replica
		{Name: "push-only", Kind: "kill-and-partition", Peers: 4, Faults: d, Options: Options{DisableAntiEntropy: true}},
	}
}

const day = 24 * time.Hour

// RandomScenario is the scenario of seeded random schedules: every fault
// mixed, on five peers, with a wipe of p5 (which takes no client writes).
func RandomScenario(d time.Duration) Scenario {
	return Scenario{Name: "random", Kind: "random", Peers: 5, Faults: 3 * d,
		Options: Options{NoWrites: []string{"p5"}, FailedReassignAfter: 5 * time.Second, MaintenanceInterval: 2 * time.Second}}
}

// Run runs one scenario against a target whose peers are up, and judges it.
// logf receives a transcript (the schedule and what happened).
func Run(ctx context.Context, t Target, sc Scenario, seed uint64, logf func(string, ...any)) (*Report, error) {
	if sc.Faults == 0 {
		sc.Faults = 10 * time.Second
	}
	r := &Report{Scenario: sc.Name, Seed: seed, Schedule: schedule(sc.Kind, seed, t.Names(), sc.Faults)}
	logf("scenario %s, seed %d, schedule:\n%s", sc.Name, seed, r.Schedule)
	w := &workload{target: t, run: fmt.Sprintf("%s-%d", sc.Name, seed), hist: &history{writes: map[string]*write{}},
		writers: 4, batch: 5, pace: 40 * time.Millisecond, noWrites: sc.Options.NoWrites}

	// warm-up: writes without faults, watching for false failures; from
	// now on every answer marked full is checked against the writes
	stopWrites := w.start(ctx, seed)
	stopAnswers := watchAnswers(ctx, t, w, seed, r)
	defer stopAnswers()
	quiet, stopWatch := watchFalseFailures(ctx, t)
	sleep(ctx, 2*time.Second)
	warm := statuses(ctx, t)

	// the fault phase, on schedule
	start := time.Now()
	var detectMu sync.Mutex
	var detect time.Duration
	detecting := false
	var wg sync.WaitGroup
	for _, st := range r.Schedule {
		if !sleep(ctx, time.Until(start.Add(st.At))) {
			break
		}
		if sc.Kind != "baseline" && st.Op != OpHeal {
			stopWatch() // faults make failures real
		}
		logf("%s", st)
		if err := apply(t, st); err != nil {
			stopWrites()
			return r, fmt.Errorf("apply %s: %w (replay: LOGMESH_SEED=%d)", st, err, seed)
		}
		if st.Op == OpKill && !detecting {
			detecting = true
			wg.Add(1)
			go func(name string, at time.Time) {
				defer wg.Done()
				if waitAllSee(ctx, t, name, "failed", 30*time.Second) {
					detectMu.Lock()
					detect = time.Since(at)
					detectMu.Unlock()
				}
			}(st.Nodes[0], time.Now())
		}
	}
	sleep(ctx, time.Until(start.Add(sc.Faults)))
	stopWrites()
	stopAnswers()
	wg.Wait()
	detectMu.Lock()
	r.Detection = detect
	detectMu.Unlock()
	r.FalseFailed = quiet()
	stopWatch()

	// heal everything and let the cluster settle
	_ = t.Heal()
	for _, name := range t.Names() {
		_ = t.Resume(name)
		if !t.Running(name) {
			if err := t.Start(name); err != nil {
				return r, fmt.Errorf("restart %s: %w", name, err)
			}
		}
	}
	healed := time.Now()
	logf("healed; waiting for every peer to see every other alive")
	for _, name := range t.Names() {
		if !waitAllSee(ctx, t, name, "alive", 60*time.Second) {
			logf("after a minute not every peer sees %s alive: %v", name, seenAs(ctx, t, name))
		}
	}
	deadline := healed.Add(2*t.AEInterval() + 15*time.Second)
	var rd *read
	var err error
	for {
		rd, err = readAll(ctx, t, w)
		if err == nil && replicasAgree(t, rd) && backlog(ctx, t) == 0 {
			r.Converged, r.Convergence = true, time.Since(healed)
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			if err != nil {
				logf("last read failed: %v", err)
			}
			break
		}
		sleep(ctx, 300*time.Millisecond)
	}
	if rd == nil {
		return r, fmt.Errorf("no complete read after the heal: %w", err)
	}
	judge(r, t, w, rd)
	r.Undelivered = backlog(ctx, t)
	if t.OwnProcesses() {
		// "come back" takes a moment: Go hands freed memory back to the
		// system in the background, idle connections close on timers
		for deadline := time.Now().Add(20 * time.Second); ; {
			r.Resources = resources(warm, statuses(ctx, t))
			if len(r.Resources) == 0 || time.Now().After(deadline) || !sleep(ctx, time.Second) {
				break
			}
		}
	}
	logf("%s", r.Summary())
	return r, nil
}

func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// seenAs lists how every running peer sees name.
func seenAs(ctx context.Context, t Target, name string) map[string]string {
	out := map[string]string{}
	for peer, view := range membersSeen(ctx, t) {
		if peer != name {
			out[peer] = view[name]
		}
	}
	return out
}

// waitAllSee waits until every other running peer sees name in state st.
func waitAllSee(ctx context.Context, t Target, name, st string, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		ok := true
		for peer, view := range membersSeen(ctx, t) {
			if peer != name && view[name] != st {
				ok = false
			}
		}
		if ok {
			return true
		}
		sleep(ctx, 50*time.Millisecond)
	}
	return false
}

// watchFalseFailures counts peers seen failed or suspect until stopped.
func watchFalseFailures(ctx context.Context, t Target) (count func() int, stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var mu sync.Mutex
	n := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		for sleep(ctx, 200*time.Millisecond) {
			for _, view := range membersSeen(ctx, t) {
				for _, st := range view {
					if st == "failed" || st == "suspect" {
						mu.Lock()
						n++
						mu.Unlock()
					}
				}
			}
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	return func() int { mu.Lock(); defer mu.Unlock(); return n }, stop
}

// backlog sums the replication backlogs of every peer.
func backlog(ctx context.Context, t Target) int64 {
	var n int64
	for _, s := range statuses(ctx, t) {
		for _, r := range s.Replication {
			n += r.UndeliveredBytes
			if r.Cursor < r.Head && r.UndeliveredCount > 0 {
				n++
			}
		}
	}
	return n
}

// resources compares peers' goroutines, FDs and RSS with the warm-up.
func resources(warm, now map[string]api.Status) []string {
	var out []string
	for name, w := range warm {
		n, ok := now[name]
		if !ok || n.Runtime.RSSBytes == 0 {
			continue
		}
		within := func(before, after int64, slack int64) bool { return after <= before+before/5+slack }
		if !within(int64(w.Runtime.Goroutines), int64(n.Runtime.Goroutines), 20) {
			out = append(out, fmt.Sprintf("%s goroutines %d -> %d", name, w.Runtime.Goroutines, n.Runtime.Goroutines))
		}
		if !within(int64(w.Runtime.OpenFDs), int64(n.Runtime.OpenFDs), 10) {
			out = append(out, fmt.Sprintf("%s fds %d -> %d", name, w.Runtime.OpenFDs, n.Runtime.OpenFDs))
		}
		// RSS gets more slack: a peer that took a replication backlog after
		// the warm-up legitimately holds more (its memtables, caches and the
		// Go heap's headroom up to the memory limit); seed 600 measured a
		// healthy p2 at 32 -> 78 MB. A leak grows past this; goroutines and
		// FDs above are the sharp signals.
		if !within(w.Runtime.RSSBytes, n.Runtime.RSSBytes, 64<<20) {
			out = append(out, fmt.Sprintf("%s rss %dMB -> %dMB", name, w.Runtime.RSSBytes>>20, n.Runtime.RSSBytes>>20))
		}
	}
	return out
}

// waitAllAlive fails t unless every peer sees every other alive within d.
func waitAllAlive(t testing.TB, target Target, d time.Duration) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(d)
	for _, name := range target.Names() {
		if !waitAllSee(ctx, target, name, "alive", time.Until(deadline)) {
			t.Fatalf("not every peer sees %s alive within %v: %v", name, d, membersSeen(ctx, target))
		}
	}
}
