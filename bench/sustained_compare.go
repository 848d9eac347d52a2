package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// SustainedCompareConfig configures RunSustainedCompare.
type SustainedCompareConfig struct {
	// A and B are the two logmesh builds (or one build with two sets of
	// agent flags) compared.
	A, B Variant
	// Dir is the work directory (made by the caller): each run has its own
	// directory in it.
	Dir string
	// Lines, Conns and Fsync are each run's, as in SustainedConfig.
	Lines, Conns int
	Fsync        string
	// Rounds is how many runs each side gets (default 2).
	Rounds int
	// KeepData keeps each run's store; by default it is removed once the
	// run is measured (a 12 M-line store can take gigabytes).
	KeepData bool
	// AlignToMinute: see SustainedConfig.
	AlignToMinute bool
}

// RunSustainedCompare runs the sustained benchmark on two variants,
// alternating A B, B A, A B, ... so that a drift of the machine over the
// minutes a run takes weighs on both sides alike: on a shared machine
// single runs of one build differed by 1.5× on one day, more than most
// changes are worth. It prints every run and, per figure, the ratio B/A of
// the sides' medians and the range of the rounds' ratios.
func RunSustainedCompare(ctx context.Context, cfg SustainedCompareConfig, out func(format string, args ...any)) (a, b []SustainedResult, err error) {
	if cfg.Rounds == 0 {
		cfg.Rounds = 2
	}
	run := SustainedConfig{Lines: cfg.Lines, Conns: cfg.Conns, Fsync: cfg.Fsync, AlignToMinute: cfg.AlignToMinute}.withDefaults()
	out("sustained ingestion, compared: %d lines over %d syslog TCP connections, --fsync %s, %d rounds\n  A: %s\n  B: %s\n",
		run.Lines, run.Conns, run.Fsync, cfg.Rounds, cfg.A, cfg.B)
	var sides [2][]SustainedResult
	for round := range cfg.Rounds {
		order := []int{0, 1}
		if round%2 == 1 {
			order = []int{1, 0}
		}
		for _, side := range order {
			v := []Variant{cfg.A, cfg.B}[side]
			name := fmt.Sprintf("%c round %d", 'A'+side, round+1)
			dir := filepath.Join(cfg.Dir, fmt.Sprintf("%c%d", 'a'+side, round+1))
			r, err := sustainedLogmesh(ctx, name, v, dir, run, out)
			if !cfg.KeepData {
				if rerr := os.RemoveAll(filepath.Join(dir, "data")); rerr != nil && err == nil {
					err = fmt.Errorf("remove the store of %s: %w", name, rerr)
				}
			}
			if err != nil {
				return sides[0], sides[1], fmt.Errorf("%s (%s): %w", name, v, err)
			}
			sides[side] = append(sides[side], r)
		}
	}
	printSustained(append(append([]SustainedResult(nil), sides[0]...), sides[1]...), out)
	out("\nB / A (ratio of the medians; in brackets the lowest and highest of the rounds' ratios):\n")
	for _, f := range sustainedFigures {
		out("  %-22s %s\n", f.name, compareFigure(sides[0], sides[1], f.of))
	}
	return sides[0], sides[1], nil
}

// sustainedFigures are the figures RunSustainedCompare puts side by side.
var sustainedFigures = []struct {
	name string
	of   func(SustainedResult) float64
}{
	{"lines/s", SustainedResult.Rate},
	{"last/first million", func(r SustainedResult) float64 {
		if r.FirstM <= 0 {
			return 0
		}
		return r.LastM / r.FirstM
	}},
	{"CPU per line", func(r SustainedResult) float64 { return float64(r.CPUPerLine()) }},
	{"peak RSS", func(r SustainedResult) float64 { return float64(r.PeakRSS) }},
	{"disk per line", func(r SustainedResult) float64 { return r.DiskPerLine }},
	{"sealed when queryable", func(r SustainedResult) float64 { return float64(r.Sealed) }},
	{"word query", func(r SustainedResult) float64 { return r.WordQuery.Seconds() }},
	{"word query, settled", func(r SustainedResult) float64 { return r.WordQuerySettled.Seconds() }},
}

// compareFigure is "1.23× [1.10–1.31]": the ratio of the medians of b and
// a, and the range of the per-round ratios; "n/a" where a side has no
// figure (zero or negative: under 2 M lines, a store that does not say).
func compareFigure(a, b []SustainedResult, of func(SustainedResult) float64) string {
	n := min(len(a), len(b))
	if n == 0 {
		return "n/a"
	}
	va, vb := make([]float64, n), make([]float64, n)
	var ratios []float64
	for i := range n {
		va[i], vb[i] = of(a[i]), of(b[i])
		if va[i] <= 0 || vb[i] <= 0 {
			return "n/a"
		}
		ratios = append(ratios, vb[i]/va[i])
	}
	lo, hi := ratios[0], ratios[0]
	for _, r := range ratios {
		lo, hi = min(lo, r), max(hi, r)
	}
	return fmt.Sprintf("%.2f× [%.2f–%.2f]", median(vb)/median(va), lo, hi)
}
