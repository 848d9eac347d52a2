package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Variant is one side of a comparison: a logmesh binary and extra agent flags.
type Variant struct {
	Binary string
	Flags  []string
}

func (v Variant) String() string {
	if len(v.Flags) == 0 {
		return v.Binary
	}
	return v.Binary + " " + strings.Join(v.Flags, " ")
}

// CompareConfig configures RunCompare.
type CompareConfig struct {
	A, B     Variant
	Dir      string
	Messages int // syslog lines per run (default 1M)
	Rounds   int // runs of each variant (default 3)
}

// CompareRun is one ingestion run of one variant.
type CompareRun struct {
	Elapsed time.Duration
	CPU     time.Duration // the agent's user and system time, start to end (0 where unknown)
	PeakRSS int64         // the agent's peak resident memory (VmHWM), bytes (0 where unknown)
}

// RunCompare measures two variants (two builds, or one build with different
// flags) the way the bench measures the target's figure — a fresh agent,
// 4 connections, --fsync 100ms — alternating A, B, A, B, ... so that both
// sides see the same machine: on a shared machine the rate moves by a fifth
// over minutes, more than most changes are worth. It reports each run's rate
// and the agent's CPU time (which a busy neighbour moves less), then the
// ratio of the medians.
func RunCompare(ctx context.Context, cfg CompareConfig, out func(format string, args ...any)) ([2][]CompareRun, error) {
	if cfg.Messages == 0 {
		cfg.Messages = 1_000_000
	}
	if cfg.Rounds == 0 {
		cfg.Rounds = 3
	}
	var runs [2][]CompareRun
	streams, _, _ := payloads(cfg.Messages, 4, 4)
	for round := range cfg.Rounds {
		for side, v := range []Variant{cfg.A, cfg.B} {
			dir := filepath.Join(cfg.Dir, fmt.Sprintf("compare-%c", 'a'+side))
			if err := os.RemoveAll(dir); err != nil {
				return runs, err
			}
			r, err := compareRun(ctx, v, dir, streams, cfg.Messages)
			if err != nil {
				return runs, fmt.Errorf("%s: %w", v, err)
			}
			runs[side] = append(runs[side], r)
			out("compare    round %d %c: %.0f msg/s, agent CPU %.1f s, peak RSS %d MB (%s)\n", round+1, 'A'+side,
				float64(cfg.Messages)/r.Elapsed.Seconds(), r.CPU.Seconds(), r.PeakRSS>>20, v)
		}
	}
	var rate, cpu, peak [2]float64 // medians
	for side, rs := range runs {
		els, cpus, peaks := make([]time.Duration, len(rs)), make([]time.Duration, len(rs)), make([]int64, len(rs))
		for i, r := range rs {
			els[i], cpus[i], peaks[i] = r.Elapsed, r.CPU, r.PeakRSS
		}
		rate[side], cpu[side], peak[side] = median(ratesOf(cfg.Messages, els)), median(cpus).Seconds(), float64(median(peaks))
	}
	out("compare    B against A: %.2f × the rate (medians %.0f and %.0f msg/s), %.2f × the agent CPU per line (medians %.1f and %.1f s), %.2f × the peak RSS (medians %.0f and %.0f MB)\n",
		rate[1]/rate[0], rate[1], rate[0], cpu[1]/cpu[0], cpu[1], cpu[0], peak[1]/max(peak[0], 1), peak[1]/(1<<20), peak[0]/(1<<20))
	return runs, nil
}

func compareRun(ctx context.Context, v Variant, dir string, streams [][]byte, n int) (CompareRun, error) {
	a, err := startAgent(ctx, v.Binary, dir, append([]string{"--fsync", "100ms"}, v.Flags...)...)
	if err != nil {
		return CompareRun{}, err
	}
	defer a.kill()
	cpu0, _ := processCPU(a.cmd.Process.Pid)
	el, err := ingestTCP(ctx, a, streams, n, uint64(n))
	if err != nil {
		return CompareRun{}, err
	}
	var cpu time.Duration
	if cpu1, err := processCPU(a.cmd.Process.Pid); err == nil {
		cpu = cpu1 - cpu0
	}
	peak, _ := peakRSS(a.cmd.Process.Pid)
	return CompareRun{Elapsed: el, CPU: cpu, PeakRSS: peak}, a.stop()
}

// processCPU returns a process's user and system time so far, from
// /proc/PID/stat (in USER_HZ ticks, 100 a second on Linux).
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// the command name, in parentheses, may hold spaces: fields follow the last ')'
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	var ticks int64
	for _, s := range f[11:13] { // utime, stime (fields 14 and 15 of stat)
		t, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		ticks += t
	}
	return time.Duration(ticks) * time.Second / 100, nil
}
