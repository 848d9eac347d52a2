package syslog

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
)

// ClientAuth is the client-certificate policy of the TLS listener.
type ClientAuth uint8

const (
	// ClientAuthNone asks TLS clients for no certificate.
	ClientAuthNone ClientAuth = iota
	// ClientAuthVerify requires a client certificate that chains to
	// Config.TLS.ClientCAs and allows client authentication.
	ClientAuthVerify
)

// String returns the policy's name, as ParseClientAuth takes it.
func (a ClientAuth) String() string {
	switch a {
	case ClientAuthNone:
		return "none"
	case ClientAuthVerify:
		return "verify"
	}
	return fmt.Sprintf("ClientAuth(%d)", uint8(a))
}

// ParseClientAuth parses "none" or "verify".
func ParseClientAuth(s string) (ClientAuth, error) {
	switch s {
	case "none", "":
		return ClientAuthNone, nil
	case "verify":
		return ClientAuthVerify, nil
	}
	return 0, fmt.Errorf("syslog: client auth %q is not none or verify", s)
}

// tlsMinVersion is the oldest TLS version the syslog listener speaks. The
// peer data plane and the API require TLS 1.3, because both ends are
// logmesh; syslog senders are not: RFC 5425 mandates TLS 1.2 (RFC 9662
// updated it for 1.3 only as an option), and rsyslog's gtls and ossl
// drivers, syslog-ng and network appliances in the field often negotiate
// 1.2. Go offers only AEAD cipher suites with forward secrecy by default for
// 1.2, so this costs no weak cipher.
const tlsMinVersion = tls.VersionTLS12

// Handshake failure reasons, as counted in TransportStats.HandshakeFailures.
const (
	hsTimeout       = "timeout"        // stalled: HandshakeTimeout passed
	hsNotTLS        = "not_tls"        // the first bytes were not a TLS record (plaintext syslog, HTTP...)
	hsNoClientCert  = "no_client_cert" // ClientAuthVerify and no certificate
	hsBadClientCert = "bad_client_cert"
	hsClosed        = "closed" // the client went away mid-handshake
	hsProtocol      = "protocol"
)

var (
	errNoClientCert  = errors.New("syslog: client presented no certificate")
	errBadClientCert = errors.New("syslog: client certificate not accepted")
)

// serverTLS returns the listener's configuration: base's certificate source
// with this package's version floor and client-certificate policy. base's
// GetConfigForClient, when set, is called per handshake (that is how a
// tlsutil.Identity serves renewed certificates) and its answer adjusted the
// same way.
func serverTLS(base *tls.Config, auth ClientAuth) *tls.Config {
	adjust := func(c *tls.Config) *tls.Config {
		c = c.Clone()
		c.MinVersion = tlsMinVersion
		c.VerifyPeerCertificate = nil
		switch auth {
		case ClientAuthVerify:
			// Verified here rather than by RequireAndVerifyClientCert
			// so a refusal carries a reason that can be counted.
			pool := c.ClientCAs
			c.ClientAuth = tls.RequestClientCert
			c.VerifyConnection = func(cs tls.ConnectionState) error {
				return verifyClient(cs.PeerCertificates, pool)
			}
		default:
			c.ClientAuth = tls.NoClientCert
			c.VerifyConnection = nil
		}
		return c
	}
	c := adjust(base)
	if get := base.GetConfigForClient; get != nil {
		c.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			inner, err := get(hello)
			if err != nil || inner == nil {
				return inner, err
			}
			return adjust(inner), nil
		}
	}
	return c
}

// verifyClient checks a client's chain against pool, for client auth.
func verifyClient(chain []*x509.Certificate, pool *x509.CertPool) error {
	if len(chain) == 0 {
		return errNoClientCert
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if err != nil {
		return fmt.Errorf("%w: %w", errBadClientCert, err)
	}
	return nil
}

// handshake runs the TLS handshake of c within HandshakeTimeout; on failure
// it returns the reason to count.
func (s *Server) handshake(c *tls.Conn) (reason string, err error) {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.HandshakeTimeout)
	defer cancel()
	err = c.HandshakeContext(ctx)
	if err == nil {
		return "", nil
	}
	return handshakeReason(err, ctx.Err() != nil && s.ctx.Err() == nil), err
}

// handshakeReason classifies a failed handshake; timedOut says the
// handshake's own deadline passed.
func handshakeReason(err error, timedOut bool) string {
	var rh tls.RecordHeaderError
	switch {
	case timedOut || errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded):
		return hsTimeout
	case errors.As(err, &rh):
		return hsNotTLS
	case errors.Is(err, errNoClientCert):
		return hsNoClientCert
	case errors.Is(err, errBadClientCert):
		return hsBadClientCert
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return hsClosed
	}
	return hsProtocol
}
