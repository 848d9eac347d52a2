package syslog

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/logmesh/logmesh/record"
)

// fakeSink records the batches it is given.
type fakeSink struct {
	// gate, when set, holds every Ingest until a value is received from it
	// (or ctx is cancelled).
	gate chan struct{}
	// entered receives a value (if there is room) when Ingest is called.
	entered chan struct{}

	mu struct {
		sync.Mutex
		batches [][]*record.Record // guarded by mu
		err     error              // returned by Ingest; guarded by mu
	}
}

func (s *fakeSink) Ingest(ctx context.Context, recs []*record.Record) error {
	select {
	case s.entered <- struct{}{}:
	default:
	}
	if s.gate != nil {
		select {
		case <-s.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.err != nil {
		return s.mu.err
	}
	// The server reuses records once Ingest returns: keep copies.
	copies := make([]*record.Record, len(recs))
	for i, r := range recs {
		c := *r
		c.Raw = bytes.Clone(r.Raw)
		copies[i] = &c
	}
	recs = copies
	s.mu.batches = append(s.mu.batches, slices.Clone(recs))
	return nil
}

func (s *fakeSink) fail(err error) {
	s.mu.Lock()
	s.mu.err = err
	s.mu.Unlock()
}

func (s *fakeSink) batches() [][]*record.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.mu.batches)
}

func (s *fakeSink) records() []*record.Record {
	var out []*record.Record
	for _, b := range s.batches() {
		out = append(out, b...)
	}
	return out
}

// waitRecords waits until the sink holds n records and returns them.
func (s *fakeSink) waitRecords(t *testing.T, n int) []*record.Record {
	t.Helper()
	waitFor(t, "records to arrive", func() bool { return len(s.records()) >= n })
	recs := s.records()
	if len(recs) != n {
		t.Fatalf("%d records, want %d", len(recs), n)
	}
	return recs
}

// waitFor polls cond until it holds or 10 seconds have passed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// testConfig listens on free loopback ports, with small limits and timings
// generous enough for a loaded machine.
func testConfig(t *testing.T) Config {
	c := DefaultConfig()
	c.TCPAddr, c.UDPAddr = "127.0.0.1:0", "127.0.0.1:0"
	c.MaxMessageBytes = 512
	c.IdleTimeout = 10 * time.Second
	c.FrameTimeout = 5 * time.Second
	c.MaxBatch = 16
	c.Location = time.UTC
	c.PeerName = "peer-1"
	c.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	return c
}

func startServer(t *testing.T, cfg Config, sink Sink) *Server {
	t.Helper()
	s, err := New(cfg, sink)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

func TestConfigValidate(t *testing.T) {
	f := func(change func(*Config), want string) {
		t.Helper()
		c := DefaultConfig()
		c.TCPAddr = ":0"
		change(&c)
		_, err := New(c, &fakeSink{})
		switch {
		case want == "" && err != nil:
			t.Errorf("unexpected error: %v", err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("error %v, want one naming %s", err, want)
		}
	}
	f(func(c *Config) {}, "")
	f(func(c *Config) { *c = Config{UDPAddr: ":0"} }, "") // zeros take defaults
	f(func(c *Config) { c.TCPAddr = "" }, "TCPAddr, Config.UDPAddr and Config.TLSAddr")
	f(func(c *Config) { c.TLSAddr = ":0" }, "Config.TLS is nil")
	f(func(c *Config) { c.TLSAddr, c.TLS, c.TLSClientAuth = ":0", &tls.Config{}, ClientAuthVerify }, "ClientCAs")
	f(func(c *Config) { c.TLSClientAuth = 7 }, "TLSClientAuth")
	f(func(c *Config) { c.Allow = []netip.Prefix{{}} }, "Allow[0]")
	f(func(c *Config) { c.MaxConnections, c.MaxConnectionsPerSource = 10, 11 }, "MaxConnectionsPerSource")
	f(func(c *Config) { c.HandshakeTimeout = -1 }, "HandshakeTimeout")
	f(func(c *Config) { c.MaxMessageBytes = 100 }, "MaxMessageBytes")
	f(func(c *Config) { c.MaxMessageBytes = 1 << 30 }, "MaxMessageBytes")
	f(func(c *Config) { c.MaxConnections = -1 }, "MaxConnections")
	f(func(c *Config) { c.MaxBatch = -5 }, "MaxBatch")
	f(func(c *Config) { c.IdleTimeout = -time.Second }, "IdleTimeout")
	f(func(c *Config) { c.FrameTimeout = time.Microsecond }, "FrameTimeout")

	if _, err := New(Config{TCPAddr: ":0"}, nil); err == nil {
		t.Error("New accepted a nil Sink")
	}
	c := Config{UDPAddr: ":0"}
	if err := c.validate(); err != nil || !reflect.DeepEqual(c, Config{UDPAddr: ":0", MaxMessageBytes: DefaultMaxMessageBytes,
		MaxConnections: DefaultMaxConnections, MaxConnectionsPerSource: DefaultMaxConnections / 4,
		IdleTimeout: DefaultIdleTimeout, FrameTimeout: DefaultFrameTimeout, HandshakeTimeout: DefaultHandshakeTimeout,
		MaxBatch: DefaultMaxBatch, Location: time.Local, Logger: c.Logger}) || c.Logger == nil {
		t.Errorf("defaults: %+v, %v", c, err)
	}
}

func TestServerLifecycle(t *testing.T) {
	s, err := New(testConfig(t), &fakeSink{})
	if err != nil {
		t.Fatal(err)
	}
	if s.TCPAddr() != nil || s.UDPAddr() != nil {
		t.Fatal("New bound a socket")
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s.TCPAddr() == nil || s.UDPAddr() == nil || s.TCPAddr().(*net.TCPAddr).Port == 0 {
		t.Fatalf("addresses %v %v", s.TCPAddr(), s.UDPAddr())
	}
	if err := s.Start(context.Background()); err == nil {
		t.Error("second Start succeeded")
	}
	// An open connection does not keep Close waiting.
	c, err := net.Dial("tcp", s.TCPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	waitFor(t, "the connection", func() bool { return s.Stats().TCP.ConnectionsOpen == 1 })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Start after Close: %v", err)
	}
	if st := s.Stats().TCP; st.ConnectionsOpen != 0 || st.ConnectionsAccepted != 1 {
		t.Errorf("stats after Close: %+v", st)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("connection still open after Close")
	}

	// Close before Start, and a failed Start leaves nothing behind.
	s2, _ := New(testConfig(t), &fakeSink{})
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	cfg.UDPAddr = "256.0.0.1:1"
	s3, _ := New(cfg, &fakeSink{})
	if err := s3.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "UDP") {
		t.Errorf("Start with a bad UDP address: %v", err)
	}
	s3.Close()
}

func TestCloseCancelsIngest(t *testing.T) {
	sink := &fakeSink{gate: make(chan struct{}), entered: make(chan struct{}, 2)}
	s := startServer(t, testConfig(t), sink)
	c, err := net.Dial("tcp", s.TCPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	u, err := net.Dial("udp", s.UDPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	c.Write([]byte("<13>Oct 11 22:14:15 host app: stuck\n"))
	u.Write([]byte("<13>Oct 11 22:14:15 host app: stuck too"))
	<-sink.entered
	<-sink.entered
	done := make(chan error)
	go func() { done <- s.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return while Ingest was blocked")
	}
	st := s.Stats()
	if st.TCP.Dropped != 1 || st.UDP.Dropped != 1 || st.TCP.Messages+st.UDP.Messages != 0 {
		t.Errorf("stats %+v", st)
	}
}
