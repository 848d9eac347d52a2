package peer_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/logmesh/logmesh/client"
	"github.com/logmesh/logmesh/record"
	"github.com/logmesh/logmesh/testutil"
)

// TestHostileClientsOnARealPeer runs the abuses of the security review at
// once against one real agent while a well-behaved client writes and reads
// from its own address: a thousand idle connections, stalled request
// bodies, stalled readers of a large answer, 16 MiB bodies of tiny lines,
// bursts of concurrent limit=1 queries over 30 KB records, and malformed
// or extreme parameters. The agent stays up, the well-behaved client's
// queries are answered within a second throughout (its writes, which also
// wait for an fsync, within three), every record it was acknowledged is
// there afterwards, and the agent's peak RSS grows by less than 600 MB.
func TestHostileClientsOnARealPeer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real process")
	}
	p := testutil.NewProcess(t, "p1", "--api-max-conns-per-host", "200", "--api-idle-timeout", "2s",
		"--max-queries-per-client", "2")
	p.Start()
	addr := p.APIAddr
	good := goodClient(t, addr)
	// 30 KB records for the limit=1 queries and stalled readers to chew on
	big := strings.Repeat("y", 30000)
	var b strings.Builder
	for i := 0; i < 600; i++ {
		fmt.Fprintf(&b, "{\"message\":\"big %d %s\"}\n", i, big)
	}
	if _, err := good.Ingest(context.Background(), []byte(b.String()), "application/x-ndjson", nil); err != nil {
		t.Fatal(err)
	}
	base, err := p.PeakRSS()
	if err != nil {
		t.Skipf("skipped: cannot read the peak RSS: %v", err)
	}

	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var conns []net.Conn
	var connMu sync.Mutex
	keep := func(c net.Conn) {
		connMu.Lock()
		conns = append(conns, c)
		connMu.Unlock()
	}
	defer func() {
		connMu.Lock()
		for _, c := range conns {
			c.Close()
		}
		connMu.Unlock()
	}()
	attack := func(f func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				f()
			}
		}()
	}
	dial := func(ip string) net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 2 * time.Second}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			return nil
		}
		keep(c)
		return c
	}
	// idle connections, far past the host's cap
	for i := 0; i < 1000; i++ {
		dial("127.0.0.3")
	}
	// stalled bodies
	attack(func() {
		for i := 0; i < 20 && ctx.Err() == nil; i++ {
			if c := dial("127.0.0.4"); c != nil {
				fmt.Fprintf(c, "POST /v1/logs HTTP/1.1\r\nHost: p1\r\nContent-Length: 1000000\r\n\r\n{\"message\":\"x\"}\n{\"mess")
			}
		}
		sleepCtx(ctx, time.Second)
	})
	// readers that never read a large answer
	attack(func() {
		for i := 0; i < 8 && ctx.Err() == nil; i++ {
			if c := dial("127.0.0.5"); c != nil {
				fmt.Fprintf(c, "GET /v1/logs?limit=0&local=true HTTP/1.1\r\nHost: p1\r\n\r\n")
			}
		}
		sleepCtx(ctx, time.Second)
	})
	// tiny-line floods
	flood := bytes.Repeat([]byte("{}\n"), (16<<20)/3)
	floodCl := fromHost("127.0.0.6")
	floodCl.Timeout = 30 * time.Second
	var floodsRefused atomic.Int64
	attack(func() {
		resp, err := floodCl.Post("http://"+addr+"/v1/logs", "application/x-ndjson", bytes.NewReader(flood))
		if err == nil {
			if resp.StatusCode == http.StatusRequestEntityTooLarge {
				floodsRefused.Add(1)
			}
			resp.Body.Close()
		}
	})
	// bursts of limit=1 queries over 30 KB records, and extreme parameters
	var refused429 atomic.Int64
	for i := 0; i < 12; i++ {
		qc := fromHost("127.0.0.7")
		attack(func() {
			for _, q := range []string{"limit=1&local=true", "limit=1", "since=-106752d&limit=1", "regex=(a%2B)%2B$&limit=1&local=true"} {
				resp, err := qc.Get("http://" + addr + "/v1/logs?" + q)
				if err != nil {
					continue
				}
				if resp.StatusCode == http.StatusTooManyRequests {
					refused429.Add(1)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}

	// the well-behaved client, throughout
	var acked []record.ID
	var slowest, slowW, slowQ time.Duration
	for end := time.Now().Add(12 * time.Second); time.Now().Before(end); {
		start := time.Now()
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		res, err := good.Ingest(cctx, []byte(strings.Repeat(`{"message":"good"}`+"\n", 50)), "application/x-ndjson", url.Values{"ids": {"true"}})
		if err != nil {
			cancel()
			t.Fatalf("the well-behaved client's write during the abuse: %v", err)
		}
		acked = append(acked, res.IDs...)
		slowW = max(slowW, time.Since(start))
		qs := time.Now()
		_, err = good.Query(cctx, mustQuery(t, "limit=20"), func(*record.JSON) error { return nil })
		cancel()
		if err != nil {
			t.Fatalf("the well-behaved client's query during the abuse: %v", err)
		}
		slowest = max(slowest, time.Since(start))
		slowQ = max(slowQ, time.Since(qs))
		time.Sleep(50 * time.Millisecond)
	}
	peak, rssErr := p.PeakRSS()
	stop()
	wg.Wait()
	if !p.Running() {
		t.Fatal("the agent died under the abuse")
	}
	held := map[record.ID]bool{}
	if _, err := good.Query(context.Background(), mustQuery(t, "contains=good&limit=0&local=true"), func(j *record.JSON) error {
		id, err := record.ParseID(j.ID)
		held[id] = true
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for _, id := range acked {
		if !held[id] {
			t.Fatalf("acknowledged %s is missing after the abuse", id)
		}
	}
	st := procStatus(t, good, "p1")
	t.Logf("slowest write %v, slowest query %v", slowW, slowQ)
	t.Logf("well-behaved: %d records acknowledged, slowest write+query %v; peak RSS %d → %d MB; floods refused %d, queries refused %d (429), connections refused %d",
		len(acked), slowest.Round(time.Millisecond), base>>20, peak>>20, floodsRefused.Load(), refused429.Load(), st.APIConnectionsRefused)
	if rssErr != nil {
		t.Fatal(rssErr)
	}
	// a query or status answer is CPU and admission; a write also waits for
	// its fsync, which the abuse does not add to (none of it is stored) but
	// a disk shared with other tests does
	if slowQ > time.Second || slowW > 3*time.Second {
		t.Fatalf("the well-behaved client waited %v for a query, %v for a write (bounds 1s and 3s)", slowQ, slowW)
	}
	if grew := peak - base; grew > 600<<20 {
		t.Fatalf("the abuse grew the peak RSS by %d MB, want under 600 MB", grew>>20)
	}
	if floodsRefused.Load() == 0 || st.APIConnectionsRefused == 0 {
		t.Fatalf("the abuse did not reach the caps (floods refused %d, connections refused %d): the test proves nothing",
			floodsRefused.Load(), st.APIConnectionsRefused)
	}
}

func goodClient(t *testing.T, addr string) *client.Client {
	t.Helper()
	cl, err := client.New(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.CloseIdleConnections)
	return cl
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
