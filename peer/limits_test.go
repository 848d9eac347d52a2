package peer_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/logmesh/logmesh/api"
	"github.com/logmesh/logmesh/peer"
	"github.com/logmesh/logmesh/testutil"
)

// fromHost is an HTTP client whose connections come from a loopback
// address of its own (the caps are per remote address).
func fromHost(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 2 * time.Second}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
}

func dialFrom(t *testing.T, ip, addr string) net.Conn {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", ip, err)
	}
	return c
}

// closedByServer reports whether the server closed c within d.
func closedByServer(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

// TestAPIKeepsServingThroughAConnectionFlood: one host opens a thousand
// idle connections and another a hundred writes whose bodies stall; a
// third client is answered within a second throughout, the flood holds no
// more than its host's cap, and the stalled writes are ended.
func TestAPIKeepsServingThroughAConnectionFlood(t *testing.T) {
	c := testutil.NewCluster(t, 1, func(i int, cfg *peer.Config) {
		cfg.APIHeaderTimeout = time.Second
		cfg.APIIdleTimeout = time.Second
		cfg.APIMaxConnsPerHost = 200
	})
	addr := c.Peer(0).APIAddr()
	var conns []net.Conn
	defer func() {
		for _, cn := range conns {
			cn.Close()
		}
	}()
	for i := 0; i < 1000; i++ {
		conns = append(conns, dialFrom(t, "127.0.0.1", addr))
	}
	var stalled []net.Conn
	for i := 0; i < 100; i++ {
		cn := dialFrom(t, "127.0.0.3", addr)
		fmt.Fprintf(cn, "POST /v1/logs HTTP/1.1\r\nHost: p1\r\nContent-Type: application/x-ndjson\r\nContent-Length: 100000\r\n\r\n{\"message\":\"ok\"}\n{\"mess")
		stalled = append(stalled, cn)
		conns = append(conns, cn)
	}
	good := fromHost("127.0.0.2")
	var slowest time.Duration
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		start := time.Now()
		resp, err := good.Get("http://" + addr + "/v1/status")
		if err != nil {
			t.Fatalf("a well-behaved client during the flood: %v", err)
		}
		var st api.Status
		err = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("status during the flood: %d %v", resp.StatusCode, err)
		}
		slowest = max(slowest, time.Since(start))
		if st.APIConnections > 200+100+2 {
			t.Fatalf("%d API connections open: the flooding host is past its cap of 200", st.APIConnections)
		}
	}
	if slowest > time.Second {
		t.Fatalf("a well-behaved client waited %v during the flood", slowest)
	}
	t.Logf("slowest answer during the flood: %v", slowest)
	for i, cn := range stalled {
		if !closedByServer(cn, 5*time.Second) {
			t.Fatalf("stalled write %d still open 5s after a 1s idle timeout", i)
		}
	}
	if st := c.Peer(0).Status(); st.APIConnectionsRefused < 800 {
		t.Fatalf("%d connections refused, want the 800 past the cap", st.APIConnectionsRefused)
	}
}

// TestIdleKeepAlivesDoNotLockAHostOut: a client that makes every request
// on a new connection and leaves the old ones open (a new HTTP transport
// per call) goes on being answered past its host's cap: the idle
// keep-alives are closed to let it in. Before, its 21st request was
// refused until the server's idle timeout, two minutes later.
func TestIdleKeepAlivesDoNotLockAHostOut(t *testing.T) {
	c := testutil.NewCluster(t, 1, func(i int, cfg *peer.Config) { cfg.APIMaxConnsPerHost = 20 })
	addr := c.Peer(0).APIAddr()
	var clients []*http.Client
	defer func() {
		for _, cl := range clients {
			cl.CloseIdleConnections()
		}
	}()
	for i := 0; i < 60; i++ {
		cl := fromHost("127.0.0.2")
		clients = append(clients, cl)
		resp, err := cl.Get("http://" + addr + "/v1/status")
		if err != nil {
			t.Fatalf("request %d from a host with %d idle keep-alives: %v", i+1, i, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	st := c.Peer(0).Status()
	if st.APIConnections > 20+1 || st.APIConnectionsReclaimed < 60-20 || st.APIConnectionsRefused != 0 {
		t.Fatalf("open %d reclaimed %d refused %d: want at most 21 open, at least 40 reclaimed, none refused",
			st.APIConnections, st.APIConnectionsReclaimed, st.APIConnectionsRefused)
	}
}

// TestAStalledReaderIsCutOff: a query whose client never reads is ended
// after the idle timeout instead of pinning the stream for ever.
func TestAStalledReaderIsCutOff(t *testing.T) {
	c := testutil.NewCluster(t, 1, func(i int, cfg *peer.Config) { cfg.APIIdleTimeout = time.Second })
	ingestKilobyteRecords(t, c.Client(0), 20000)
	cn := dialFrom(t, "127.0.0.2", c.Peer(0).APIAddr())
	defer cn.Close()
	fmt.Fprintf(cn, "GET /v1/logs?limit=0&local=true HTTP/1.1\r\nHost: p1\r\n\r\n")
	// the answer starts; then this client reads nothing
	line, err := bufio.NewReaderSize(cn, 64).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 200") {
		t.Fatalf("query: %q %v", line, err)
	}
	time.Sleep(3 * time.Second) // the client under test stalls: no event to wait for
	if !closedByServer(cn, 20*time.Second) {
		t.Fatal("a stalled reader's query was not cut off: the connection stayed open after its answer")
	}
}
