package bench

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// WorkDir makes a fresh work directory for a benchmark inside parent (the
// system's temporary directory when parent is empty), and returns it with a
// cleanup that removes it, and only it, unless keep. A benchmark never
// deletes a directory it did not make: `logmesh bench --dir .` must not
// empty the current directory.
func WorkDir(parent string, keep bool) (dir string, cleanup func(), err error) {
	if parent != "" {
		if err := os.MkdirAll(parent, 0o755); err != nil {
			return "", nil, fmt.Errorf("bench: work directory: %w", err)
		}
	}
	dir, err = os.MkdirTemp(parent, "logmesh-bench-")
	if err != nil {
		return "", nil, fmt.Errorf("bench: work directory: %w", err)
	}
	if keep {
		return dir, func() {}, nil
	}
	return dir, func() { os.RemoveAll(dir) }, nil
}

// dirBytes returns the disk space (allocated blocks) of every file under dir.
func dirBytes(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		if info, err := d.Info(); err == nil {
			if st, ok := info.Sys().(*syscall.Stat_t); ok {
				n += st.Blocks * 512
			} else {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// peakRSS returns a process's peak resident set size (VmHWM) in bytes.
func peakRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmHWM for pid %d", pid)
}

// rss returns a process's current anonymous and file-backed resident memory.
func rss(pid int) (anon, file int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	kb := func(rest string) int64 {
		n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
		return n << 10
	}
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "RssAnon:"); ok {
			anon = kb(rest)
		} else if rest, ok := strings.CutPrefix(sc.Text(), "RssFile:"); ok {
			file = kb(rest)
		}
	}
	return anon, file, sc.Err()
}

// ratesOf turns the durations of runs of n messages each into rates, in run order.
func ratesOf(n int, els []time.Duration) []float64 {
	rates := make([]float64, len(els))
	for i, el := range els {
		rates[i] = float64(n) / el.Seconds()
	}
	return rates
}

// median returns the middle of xs (the upper middle of an even count).
func median[T cmp.Ordered](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// joinRates prints rates as "140456, 162012, 134310".
func joinRates(rates []float64) string {
	parts := make([]string, len(rates))
	for i, r := range rates {
		parts[i] = fmt.Sprintf("%.0f", r)
	}
	return strings.Join(parts, ", ")
}

// The sustained benchmark calls a store settled once its CPU stays under
// idleShare of one core for idleQuiet; it waits at most settleLimit.
const (
	idleShare   = 0.05
	idleQuiet   = 3 * time.Second
	settleLimit = 5 * time.Minute
	idlePoll    = 250 * time.Millisecond
)

// waitIdle polls the CPU time of process pid until it used under idleShare
// of a core over the last idleQuiet, or limit passed. It returns how long
// it waited and whether the process went idle.
func waitIdle(ctx context.Context, pid int, limit time.Duration) (time.Duration, bool, error) {
	type sample struct {
		at  time.Time
		cpu time.Duration
	}
	start := time.Now()
	var samples []sample
	t := time.NewTicker(idlePoll)
	defer t.Stop()
	for {
		cpu, err := processCPU(pid)
		if err != nil {
			return time.Since(start), false, fmt.Errorf("wait for pid %d to go idle: %w", pid, err)
		}
		now := time.Now()
		samples = append(samples, sample{now, cpu})
		// the oldest sample at least idleQuiet old
		for len(samples) > 1 && now.Sub(samples[1].at) >= idleQuiet {
			samples = samples[1:]
		}
		if span := now.Sub(samples[0].at); span >= idleQuiet && float64(cpu-samples[0].cpu) < idleShare*float64(span) {
			return span0(start, now, idleQuiet), true, nil
		}
		if now.Sub(start) >= limit {
			return now.Sub(start), false, nil
		}
		select {
		case <-ctx.Done():
			return time.Since(start), false, ctx.Err()
		case <-t.C:
		}
	}
}

// span0 is when the quiet span that ended at now began, counted from start:
// the time the process was still busy.
func span0(start, now time.Time, quiet time.Duration) time.Duration {
	return max(0, now.Sub(start)-quiet)
}
