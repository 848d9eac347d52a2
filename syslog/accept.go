package syslog

import (
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/logmesh/logmesh/record"
)

// accept accepts TCP or TLS connections until the listener is closed.
func (s *Server) accept(ln net.Listener, transport record.Transport) {
	defer s.wg.Done()
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: retry, slowly.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.warnf("accept", "cannot accept connection", "transport", transport, "err", err, "retry_in", backoff)
			if !s.pause(backoff) {
				return
			}
			continue
		}
		backoff = 0
		src := sourceAddr(c)
		if !s.allow.allows(src) {
			s.stats(transport).notAllowed.Add(1) // before the close, as for rejections
			c.Close()
			s.warnf("not-allowed", "refused connection: source not in the allow-list", "transport", transport,
				"remote", c.RemoteAddr().String())
			continue
		}
		if s.track(c, transport, src) {
			go s.serve(c, transport, src)
		}
	}
}

// sourceAddr returns the address of a connection's remote end, in IPv4 form
// when it is IPv4-mapped; the zero Addr when it has none (not TCP).
func sourceAddr(c net.Conn) netip.Addr {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}

// track registers a new connection and reports whether to serve it; it closes
// the connection when the server is closing or full, overall or for src.
func (s *Server) track(c net.Conn, transport record.Transport, src netip.Addr) bool {
	s.mu.Lock()
	closed := s.mu.closed
	full := len(s.mu.conns) >= s.cfg.MaxConnections
	fullSrc := s.mu.perSource[src] >= s.cfg.MaxConnectionsPerSource
	if !closed && !full && !fullSrc {
		s.mu.conns[c] = struct{}{}
		s.mu.perSource[src]++
		s.wg.Add(1)
	}
	s.mu.Unlock()
	stats := s.stats(transport)
	switch {
	case closed:
		c.Close()
		return false
	case full || fullSrc:
		// counted before the close, so a client that sees the close sees
		// the count too
		stats.connsRejected.Add(1)
		c.Close()
		if full {
			s.warnf("reject", "rejected connection: too many open", "transport", transport,
				"remote", c.RemoteAddr().String(), "max_connections", s.cfg.MaxConnections)
		} else {
			s.warnf("reject-source", "rejected connection: too many open from its source", "transport", transport,
				"remote", c.RemoteAddr().String(), "max_connections_per_source", s.cfg.MaxConnectionsPerSource)
		}
		return false
	}
	stats.connsAccepted.Add(1)
	stats.connsOpen.Add(1)
	return true
}

func (s *Server) untrack(c net.Conn, transport record.Transport, src netip.Addr) {
	c.Close()
	s.mu.Lock()
	delete(s.mu.conns, c)
	if s.mu.perSource[src]--; s.mu.perSource[src] <= 0 {
		delete(s.mu.perSource, src)
	}
	s.mu.Unlock()
	s.stats(transport).connsOpen.Add(-1)
}

// serve runs one connection until it ends, fails or the server closes. A TLS
// connection first completes its handshake within HandshakeTimeout.
func (s *Server) serve(raw net.Conn, transport record.Transport, src netip.Addr) {
	defer s.wg.Done()
	defer s.untrack(raw, transport, src)
	c := raw
	if transport == record.TransportTLS {
		tc := tls.Server(raw, s.tls)
		if reason, err := s.handshake(tc); err != nil {
			if s.ctx.Err() != nil {
				return // closing: not the client's failure
			}
			s.tlsStats.handshakeFailed(reason)
			s.warnf("handshake-"+reason, "TLS handshake failed", "remote", raw.RemoteAddr().String(),
				"reason", reason, "err", err)
			return
		}
		c = tc
	}
	t := &tcpConn{
		s:         s,
		c:         c,
		raw:       raw,
		transport: transport,
		stats:     s.stats(transport),
		source:    raw.RemoteAddr().String(),
		parser:    &Parser{Location: s.cfg.Location},
		batch:     make([]*record.Record, 0, min(s.cfg.MaxBatch, 64)),
	}
	defer t.releaseBuffer()
	s.endConn(t, t.run())
}
