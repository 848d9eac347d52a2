package syslog

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/logmesh/logmesh/record"
	"github.com/logmesh/logmesh/tlsutil"
)

// testPKI is a CA with a server certificate for 127.0.0.1 and a client
// certificate, and a second CA with a client certificate of its own.
type testPKI struct {
	ca, otherCA           *tlsutil.CA
	server, client, rogue tls.Certificate
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	pki := &testPKI{}
	var err error
	if pki.ca, err = tlsutil.NewCA("syslog test CA", time.Hour); err != nil {
		t.Fatal(err)
	}
	if pki.otherCA, err = tlsutil.NewCA("another CA", time.Hour); err != nil {
		t.Fatal(err)
	}
	issue := func(ca *tlsutil.CA, name string, hosts ...string) tls.Certificate {
		c, k, err := ca.Issue(name, hosts, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := tls.X509KeyPair(c, k)
		if err != nil {
			t.Fatal(err)
		}
		return cert
	}
	pki.server = issue(pki.ca, "syslog-server", "127.0.0.1")
	pki.client = issue(pki.ca, "web-1")
	pki.rogue = issue(pki.otherCA, "web-1")
	return pki
}

func (p *testPKI) pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.ca.Cert)
	return pool
}

// tlsConfig is testConfig with a TLS listener under the test PKI.
func (p *testPKI) tlsConfig(t *testing.T, auth ClientAuth) Config {
	cfg := testConfig(t)
	cfg.TLSAddr = "127.0.0.1:0"
	cfg.TLS = &tls.Config{Certificates: []tls.Certificate{p.server}, ClientCAs: p.pool()}
	cfg.TLSClientAuth = auth
	cfg.HandshakeTimeout = 2 * time.Second
	return cfg
}

