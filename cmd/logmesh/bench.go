package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
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
			&cli.StringFlag{Name: "dir", Usage: "work directory (default: a temporary one)"},
			&cli.BoolFlag{Name: "keep", Usage: "keep the work directory"},
		},
		Action: func(c *cli.Context) error {
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("cannot find my own binary: %w", err)
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return bench.Run(ctx, bench.Config{Binary: exe, Dir: c.String("dir"), Keep: c.Bool("keep"),
				Messages: c.Int("messages"), QueryRecords: c.Int("query-records")})
		},
	}
}
