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

	"github.com/logmesh/logmesh/api"
)

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "show the cluster at a glance: every peer's state, records, undelivered data and replication lag",
		Flags: []cli.Flag{addrFlag, tokenFlag, tlsCAFlag, tlsServerNameFlag,
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "text", Usage: "text or json"},
			&cli.BoolFlag{Name: "local", Usage: "only the addressed peer, in detail"}},
		Action: func(c *cli.Context) error {
			cl, err := newClient(c)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			if c.Bool("local") {
				s, err := cl.Status(ctx)
				if err != nil {
					return err
				}
				if c.String("output") == "json" {
					return printJSON(s)
				}
				return printPeer(s)
			}
			cs, err := cl.Cluster(ctx)
			if err != nil {
				return err
			}
			conv, convErr := cl.Convergence(ctx)
			if c.String("output") == "json" {
				return printJSON(struct {
					Cluster     any `json:"cluster"`
					Convergence any `json:"convergence,omitempty"`
				}{cs, conv})
			}
			if err := printCluster(cs); err != nil {
				return err
			}
			if convErr == nil && len(cs.Peers) > 1 {
				printConvergence(conv)
			}
			return nil
		},
	}
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func printCluster(cs api.ClusterStatus) error {
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PEER\tSTATE\tRECORDS\tDISK\tINGESTED\tUNDELIVERED\tREPL LAG p99\tNOTE")
	var records uint64
	for _, p := range cs.Peers {
		if p.Status == nil {
			note := p.Error
			if note == "" && p.State != "alive" {
				note = "not reachable"
			}
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t-\t-\t%s\n", p.Name, p.State, note)
			continue
		}
		s := p.Status
		records += s.Records
		var lag float64
		var notes []string
		for _, t := range s.Replication {
			lag = max(lag, t.LagP99Seconds)
			if t.LastError != "" {
				notes = append(notes, "cannot push to "+t.Peer)
			}
			if t.DebtPartitions > 0 {
				notes = append(notes, fmt.Sprintf("owes %s %d partition(s)", t.Peer, t.DebtPartitions))
			}
		}
		if ps := s.Partitions; ps != nil && len(ps.Filling) > 0 {
			notes = append(notes, fmt.Sprintf("filling %d of %d partitions", len(ps.Filling), ps.Owned))
		}
		if cl := s.Clock; cl != nil && cl.Skewed {
			notes = append(notes, fmt.Sprintf("CLOCK SKEWED %+.1fs", cl.SkewSeconds))
		}
		ingested := s.Ingest.HTTP.Accepted
		if sy := s.Ingest.Syslog; sy != nil {
			ingested += sy.TCP.Messages + sy.UDP.Messages
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%s\t%s\t%s\n", p.Name, p.State, s.Records, humanBytes(s.DiskBytes),
			ingested, humanBytes(s.UndeliveredBytes), fmtLag(lag), strings.Join(notes, "; "))
	}
	fmt.Fprintf(tw, "\n%d peers; %d records stored in all (each record counts once per replica); answered by %s\n",
		len(cs.Peers), records, cs.AnsweredBy)
	return tw.Flush()
}

func fmtLag(s float64) string {
	if s == 0 {
		return "-"
	}
	return (time.Duration(s * float64(time.Second))).Round(time.Millisecond).String()
}

func printPeer(s api.Status) error {
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "peer\t%s (version %s, up %s)\n", s.Node, s.Version, (time.Duration(s.UptimeSeconds) * time.Second).String())
	fmt.Fprintf(tw, "records\t%d in %d window(s), %s on disk\n", s.Records, s.Windows, humanBytes(s.DiskBytes))
	fmt.Fprintf(tw, "http ingest\t%d accepted, %d batches refused\n", s.Ingest.HTTP.Accepted, s.Ingest.HTTP.RejectedBatches)
	if sy := s.Ingest.Syslog; sy != nil {
		printSyslogStatus(tw, sy)
	}
	if ps := s.Partitions; ps != nil {
		fmt.Fprintf(tw, "partitions\t%d owned, %d held complete, %d filling, %d held for hand-over\n", ps.Owned, ps.Complete, len(ps.Filling), ps.Witness)
	}
	if !s.DeliveredThrough.IsZero() {
		fmt.Fprintf(tw, "delivered through\t%s: every record received before then is on all its owners\n", s.DeliveredThrough.Format(time.RFC3339))
	} else if s.Replication != nil {
		fmt.Fprintf(tw, "delivered through\tnot yet: some peer is owed records anti-entropy has not settled\n")
	}
	if cl := s.Clock; cl != nil {
		state := "agrees with the cluster"
		if cl.Skewed {
			state = "SKEWED: IDs and retention follow the cluster's time; fix NTP"
		}
		fmt.Fprintf(tw, "clock\t%+.3fs from the cluster's (%d clocks compared, bound %.0fs): %s\n", cl.SkewSeconds, cl.Compared, cl.MaxSkewSeconds, state)
	}
	for _, t := range s.Replication {
		state := "ok"
		if t.LastError != "" {
			state = "failing: " + t.LastError
		}
		if t.DebtPartitions > 0 {
			state += fmt.Sprintf("; owes %d partition(s) to anti-entropy", t.DebtPartitions)
		}
		fmt.Fprintf(tw, "replication to %s\t%d undelivered (%s), lag p50 %s p99 %s, %s\n", t.Peer, t.UndeliveredCount,
			humanBytes(t.UndeliveredBytes), fmtLag(t.LagP50Seconds), fmtLag(t.LagP99Seconds), state)
	}
	return tw.Flush()
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

func printSyslogStatus(tw io.Writer, s *api.SyslogStats) {
	for _, t := range []struct {
		name string
		st   api.SyslogTransport
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

func printConvergence(c api.Convergence) {
	agreed := 0
	for _, p := range c.Partitions {
		if !p.ProvenEqualAt.IsZero() {
			agreed++
		}
	}
	through := "not proven yet"
	if !c.ConvergedThrough.IsZero() {
		through = c.ConvergedThrough.UTC().Format(time.RFC3339) + " (" + time.Since(c.ConvergedThrough).Round(time.Second).String() + " ago)"
	}
	fmt.Printf("converged through %s: every record received before then is on all its replicas\n", through)
	fmt.Printf("partitions proven in agreement: %d of %d\n", agreed, len(c.Partitions))
	filling := map[string]int{}
	for _, p := range c.Partitions {
		for _, f := range p.Filling {
			filling[f]++
		}
	}
	for name, n := range filling {
		fmt.Printf("%s is still being filled with %d partition(s)\n", name, n)
	}
	for _, r := range c.Repairs {
		eta := ""
		if r.ETASeconds > 0 {
			eta = fmt.Sprintf(", about %s left", (time.Duration(r.ETASeconds) * time.Second).String())
		}
		fmt.Printf("repair under way: %s <-> %s, %d of at least %d records%s\n", r.Peer, r.With, r.Done, r.Expected, eta)
	}
	if len(c.Unreachable) > 0 {
		fmt.Printf("not reachable for proof: %s\n", strings.Join(c.Unreachable, ", "))
	}
}
