package syslog

import (
	"sync/atomic"

	"github.com/logmesh/logmesh/record"
)

// Stats is a snapshot of a Server's counters, per transport. Every field
// except ConnectionsOpen only grows, so a Prometheus collector can export
// them as counters (logmesh_syslog_<json name>_total{transport="tcp"|"udp"},
// Malformed with a reason label) and ConnectionsOpen as a gauge.
type Stats struct {
	TCP TransportStats `json:"tcp"`
	UDP TransportStats `json:"udp"`
}

// TransportStats counts what one transport received.
type TransportStats struct {
	// Received counts the messages turned into records (empty ones are
	// not); each ends up in Messages or Dropped, or is on its way.
	Received uint64 `json:"received"`
	// Messages counts the records the Sink accepted, Bytes their raw bytes.
	Messages uint64 `json:"messages"`
	Bytes    uint64 `json:"bytes"`
	// Malformed counts the messages received with a reason, by the reason's
	// label (record.Reason.String: "no_pri", "truncated"...); reasons never
	// seen are absent. Empty messages (empty lines and datagrams, "empty")
	// are counted here and not stored.
	Malformed map[string]uint64 `json:"malformed"`
	// Truncated counts the messages cut to MaxMessageBytes, DiscardedBytes
	// the bytes cut off them.
	Truncated      uint64 `json:"truncated"`
	DiscardedBytes uint64 `json:"discarded_bytes"`
	// Dropped counts the records lost after they were received: the Sink
	// failed, or (UDP) the queue in front of the Sink was full.
	Dropped uint64 `json:"dropped"`
	// SinkErrors counts the Ingest calls that failed.
	SinkErrors uint64 `json:"sink_errors"`

	// TCP only.

	// ConnectionsOpen is the number of connections open now (a gauge).
	ConnectionsOpen int64 `json:"connections_open"`
	// ConnectionsAccepted counts the connections served, ConnectionsRejected
	// those closed at once because MaxConnections were open.
	ConnectionsAccepted uint64 `json:"connections_accepted"`
	ConnectionsRejected uint64 `json:"connections_rejected"`
	// FramingErrors counts the connections closed for broken octet framing.
	FramingErrors uint64 `json:"framing_errors"`
	// IdleTimeouts and FrameTimeouts count the connections closed by
	// Config.IdleTimeout and Config.FrameTimeout.
	IdleTimeouts  uint64 `json:"idle_timeouts"`
	FrameTimeouts uint64 `json:"frame_timeouts"`
}

// counters are the live counters behind TransportStats.
type counters struct {
	receivedRecs              atomic.Uint64
	messages, bytes           atomic.Uint64
	malformed                 [256]atomic.Uint64 // by record.Reason
	truncated, discardedBytes atomic.Uint64
	dropped, sinkErrors       atomic.Uint64

	connsOpen                    atomic.Int64
	connsAccepted, connsRejected atomic.Uint64
	framingErrors                atomic.Uint64
	idleTimeouts, frameTimeouts  atomic.Uint64
}

// received counts a message as it arrives; stored says whether it became a
// record (empty messages do not).
func (c *counters) received(reason record.Reason, truncated, stored bool) {
	if stored {
		c.receivedRecs.Add(1)
	}
	if reason != record.ReasonNone {
		c.malformed[reason].Add(1)
	}
	if truncated {
		c.truncated.Add(1)
	}
}

// stored counts a batch the Sink accepted.
func (c *counters) stored(recs []*record.Record) {
	var n uint64
	for _, r := range recs {
		n += uint64(len(r.Raw))
	}
	c.messages.Add(uint64(len(recs)))
	c.bytes.Add(n)
}

func (c *counters) snapshot() TransportStats {
	s := TransportStats{
		Received:            c.receivedRecs.Load(),
		Messages:            c.messages.Load(),
		Bytes:               c.bytes.Load(),
		Malformed:           make(map[string]uint64),
		Truncated:           c.truncated.Load(),
		DiscardedBytes:      c.discardedBytes.Load(),
		Dropped:             c.dropped.Load(),
		SinkErrors:          c.sinkErrors.Load(),
		ConnectionsOpen:     c.connsOpen.Load(),
		ConnectionsAccepted: c.connsAccepted.Load(),
		ConnectionsRejected: c.connsRejected.Load(),
		FramingErrors:       c.framingErrors.Load(),
		IdleTimeouts:        c.idleTimeouts.Load(),
		FrameTimeouts:       c.frameTimeouts.Load(),
	}
	for i := range c.malformed {
		if n := c.malformed[i].Load(); n > 0 {
			s.Malformed[record.Reason(i).String()] = n
		}
	}
	return s
}

// Stats returns a snapshot of the server's counters.
func (s *Server) Stats() Stats {
	return Stats{TCP: s.tcpStats.snapshot(), UDP: s.udpStats.snapshot()}
}
