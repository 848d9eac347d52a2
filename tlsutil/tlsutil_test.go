package tlsutil_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/logmesh/logmesh/tlsutil"
)

// handshake runs one TLS handshake between server and client configs over
// a pipe and returns the client's error, the server's, and what the server
// saw of the client.
func handshake(t *testing.T, server, client *tls.Config) (clientErr, serverErr error, seen string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0") // buffered, unlike net.Pipe: alerts do not deadlock
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		a, err := ln.Accept()
		if err != nil {
			serverErr = err
			return
		}
		_ = a.SetDeadline(time.Now().Add(10 * time.Second))
		s := tls.Server(a, server)
		serverErr = s.Handshake()
		if serverErr == nil {
			st := s.ConnectionState()
			seen = tlsutil.PeerName(&st)
			_, _ = io.Copy(io.Discard, s)
		}
		s.Close()
	}()
	b, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_ = b.SetDeadline(time.Now().Add(10 * time.Second))
	c := tls.Client(b, client)
	clientErr = c.Handshake()
	if clientErr == nil {
		// TLS 1.3: the server checks the client certificate after the
		// client's handshake returns; a round trip surfaces its verdict
		_, _ = c.Write([]byte("x"))
	}
	c.Close()
	<-done
	return
}

func issue(t *testing.T, ca *tlsutil.CA, dir, name string) *tlsutil.Identity {
	t.Helper()
	f, err := ca.IssueFiles(dir, name, []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	id, err := tlsutil.Load(f, nil)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestMutualTLSChecksTheCAAndTheName(t *testing.T) {
	dir, other := t.TempDir(), t.TempDir()
	ca, err := tlsutil.NewCA("cluster", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := tlsutil.NewCA("someone else", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	p1, p2 := issue(t, ca, dir, "p1"), issue(t, ca, dir, "p2")
	intruder := issue(t, foreign, other, "p2")

	cerr, serr, seen := handshake(t, p1.ServerConfig(), p2.ClientConfig("p1"))
	if cerr != nil || serr != nil || seen != "p2" {
		t.Fatalf("p2 → p1: client %v, server %v, server saw %q; want success as p2", cerr, serr, seen)
	}
	// p1's certificate is fine but does not name p3: a member claiming p3's
	// address with p1's certificate is refused
	if cerr, _, _ = handshake(t, p1.ServerConfig(), p2.ClientConfig("p3")); cerr == nil || !strings.Contains(cerr.Error(), "p3") {
		t.Fatalf("p2 calling p3 reached p1's certificate: %v", cerr)
	}
	// a certificate from another CA is refused both ways
	if _, serr, _ = handshake(t, p1.ServerConfig(), intruder.ClientConfig("p1")); serr == nil {
		t.Fatal("p1 accepted a client certificate from a foreign CA")
	}
	if cerr, _, _ = handshake(t, intruder.ServerConfig(), p1.ClientConfig("p2")); cerr == nil {
		t.Fatal("p1 accepted a server certificate from a foreign CA")
	}
	// a client without a certificate completes the handshake but has no name
	plain := &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}
	if cerr, serr, seen = handshake(t, p1.ServerConfig(), plain); cerr != nil || serr != nil || seen != "" {
		t.Fatalf("client without certificate: client %v, server %v, name %q", cerr, serr, seen)
	}
	// TLS 1.2 is refused
	old := &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12}
	if cerr, _, _ = handshake(t, p1.ServerConfig(), old); cerr == nil {
		t.Fatal("a TLS 1.2 client was accepted")
	}
}

func TestCertificatesReloadWithoutRestart(t *testing.T) {
	dir := t.TempDir()
	ca, err := tlsutil.NewCA("cluster", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	p1 := issue(t, ca, dir, "p1")
	first := p1.Certificate().SerialNumber
	// a half-written file is ignored: the old certificate stays
	if err := os.WriteFile(filepath.Join(dir, "p1.crt"), []byte("-----BEGIN CERT"), 0o644); err != nil {
		t.Fatal(err)
	}
	p1.Recheck()
	if got := p1.Certificate().SerialNumber; got.Cmp(first) != 0 {
		t.Fatal("a broken certificate file replaced the working one")
	}
	// the renewed certificate is served from the next handshake on
	if _, err := ca.IssueFiles(dir, "p1", nil, 2*time.Hour); err != nil {
		t.Fatal(err)
	}
	p1.Recheck()
	if got := p1.Certificate().SerialNumber; got.Cmp(first) == 0 {
		t.Fatal("the renewed certificate was not loaded")
	}
	p2 := issue(t, ca, dir, "p2")
	if cerr, serr, _ := handshake(t, p1.ServerConfig(), p2.ClientConfig("p1")); cerr != nil || serr != nil {
		t.Fatalf("handshake with the renewed certificate: %v / %v", cerr, serr)
	}
}

func TestLoadNamesTheBadFile(t *testing.T) {
	dir := t.TempDir()
	ca, _ := tlsutil.NewCA("cluster", time.Hour)
	f, err := ca.IssueFiles(dir, "p1", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	bad := f
	bad.CA = filepath.Join(dir, "p1.key") // a key is not a CA certificate
	if _, err := tlsutil.Load(bad, nil); err == nil || !strings.Contains(err.Error(), "p1.key") {
		t.Fatalf("loading a key as CA: %v", err)
	}
	bad = f
	bad.Cert = filepath.Join(dir, "missing.crt")
	if _, err := tlsutil.Load(bad, nil); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing certificate: %v", err)
	}
}

// TestClientCertificatesAreNoPeers: a peer certificate carries the peer
// role, a client certificate (client authentication only) does not,
// whatever name it carries.
func TestClientCertificatesAreNoPeers(t *testing.T) {
	ca, err := tlsutil.NewCA("roles", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	peerPEM, _, err := ca.Issue("p1", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	clientPEM, _, err := ca.IssueClient("p1", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	parse := func(b []byte) *x509.Certificate {
		blk, _ := pem.Decode(b)
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if !tlsutil.IsPeer(parse(peerPEM)) || tlsutil.IsPeer(parse(clientPEM)) {
		t.Fatalf("IsPeer: peer certificate %v, client certificate %v; want true, false", tlsutil.IsPeer(parse(peerPEM)), tlsutil.IsPeer(parse(clientPEM)))
	}
	chain := func(c *x509.Certificate) *tls.ConnectionState {
		return &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{c, ca.Cert}}}
	}
	if tlsutil.PeerName(chain(parse(peerPEM))) != "p1" || tlsutil.PeerName(chain(parse(clientPEM))) != "" {
		t.Fatal("PeerName gave a client certificate a member's name, or denied a peer's")
	}
}
