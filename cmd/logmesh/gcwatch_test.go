package main

import (
	"bytes"
	"context"
	"log/slog"
	"math"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestGCStarvedNeedsABusyCollectorAndAFullHeap(t *testing.T) {
	const mib = 1 << 20
	base := gcSample{gcCPU: 10, totalCPU: 100, live: 100 * mib, limit: 224 * mib}
	for _, c := range []struct {
		name    string
		cur     gcSample
		share   float64
		starved bool
	}{
		{"half the CPU, heap at the limit", gcSample{gcCPU: 20, totalCPU: 120, live: 230 * mib, limit: 224 * mib}, 0.5, true},
		{"a quarter, heap near the limit", gcSample{gcCPU: 15, totalCPU: 120, live: 200 * mib, limit: 224 * mib}, 0.25, true},
		{"just under a quarter", gcSample{gcCPU: 14.99, totalCPU: 120, live: 200 * mib, limit: 224 * mib}, 0.2495, false},
		{"busy collector, roomy heap", gcSample{gcCPU: 20, totalCPU: 120, live: 50 * mib, limit: 224 * mib}, 0.5, false},
		{"full heap, idle collector", gcSample{gcCPU: 11, totalCPU: 120, live: 230 * mib, limit: 224 * mib}, 0.05, false},
		{"no limit", gcSample{gcCPU: 20, totalCPU: 120, live: 900 * mib, limit: math.MaxInt64}, 0.5, false},
		{"no limit known", gcSample{gcCPU: 20, totalCPU: 120, live: 900 * mib, limit: 0}, 0.5, false},
		{"heap just under 70%", gcSample{gcCPU: 20, totalCPU: 120, live: 70*mib - 1, limit: 100 * mib}, 0.5, false},
		{"heap at exactly 70%", gcSample{gcCPU: 20, totalCPU: 120, live: 70 * mib, limit: 100 * mib}, 0.5, true},
		{"no CPU spent", gcSample{gcCPU: 10, totalCPU: 100, live: 230 * mib, limit: 224 * mib}, 0, false},
	} {
		share, starved := gcStarved(base, c.cur)
		if math.Abs(share-c.share) > 1e-9 || starved != c.starved {
			t.Errorf("%s: share %.2f starved %v, want %.2f %v", c.name, share, starved, c.share, c.starved)
		}
	}
}

// syncBuffer is a log sink safe for the watcher's goroutine and the test's.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The watcher warns once while the process stays short of memory (not at
// every sample), names the knob, and stops with its context.
func TestGCWatcherWarnsOnceAndStops(t *testing.T) {
	var out syncBuffer
	var mu sync.Mutex
	cur := gcSample{totalCPU: 1, limit: 224 << 20}
	sampled := 0
	w := &gcWatcher{
		log: slog.New(slog.NewTextHandler(&out, nil)),
		sample: func() gcSample {
			mu.Lock()
			defer mu.Unlock()
			sampled++
			// every sample: another second of CPU, 0.6 of it collecting, heap at the limit
			cur.totalCPU++
			cur.gcCPU += 0.6
			cur.live = 230 << 20
			return cur
		},
		every: time.Millisecond, quiet: time.Hour,
	}
	stop := startWatcher(w)
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := sampled
		mu.Unlock()
		if n >= 20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the watcher sampled %d times in 10 s", n)
		}
		time.Sleep(time.Millisecond)
	}
	if !stop(5 * time.Second) {
		t.Fatal("the watcher did not stop with its context")
	}
	log := out.String()
	if n := strings.Count(log, "level=WARN"); n != 1 {
		t.Fatalf("%d warnings over 20 starved samples, want 1 (quiet period of an hour):\n%s", n, log)
	}
	for _, want := range []string{"--memory-limit", "gc_cpu_share=0.6", "live_heap_mib=230", "memory_limit_mib=224"} {
		if !strings.Contains(log, want) {
			t.Errorf("the warning lacks %q:\n%s", want, log)
		}
	}
}

// The share is of the last interval, not of the process's life: after hours
// of a healthy collector, one starved interval warns; and a warning comes
// again once the quiet period has passed.
func TestGCWatcherJudgesEachIntervalAndWarnsAgainAfterTheQuietPeriod(t *testing.T) {
	var out syncBuffer
	var mu sync.Mutex
	// 200 healthy intervals of 100 CPU-seconds each with the collector at
	// 1%, then starved intervals of one CPU-second at 50%: over the whole
	// watch the share stays near 1% for as long as this test runs
	cur := gcSample{live: 10 << 20, limit: 224 << 20}
	n := 0
	w := &gcWatcher{
		log: slog.New(slog.NewTextHandler(&out, nil)),
		sample: func() gcSample {
			mu.Lock()
			defer mu.Unlock()
			if n++; n <= 200 {
				cur.totalCPU += 100
				cur.gcCPU++
				return cur
			}
			cur.totalCPU++
			cur.gcCPU += 0.5
			cur.live = 220 << 20
			return cur
		},
		every: time.Millisecond, quiet: 20 * time.Millisecond,
	}
	stop := startWatcher(w)
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(out.String(), "level=WARN") < 2 {
		if time.Now().After(deadline) {
			stop(5 * time.Second)
			t.Fatalf("fewer than two warnings in 10 s of starved 1 ms intervals, 20 ms quiet period:\n%s", out.String())
		}
		time.Sleep(time.Millisecond)
	}
	stop(5 * time.Second)
	if !strings.Contains(out.String(), "gc_cpu_share=0.5") {
		t.Errorf("the warning does not give the last interval's share (0.5):\n%s", out.String())
	}
}

// The metrics the watcher reads exist in this Go and say something.
func TestReadGCSampleReadsTheRuntime(t *testing.T) {
	runtime.GC() // the CPU classes are brought up to date at the end of a collection
	runtime.GC()
	g := readGCSample()
	if g.totalCPU <= 0 || g.gcCPU < 0 || g.live == 0 || g.limit == 0 {
		t.Fatalf("runtime figures %+v: a metric name or kind is wrong", g)
	}
	if g.gcCPU > g.totalCPU {
		t.Fatalf("collector CPU %v above the total %v", g.gcCPU, g.totalCPU)
	}
}

// startWatcher runs w in a goroutine; stop cancels it and reports whether it
// returned within d.
func startWatcher(w *gcWatcher) (stop func(d time.Duration) bool) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.run(ctx)
	}()
	return func(d time.Duration) bool {
		cancel()
		select {
		case <-done:
			return true
		case <-time.After(d):
			return false
		}
	}
}
