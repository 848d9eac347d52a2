package peer_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/logmesh/logmesh/testutil"
)

// scrape returns the samples of /metrics by their name and labels as
// printed, e.g. `logmesh_ingest_records_total{transport="tcp"}`.
func scrape(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
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
		`logmesh_ingest_records_total{transport="tcp"}`, `logmesh_gossip_members{state="alive"}`} {
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
