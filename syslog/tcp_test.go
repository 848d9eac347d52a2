package syslog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/logmesh/logmesh/record"
)

func dialTCP(t *testing.T, s *Server) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", s.TCPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

func write(t *testing.T, c net.Conn, s string) {
	t.Helper()
	if _, err := io.WriteString(c, s); err != nil {
		t.Fatal(err)
	}
}

// waitClosed waits until the server closed c: a read returns EOF or an
// error (a reset when the server closed with input unread).
func waitClosed(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := c.Read(make([]byte, 1))
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("the server did not close the connection")
	}
	if err == nil {
		t.Fatal("the server sent data")
	}
}

func octet(msg string) string { return fmt.Sprintf("%d %s", len(msg), msg) }

// summary is what the TCP tests check of a record.
func summary(r *record.Record) string {
	return fmt.Sprintf("%v %04b %q %q", r.Format, r.Flags, r.Reason, r.Message)
}

func TestTCPGoodLinesAroundBadOnes(t *testing.T) {
	sink := &fakeSink{}
	s := startServer(t, testConfig(t), sink)
	c := dialTCP(t, s)
	long := "<13>Oct 11 22:14:15 host app: " + strings.Repeat("x", 600)
	write(t, c, "<13>Oct 11 22:14:15 host app: first\n"+
		"no pri here\n"+
		"<999>bad pri\n"+
		"\n"+
		"<13>Oct 11 22:14:15 host app: nul\x00byte\n"+
		octet("<14>1 2003-10-11T22:14:15.003Z h a - - - octet\n")+
		long+"\n"+
		"4\x00  \n"+
		"<13>Oct 11 22:14:15 host app: last\r\n")
	c.CloseWrite()
	recs := sink.waitRecords(t, 8)
	want := []string{
		`rfc3164 0001 "" "first"`,
		`raw 1010 "no_pri" "no pri here"`,
		`raw 1010 "bad_pri" "<999>bad pri"`,
		`rfc3164 0001 "" "nul\x00byte"`,
		`rfc5424 0001 "" "octet"`,
		`rfc3164 0101 "truncated" "` + strings.Repeat("x", 512-len("<13>Oct 11 22:14:15 host app: ")) + `"`,
		`raw 1010 "no_pri" "4\x00  "`,
		`rfc3164 0001 "" "last"`,
	}
	for i, r := range recs {
		if got := summary(r); got != want[i] {
			t.Errorf("record %d: %s, want %s", i, got, want[i])
		}
		if r.Transport != record.TransportTCP || r.Source != c.LocalAddr().String() || r.Peer != "peer-1" {
			t.Errorf("record %d from %v %q %q", i, r.Transport, r.Source, r.Peer)
		}
	}
	if got := string(recs[4].Raw); got != "<14>1 2003-10-11T22:14:15.003Z h a - - - octet" {
		t.Errorf("octet-counted raw %q: the trailing LF is transport", got)
	}
	if len(recs[5].Raw) != 512 {
		t.Errorf("truncated raw of %d bytes", len(recs[5].Raw))
	}
	waitClosed(t, c)
	waitFor(t, "the connection to close", func() bool { return s.Stats().TCP.ConnectionsOpen == 0 })
	st := s.Stats().TCP
	wantMalformed := map[string]uint64{"no_pri": 2, "bad_pri": 1, "empty": 1, "truncated": 1}
	if fmt.Sprint(st.Malformed) != fmt.Sprint(wantMalformed) || st.Received != 8 || st.Messages != 8 ||
		st.Truncated != 1 || st.DiscardedBytes != uint64(len(long)-512) || st.ConnectionsAccepted != 1 ||
		st.FramingErrors+st.IdleTimeouts+st.FrameTimeouts+st.Dropped != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestTCPRecordNotHeldForMoreInput(t *testing.T) {
	sink := &fakeSink{}
	s := startServer(t, testConfig(t), sink)
	c := dialTCP(t, s)
	write(t, c, "<13>Oct 11 22:14:15 host app: one\n")
	sink.waitRecords(t, 1)
	write(t, c, octet("<13>Oct 11 22:14:15 host app: two")+"<13>Oct 11 22:14:15 host app: three\n<13>partial")
	sink.waitRecords(t, 3) // "partial" may take its time, its predecessors may not
	write(t, c, " four\n")
	recs := sink.waitRecords(t, 4)
	if got := summary(recs[3]); got != `raw 1011 "bad_header" "partial four"` {
		t.Errorf("last record %s", got)
	}
}

// TestTCPStoredCountedWhileTheConnectionStaysOpen: the counters move as a
// batch is stored, not when the next one arrives or the sender hangs up.
func TestTCPStoredCountedWhileTheConnectionStaysOpen(t *testing.T) {
	sink := &fakeSink{}
	s := startServer(t, testConfig(t), sink)
	c := dialTCP(t, s)
	write(t, c, "<13>Oct 11 22:14:15 host app: one\n<13>Oct 11 22:14:15 host app: two\n")
	sink.waitRecords(t, 2)
	deadline := time.Now().Add(5 * time.Second)
	for s.Stats().TCP.Messages != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("2 records stored on an open connection, counters say %+v", s.Stats().TCP)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestTCPMaxBatch(t *testing.T) {
	sink := &fakeSink{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	cfg := testConfig(t)
	cfg.MaxBatch = 4
	s := startServer(t, cfg, sink)
	c := dialTCP(t, s)
	write(t, c, "<13>Oct 11 22:14:15 host app: first\n")
	<-sink.entered // the connection reads nothing more until this batch is stored
	write(t, c, strings.Repeat("<13>Oct 11 22:14:15 host app: more\n", 10))
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case sink.gate <- struct{}{}:
			case <-stop:
				return
			}
		}
	}()
	sink.waitRecords(t, 11)
	for i, b := range sink.batches() {
		if len(b) > 4 {
			t.Errorf("batch %d of %d records", i, len(b))
		}
	}
}

