package syslog

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"
)

// Limits of Config.MaxMessageBytes.
const (
	// MinMessageBytes is the smallest size limit: RFC 5424 section 6.1
	// requires receivers to accept messages of 480 octets.
	MinMessageBytes = 480
	// MaxMessageBytesLimit is the largest size limit. Every connection may
	// hold one frame buffer of this size.
	MaxMessageBytesLimit = 16 << 20
)

// Config configures a Server. It is read-only after New.
type Config struct {
	// TCPAddr is the TCP listen address ("host:port"; "127.0.0.1:0" picks a
	// free port). Empty means no TCP listener.
	TCPAddr string
	// UDPAddr is the UDP listen address. Empty means no UDP listener.
	UDPAddr string
	// TLSAddr is the listen address of syslog over TLS (RFC 5425). Empty
	// means no TLS listener. At least one of TCPAddr, UDPAddr and TLSAddr
	// must be set.
	TLSAddr string

	// TLS holds the TLS listener's certificate: Certificates, GetCertificate
	// or GetConfigForClient (which tlsutil.Identity.ServerConfig uses to
	// reload renewed files), and ClientCAs, the CAs that sign the client
	// certificates TLSClientAuth verifies. Required with TLSAddr. The Server
	// works on a copy and sets MinVersion, ClientAuth and VerifyConnection
	// itself (see TLSClientAuth and tlsMinVersion).
	TLS *tls.Config
	// TLSClientAuth says whether TLS clients must present a certificate
	// signed by TLS.ClientCAs. The zero value, ClientAuthNone, asks for no
	// certificate: any client that completes a handshake may send (the
	// allow-list still applies). ClientAuthVerify refuses a client without
	// such a certificate at the handshake.
	TLSClientAuth ClientAuth
	// HandshakeTimeout bounds a TLS handshake, from accept to its end; a
	// client that stalls is disconnected and counted. Default 10 seconds.
	// The connection holds a slot of MaxConnections meanwhile, so shorter
	// frees the slots of stalled handshakes sooner; a client on a slow link
	// needs a few round trips within it.
	HandshakeTimeout time.Duration

	// Allow lists the source networks that may send (see ParseAllowList).
	// Empty allows everyone. A TCP or TLS connection from elsewhere is
	// closed at accept, before a byte is read or a handshake begins; a UDP
	// datagram from elsewhere is dropped. Both are counted (NotAllowed).
	// This is no authentication: UDP sources are easily forged, use
	// TLSClientAuth for that.
	Allow []netip.Prefix

	// MaxMessageBytes is the size limit of one message, in bytes; longer
	// messages are truncated and flagged. Default 64 KiB, at least 480 (RFC
	// 5424's minimum), at most 16 MiB. Larger allows longer stack traces;
	// every TCP connection that sends a long message keeps a buffer of this
	// size, so memory grows up to MaxConnections × MaxMessageBytes. UDP
	// datagrams cannot exceed 65507 bytes, so a larger limit only matters
	// for TCP.
	MaxMessageBytes int

	// MaxConnections bounds concurrent TCP and TLS connections together;
	// connections beyond it are closed at once and counted as rejected.
	// Default 4096. Higher admits more senders at the price of memory and
	// file descriptors: an idle connection costs a goroutine (about 8 KiB);
	// one that sends holds a 32 KiB read buffer (256 KiB for at most 64
	// TCP connections at a time whose senders have a backlog), and up to three buffers of
	// MaxMessageBytes while it sends long messages (the frame being read,
	// and the raw bytes of the batch being parsed and of the batch being
	// stored).
	MaxConnections int
	// MaxConnectionsPerSource bounds the concurrent TCP and TLS connections
	// from one source address, so that one sender (a misconfigured relay,
	// a flood) cannot take every slot of MaxConnections; beyond it a
	// connection is closed at once and counted as rejected. Default
	// MaxConnections/4, at least 1. Senders behind one NAT address share it.
	MaxConnectionsPerSource int

	// IdleTimeout closes a TCP connection on which no byte at all arrived
	// for this long. Default 10 minutes. Shorter frees the slots of dead
	// senders sooner; senders that log rarely then reconnect more often
	// (reconnecting is harmless, but rsyslog's plain TCP can lose the first
	// message after a reconnect).
	IdleTimeout time.Duration

	// FrameTimeout bounds the time from the first byte of a message to its
	// last. Default 30 seconds. It defeats senders that trickle a message a
	// byte at a time (slowloris); a message of MaxMessageBytes must arrive
	// at MaxMessageBytes/FrameTimeout bytes per second at least. What was
	// read of a message that times out is stored, flagged.
	FrameTimeout time.Duration

	// MaxBatch bounds the records of one Sink.Ingest call. Default 512.
	// Batches are flushed as soon as no more input is ready, so this only
	// matters under load: larger amortises the cost of a durable write over
	// more records, smaller reduces the latency of the records that wait.
	MaxBatch int

	// Location is the time zone of RFC 3164 timestamps, which carry none.
	// nil means time.Local.
	Location *time.Location

	// Logger receives the server's logs, tagged component=syslog. nil
	// discards them.
	Logger *slog.Logger

	// PeerName is stored in every record's Peer field.
	PeerName string
}

