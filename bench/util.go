package bench

import (
	"bufio"
	"cmp"
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
