package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/logmesh/logmesh/client"
	"github.com/logmesh/logmesh/query"
	"github.com/logmesh/logmesh/record"
)

func filterFlags() []cli.Flag {
	return []cli.Flag{
		addrFlag, tokenFlag, tlsCAFlag, tlsServerNameFlag,
		&cli.StringFlag{Name: "since", Usage: "receive time lower bound: RFC 3339, now, or relative like -15m, -2h, -7d"},
		&cli.StringFlag{Name: "until", Usage: "receive time upper bound (same forms as --since)"},
		&cli.StringFlag{Name: "host", Usage: "hostname equals"},
		&cli.StringFlag{Name: "app", Usage: "app-name equals"},
		&cli.StringFlag{Name: "severity", Usage: "at most this severe level and worse: emerg alert crit err warning notice info debug"},
		&cli.StringFlag{Name: "contains", Usage: "message or raw line contains this text (case-sensitive)"},
		&cli.StringFlag{Name: "word", Usage: "message or raw line holds this word or phrase as whole words (case-sensitive): error finds \"an error:\", not errors or stderr"},
		&cli.StringFlag{Name: "regex", Usage: "message or raw line matches this RE2 regular expression"},
		&cli.StringSliceFlag{Name: "field", Usage: "extra field equals: NAME=VALUE (repeatable)"},
		&cli.BoolFlag{Name: "local", Usage: "answer from the addressed peer's store only"},
		&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "text", Usage: "text or json (NDJSON)"},
	}
}

// buildQuery reads the filter flags into a query.
func buildQuery(c *cli.Context, now time.Time) (query.Query, error) {
	q := query.Query{Host: c.String("host"), App: c.String("app"), Contains: c.String("contains"),
		Word: c.String("word"), Local: c.Bool("local")}
	var err error
	if q.Since, err = query.ParseTime(c.String("since"), now); err != nil {
		return q, fmt.Errorf("--since %q: %v", c.String("since"), err)
	}
	if q.Until, err = query.ParseTime(c.String("until"), now); err != nil {
		return q, fmt.Errorf("--until %q: %v", c.String("until"), err)
	}
	if s := c.String("severity"); s != "" {
		sev, err := record.ParseSeverity(s)
		if err != nil {
			return q, fmt.Errorf("--severity: %v", err)
		}
		q.MaxSeverity = &sev
	}
	if s := c.String("regex"); s != "" {
		if q.Regex, err = regexp.Compile(s); err != nil {
			return q, fmt.Errorf("--regex %q is not a valid regular expression: %v", s, err)
		}
	}
	for _, f := range c.StringSlice("field") {
		name, value, ok := strings.Cut(f, "=")
		if !ok || name == "" {
			return q, fmt.Errorf("--field %q: want NAME=VALUE", f)
		}
		if q.Fields == nil {
			q.Fields = map[string]string{}
		}
		q.Fields[name] = value
	}
	return q, nil
}

func queryCommand() *cli.Command {
	return &cli.Command{
		Name:  "query",
		Usage: "search the cluster's logs",
		Flags: append(filterFlags(),
			&cli.IntFlag{Name: "limit", Aliases: []string{"n"}, Value: query.DefaultLimit, Usage: "most records to return (0: no limit)"},
			&cli.StringFlag{Name: "order", Value: "desc", Usage: "desc (newest first) or asc"},
			&cli.BoolFlag{Name: "count", Usage: "print how many records match (every match, whatever --limit) instead of the records"},
		),
		Action: func(c *cli.Context) error {
			q, err := buildQuery(c, time.Now())
			if err != nil {
				return err
			}
			q.Limit = c.Int("limit")
			switch c.String("order") {
			case "asc":
				q.Ascending = true
			case "desc":
			default:
				return fmt.Errorf("--order %q: want asc or desc", c.String("order"))
			}
			cl, err := newClient(c)
			if err != nil {
				return err
			}
			if c.Bool("count") {
				ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
				defer stop()
				n, err := cl.Count(ctx, q)
				if err != nil {
					return err
				}
				fmt.Fprintln(c.App.Writer, n.Count)
				warnCoverage(client.Coverage{State: n.Coverage, Reason: n.Reason})
				return nil
			}
			pr, err := newPrinter(os.Stdout, c.String("output"))
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			cov, err := cl.Query(ctx, q, pr.print)
			warnCoverage(cov)
			return err
		},
	}
}

// warnCoverage tells the user when an answer may lack records.
func warnCoverage(cov client.Coverage) {
	if !cov.Partial() {
		return
	}
	fmt.Fprintln(os.Stderr, "logmesh: warning: partial answer: it may lack records")
	if cov.Reason != "" {
		fmt.Fprintln(os.Stderr, "  "+cov.Reason)
	}
	if cov.Missing != "" {
		fmt.Fprintln(os.Stderr, "  no peer holding them complete answered for partitions "+cov.Missing)
	}
	for _, u := range strings.Split(cov.Unread, ",") {
		name, since, ok := strings.Cut(u, "@")
		if !ok {
			continue
		}
		when := "any time"
		if since != "-" {
			when = "after " + since
		}
		fmt.Fprintf(os.Stderr, "  %s could not be read and may hold records received %s that no other peer has yet (logmesh forget %s gives them up)\n", name, when, name)
	}
	if cov.Missing == "" && cov.Unread == "" {
		fmt.Fprintln(os.Stderr, "  a peer failed while answering")
	}
}
