// Package tlsutil holds a peer's TLS identity: its certificate and key and
// the cluster's private CA, reread from their files when they change so
// that certificates rotate without a restart. Peers talk TLS 1.3 only and
// authenticate each other both ways (mutual TLS).
package tlsutil

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// Files names a peer's certificate and key (PEM) and the CA bundle (PEM)
// that signs every peer of the cluster.
type Files struct {
	Cert, Key, CA string
}

// checkEvery bounds how often the files are looked at for changes.
const checkEvery = time.Second

// Identity is the current certificate and CA pool of a peer.
type Identity struct {
	files Files
	log   *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	pool    *x509.CertPool
	stamps  [3]stamp
	checked time.Time
}

type stamp struct {
	mod  time.Time
	size int64
}

// Load reads the files; an error names the file that is wrong.
func Load(f Files, log *slog.Logger) (*Identity, error) {
	if f.Cert == "" || f.Key == "" || f.CA == "" {
		return nil, errors.New("tls: the certificate, the key and the CA are all needed")
	}
	if log == nil {
		log = slog.Default()
	}
	id := &Identity{files: f, log: log}
	st, err := id.stampFiles()
	if err != nil {
		return nil, err
	}
	cert, pool, err := f.read()
	if err != nil {
		return nil, err
	}
	id.cert, id.pool, id.stamps, id.checked = cert, pool, st, time.Now()
	return id, nil
}

func (f Files) read() (*tls.Certificate, *x509.CertPool, error) {
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("tls: certificate %s with key %s: %w", f.Cert, f.Key, err)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, nil, fmt.Errorf("tls: certificate %s: %w", f.Cert, err)
		}
	}
	pem, err := os.ReadFile(f.CA)
	if err != nil {
		return nil, nil, fmt.Errorf("tls: CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, nil, fmt.Errorf("tls: CA %s holds no PEM certificate", f.CA)
	}
	return &cert, pool, nil
}

func (id *Identity) stampFiles() ([3]stamp, error) {
	var st [3]stamp
	for i, name := range []string{id.files.Cert, id.files.Key, id.files.CA} {
		fi, err := os.Stat(name)
		if err != nil {
			return st, fmt.Errorf("tls: %w", err)
		}
		st[i] = stamp{fi.ModTime(), fi.Size()}
	}
	return st, nil
}

// current returns the certificate and pool, rereading the files when they
// changed. A change that does not load (a half-written file, a key that
// does not match) is logged and the previous identity is kept.
func (id *Identity) current() (*tls.Certificate, *x509.CertPool) {
	id.mu.Lock()
	defer id.mu.Unlock()
	if time.Since(id.checked) < checkEvery {
		return id.cert, id.pool
	}
	id.checked = time.Now()
	st, err := id.stampFiles()
	if err != nil || st == id.stamps {
		return id.cert, id.pool
	}
	cert, pool, err := id.files.read()
	if err != nil {
		id.log.Error("TLS files changed but do not load; keeping the previous certificate", "err", err)
		return id.cert, id.pool
	}
	id.cert, id.pool, id.stamps = cert, pool, st
	id.log.Info("TLS certificate reloaded", "name", Name(cert.Leaf), "not_after", cert.Leaf.NotAfter)
	return cert, pool
}

// Certificate returns the current leaf certificate.
func (id *Identity) Certificate() *x509.Certificate {
	cert, _ := id.current()
	return cert.Leaf
}

// Name is the identity a certificate names: its first DNS name, else its
// common name.
func Name(c *x509.Certificate) string {
	if len(c.DNSNames) > 0 {
		return c.DNSNames[0]
	}
	return c.Subject.CommonName
}

// ServerConfig is the listener's configuration: TLS 1.3, this peer's
// current certificate, and client certificates verified against the CA
// when a client presents one (CLI clients and browsers may use a token
// instead; see PeerName for who may call peer-only endpoints).
func (id *Identity) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			cert, pool := id.current()
			return &tls.Config{
				MinVersion:   tls.VersionTLS13,
				Certificates: []tls.Certificate{*cert},
				ClientCAs:    pool,
				ClientAuth:   tls.VerifyClientCertIfGiven,
			}, nil
		},
	}
}

// ClientConfig is the configuration for calling the peer named name: TLS
// 1.3, this peer's certificate as client certificate, and the server's
// certificate verified against the current CA for exactly that name.
func (id *Identity) ClientConfig(name string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			cert, _ := id.current()
			return cert, nil
		},
		// the CA can change at run time, so the chain is verified here
		// against the current pool instead of a fixed RootCAs
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, pool := id.current()
			return verify(cs.PeerCertificates, pool, name, x509.ExtKeyUsageServerAuth)
		},
	}
}

func verify(chain []*x509.Certificate, pool *x509.CertPool, name string, usage x509.ExtKeyUsage) error {
	if len(chain) == 0 {
		return errors.New("tls: no certificate presented")
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, DNSName: name, KeyUsages: []x509.ExtKeyUsage{usage}})
	if err != nil {
		return fmt.Errorf("tls: certificate of %q: %w", name, err)
	}
	return nil
}

// PeerName returns the name in a verified client certificate of a TLS
// connection that carries the peer role (IsPeer), or "" when the client
// presented none or a client-only one.
func PeerName(cs *tls.ConnectionState) string {
	if cs == nil || len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return ""
	}
	if leaf := cs.VerifiedChains[0][0]; IsPeer(leaf) {
		return Name(leaf)
	}
	return ""
}

// IsPeer reports whether a certificate carries the peer role: peers both
// serve and call, so theirs allow server and client authentication; a
// client certificate (`logmesh certs issue --client`) allows only the
// latter and never passes as a member, whatever name it carries. A
// certificate with no extended key usage is unrestricted (as x509 reads
// it) and passes.
func IsPeer(c *x509.Certificate) bool {
	if len(c.ExtKeyUsage) == 0 {
		return true
	}
	var server, client bool
	for _, u := range c.ExtKeyUsage {
		switch u {
		case x509.ExtKeyUsageServerAuth:
			server = true
		case x509.ExtKeyUsageClientAuth:
			client = true
		case x509.ExtKeyUsageAny:
			server, client = true, true
		}
	}
	return server && client
}
