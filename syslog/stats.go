package syslog

import (
	"sync/atomic"

	"github.com/logmesh/logmesh/record"
)

// Stats is a snapshot of a Server's counters, per transport. Every field
// except ConnectionsOpen only grows, so a Prometheus collector can export
// them as counters (logmesh_syslog_<json name>_total{transport="tcp"|"udp"|"tls"},
// Malformed and HandshakeFailures with a reason label) and ConnectionsOpen
// as a gauge.
type Stats struct {
	TCP TransportStats `json:"tcp"`
	UDP TransportStats `json:"udp"`
	TLS TransportStats `json:"tls"`
	// LargeReadBuffers is the number of TCP connections holding a large
	// read buffer now (a gauge): connections whose sender has (or lately
	// had) a backlog, at most 64. TLS connections keep their small one.
	LargeReadBuffers int64 `json:"large_read_buffers"`
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
	// NotAllowed counts what came from a source outside Config.Allow:
	// connections closed at accept (TCP, TLS) or datagrams dropped (UDP).
	NotAllowed uint64 `json:"not_allowed"`

	// TCP and TLS only.

	// ConnectionsOpen is the number of connections open now (a gauge).
	ConnectionsOpen int64 `json:"connections_open"`
	// ConnectionsAccepted counts the connections served (for TLS: whose
	// handshake began), ConnectionsRejected those closed at once because
	// MaxConnections, or MaxConnectionsPerSource from their source, were
	// open.
	ConnectionsAccepted uint64 `json:"connections_accepted"`
	ConnectionsRejected uint64 `json:"connections_rejected"`
	// FramingErrors counts the connections closed for broken octet framing.
	FramingErrors uint64 `json:"framing_errors"`
	// IdleTimeouts and FrameTimeouts count the connections closed by
	// Config.IdleTimeout and Config.FrameTimeout.
	IdleTimeouts  uint64 `json:"idle_timeouts"`
	FrameTimeouts uint64 `json:"frame_timeouts"`

	// TLS only.

	// HandshakeFailures counts the connections closed because their TLS
	// handshake failed, by reason: "timeout" (not done within
	// HandshakeTimeout), "not_tls" (the client spoke something else, such
	// as plaintext syslog), "no_client_cert" and "bad_client_cert"
	// (TLSClientAuth verify: none presented, or one not signed by the CA),
	// "closed" (the client hung up) and "protocol" (anything else: no
	// common version or cipher suite, a bad message). Reasons never seen
	// are absent.
	HandshakeFailures map[string]uint64 `json:"handshake_failures,omitempty"`
	// LineFrames counts the messages that arrived newline-framed: RFC
	// 5425 requires octet counting, so each is stored flagged (reason
	// "framing", also counted in Malformed). A sender that shows up here
	// needs octet-counted framing switched on.
	LineFrames uint64 `json:"line_frames"`
}

// handshakeReasons lists the values of HandshakeFailures' keys, in the order
// of counters.handshakeFailures.
var handshakeReasons = [...]string{hsTimeout, hsNotTLS, hsNoClientCert, hsBadClientCert, hsClosed, hsProtocol}

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
	notAllowed                   atomic.Uint64

	handshakeFailures [len(handshakeReasons)]atomic.Uint64
	lineFrames        atomic.Uint64
}

// handshakeFailed counts a failed handshake by reason.
func (c *counters) handshakeFailed(reason string) {
	for i, r := range handshakeReasons {
		if r == reason {
			c.handshakeFailures[i].Add(1)
			return
		}
	}
	panic("BUG: syslog: unknown handshake failure reason " + reason)
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
		NotAllowed:          c.notAllowed.Load(),
		LineFrames:          c.lineFrames.Load(),
	}
	for i, r := range handshakeReasons {
		if n := c.handshakeFailures[i].Load(); n > 0 {
			if s.HandshakeFailures == nil {
				s.HandshakeFailures = make(map[string]uint64)
			}
			s.HandshakeFailures[r] = n
		}
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
	return Stats{TCP: s.tcpStats.snapshot(), UDP: s.udpStats.snapshot(), TLS: s.tlsStats.snapshot(),
		LargeReadBuffers: int64(s.bigBuffers.Load())}
}
