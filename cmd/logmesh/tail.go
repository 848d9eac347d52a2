package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/logmesh/logmesh/record"
)

// followOverlap is how far back each poll of tail -f looks again: a record
// can become visible after later ones (replication lag, concurrent commits),
// so polls overlap and records already printed are skipped by ID.
const followOverlap = 5 * time.Second

func tailCommand() *cli.Command {
	return &cli.Command{
		Name:  "tail",
		Usage: "print the newest logs, and with -f keep printing new ones",
		Flags: append(filterFlags(),
			&cli.IntFlag{Name: "lines", Aliases: []string{"n"}, Value: 10, Usage: "how many of the newest records to print first"},
			&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep printing records as they arrive"},
			&cli.DurationFlag{Name: "interval", Value: time.Second, Usage: "how often -f asks for new records"},
		),
		Action: func(c *cli.Context) error {
			cl, err := newClient(c)
			if err != nil {
				return err
			}
			pr, err := newPrinter(os.Stdout, c.String("output"))
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			q, err := buildQuery(c, time.Now())
			if err != nil {
				return err
			}
			q.Limit = c.Int("lines")
			var first []*record.JSON
			cov, err := cl.Query(ctx, q, func(j *record.JSON) error { first = append(first, j); return nil })
			if err != nil {
				return err
			}
			warnCoverage(cov)
			slices.Reverse(first)
			seen := map[string]time.Time{}
			var latest time.Time
			for _, j := range first {
				if err := pr.print(j); err != nil {
					return err
				}
				seen[j.ID] = receivedOf(j)
				latest = maxTime(latest, receivedOf(j))
			}
			if !c.Bool("follow") {
				return nil
			}
			if latest.IsZero() {
				latest = time.Now()
			}
			t := time.NewTicker(c.Duration("interval"))
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return nil
				case <-t.C:
				}
				fq, err := buildQuery(c, time.Now())
				if err != nil {
					return err
				}
				fq.Since, fq.Until, fq.Ascending, fq.Limit = latest.Add(-followOverlap), time.Time{}, true, 0
				_, err = cl.Query(ctx, fq, func(j *record.JSON) error {
					if _, ok := seen[j.ID]; ok {
						return nil
					}
					seen[j.ID] = receivedOf(j)
					latest = maxTime(latest, receivedOf(j))
					return pr.print(j)
				})
				if err != nil && !errors.Is(err, context.Canceled) {
					return err
				}
				for id, at := range seen { // forget what no poll can return again
					if at.Before(latest.Add(-2 * followOverlap)) {
						delete(seen, id)
					}
				}
			}
		},
	}
}

func receivedOf(j *record.JSON) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, j.Received)
	return t
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
