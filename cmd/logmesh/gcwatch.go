package main

import (
	"context"
	"log/slog"
	"math"
	"runtime/metrics"
	"time"
)

// A peer whose live heap outgrows its soft memory limit does not fail: the Go
// collector runs ever more often and takes up to half the CPU, and ingestion
// slows (measured: 51 000 instead of 78 000 lines/s over 8 M lines at the
// default 224 MiB; docs/operations.md, "Sizing"). Nothing else says so, so
// the agent watches for it and tells the operator which knob to turn.

// gcSample is the process's collector figures at one moment.
type gcSample struct {
	// gcCPU is the collector's CPU seconds since the process started,
	// without the mark work it did on otherwise idle cores (which took
	// nothing from the peer); totalCPU the CPU seconds available.
	gcCPU, totalCPU float64
	live, limit     uint64 // bytes: the heap live at the last collection, the soft limit
}

// readGCSample reads the figures from runtime/metrics.
func readGCSample() gcSample {
	s := []metrics.Sample{
		{Name: "/cpu/classes/gc/total:cpu-seconds"},
		{Name: "/cpu/classes/total:cpu-seconds"},
		{Name: "/gc/heap/live:bytes"},
		{Name: "/gc/gomemlimit:bytes"},
		{Name: "/cpu/classes/gc/mark/idle:cpu-seconds"},
	}
	metrics.Read(s)
	var g gcSample
	if s[0].Value.Kind() == metrics.KindFloat64 {
		g.gcCPU = s[0].Value.Float64()
	}
	if s[4].Value.Kind() == metrics.KindFloat64 {
		g.gcCPU -= s[4].Value.Float64()
	}
	if s[1].Value.Kind() == metrics.KindFloat64 {
		g.totalCPU = s[1].Value.Float64()
	}
	if s[2].Value.Kind() == metrics.KindUint64 {
		g.live = s[2].Value.Uint64()
	}
	if s[3].Value.Kind() == metrics.KindUint64 {
		g.limit = s[3].Value.Uint64()
	}
	return g
}

const (
	// starvedGCShare is the share of the CPU the collector must take
	// between two samples for the peer to count as short of memory.
	starvedGCShare = 0.25
	// starvedHeapShare is how close to the limit the live heap must be:
	// a collector busy for another reason (a burst of garbage under a
	// roomy limit) is not a memory shortage.
	starvedHeapShare = 0.7
)

// gcStarved reports the collector's share of the CPU between two samples and
// whether the process is short of memory: the collector took at least
// starvedGCShare while the live heap stood near a soft limit that is set.
func gcStarved(prev, cur gcSample) (share float64, starved bool) {
	cpu := cur.totalCPU - prev.totalCPU
	if cpu <= 0 {
		return 0, false
	}
	share = (cur.gcCPU - prev.gcCPU) / cpu
	if cur.limit == 0 || cur.limit >= math.MaxInt64 {
		return share, false // no limit: the heap grows instead
	}
	return share, share >= starvedGCShare && float64(cur.live) >= starvedHeapShare*float64(cur.limit)
}

// gcWatcher samples the collector every interval and warns, at most once per
// quiet period, while the process is short of memory.
type gcWatcher struct {
	log    *slog.Logger
	sample func() gcSample
	every  time.Duration
	quiet  time.Duration
}

func newGCWatcher(log *slog.Logger) *gcWatcher {
	return &gcWatcher{log: log, sample: readGCSample, every: 30 * time.Second, quiet: 10 * time.Minute}
}

// run watches until ctx is done.
func (w *gcWatcher) run(ctx context.Context) {
	t := time.NewTicker(w.every)
	defer t.Stop()
	prev := w.sample()
	var warned time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cur := w.sample()
		share, starved := gcStarved(prev, cur)
		prev = cur
		if !starved || (!warned.IsZero() && time.Since(warned) < w.quiet) {
			continue
		}
		warned = time.Now()
		w.log.Warn("the Go collector is taking a large share of the CPU because the live heap is near the memory limit: ingestion and queries run slower; raise --memory-limit (see docs/troubleshooting.md, \"RSS grows\")",
			"gc_cpu_share", math.Round(share*100)/100, "live_heap_mib", cur.live>>20, "memory_limit_mib", cur.limit>>20,
			"interval", w.every)
	}
}