// Defaults of Config.
const (
	DefaultMaxConnections = 4096
	DefaultIdleTimeout    = 10 * time.Minute
	DefaultFrameTimeout   = 30 * time.Second
	// DefaultHandshakeTimeout is the default of Config.HandshakeTimeout.
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultMaxBatch         = 512
)

// DefaultConfig returns a Config with every default filled in and no listen
// address.
func DefaultConfig() Config {
	return Config{
		MaxMessageBytes:  DefaultMaxMessageBytes,
		MaxConnections:   DefaultMaxConnections,
		IdleTimeout:      DefaultIdleTimeout,
		FrameTimeout:     DefaultFrameTimeout,
		HandshakeTimeout: DefaultHandshakeTimeout,
		MaxBatch:         DefaultMaxBatch,
	}
}

// validate fills zero fields with their defaults and rejects nonsense with an
// error naming the field.
func (c *Config) validate() error {
	if c.TCPAddr == "" && c.UDPAddr == "" && c.TLSAddr == "" {
		return errors.New("syslog: Config.TCPAddr, Config.UDPAddr and Config.TLSAddr are all empty: there is nothing to listen on")
	}
	if c.TLSAddr != "" && c.TLS == nil {
		return errors.New("syslog: Config.TLSAddr is set but Config.TLS is nil: the TLS listener needs a certificate")
	}
	if c.TLSClientAuth > ClientAuthVerify {
		return fmt.Errorf("syslog: Config.TLSClientAuth is %d, want ClientAuthNone or ClientAuthVerify", c.TLSClientAuth)
	}
	if c.TLSClientAuth == ClientAuthVerify && c.TLS != nil && c.TLS.ClientCAs == nil && c.TLS.GetConfigForClient == nil {
		return errors.New("syslog: Config.TLSClientAuth is ClientAuthVerify but Config.TLS.ClientCAs is nil: no client certificate could be verified")
	}
	for i, p := range c.Allow {
		if !p.IsValid() {
			return fmt.Errorf("syslog: Config.Allow[%d] is not a valid prefix", i)
		}
	}
	if err := defaultInt(&c.MaxMessageBytes, DefaultMaxMessageBytes, MinMessageBytes, MaxMessageBytesLimit, "MaxMessageBytes"); err != nil {
		return err
	}
	if err := defaultInt(&c.MaxConnections, DefaultMaxConnections, 1, 1<<20, "MaxConnections"); err != nil {
		return err
	}
	if err := defaultInt(&c.MaxConnectionsPerSource, max(c.MaxConnections/4, 1), 1, c.MaxConnections, "MaxConnectionsPerSource"); err != nil {
		return err
	}
	if err := defaultInt(&c.MaxBatch, DefaultMaxBatch, 1, 1<<16, "MaxBatch"); err != nil {
		return err
	}
	if err := defaultDuration(&c.IdleTimeout, DefaultIdleTimeout, "IdleTimeout"); err != nil {
		return err
	}
	if err := defaultDuration(&c.FrameTimeout, DefaultFrameTimeout, "FrameTimeout"); err != nil {
		return err
	}
	if err := defaultDuration(&c.HandshakeTimeout, DefaultHandshakeTimeout, "HandshakeTimeout"); err != nil {
		return err
	}
	if c.Location == nil {
		c.Location = time.Local
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

func defaultInt(v *int, def, lo, hi int, name string) error {
	if *v == 0 {
		*v = def
	}
	if *v < lo || *v > hi {
		return fmt.Errorf("syslog: Config.%s is %d, want %d to %d (0 means %d)", name, *v, lo, hi, def)
	}
	return nil
}

func defaultDuration(v *time.Duration, def time.Duration, name string) error {
	if *v == 0 {
		*v = def
	}
	if *v < time.Millisecond {
		return fmt.Errorf("syslog: Config.%s is %v, want at least 1ms (0 means %v)", name, *v, def)
	}
	return nil
}
