package syslog

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/logmesh/logmesh/record"
)

// Sink stores batches of records; the Server calls it from one goroutine per
// TCP or TLS connection and one for UDP, concurrently.
type Sink interface {
	// Ingest stores recs and returns once they are durable: the connection
	// that sent them reads nothing meanwhile, which is the backpressure. It
	// assigns the records' IDs. It must not keep the records, their raw
	// bytes or the slice after it returns: the Server reuses them.
	// It must return promptly once ctx is cancelled, since Server.Close
	// waits for it. On error a TCP connection is closed (the sender sees
	// the disconnect) and UDP records are counted as dropped.
	Ingest(ctx context.Context, recs []*record.Record) error
}

// ErrClosed is returned by Start after Close.
var ErrClosed = errors.New("syslog: server closed")

// warnEvery is the interval of throttled warnings, per kind.
const warnEvery = 10 * time.Second

// Server receives syslog over TCP, UDP and TLS and hands batches of records
// to a Sink. New starts nothing; Start binds the listeners and starts the
// goroutines; Close stops them all.
type Server struct {
	cfg  Config
	sink Sink
	log  *slog.Logger
	warn *throttle
	now  func() time.Time

	tcpStats, udpStats, tlsStats counters

	allow allowList
	tls   *tls.Config // nil without a TLS listener

	// ctx is cancelled by Close, so Ingest calls in flight unblock.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	closeOnce sync.Once

	// bigBuffers counts connections holding a large read buffer, at most
	// maxBig (maxBigBuffers; tests lower it).
	bigBuffers atomic.Int32
	maxBig     int32

	mu struct {
		sync.Mutex
		started, closed bool                  // guarded by mu
		tcp, tls        net.Listener          // guarded by mu
		udp             *net.UDPConn          // guarded by mu
		conns           map[net.Conn]struct{} // guarded by mu
		// perSource counts the open connections by source address.
		perSource map[netip.Addr]int // guarded by mu
	}
}

// New returns a Server for cfg (zero fields take their defaults) that stores
// into sink. It starts nothing.
func New(cfg Config, sink Sink) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if sink == nil {
		return nil, errors.New("syslog: New needs a Sink, got nil")
	}
	s := &Server{
		cfg:    cfg,
		sink:   sink,
		log:    cfg.Logger.With("component", "syslog"),
		now:    time.Now,
		allow:  allowList(cfg.Allow),
		maxBig: maxBigBuffers,
	}
	if cfg.TLS != nil {
		s.tls = serverTLS(cfg.TLS, cfg.TLSClientAuth)
	}
	s.warn = newThrottle(warnEvery, func() time.Time { return s.now() })
	s.mu.conns = make(map[net.Conn]struct{})
	s.mu.perSource = make(map[netip.Addr]int)
	return s, nil
}

// Start binds the listeners and starts serving. ctx bounds the binding only:
// the server runs until Close. A Server starts once.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.mu.closed:
		return ErrClosed
	case s.mu.started:
		return errors.New("syslog: server already started")
	}
	var lc net.ListenConfig
	var tcp, tlsLn net.Listener
	var udp *net.UDPConn
	fail := func(err error) error {
		for _, ln := range []net.Listener{tcp, tlsLn} {
			if ln != nil {
				ln.Close()
			}
		}
		return err
	}
	if s.cfg.TCPAddr != "" {
		ln, err := lc.Listen(ctx, "tcp", s.cfg.TCPAddr)
		if err != nil {
			return fail(fmt.Errorf("syslog: cannot listen on TCP %q: %w", s.cfg.TCPAddr, err))
		}
		tcp = ln
	}
	if s.cfg.TLSAddr != "" {
		// A plain listener: the allow-list and the connection caps are
		// applied before the handshake, which runs in the connection's
		// goroutine under HandshakeTimeout.
		ln, err := lc.Listen(ctx, "tcp", s.cfg.TLSAddr)
		if err != nil {
			return fail(fmt.Errorf("syslog: cannot listen for TLS on %q: %w", s.cfg.TLSAddr, err))
		}
		tlsLn = ln
	}
	if s.cfg.UDPAddr != "" {
		pc, err := lc.ListenPacket(ctx, "udp", s.cfg.UDPAddr)
		if err != nil {
			return fail(fmt.Errorf("syslog: cannot listen on UDP %q: %w", s.cfg.UDPAddr, err))
		}
		udp = pc.(*net.UDPConn)
	}
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	s.mu.started, s.mu.tcp, s.mu.tls, s.mu.udp = true, tcp, tlsLn, udp
	if tcp != nil {
		s.wg.Add(1)
		go s.accept(tcp, record.TransportTCP)
		s.log.Info("listening", "transport", "tcp", "addr", tcp.Addr().String())
	}
	if tlsLn != nil {
		s.wg.Add(1)
		go s.accept(tlsLn, record.TransportTLS)
		s.log.Info("listening", "transport", "tls", "addr", tlsLn.Addr().String(),
			"client_auth", s.cfg.TLSClientAuth.String())
	}
	if udp != nil {
		s.startUDP(udp)
		s.log.Info("listening", "transport", "udp", "addr", udp.LocalAddr().String())
	}
	return nil
}

