package main

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/logmesh/logmesh/bench"
)

func benchCommand() *cli.Command {
	return &cli.Command{
		Name:  "bench",
		Usage: "measure ingestion, disk, memory and queries against bare Badger on this machine",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "messages", Value: 1_000_000, Usage: "syslog lines per ingestion run (two runs: 1 and 4 connections)"},
			&cli.IntFlag{Name: "query-records", Value: 2_000_000, Usage: "records in the query data set"},
			&cli.StringFlag{Name: "dir", Usage: "directory in which a fresh work directory is made (nothing else in it is touched) (default: the system's temporary directory)"},
			&cli.BoolFlag{Name: "keep", Usage: "keep the work directory (its path is printed)"},
			&cli.BoolFlag{Name: "cluster", Usage: "measure a 3-peer cluster (3 replicas) against one peer instead"},
			&cli.IntFlag{Name: "conns", Value: 3, Usage: "syslog connections of the cluster benchmark"},
			&cli.BoolFlag{Name: "anti-entropy", Usage: "measure one anti-entropy round between two replicas instead"},
			&cli.IntFlag{Name: "ae-records", Value: 1_000_000, Usage: "records on each replica for --anti-entropy"},
			&cli.IntFlag{Name: "ae-missing", Value: 100, Usage: "records missing on one replica for --anti-entropy"},
			&cli.StringFlag{Name: "compare", Usage: "compare this binary's ingestion (A) with another logmesh binary (B), runs alternating, instead; with --sustained, whole sustained runs (A B, B A, ...) and the ratio B/A of every figure"},
			&cli.StringFlag{Name: "compare-flags", Usage: "agent flags of B for --compare (B is this binary unless --compare names one), e.g. \"--memory-limit off\""},
			&cli.StringFlag{Name: "compact-store", Hidden: true, Usage: "compact the stopped store in this directory and print its bytes per line of --lines (what --compare --sustained runs B's binary for)"},
			&cli.IntFlag{Name: "rounds", Value: 3, Usage: "runs of each side for --compare (2 unless set with --sustained)"},
			&cli.BoolFlag{Name: "sustained", Usage: "measure sustained ingestion of --lines into one agent (rate until queryable, first and last million, CPU, peak RSS, disk, a 1% word query) instead"},
			&cli.IntFlag{Name: "lines", Value: 8_000_000, Usage: "syslog lines of --sustained"},
			&cli.StringFlag{Name: "fsync", Value: "100ms", Usage: "the agent's --fsync in --sustained"},
			&cli.StringFlag{Name: "against-victorialogs", Usage: "with --sustained: a victoria-logs binary that takes the same input in the same run; ratios are printed"},
		},
		Action: func(c *cli.Context) error {
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("cannot find my own binary: %w", err)
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if dir := c.String("compact-store"); dir != "" {
				perLine, err := bench.CompactedBytesPerLine(dir, c.Int("lines"))
				if err != nil {
					return err
				}
				fmt.Printf("%.3f\n", perLine)
				return nil
			}
			if c.Bool("anti-entropy") {
				dir, done, err := benchDir(c)
				if err != nil {
					return err
				}
				defer done()
				return bench.RunAntiEntropy(ctx, dir, c.Int("ae-records"), c.Int("ae-missing"), func(f string, a ...any) { fmt.Printf(f, a...) })
			}
			if (c.IsSet("compare") || c.IsSet("compare-flags")) && c.Bool("sustained") {
				dir, done, err := benchDir(c)
				if err != nil {
					return err
				}
				defer done()
				other := cmp.Or(c.String("compare"), exe)
				if _, err := os.Stat(other); err != nil {
					return fmt.Errorf("cannot run the binary to compare with: %w", err)
				}
				rounds := 2
				if c.IsSet("rounds") {
					rounds = c.Int("rounds")
				}
				_, _, err = bench.RunSustainedCompare(ctx, bench.SustainedCompareConfig{
					A: bench.Variant{Binary: exe}, B: bench.Variant{Binary: other, Flags: strings.Fields(c.String("compare-flags"))},
					Dir: dir, Lines: c.Int("lines"), Conns: 4, Fsync: c.String("fsync"), Rounds: rounds, KeepData: c.Bool("keep"), AlignToMinute: true,
				}, func(f string, a ...any) { fmt.Printf(f, a...) })
				return err
			}
			if c.IsSet("compare") || c.IsSet("compare-flags") {
				dir, done, err := benchDir(c)
				if err != nil {
					return err
				}
				defer done()
				other := c.String("compare")
				if other == "" {
					other = exe
				}
				if _, err := os.Stat(other); err != nil {
					return fmt.Errorf("cannot run the binary to compare with: %w", err)
				}
				_, err = bench.RunCompare(ctx, bench.CompareConfig{
					A: bench.Variant{Binary: exe}, B: bench.Variant{Binary: other, Flags: strings.Fields(c.String("compare-flags"))},
					Dir: dir, Messages: c.Int("messages"), Rounds: c.Int("rounds"),
				}, func(f string, a ...any) { fmt.Printf(f, a...) })
				return err
			}
			if c.Bool("sustained") || c.IsSet("against-victorialogs") {
				dir, done, err := benchDir(c)
				if err != nil {
					return err
				}
				defer done()
				_, err = bench.RunSustained(ctx, bench.SustainedConfig{Binary: exe, Dir: dir, Lines: c.Int("lines"),
					Conns: 4, Fsync: c.String("fsync"), VictoriaLogs: c.String("against-victorialogs"), AlignToMinute: true},
					func(f string, a ...any) { fmt.Printf(f, a...) })
				return err
			}
			if c.Bool("cluster") {
				dir, done, err := benchDir(c)
				if err != nil {
					return err
				}
				defer done()
				return bench.RunCluster(ctx, bench.ClusterConfig{Binary: exe, Dir: dir, Messages: c.Int("messages"), Conns: c.Int("conns")},
					func(f string, a ...any) { fmt.Printf(f, a...) })
			}
			return bench.Run(ctx, bench.Config{Binary: exe, Dir: c.String("dir"), Keep: c.Bool("keep"),
				Messages: c.Int("messages"), QueryRecords: c.Int("query-records")})
		},
	}
}

// benchDir is the work directory of a bench mode: a fresh one inside --dir
// (or the system's temporary directory), removed by done unless --keep.
func benchDir(c *cli.Context) (dir string, done func(), err error) {
	dir, done, err = bench.WorkDir(c.String("dir"), c.Bool("keep"))
	if err == nil && c.Bool("keep") {
		fmt.Printf("work directory (kept): %s\n", dir)
	}
	return dir, done, err
}