// dialTLS connects to s's TLS port with cert (nil: none), completing the
// client's side of the handshake.
func (p *testPKI) dialTLS(t *testing.T, s *Server, cert *tls.Certificate, maxVersion uint16) (*tls.Conn, error) {
	t.Helper()
	cfg := &tls.Config{RootCAs: p.pool(), ServerName: "syslog-server", MaxVersion: maxVersion}
	if cert != nil {
		// Sent whatever CAs the server names: a Go client would keep a
		// certificate of another CA to itself, other clients do not.
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	d := &net.Dialer{Timeout: 10 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", s.TLSAddr().String(), cfg)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	return c, nil
}

// refused checks that c, whose client handshake may have succeeded (in TLS
// 1.3 the client finishes before the server checks its certificate), is
// closed by the server without anything stored.
func refused(t *testing.T, c *tls.Conn) {
	t.Helper()
	c.Write([]byte(octet("<13>Oct 11 22:14:15 host app: must not be stored")))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := c.Read(make([]byte, 1))
	if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the server did not close the connection: %v", err)
	}
}

func TestTLSVerifiedClientStored(t *testing.T) {
	pki := newTestPKI(t)
	sink := &fakeSink{}
	s := startServer(t, pki.tlsConfig(t, ClientAuthVerify), sink)
	msgs := []string{
		"<14>1 2003-10-11T22:14:15.003Z h app - - - over TLS 1.3",
		"<13>Oct 11 22:14:15 host app: with\nan embedded LF and \x00 NUL",
	}
	c, err := pki.dialTLS(t, s, &pki.client, 0)
	if err != nil {
		t.Fatal(err)
	}
	write(t, c, octet(msgs[0])+octet(msgs[1]))
	sink.waitRecords(t, 2) // before the next connection's: two connections' records arrive in any order
	// TLS 1.2, as rsyslog's gtls often speaks it.
	c12, err := pki.dialTLS(t, s, &pki.client, tls.VersionTLS12)
	if err != nil {
		t.Fatalf("TLS 1.2: %v", err)
	}
	if v := c12.ConnectionState().Version; v != tls.VersionTLS12 {
		t.Fatalf("version %x", v)
	}
	write(t, c12, octet("<14>1 2003-10-11T22:14:15.003Z h app - - - over TLS 1.2"))
	recs := sink.waitRecords(t, 3)
	for i, r := range recs {
		if r.Transport != record.TransportTLS || r.Flags.Has(record.FlagParseError) || r.Reason != record.ReasonNone {
			t.Errorf("record %d: %s via %v", i, summary(r), r.Transport)
		}
	}
	if string(recs[0].Raw) != msgs[0] || string(recs[1].Raw) != msgs[1] {
		t.Errorf("raw %q %q", recs[0].Raw, recs[1].Raw)
	}

	// A newline-framed message over TLS is stored, flagged, and counted.
	write(t, c, "<13>Oct 11 22:14:15 host app: newline framed\n")
	recs = sink.waitRecords(t, 4)
	if got := summary(recs[3]); got != `rfc3164 0011 "framing" "newline framed"` {
		t.Errorf("newline-framed record %s", got)
	}
	st := s.Stats().TLS
	if st.ConnectionsAccepted != 2 || st.LineFrames != 1 || st.Malformed["framing"] != 1 || len(st.HandshakeFailures) != 0 {
		t.Errorf("stats %+v", st)
	}
	if tcp := s.Stats().TCP; tcp.ConnectionsAccepted != 0 {
		t.Errorf("TLS counted as TCP: %+v", tcp)
	}
}

func TestTLSClientRefused(t *testing.T) {
	pki := newTestPKI(t)
	f := func(cert *tls.Certificate, wantReason string) {
		t.Helper()
		sink := &fakeSink{}
		s := startServer(t, pki.tlsConfig(t, ClientAuthVerify), sink)
		if c, err := pki.dialTLS(t, s, cert, 0); err == nil {
			refused(t, c)
		}
		waitFor(t, "the failure to be counted", func() bool { return s.Stats().TLS.HandshakeFailures[wantReason] == 1 })
		// TLS 1.2 checks the certificate inside the client's handshake.
		if c, err := pki.dialTLS(t, s, cert, tls.VersionTLS12); err == nil {
			t.Errorf("TLS 1.2 handshake succeeded")
			refused(t, c)
		}
		waitFor(t, "the failure to be counted", func() bool { return s.Stats().TLS.HandshakeFailures[wantReason] == 2 })
		if n := len(sink.records()); n != 0 {
			t.Errorf("%d records stored from a refused client", n)
		}
		// a refused connection is counted closed by its own goroutine, a
		// moment after its failure is counted
		waitFor(t, "the refused connections closed", func() bool { return s.Stats().TLS.ConnectionsOpen == 0 })
		if st := s.Stats().TLS; len(st.HandshakeFailures) != 1 {
			t.Errorf("stats %+v", st)
		}
	}
	f(nil, "no_client_cert")
	f(&pki.rogue, "bad_client_cert")
}

func TestTLSClientAuthNone(t *testing.T) {
	pki := newTestPKI(t)
	sink := &fakeSink{}
	s := startServer(t, pki.tlsConfig(t, ClientAuthNone), sink)
	for _, cert := range []*tls.Certificate{nil, &pki.rogue} { // a certificate is not even looked at
		c, err := pki.dialTLS(t, s, cert, 0)
		if err != nil {
			t.Fatal(err)
		}
		write(t, c, octet("<13>Oct 11 22:14:15 host app: anyone"))
	}
	sink.waitRecords(t, 2)
}

func TestTLSPlaintextRefused(t *testing.T) {
	pki := newTestPKI(t)
	sink := &fakeSink{}
	s := startServer(t, pki.tlsConfig(t, ClientAuthVerify), sink)
	good, err := pki.dialTLS(t, s, &pki.client, 0)
	if err != nil {
		t.Fatal(err)
	}
	write(t, good, octet("<13>Oct 11 22:14:15 host app: before"))
	sink.waitRecords(t, 1)

	for _, plain := range []string{
		"<13>Oct 11 22:14:15 host app: plaintext to the TLS port\n",
		octet("<13>Oct 11 22:14:15 host app: octet-counted plaintext"),
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"\x16\x03\x01\xff\xff" + strings.Repeat("\x00", 100), // a handshake record header claiming 64 KiB
	} {
		c, err := net.Dial("tcp", s.TLSAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		write(t, c, plain)
		c.(*net.TCPConn).CloseWrite()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		io.Copy(io.Discard, c) // an alert at most, then the close
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("%q: connection not closed", plain)
		}
	}
	waitFor(t, "the failures to be counted", func() bool {
		h := s.Stats().TLS.HandshakeFailures
		return h["not_tls"]+h["closed"]+h["protocol"] == 4
	})
	if h := s.Stats().TLS.HandshakeFailures; h["not_tls"] < 3 {
		t.Errorf("handshake failures %v", h)
	}

	// The good connection was not disturbed.
	write(t, good, octet("<13>Oct 11 22:14:15 host app: after"))
	recs := sink.waitRecords(t, 2)
	if recs[1].Message != "after" {
		t.Errorf("record %s", summary(recs[1]))
	}
}

func TestTLSHandshakeTimeout(t *testing.T) {
	pki := newTestPKI(t)
	cfg := pki.tlsConfig(t, ClientAuthNone)
	cfg.HandshakeTimeout = 200 * time.Millisecond
	s := startServer(t, cfg, &fakeSink{})
	silent, err := net.Dial("tcp", s.TLSAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	half, err := net.Dial("tcp", s.TLSAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer half.Close()
	write(t, half, "\x16\x03\x01\x00\x80\x01") // a ClientHello that never ends
	start := time.Now()
	waitClosed(t, silent)
	waitClosed(t, half)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("closed after %v", d)
	}
	waitFor(t, "the timeouts to be counted", func() bool { return s.Stats().TLS.HandshakeFailures["timeout"] == 2 })
	waitFor(t, "the slots to be freed", func() bool { return s.Stats().TLS.ConnectionsOpen == 0 })
}

// TestTLSReloadingIdentity serves the certificate of a tlsutil.Identity, the
// way the peer does: its TLS 1.3 floor is lowered to 1.2 for syslog and its
// client-certificate policy replaced.
func TestTLSReloadingIdentity(t *testing.T) {
	pki := newTestPKI(t)
	dir := t.TempDir()
	if err := pki.ca.WriteCA(dir); err != nil {
		t.Fatal(err)
	}
	files, err := pki.ca.IssueFiles(dir, "syslog-server", []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	id, err := tlsutil.Load(files, nil)
	if err != nil {
		t.Fatal(err)
	}
	sink := &fakeSink{}
	cfg := testConfig(t)
	cfg.TLSAddr, cfg.TLS, cfg.TLSClientAuth = "127.0.0.1:0", id.ServerConfig(), ClientAuthVerify
	s := startServer(t, cfg, sink)
	c, err := pki.dialTLS(t, s, &pki.client, tls.VersionTLS12)
	if err != nil {
		t.Fatal(err)
	}
	write(t, c, octet("<13>Oct 11 22:14:15 host app: via the identity"))
	sink.waitRecords(t, 1)
	if c, err := pki.dialTLS(t, s, &pki.rogue, tls.VersionTLS12); err == nil {
		refused(t, c)
	}
	waitFor(t, "the refusal", func() bool { return s.Stats().TLS.HandshakeFailures["bad_client_cert"] == 1 })
}
