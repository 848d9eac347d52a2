package peer_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/logmesh/logmesh/peer"
	"github.com/logmesh/logmesh/testutil"
)

// scrape returns the samples of /metrics by their name and labels as
// printed, e.g. `logmesh_ingest_records_total{transport="tcp"}`.
func scrape(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	return scrapeURL(t, http.DefaultClient, "http://"+addr+"/metrics", "")
}

// scrapeURL scrapes a metrics URL with hc, sending token when set.
func scrapeURL(t *testing.T, hc *http.Client, url, token string) map[string]float64 {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("/metrics: %s: %s", resp.Status, b)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad sample %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

func TestMetricsMoveWithTheirEvents(t *testing.T) {
	p := startPeer(t, t.TempDir())
	c := cli(t, p)
	before := scrape(t, p.APIAddr())
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "logmesh_store_records",
		`logmesh_ingest_records_total{transport="tcp"}`, `logmesh_gossip_members{state="alive"}`,
		`logmesh_store_level_tables{level="0"}`, `logmesh_store_level_compaction_score{level="0"}`, "logmesh_store_value_log_gc_runs_total",
		"logmesh_store_blocks_merged_total", "logmesh_store_captured_bytes", `logmesh_store_moved_runs_total{from="memory"}`} {
		if _, ok := before[name]; !ok {
			t.Fatalf("/metrics lacks %s", name)
		}
	}

	// syslog over TCP: two good lines and one without a PRI (kept raw, flagged)
	conn, err := net.Dial("tcp", p.SyslogTCPAddr())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(conn, "<13>1 2026-11-25T10:00:00Z h a - - - one\n<13>1 2026-11-25T10:00:01Z h a - - - two\nno pri at all\n")
	conn.Close()
	// HTTP: one record
	if _, err := c.Ingest(context.Background(), []byte(`{"message":"three"}`+"\n"), "application/x-ndjson", nil); err != nil {
		t.Fatal(err)
	}
	var after map[string]float64
	testutil.WaitFor(t, 10*time.Second, "ingestion counters to move", func() bool {
		after = scrape(t, p.APIAddr())
		return after[`logmesh_ingest_records_total{transport="tcp"}`]-before[`logmesh_ingest_records_total{transport="tcp"}`] == 3 &&
			after[`logmesh_ingest_records_total{transport="http"}`]-before[`logmesh_ingest_records_total{transport="http"}`] == 1
	}, func() string { return fmt.Sprint(after) })
	if got := after[`logmesh_ingest_malformed_total{reason="no_pri",transport="tcp"}`]; got != 1 {
		t.Fatalf("malformed no_pri over TCP = %v, want 1", got)
	}
	if after["logmesh_store_records"] != 4 {
		t.Fatalf("logmesh_store_records = %v, want 4", after["logmesh_store_records"])
	}
	if after["logmesh_store_commits_total"] <= before["logmesh_store_commits_total"] {
		t.Fatal("logmesh_store_commits_total did not move")
	}

	// a query is timed
	queryAll(t, c, "contains=three")
	q := scrape(t, p.APIAddr())
	n := q[`logmesh_query_duration_seconds_count{scope="cluster"}`] + q[`logmesh_query_duration_seconds_count{scope="local"}`]
	if n < 1 {
		t.Fatalf("query duration histogram did not count the query: %v", n)
	}
}

// TestClusterMetricsMoveWithTheirEvents: replication, anti-entropy and
// gossip metrics follow pushes, repairs and a peer going down and back.
func TestClusterMetricsMoveWithTheirEvents(t *testing.T) {
	c := testutil.NewCluster(t, 3, func(i int, cfg *peer.Config) {
		cfg.AntiEntropyInterval = time.Hour // rounds only when asked: each one is counted here
	})
	c.WaitAlive(20 * time.Second)
	api1, api2 := strings.TrimPrefix(c.Client(0).Addr(), "http://"), strings.TrimPrefix(c.Client(1).Addr(), "http://")
	if got := scrape(t, api1)[`logmesh_gossip_members{state="alive"}`]; got != 3 {
		t.Fatalf(`logmesh_gossip_members{state="alive"} = %v, want 3`, got)
	}

	// pushes: delivered on the sender, received on the target, nothing left waiting
	before1, before2 := scrape(t, api1), scrape(t, api2)
	ingestJSON(t, c.Client(0), "pushed", 100, nil)
	testutil.WaitFor(t, 20*time.Second, "p1 to count 100 records delivered to p2 and p3", func() bool {
		m := scrape(t, api1)
		return m[`logmesh_replication_delivered_records_total{peer="p2"}`]-before1[`logmesh_replication_delivered_records_total{peer="p2"}`] == 100 &&
			m[`logmesh_replication_delivered_records_total{peer="p3"}`]-before1[`logmesh_replication_delivered_records_total{peer="p3"}`] == 100
	})
	m1, m2 := scrape(t, api1), scrape(t, api2)
	if got := m2["logmesh_replication_received_records_total"] - before2["logmesh_replication_received_records_total"]; got != 100 {
		t.Fatalf("p2 counted %v records pushed to it, want 100", got)
	}
	if got := m1[`logmesh_replication_undelivered_records{peer="p2"}`]; got != 0 {
		t.Fatalf("p1 says %v records wait for p2 after delivery", got)
	}
	if _, ok := m1[`logmesh_replication_lag_seconds{peer="p2",quantile="0.99"}`]; !ok {
		t.Fatal("no replication lag quantile for p2")
	}

	// anti-entropy: records written to p1 alone are found and repaired
	before1 = scrape(t, api1)
	ingestJSON(t, c.Client(0), "local-only", 7, url.Values{"local": {"true"}})
	if _, err := c.Client(0).Repair(context.Background()); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 30*time.Second, "p1 to count 14 records repaired (7 to each co-replica)", func() bool {
		m := scrape(t, api1)
		return m[`logmesh_antientropy_repaired_records_total{direction="sent"}`]-before1[`logmesh_antientropy_repaired_records_total{direction="sent"}`] == 14
	})
	m1 = scrape(t, api1)
	if m1["logmesh_antientropy_rounds_total"] <= before1["logmesh_antientropy_rounds_total"] {
		t.Fatal("logmesh_antientropy_rounds_total did not move with a repair")
	}
	if m1["logmesh_antientropy_differing_leaves_total"] <= before1["logmesh_antientropy_differing_leaves_total"] {
		t.Fatal("logmesh_antientropy_differing_leaves_total did not move although replicas differed")
	}
	if m1[`logmesh_antientropy_repaired_bytes_total{direction="sent"}`] <= before1[`logmesh_antientropy_repaired_bytes_total{direction="sent"}`] {
		t.Fatal("logmesh_antientropy_repaired_bytes_total did not move")
	}

	// gossip: a peer that goes down is counted failed; back, it is a flap
	before1 = scrape(t, api1)
	c.Stop(2)
	testutil.WaitFor(t, 20*time.Second, "p1 to count p3 failed", func() bool {
		m := scrape(t, api1)
		return m[`logmesh_gossip_members{state="failed"}`] == 1 && m[`logmesh_gossip_members{state="alive"}`] == 2
	})
	c.Start(2)
	testutil.WaitFor(t, 30*time.Second, "p1 to count p3 alive again and a flap", func() bool {
		m := scrape(t, api1)
		return m[`logmesh_gossip_members{state="alive"}`] == 3 && m["logmesh_gossip_flaps_total"] > before1["logmesh_gossip_flaps_total"]
	})
}
