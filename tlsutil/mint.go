package tlsutil

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// CA is a private certificate authority for one cluster (`logmesh certs`,
// and tests).
type CA struct {
	Cert *x509.Certificate
	key  *ecdsa.PrivateKey
	// CertPEM is the CA certificate every peer trusts.
	CertPEM []byte
	keyPEM  []byte
}

// NewCA makes a CA valid for validity.
func NewCA(name string, validity time.Duration) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Minute),
		NotAfter:              time.Now().Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, key: key, CertPEM: pemBlock("CERTIFICATE", der), keyPEM: pemBlock("EC PRIVATE KEY", kder)}, nil
}

// LoadCA reads a CA written by WriteFiles.
func LoadCA(certFile, keyFile string) (*CA, error) {
	cpem, err := os.ReadFile(certFile)
	if err != nil {
		return nil, err
	}
	kpem, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, err
	}
	cb, _ := pem.Decode(cpem)
	kb, _ := pem.Decode(kpem)
	if cb == nil || kb == nil {
		return nil, fmt.Errorf("%s or %s is not PEM", certFile, keyFile)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", certFile, err)
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", keyFile, err)
	}
	return &CA{Cert: cert, key: key, CertPEM: cpem, keyPEM: kpem}, nil
}

// Issue makes a certificate for the peer (or client) named name, usable
// both to serve and to connect. hosts adds DNS names and IP addresses
// operators and CLI clients reach it by; the name itself is the first DNS
// name, the identity peers check.
func (ca *CA) Issue(name string, hosts []string, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	return ca.issue(name, hosts, validity, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth})
}

// IssueClient issues a client certificate for name: client authentication
// only, so it can never pass as a peer (see IsPeer), whatever it names.
func (ca *CA) IssueClient(name string, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	return ca.issue(name, nil, validity, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth})
}

func (ca *CA) issue(name string, hosts []string, validity time.Duration, usage []x509.ExtKeyUsage) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  usage,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != name {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, nil, fmt.Errorf("certificate for %s: %w", name, err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pemBlock("CERTIFICATE", der), pemBlock("EC PRIVATE KEY", kder), nil
}

// WriteCA writes ca.crt and ca.key into dir (the key readable by its owner only).
func (ca *CA) WriteCA(dir string) error {
	if err := os.WriteFile(filepath.Join(dir, "ca.crt"), ca.CertPEM, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "ca.key"), ca.keyPEM, 0o600)
}

// IssueFiles issues a certificate for name and writes NAME.crt and
// NAME.key into dir, returning the Files a peer loads (with dir/ca.crt).
func (ca *CA) IssueFiles(dir, name string, hosts []string, validity time.Duration) (Files, error) {
	c, k, err := ca.Issue(name, hosts, validity)
	if err != nil {
		return Files{}, err
	}
	return ca.writeFiles(dir, name, c, k)
}

// IssueClientFiles is IssueFiles for a client certificate (IssueClient).
func (ca *CA) IssueClientFiles(dir, name string, validity time.Duration) (Files, error) {
	c, k, err := ca.IssueClient(name, validity)
	if err != nil {
		return Files{}, err
	}
	return ca.writeFiles(dir, name, c, k)
}

func (ca *CA) writeFiles(dir, name string, c, k []byte) (Files, error) {
	f := Files{Cert: filepath.Join(dir, name+".crt"), Key: filepath.Join(dir, name+".key"), CA: filepath.Join(dir, "ca.crt")}
	if err := os.WriteFile(f.Cert, c, 0o644); err != nil {
		return f, err
	}
	if err := os.WriteFile(f.Key, k, 0o600); err != nil {
		return f, err
	}
	if _, err := os.Stat(f.CA); os.IsNotExist(err) {
		err = os.WriteFile(f.CA, ca.CertPEM, 0o644)
		if err != nil {
			return f, err
		}
	}
	return f, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	return n
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