// TCPAddr returns the address of the TCP listener, nil before Start or
// without one.
func (s *Server) TCPAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.tcp == nil {
		return nil
	}
	return s.mu.tcp.Addr()
}

// TLSAddr returns the address of the TLS listener, nil before Start or
// without one.
func (s *Server) TLSAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.tls == nil {
		return nil
	}
	return s.mu.tls.Addr()
}

// UDPAddr returns the address of the UDP socket, nil before Start or without
// one.
func (s *Server) UDPAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.udp == nil {
		return nil
	}
	return s.mu.udp.LocalAddr()
}

// Close closes the listeners and every connection, cancels the Ingest calls
// in flight and returns once every goroutine of the server has exited. It may
// be called more than once, and before Start.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.mu.closed = true
		if s.cancel != nil {
			s.cancel()
		}
		var errs []error
		if s.mu.tcp != nil {
			errs = append(errs, ignoreClosed(s.mu.tcp.Close()))
		}
		if s.mu.tls != nil {
			errs = append(errs, ignoreClosed(s.mu.tls.Close()))
		}
		if s.mu.udp != nil {
			errs = append(errs, ignoreClosed(s.mu.udp.Close()))
		}
		for c := range s.mu.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
		if err = errors.Join(errs...); err != nil {
			err = fmt.Errorf("syslog: closing listeners: %w", err)
		}
	})
	return err
}

func ignoreClosed(err error) error {
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// warnf logs a throttled warning: at most one per key and warnEvery.
func (s *Server) warnf(key, msg string, args ...any) {
	ok, suppressed := s.warn.allow(key)
	if !ok {
		return
	}
	if suppressed > 0 {
		args = append(args, "suppressed", suppressed)
	}
	s.log.Warn(msg, args...)
}

// trimTrailer strips the line terminators and NULs that senders append to a
// message (LF inside octet-counted frames and datagrams, NUL-terminated
// frames): they are transport, not text.
func trimTrailer(b []byte) []byte {
	for len(b) > 0 {
		switch b[len(b)-1] {
		case '\n', '\r', 0:
			b = b[:len(b)-1]
		default:
			return b
		}
	}
	return b
}

// stats returns the counters of a transport.
func (s *Server) stats(t record.Transport) *counters {
	switch t {
	case record.TransportTCP:
		return &s.tcpStats
	case record.TransportUDP:
		return &s.udpStats
	case record.TransportTLS:
		return &s.tlsStats
	}
	panic(fmt.Sprintf("BUG: syslog: no counters for transport %v", t))
}

// newRecord parses one message into a record from source over transport.
func (s *Server) newRecord(p *Parser, msg []byte, transport record.Transport, source string) *record.Record {
	return s.fillRecord(new(record.Record), p, msg, transport, source)
}

// fillRecord parses msg into r, which may be a reused record.
func (s *Server) fillRecord(r *record.Record, p *Parser, msg []byte, transport record.Transport, source string) *record.Record {
	p.Parse(msg, s.now(), r)
	r.Transport, r.Source, r.Peer = transport, source, s.cfg.PeerName
	return r
}
