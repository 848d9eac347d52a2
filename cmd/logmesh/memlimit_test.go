package main

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestFollowedLimitStaysBetweenTheBudgetAndItsCeiling(t *testing.T) {
	const budget = 224 << 20
	for _, c := range []struct {
		live uint64
		want int64
	}{
		{0, budget},
		{100 << 20, budget},                    // ordinary rates: the budget
		{179 << 20, budget},                    // 179 + 44.75 < 224
		{400 << 20, 500 << 20},                 // a quarter above what is live
		{10 << 30, heapCeilingFactor * budget}, // no higher than the ceiling
	} {
		if got := followedLimit(budget, c.live); got != c.want {
			t.Errorf("followedLimit(%d MiB live) = %d MiB, want %d MiB", c.live>>20, got>>20, c.want>>20)
		}
	}
}

func TestAutoMemoryBudgetOnlyForAuto(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "")
	if b, ok := autoMemoryBudget("auto", 224<<20); !ok || b != 224<<20 {
		t.Errorf("auto: %d %v", b, ok)
	}
	for _, v := range []string{"512MiB", "off"} {
		if _, ok := autoMemoryBudget(v, 224<<20); ok {
			t.Errorf("%s: the limit follows the heap", v)
		}
	}
	t.Setenv("GOMEMLIMIT", "300MiB")
	if _, ok := autoMemoryBudget("auto", 224<<20); ok {
		t.Error("auto with GOMEMLIMIT set: the limit follows the heap")
	}
}

// TestTheLimitFollowsTheLiveHeapAndReturns: the follower raises the limit
// as the live heap grows, lowers it as it falls, and leaves it at the budget
// when stopped.
func TestTheLimitFollowsTheLiveHeapAndReturns(t *testing.T) {
	const budget = 100 << 20
	var live atomic.Uint64
	var mu sync.Mutex
	var set []int64
	f := &limitFollower{budget: budget, every: time.Millisecond, live: live.Load, set: func(l int64) int64 {
		mu.Lock()
		defer mu.Unlock()
		set = append(set, l)
		return 0
	}}
	last := func() int64 {
		mu.Lock()
		defer mu.Unlock()
		if len(set) == 0 {
			return -1
		}
		return set[len(set)-1]
	}
	waitFor := func(want int64) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for last() != want {
			if time.Now().After(deadline) {
				t.Fatalf("the limit is %d, want %d", last(), want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.run(ctx); close(done) }()
	waitFor(budget)
	live.Store(200 << 20)
	waitFor(250 << 20)
	live.Store(10 << 20)
	waitFor(budget)
	live.Store(300 << 20)
	waitFor(375 << 20)
	cancel()
	<-done
	if got := last(); got != budget {
		t.Fatalf("stopped with the limit at %d, want the budget %d", got, budget)
	}
}
