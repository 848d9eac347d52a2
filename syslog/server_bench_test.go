package syslog

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/logmesh/logmesh/record"
)

// countSink counts records and stores nothing.
type countSink struct{ n atomic.Int64 }

func (s *countSink) Ingest(_ context.Context, recs []*record.Record) error {
	s.n.Add(int64(len(recs)))
	return nil
}

// BenchmarkServerTCP measures one connection end to end: framing, parsing,
// batching, the sink call.
func BenchmarkServerTCP(b *testing.B) {
	sink := &countSink{}
	cfg := DefaultConfig()
	cfg.TCPAddr = "127.0.0.1:0"
	cfg.Location = time.UTC
	cfg.Logger = slog.New(slog.DiscardHandler)
	s, err := New(cfg, sink)
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	c, err := net.Dial("tcp", s.TCPAddr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	const perWrite = 256
	chunk := bytes.Repeat(append(append([]byte{}, bench5424...), '\n'), perWrite)
	b.SetBytes(int64(len(chunk) / perWrite))
	b.ReportAllocs()
	sent := 0
	for sent < b.N {
		if _, err := c.Write(chunk); err != nil {
			b.Fatal(err)
		}
		sent += perWrite
	}
	for sink.n.Load() < int64(sent) {
		time.Sleep(time.Millisecond)
	}
	b.ReportMetric(float64(sent)/b.Elapsed().Seconds(), "msgs/s")
}
