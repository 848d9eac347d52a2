package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/logmesh/logmesh/syslog"
)

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "show a peer's state",
		Flags: []cli.Flag{addrFlag, &cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "text", Usage: "text or json"}},
		Action: func(c *cli.Context) error {
			cl, err := newClient(c)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			s, err := cl.Status(ctx)
			if err != nil {
				return err
			}
			if c.String("output") == "json" {
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(s)
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "peer\t%s (version %s, up %s)\n", s.Node, s.Version, (time.Duration(s.UptimeSeconds) * time.Second).String())
			fmt.Fprintf(tw, "records\t%d in %d window(s), %s on disk\n", s.Records, s.Windows, humanBytes(s.DiskBytes))
			fmt.Fprintf(tw, "http ingest\t%d accepted, %d batches refused\n", s.Ingest.HTTP.Accepted, s.Ingest.HTTP.RejectedBatches)
			if sy := s.Ingest.Syslog; sy != nil {
				printSyslogStatus(tw, sy)
			}
			return tw.Flush()
		},
	}
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func printSyslogStatus(tw io.Writer, s *syslog.Stats) {
	for _, t := range []struct {
		name string
		st   syslog.TransportStats
	}{{"syslog tcp", s.TCP}, {"syslog udp", s.UDP}} {
		fmt.Fprintf(tw, "%s\t%d stored, %.1f MB", t.name, t.st.Messages, float64(t.st.Bytes)/1e6)
		var bad []string
		for reason, n := range t.st.Malformed {
			bad = append(bad, fmt.Sprintf("%s %d", reason, n))
		}
		sort.Strings(bad)
		if len(bad) > 0 {
			fmt.Fprintf(tw, ", malformed: %s", strings.Join(bad, ", "))
		}
		if t.st.Dropped > 0 {
			fmt.Fprintf(tw, ", %d dropped", t.st.Dropped)
		}
		if t.name == "syslog tcp" {
			fmt.Fprintf(tw, ", %d connection(s) open", t.st.ConnectionsOpen)
		}
		fmt.Fprintln(tw)
	}
}