func TestTCPBrokenOctetFramingClosesAfterIngest(t *testing.T) {
	sink := &fakeSink{}
	s := startServer(t, testConfig(t), sink)

	// A 20-digit count: the connection cannot be resynchronised.
	c := dialTCP(t, s)
	write(t, c, "<13>Oct 11 22:14:15 host app: before\n12345678901234567890 <13>x\n<13>Oct 11 22:14:15 host app: after\n")
	waitClosed(t, c)
	recs := sink.waitRecords(t, 2)
	if summary(recs[0]) != `rfc3164 0001 "" "before"` || recs[1].Reason != record.ReasonFraming ||
		string(recs[1].Raw) != "12345678901234567890" || !recs[1].Flags.Has(record.FlagParseError) {
		t.Errorf("records %s; %s raw %q", summary(recs[0]), summary(recs[1]), recs[1].Raw)
	}

	// The count promises more than the stream holds.
	c = dialTCP(t, s)
	write(t, c, octet("<13>Oct 11 22:14:15 host app: fine")+"50 <13>Oct 11 22:14:15 host app: short")
	c.CloseWrite()
	waitClosed(t, c)
	recs = sink.waitRecords(t, 4)
	if summary(recs[2]) != `rfc3164 0001 "" "fine"` || summary(recs[3]) != `rfc3164 0011 "framing" "short"` {
		t.Errorf("records %s; %s", summary(recs[2]), summary(recs[3]))
	}
	waitFor(t, "stats", func() bool { return s.Stats().TCP.FramingErrors == 2 })
	if st := s.Stats().TCP; st.Malformed["framing"] != 2 || st.Messages != 4 {
		t.Errorf("stats %+v", st)
	}
}

