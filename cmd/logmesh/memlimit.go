package main

import (
	"context"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Under --memory-limit auto the soft limit is not fixed at the store's
// budget: it follows the live heap, heapHeadroom above it, and never goes
// below the budget nor above heapCeilingFactor times it.
//
// A fixed limit below what the store keeps live under sustained ingestion
// (its table builders: 300–450 MiB past 2 M lines at 50 000 lines/s) does
// not keep the process under it — the limit is soft — but makes the
// collector run dozens of times a second and take up to half the CPU:
// `logmesh bench --sustained --lines 8000000` measured 48 000–51 000
// lines/s at 33–35 µs of CPU per line and a peak RSS of 450–710 MB with
// the limit fixed at 224 MiB, against 78 000 lines/s at 21 µs with 512 MiB.
// Following the live heap keeps collections a quarter of the live heap
// apart (so their cost stays a small share of the CPU) and the heap no more
// than a quarter above what is live, where the runtime's default lets it
// reach twice. At ordinary rates nothing changes: the live heap stays well
// under the budget and the limit stays at the budget.
const (
	heapHeadroom      = 4 // the limit is live + live/heapHeadroom
	heapCeilingFactor = 4 // and at most this many times the budget
	heapFollowEvery   = 250 * time.Millisecond
)

// followedLimit is the limit for a live heap of live bytes under a budget.
func followedLimit(budget int64, live uint64) int64 {
	l := int64(live) + int64(live)/heapHeadroom
	return min(max(budget, l), heapCeilingFactor*budget)
}

// autoMemoryBudget returns the budget a followed limit starts from, and
// false where the limit is not followed: --memory-limit is a size or off,
// or GOMEMLIMIT is set.
func autoMemoryBudget(v string, budget int64) (int64, bool) {
	if (v != "auto" && v != "") || os.Getenv("GOMEMLIMIT") != "" || budget <= 0 {
		return 0, false
	}
	return budget, true
}

// limitFollower moves the soft memory limit after the live heap.
type limitFollower struct {
	budget int64
	every  time.Duration
	live   func() uint64     // the heap live at the end of the last collection
	set    func(int64) int64 // debug.SetMemoryLimit
}

func newLimitFollower(budget int64) *limitFollower {
	return &limitFollower{budget: budget, every: heapFollowEvery, live: liveHeap, set: debug.SetMemoryLimit}
}

// run follows until ctx is done, then leaves the limit at the budget.
func (f *limitFollower) run(ctx context.Context) {
	t := time.NewTicker(f.every)
	defer t.Stop()
	current := f.budget
	f.set(current)
	defer f.set(f.budget)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if l := followedLimit(f.budget, f.live()); l != current {
			current = l
			f.set(l)
		}
	}
}

func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
