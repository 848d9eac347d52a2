package syslog

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/logmesh/logmesh/record"
)

func dialUDP(t *testing.T, s *Server) net.Conn {
	t.Helper()
	c, err := net.Dial("udp", s.UDPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestUDP(t *testing.T) {
	sink := &fakeSink{}
	s := startServer(t, testConfig(t), sink)
	c := dialUDP(t, s)
	big := "<13>Oct 11 22:14:15 host app: " + strings.Repeat("y", 1000)
	for _, d := range []string{
		"<13>Oct 11 22:14:15 host app: hello\n\x00",
		"",
		"\n",
		big,
		"<14>1 2003-10-11T22:14:15.003Z h a - - - five",
	} {
		write(t, c, d)
	}
	recs := sink.waitRecords(t, 3)
	want := []string{
		`rfc3164 0001 "" "hello"`,
		`rfc3164 0101 "truncated" "` + strings.Repeat("y", 512-len("<13>Oct 11 22:14:15 host app: ")) + `"`,
		`rfc5424 0001 "" "five"`,
	}
	for i, r := range recs {
		if got := summary(r); got != want[i] {
			t.Errorf("record %d: %s, want %s", i, got, want[i])
		}
		if r.Transport != record.TransportUDP || r.Source != c.LocalAddr().String() || r.Peer != "peer-1" {
			t.Errorf("record %d from %v %q %q", i, r.Transport, r.Source, r.Peer)
		}
	}
	if string(recs[0].Raw) != "<13>Oct 11 22:14:15 host app: hello" || len(recs[1].Raw) != 512 {
		t.Errorf("raw %q and %d bytes", recs[0].Raw, len(recs[1].Raw))
	}
	waitFor(t, "stats", func() bool { return s.Stats().UDP.Messages == 3 })
	st := s.Stats().UDP
	if fmt.Sprint(st.Malformed) != fmt.Sprint(map[string]uint64{"empty": 2, "truncated": 1}) ||
		st.Received != 3 || st.Truncated != 1 || st.DiscardedBytes != uint64(len(big)-512) || st.Dropped != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestUDPBatches(t *testing.T) {
	sink := &fakeSink{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	s := startServer(t, testConfig(t), sink)
	c := dialUDP(t, s)
	write(t, c, "<13>Oct 11 22:14:15 host app: first")
	<-sink.entered
	for i := range 10 {
		write(t, c, fmt.Sprintf("<13>Oct 11 22:14:15 host app: queued %d", i))
	}
	waitFor(t, "the datagrams to be queued", func() bool { return s.Stats().UDP.Received == 11 })
	sink.gate <- struct{}{}
	sink.gate <- struct{}{}
	sink.waitRecords(t, 11)
	if b := sink.batches(); len(b) != 2 || len(b[1]) != 10 {
		t.Errorf("%d batches, want 2: the queued datagrams in one", len(b))
	}
}

func TestUDPSinkError(t *testing.T) {
	sink := &fakeSink{}
	sink.fail(errors.New("disk full"))
	s := startServer(t, testConfig(t), sink)
	c := dialUDP(t, s)
	write(t, c, "<13>Oct 11 22:14:15 host app: lost")
	waitFor(t, "the drop", func() bool { return s.Stats().UDP.Dropped == 1 })
	if st := s.Stats().UDP; st.SinkErrors != 1 || st.Messages != 0 {
		t.Errorf("stats %+v", st)
	}
	sink.fail(nil)
	write(t, c, "<13>Oct 11 22:14:15 host app: kept")
	sink.waitRecords(t, 1)
}

func TestUDPQueueFull(t *testing.T) {
	sink := &fakeSink{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	cfg := testConfig(t)
	cfg.MaxBatch = 1 // a queue of udpQueueBatches records
	s := startServer(t, cfg, sink)
	c := dialUDP(t, s)
	write(t, c, "<13>Oct 11 22:14:15 host app: first")
	<-sink.entered
	for i := range 10 {
		write(t, c, fmt.Sprintf("<13>Oct 11 22:14:15 host app: %d", i))
	}
	waitFor(t, "the datagrams to be read", func() bool { return s.Stats().UDP.Received == 11 })
	if st := s.Stats().UDP; st.Dropped != 10-udpQueueBatches {
		t.Errorf("dropped %d, want %d", st.Dropped, 10-udpQueueBatches)
	}
	for range 1 + udpQueueBatches {
		sink.gate <- struct{}{}
	}
	sink.waitRecords(t, 1+udpQueueBatches)
}