func TestTCPFrameTimeout(t *testing.T) {
	sink := &fakeSink{}
	cfg := testConfig(t)
	cfg.FrameTimeout = 300 * time.Millisecond
	s := startServer(t, cfg, sink)
	c := dialTCP(t, s)
	write(t, c, "<13>Oct 11 22:14:15 host app: whole\n<13>Oct 11 22:14:15 host app: half a mess")
	waitClosed(t, c)
	recs := sink.waitRecords(t, 2)
	if summary(recs[1]) != `rfc3164 0011 "framing" "half a mess"` {
		t.Errorf("record %s", summary(recs[1]))
	}
	waitFor(t, "stats", func() bool { return s.Stats().TCP.FrameTimeouts == 1 })
	if st := s.Stats().TCP; st.IdleTimeouts != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestTCPSlowSender(t *testing.T) {
	// A byte every 50ms keeps the connection from being idle for 1s, but
	// the message is not complete within 1.5s.
	sink := &fakeSink{}
	cfg := testConfig(t)
	cfg.IdleTimeout = time.Second
	cfg.FrameTimeout = 1500 * time.Millisecond
	s := startServer(t, cfg, sink)
	c := dialTCP(t, s)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := c.Write([]byte{"<13>slowloris"[i%13]}); err != nil {
					return
				}
			}
		}
	}()
	start := time.Now()
	waitClosed(t, c)
	close(stop)
	wg.Wait()
	if d := time.Since(start); d < cfg.FrameTimeout-50*time.Millisecond {
		t.Errorf("closed after %v, before FrameTimeout", d)
	}
	recs := sink.waitRecords(t, 1)
	if recs[0].Reason != record.ReasonFraming || !strings.HasPrefix(string(recs[0].Raw), "<13>slow") {
		t.Errorf("record %s raw %q", summary(recs[0]), recs[0].Raw)
	}
	waitFor(t, "stats", func() bool { return s.Stats().TCP.FrameTimeouts == 1 })
	if st := s.Stats().TCP; st.IdleTimeouts != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestTCPIdleTimeout(t *testing.T) {
	sink := &fakeSink{}
	cfg := testConfig(t)
	cfg.IdleTimeout = 200 * time.Millisecond
	s := startServer(t, cfg, sink)
	c := dialTCP(t, s)
	write(t, c, "<13>Oct 11 22:14:15 host app: then nothing\n")
	waitClosed(t, c)
	sink.waitRecords(t, 1)
	waitFor(t, "stats", func() bool { return s.Stats().TCP.IdleTimeouts == 1 })
	if st := s.Stats().TCP; st.FrameTimeouts != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestTCPMaxConnections(t *testing.T) {
	sink := &fakeSink{}
	cfg := testConfig(t)
	cfg.MaxConnections = 2
	cfg.MaxConnectionsPerSource = 2 // every test connection comes from 127.0.0.1
	s := startServer(t, cfg, sink)
	c1, c2 := dialTCP(t, s), dialTCP(t, s)
	write(t, c1, "<13>Oct 11 22:14:15 host app: one\n")
	write(t, c2, "<13>Oct 11 22:14:15 host app: two\n")
	sink.waitRecords(t, 2) // both are being served

	c3 := dialTCP(t, s)
	waitClosed(t, c3)
	if st := s.Stats().TCP; st.ConnectionsRejected != 1 || st.ConnectionsAccepted != 2 || st.ConnectionsOpen != 2 {
		t.Errorf("stats %+v", st)
	}

	c1.Close()
	waitFor(t, "a free slot", func() bool { return s.Stats().TCP.ConnectionsOpen == 1 })
	c4 := dialTCP(t, s)
	write(t, c4, "<13>Oct 11 22:14:15 host app: four\n")
	sink.waitRecords(t, 3)
}

func TestTCPSinkError(t *testing.T) {
	sink := &fakeSink{}
	sink.fail(errors.New("disk full"))
	s := startServer(t, testConfig(t), sink)
	c := dialTCP(t, s)
	write(t, c, "<13>Oct 11 22:14:15 host app: lost\n")
	waitClosed(t, c)
	waitFor(t, "stats", func() bool { return s.Stats().TCP.SinkErrors == 1 })
	if st := s.Stats().TCP; st.Dropped != 1 || st.Messages != 0 || st.Received != 1 {
		t.Errorf("stats %+v", st)
	}
}

// backlog writes n numbered lines to c from a goroutine and returns a
// channel that yields the write's error once it is done.
func backlog(c net.Conn, conn, n int) <-chan error {
	var sb strings.Builder
	for i := range n {
		fmt.Fprintf(&sb, "<13>1 2024-01-02T03:04:05Z host app - - - conn %d line %06d %s\n", conn, i, strings.Repeat("x", 60))
	}
	done := make(chan error, 1)
	go func() {
		_, err := io.WriteString(c, sb.String())
		done <- err
	}()
	return done
}

// inOrder checks that recs hold lines 0..want[c]-1 of each connection c,
// in order.
func inOrder(t *testing.T, recs []*record.Record, want map[int]int) {
	t.Helper()
	next := map[int]int{}
	for _, r := range recs {
		var conn, i int
		if _, err := fmt.Sscanf(r.Message, "conn %d line %d", &conn, &i); err != nil {
			t.Fatalf("record %q: %v", r.Message, err)
		}
		if i != next[conn] {
			t.Fatalf("connection %d: line %d after line %d", conn, i, next[conn]-1)
		}
		next[conn]++
	}
	for conn, n := range want {
		if next[conn] != n {
			t.Fatalf("connection %d: %d lines, want %d", conn, next[conn], n)
		}
	}
	if len(next) != len(want) {
		t.Fatalf("lines of %d connections, want %d", len(next), len(want))
	}
}

// TestTCPLargeReadBuffer: a connection whose sender has a backlog gets a
// large read buffer; it gives the buffer back when its reads stay small and
// when it closes; nothing is lost or reordered on the way.
func TestTCPLargeReadBuffer(t *testing.T) {
	sink := &fakeSink{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	cfg := testConfig(t)
	cfg.MaxBatch = 512
	s := startServer(t, cfg, sink)
	c := dialTCP(t, s)
	const n = 40000 // about 4 MB
	sent := backlog(c, 0, n)
	<-sink.entered // the first batch is held: the rest queues up in the kernel
	close(sink.gate)
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	inOrder(t, sink.waitRecords(t, n), map[int]int{0: n})
	if got := s.Stats().LargeReadBuffers; got != 1 {
		t.Fatalf("LargeReadBuffers %d after a backlog was read, want 1", got)
	}

	// lines one at a time: every read is small
	for i := range shrinkAfterQuiet {
		write(t, c, fmt.Sprintf("<13>1 2024-01-02T03:04:05Z host app - - - conn 1 line %06d\n", i))
		sink.waitRecords(t, n+i+1)
	}
	if got := s.Stats().LargeReadBuffers; got != 0 {
		t.Fatalf("LargeReadBuffers %d after %d small reads, want 0", got, shrinkAfterQuiet)
	}
	inOrder(t, sink.records(), map[int]int{0: n, 1: shrinkAfterQuiet})
}

// TestTCPLargeReadBufferLimit: large buffers go to at most maxBig
// connections; the others keep theirs, lose nothing, and the large buffer
// is given back when its connection closes.
func TestTCPLargeReadBufferLimit(t *testing.T) {
	sink := &fakeSink{gate: make(chan struct{}), entered: make(chan struct{}, 2)}
	cfg := testConfig(t)
	cfg.MaxBatch = 512
	s, err := New(cfg, sink)
	if err != nil {
		t.Fatal(err)
	}
	s.maxBig = 1
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	const n = 30000
	conns := []net.Conn{dialTCP(t, s), dialTCP(t, s)}
	var sent []<-chan error
	for i, c := range conns {
		sent = append(sent, backlog(c, i, n))
	}
	<-sink.entered
	<-sink.entered
	close(sink.gate)
	for _, ch := range sent {
		if err := <-ch; err != nil {
			t.Fatal(err)
		}
	}
	inOrder(t, sink.waitRecords(t, 2*n), map[int]int{0: n, 1: n})
	if got := s.Stats().LargeReadBuffers; got != 1 {
		t.Fatalf("LargeReadBuffers %d with two backlogged connections and a limit of 1, want 1", got)
	}
	for _, c := range conns {
		c.Close()
	}
	waitFor(t, "the large buffer to be given back", func() bool { return s.Stats().LargeReadBuffers == 0 })
}

// TestTCPLargeReadBufferFrameTimeout: a connection on a large read buffer
// whose sender stops inside a message is closed by FrameTimeout like any
// other, with every whole line and the partial one stored.
func TestTCPLargeReadBufferFrameTimeout(t *testing.T) {
	sink := &fakeSink{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	cfg := testConfig(t)
	cfg.MaxBatch = 512
	cfg.FrameTimeout = 300 * time.Millisecond
	s := startServer(t, cfg, sink)
	c := dialTCP(t, s)
	const n = 40000
	sent := backlog(c, 0, n)
	<-sink.entered
	close(sink.gate)
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	sink.waitRecords(t, n)
	if got := s.Stats().LargeReadBuffers; got != 1 {
		t.Fatalf("LargeReadBuffers %d after a backlog was read, want 1", got)
	}
	write(t, c, "<13>1 2024-01-02T03:04:05Z host app - - - half a mess")
	waitClosed(t, c)
	recs := sink.waitRecords(t, n+1)
	inOrder(t, recs[:n], map[int]int{0: n})
	if got := summary(recs[n]); got != `rfc5424 0011 "framing" "half a mess"` {
		t.Errorf("record %s", got)
	}
	waitFor(t, "stats", func() bool { return s.Stats().TCP.FrameTimeouts == 1 && s.Stats().LargeReadBuffers == 0 })
}

// TestTCPLargeReadBufferNeedsTwoFullReads: one read that fills the buffer
// is not yet a backlog (the wait for a connection's first byte does not
// count as a full read); a second one in a row is.
func TestTCPLargeReadBufferNeedsTwoFullReads(t *testing.T) {
	sink := &fakeSink{}
	cfg := testConfig(t)
	cfg.MaxBatch = 512
	s := startServer(t, cfg, sink)
	lines := 0 // sent so far, over both connections
	serve := func(total int) (net.Conn, chan error) {
		client, server := net.Pipe()
		tc := &tcpConn{s: s, c: server, raw: server, transport: record.TransportTCP, stats: s.stats(record.TransportTCP),
			source: "pipe", parser: &Parser{Location: time.UTC}}
		done := make(chan error, 1)
		go func() {
			defer tc.releaseBuffer()
			done <- tc.run()
		}()
		var sb strings.Builder
		for i := 0; sb.Len() < total; i++ {
			fmt.Fprintf(&sb, "<13>1 2024-01-02T03:04:05Z host app - - - line %06d %s\n", i, strings.Repeat("x", 60))
			lines++
		}
		// one Write: a pipe's reads get all they ask for while it lasts
		if _, err := io.WriteString(client, sb.String()); err != nil {
			t.Fatal(err)
		}
		sink.waitRecords(t, lines)
		return client, done
	}
	// 40 000 bytes: the first byte, one full 32 KiB read, then the rest
	client, done := serve(40000)
	if got := s.Stats().LargeReadBuffers; got != 0 {
		t.Fatalf("LargeReadBuffers %d after one full read, want 0", got)
	}
	client.Close()
	<-done
	// 200 000 bytes: full reads in a row
	client, done = serve(200000)
	if got := s.Stats().LargeReadBuffers; got != 1 {
		t.Fatalf("LargeReadBuffers %d after full reads in a row, want 1", got)
	}
	client.Close()
	<-done
	if got := s.Stats().LargeReadBuffers; got != 0 {
		t.Fatalf("LargeReadBuffers %d after the connection ended, want 0", got)
	}
}
