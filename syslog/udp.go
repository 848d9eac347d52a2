package syslog

import (
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/logmesh/logmesh/record"
)

const (
	// udpReadBytes exceeds the largest UDP payload (65507 bytes over IPv4,
	// 65527 over IPv6), so every datagram is read whole and one larger than
	// MaxMessageBytes is seen, truncated and flagged.
	udpReadBytes = 64<<10 + 1
	// udpSocketBufferBytes is the socket receive buffer asked for (the
	// kernel caps it at net.core.rmem_max): it absorbs bursts while a batch
	// is being stored.
	udpSocketBufferBytes = 4 << 20
	// udpQueueBatches is the capacity of the queue between the reader and
	// the sink, in batches. Records that find it full are dropped and
	// counted, rather than lost uncounted in the kernel.
	udpQueueBatches = 4
)

// startUDP starts the reader, which parses datagrams into a queue, and the
// ingester, which hands the queue to the sink in batches: whatever is queued
// when the previous batch is stored, up to MaxBatch. A datagram thus waits
// for at most one Ingest call and never for more datagrams.
func (s *Server) startUDP(pc *net.UDPConn) {
	_ = pc.SetReadBuffer(udpSocketBufferBytes) // best effort
	q := make(chan *record.Record, udpQueueBatches*s.cfg.MaxBatch)
	s.wg.Add(2)
	go s.readUDP(pc, q)
	go s.ingestUDP(q)
}

// readUDP reads datagrams until the socket is closed, then closes q.
func (s *Server) readUDP(pc *net.UDPConn, q chan<- *record.Record) {
	defer s.wg.Done()
	defer close(q)
	buf := make([]byte, udpReadBytes)
	p := &Parser{Location: s.cfg.Location}
	var src udpSource
	for {
		n, addr, err := pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			if s.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			s.warnf("udp-read", "cannot read UDP datagram", "err", err)
			if !s.pause(10 * time.Millisecond) {
				return
			}
			continue
		}
		if !s.allow.allows(addr.Addr()) {
			s.udpStats.notAllowed.Add(1)
			s.warnf("not-allowed-udp", "dropped UDP datagram: source not in the allow-list", "remote", addr.String())
			continue
		}
		r := s.udpRecord(p, buf[:n], src.name(addr))
		if r == nil {
			continue
		}
		select {
		case q <- r:
		default:
			s.udpStats.dropped.Add(1)
			s.warnf("udp-full", "dropping UDP messages: the sink is slower than the senders",
				"queue", cap(q))
		}
	}
}

// udpRecord turns one datagram into a record; nil for an empty one.
func (s *Server) udpRecord(p *Parser, data []byte, source string) *record.Record {
	stats := &s.udpStats
	truncated := len(data) > s.cfg.MaxMessageBytes
	if truncated {
		stats.discardedBytes.Add(uint64(len(data) - s.cfg.MaxMessageBytes))
		data = data[:s.cfg.MaxMessageBytes]
	}
	data = trimTrailer(data)
	if len(data) == 0 {
		stats.received(record.ReasonEmpty, truncated, false)
		return nil
	}
	r := s.newRecord(p, data, record.TransportUDP, source)
	if truncated {
		r.Flags |= record.FlagTruncated
		r.Reason = record.ReasonTruncated
	}
	stats.received(r.Reason, truncated, true)
	return r
}

// ingestUDP stores the queued records until q is closed and drained.
func (s *Server) ingestUDP(q <-chan *record.Record) {
	defer s.wg.Done()
	batch := make([]*record.Record, 0, s.cfg.MaxBatch)
	for r := range q {
		batch = append(batch[:0], r)
	more:
		for len(batch) < s.cfg.MaxBatch {
			select {
			case r, ok := <-q:
				if !ok {
					break more
				}
				batch = append(batch, r)
			default:
				break more
			}
		}
		if err := s.sink.Ingest(s.ctx, batch); err != nil {
			s.udpStats.sinkErrors.Add(1)
			s.udpStats.dropped.Add(uint64(len(batch)))
			if s.ctx.Err() == nil {
				s.warnf("udp-sink", "dropping UDP messages: cannot store them", "records", len(batch), "err", err)
			}
		} else {
			s.udpStats.stored(batch)
		}
		clear(batch)
	}
}

// pause waits for d, or returns false as soon as the server closes.
func (s *Server) pause(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-s.ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// udpSource remembers the name of the last sender: datagrams tend to come in
// runs from one sender, and the name is stored in every record.
type udpSource struct {
	addr netip.AddrPort
	str  string
}

func (u *udpSource) name(addr netip.AddrPort) string {
	if addr != u.addr || u.str == "" {
		u.addr = addr
		u.str = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port()).String()
	}
	return u.str
}
