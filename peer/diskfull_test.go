package peer_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/logmesh/logmesh/api"
	"github.com/logmesh/logmesh/client"
	"github.com/logmesh/logmesh/faults"
	"github.com/logmesh/logmesh/record"
	"github.com/logmesh/logmesh/testutil"
)

// TestDiskFullRefusesHonestlyAndRecoversWithoutRestart runs an agent whose
// data directory is a 96 MiB tmpfs, mostly taken by a filler file, and
// ingests over HTTP, syslog TCP and syslog UDP until the disk is full:
//   - HTTP answers 507 with Retry-After, says nothing was stored, and no
//     record of a refused batch is ever found; every 2xx record is readable
//     before and after a restart;
//   - syslog TCP is held (backpressure: nothing dropped, nothing buffered
//     beyond a batch per connection), UDP drops are counted;
//   - the agent never crashes, says writable=false in /v1/status and
//     logmesh_store_writable 0 in /metrics;
//   - once the filler is deleted it turns writable by itself and the held
//     TCP records are stored;
//   - started again (after SIGKILL) on a disk too full to open its store, it
//     neither dies of SIGBUS nor exits: it answers 507 to writes and 503
//     elsewhere, saying why, and opens the store by itself once space is
//     freed, with every acknowledged record.
func TestDiskFullRefusesHonestlyAndRecoversWithoutRestart(t *testing.T) {
	faults.RequireRoot(t, "mount a small tmpfs under the agent's data directory")
	p := testutil.NewProcess(t, "full", "--fsync", "always", "--memtable-size", "4MiB", "--memtables", "2",
		"--cache-size", "8MiB")
	fs := faults.MountTmpFS(t, p.DataDir(), 96<<20)
	t.Cleanup(p.Kill) // before the unmount
	p.Start()
	c, err := client.New(p.APIAddr)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testutil.Context(t)
	st := status(t, c)
	if !st.Store.Writable || st.Store.MinFreeDiskBytes <= 0 {
		t.Fatalf("fresh store: writable %v, floor %d", st.Store.Writable, st.Store.MinFreeDiskBytes)
	}
	// leave 12 MiB above the floor, so filling it takes seconds
	filler := filepath.Join(fs.Dir, "filler")
	faults.Fill(t, filler, faults.FreeBytes(t, fs.Dir)-st.Store.MinFreeDiskBytes-12<<20)

	tcp := startTCPSender(t, p.SyslogAddr)
	h := &httpWriter{t: t, c: c}
	fullAt := time.Now()
	for refusedInRow := 0; refusedInRow < 3; {
		if !p.Running() {
			t.Fatal("the agent died while its disk filled")
		}
		if h.post(ctx) {
			refusedInRow = 0
		} else {
			refusedInRow++
		}
		if time.Since(fullAt) > 60*time.Second {
			t.Fatalf("disk not full after 60s: %d records acknowledged", len(h.acked))
		}
	}
	t.Logf("disk full after %v: %d HTTP records acknowledged, %d batches refused, %d bytes free",
		time.Since(fullAt).Round(time.Millisecond), len(h.acked), len(h.refused), faults.FreeBytes(t, fs.Dir))

	// while full: status, metrics, TCP held, UDP counted
	st = status(t, c)
	if st.Store.Writable || st.Store.WritesRefused == 0 {
		t.Fatalf("full store: writable %v, writes refused %d", st.Store.Writable, st.Store.WritesRefused)
	}
	if m := metric(t, p.APIAddr, "logmesh_store_writable"); m != "0" {
		t.Fatalf("logmesh_store_writable = %q while full, want 0", m)
	}
	sent := tcp.sent.Load()
	testutil.WaitFor(t, 10*time.Second, "the TCP sender to be held", func() bool {
		s := tcp.sent.Load()
		held := s == sent && tcp.blocked.Load()
		sent = s
		return held
	})
	udpSent := sendUDP(t, p.SyslogAddr, 20000)
	testutil.WaitFor(t, 10*time.Second, "UDP drops counted", func() bool {
		return status(t, c).Ingest.Syslog.UDP.Dropped > 0
	})
	st = status(t, c)
	if d := st.Ingest.Syslog.TCP.Dropped; d != 0 {
		t.Fatalf("syslog TCP dropped %d records while the disk was full, want backpressure", d)
	}
	t.Logf("while full: TCP sender held after %d lines (%d stored, 0 dropped); UDP %d sent, %d dropped (counted)",
		tcp.sent.Load(), st.Ingest.Syslog.TCP.Messages, udpSent, st.Ingest.Syslog.UDP.Dropped)

	// space returns
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	freed := time.Now()
	testutil.WaitFor(t, 10*time.Second, "writable again", func() bool { return status(t, c).Store.Writable })
	recover := time.Since(freed)
	if !h.post(ctx) {
		t.Fatal("HTTP write refused after space returned")
	}
	tcpSent := tcp.stop()
	testutil.WaitFor(t, 15*time.Second, "every TCP line stored", func() bool {
		return status(t, c).Ingest.Syslog.TCP.Messages >= tcpSent
	}, func() string { return fmt.Sprintf("%d of %d", status(t, c).Ingest.Syslog.TCP.Messages, tcpSent) })
	if m := metric(t, p.APIAddr, "logmesh_store_writable"); m != "1" {
		t.Fatalf("logmesh_store_writable = %q after recovery, want 1", m)
	}
	t.Logf("writable %v after the filler was deleted (no restart); %d TCP lines sent, all stored",
		recover.Round(time.Millisecond), tcpSent)

	h.verify(ctx, "before restart")
	p.Kill()
	p.Start()
	h.verify(ctx, "after SIGKILL and restart")

	// a restart while the disk is full: no SIGBUS while Badger replays its
	// log, and no exit either; the peer waits, refusing writes and saying
	// why, and opens its store by itself once space is freed
	floor := status(t, c).Store.MinFreeDiskBytes
	p.Kill()
	faults.Fill(t, filler, faults.FreeBytes(t, fs.Dir)-floor/2)
	p.StartUntil(http.StatusServiceUnavailable)
	const tag = "while-full"
	h.refused = append(h.refused, tag)
	resp, err := http.Post("http://"+p.APIAddr+"/v1/logs", "application/x-ndjson",
		strings.NewReader(`{"message":"`+tag+` written while the store could not open"}`+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusInsufficientStorage || !strings.Contains(string(body), "too full to open its store") ||
		!strings.Contains(string(body), "nothing was stored") {
		t.Fatalf("a write while the store waits for space: %d %s", resp.StatusCode, body)
	}
	if _, err := c.Status(ctx); err == nil || !strings.Contains(err.Error(), "too full") {
		t.Fatalf("status while the store waits for space: %v", err)
	}
	if m := metric(t, p.APIAddr, "logmesh_store_waiting_for_space"); m != "1" {
		t.Fatalf("logmesh_store_waiting_for_space = %q while waiting, want 1", m)
	}
	t.Logf("restarted on the full disk, waiting: %s", strings.TrimSpace(string(body)))
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 60*time.Second, "the waiting peer opens its store", func() bool {
		resp, err := http.Get("http://" + p.APIAddr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if !p.Running() {
		t.Fatal("the peer exited while it waited for space")
	}
	if log, err := os.ReadFile(p.LogPath()); err != nil || strings.Contains(string(log), "unexpected fault address") {
		t.Fatalf("the agent's log shows a fault (or cannot be read: %v)", err)
	}
	h.verify(ctx, "after waiting for space, with no restart")
}

func status(t *testing.T, c *client.Client) api.Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// metric returns the value of an unlabelled metric from /metrics.
func metric(t *testing.T, addr, name string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			return v
		}
	}
	return ""
}

// httpWriter posts batches of incompressible records and remembers which
// were acknowledged and which refused.
type httpWriter struct {
	t       *testing.T
	c       *client.Client
	n       int
	acked   []record.ID
	refused []string // batch tags
}

// post sends one batch of 100 records; it reports whether it was acknowledged.
func (h *httpWriter) post(ctx context.Context) bool {
	h.t.Helper()
	h.n++
	tag := fmt.Sprintf("batch-%06d", h.n)
	var body strings.Builder
	junk := make([]byte, 400)
	for i := 0; i < 100; i++ {
		rand.Read(junk)
		fmt.Fprintf(&body, "{\"message\":\"%s r%d %s\"}\n", tag, i, hex.EncodeToString(junk))
	}
	resp, err := h.c.Ingest(ctx, []byte(body.String()), "application/x-ndjson", url.Values{"ids": {"true"}})
	if err == nil {
		h.acked = append(h.acked, resp.IDs...)
		return true
	}
	var se *client.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusInsufficientStorage {
		h.t.Fatalf("batch %s: %v, want 2xx or 507", tag, err)
	}
	if !strings.Contains(se.Message, "nothing of this batch was stored") {
		h.t.Fatalf("507 that does not say the batch was not stored: %s", se.Message)
	}
	h.refused = append(h.refused, tag)
	return false
}

// verify checks that every acknowledged record is stored and no record of a
// refused batch is.
func (h *httpWriter) verify(ctx context.Context, when string) {
	h.t.Helper()
	stored := map[string]bool{}
	refused := map[string]bool{}
	for _, tag := range h.refused {
		refused[tag] = true
	}
	leaked := 0
	q := mustQuery(h.t, "limit=0&order=asc")
	if _, err := h.c.Query(ctx, q, func(j *record.JSON) error {
		stored[j.ID] = true
		if tag, _, ok := strings.Cut(j.Message, " "); ok && refused[tag] {
			leaked++
		}
		return nil
	}); err != nil {
		h.t.Fatal(err)
	}
	lost := 0
	for _, id := range h.acked {
		if !stored[id.String()] {
			lost++
		}
	}
	if lost > 0 || leaked > 0 {
		h.t.Fatalf("%s: %d of %d acknowledged records lost; %d records of refused batches stored", when, lost, len(h.acked), leaked)
	}
	h.t.Logf("%s: all %d acknowledged records readable, none of %d refused batches stored", when, len(h.acked), len(h.refused))
}

// tcpSender writes syslog lines over one TCP connection as fast as the
// agent reads them, and notices when its writes block.
type tcpSender struct {
	conn    net.Conn
	sent    atomic.Uint64 // lines written completely
	blocked atomic.Bool   // the last write timed out
	done    chan struct{}
	wg      sync.WaitGroup
}

func startTCPSender(t *testing.T, addr string) *tcpSender {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := &tcpSender{conn: conn, done: make(chan struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		var pending []byte
		for i := 0; ; {
			select {
			case <-s.done:
				return
			default:
			}
			if len(pending) == 0 {
				i++
				pending = fmt.Appendf(nil, "<14>1 - host app - - - tcp line %d\n", i)
			}
			_ = conn.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
			n, err := conn.Write(pending)
			pending = pending[n:]
			if len(pending) == 0 {
				s.sent.Add(1)
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				s.blocked.Store(true)
				continue
			}
			if err != nil {
				return
			}
			s.blocked.Store(false)
		}
	}()
	t.Cleanup(func() { s.stop() })
	return s
}

// stop finishes the line in progress, closes the connection and returns
// the lines sent.
func (s *tcpSender) stop() uint64 {
	select {
	case <-s.done:
	default:
		close(s.done)
	}
	s.wg.Wait()
	s.conn.Close()
	return s.sent.Load()
}

func sendUDP(t *testing.T, addr string, n int) int {
	t.Helper()
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for i := 0; i < n; i++ {
		_, _ = fmt.Fprintf(conn, "<14>1 - host app - - - udp datagram %d", i)
	}
	return n
}
