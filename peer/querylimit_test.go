package peer_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/logmesh/logmesh/client"
	"github.com/logmesh/logmesh/peer"
	"github.com/logmesh/logmesh/record"
	"github.com/logmesh/logmesh/testutil"
)

// TestQueriesPastTheCapsAreRefused: with two queries of one client held
// open, its third is refused with 429 while another client's goes
// through; at the total cap every client is refused; once the held ones
// end the client is answered again.
func TestQueriesPastTheCapsAreRefused(t *testing.T) {
	c := testutil.NewCluster(t, 1, func(i int, cfg *peer.Config) {
		cfg.MaxQueriesPerClient, cfg.MaxQueries = 2, 3
		cfg.APIIdleTimeout = time.Minute
	})
	ingestKilobyteRecords(t, c.Client(0), 20000)
	addr := c.Peer(0).APIAddr()
	// queries whose readers stall once the answer began: each holds its
	// slot (20 MB to send)
	// (a query just answered may not have left its slot yet: retry a 429)
	hold := func(ip string) func() {
		var cn net.Conn
		testutil.WaitFor(t, 10*time.Second, "a held query from "+ip+" to be admitted", func() bool {
			cn = dialFrom(t, ip, addr)
			fmt.Fprintf(cn, "GET /v1/logs?limit=0&local=true HTTP/1.1\r\nHost: p1\r\n\r\n")
			line, err := bufio.NewReaderSize(cn, 64).ReadString('\n')
			if err != nil || !strings.HasPrefix(line, "HTTP/1.1 200") {
				cn.Close()
				return false
			}
			return true
		})
		return func() { cn.Close() }
	}
	code := func(ip string) int {
		resp, err := fromHost(ip).Get("http://" + addr + "/v1/logs?limit=1&local=true")
		if err != nil {
			t.Fatalf("query from %s: %v", ip, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	release := []func(){hold("127.0.0.2"), hold("127.0.0.2")}
	testutil.WaitFor(t, 10*time.Second, "a third query from a client with two running to be refused", func() bool {
		return code("127.0.0.2") == http.StatusTooManyRequests
	})
	if got := code("127.0.0.3"); got != http.StatusOK {
		t.Fatalf("another client's query: %d, want 200", got)
	}
	release = append(release, hold("127.0.0.3"))
	testutil.WaitFor(t, 10*time.Second, "any query at the total cap to be refused", func() bool {
		return code("127.0.0.4") == http.StatusTooManyRequests
	})
	for _, r := range release {
		r()
	}
	testutil.WaitFor(t, 20*time.Second, "the client to be answered once its queries ended", func() bool {
		return code("127.0.0.2") == http.StatusOK
	})
	if st := c.Peer(0).Status(); st.QueriesRefused < 2 {
		t.Fatalf("queries refused %d, want at least 2", st.QueriesRefused)
	}
}

// TestAQueryPastItsTimeoutEndsPartial: a query that runs past QueryTimeout
// is ended, and its answer says it is partial and why.
func TestAQueryPastItsTimeoutEndsPartial(t *testing.T) {
	c := testutil.NewCluster(t, 1, func(i int, cfg *peer.Config) { cfg.QueryTimeout = time.Millisecond })
	ingestKilobyteRecords(t, c.Client(0), 20000)
	n := 0
	cov, err := c.Client(0).Query(context.Background(), mustQuery(t, "limit=0&local=true"), func(*record.JSON) error { n++; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if cov.State != "partial" || !strings.Contains(cov.Reason, "--query-timeout") || n >= 20000 {
		t.Fatalf("a query past its timeout: coverage %+v, %d of 20000 records", cov, n)
	}
	if st := c.Peer(0).Status(); st.QueryTimeouts != 1 {
		t.Fatalf("query timeouts %d, want 1", st.QueryTimeouts)
	}
}

// ingestKilobyteRecords stores n records of ~1 KB at cl: answers large
// enough (20 MB for 20000) that a reader who stops reading holds its query.
func ingestKilobyteRecords(t *testing.T, cl *client.Client, n int) {
	t.Helper()
	big := strings.Repeat("x", 1000)
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "{\"message\":\"%d %s\"}\n", i, big)
	}
	if _, err := cl.Ingest(context.Background(), []byte(b.String()), "application/x-ndjson", nil); err != nil {
		t.Fatal(err)
	}
}
