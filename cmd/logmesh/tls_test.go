package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/logmesh/logmesh/testutil"
)

// TestSecuredClusterFromTheCommandLine: the operator's path, all through
// the binary. `logmesh certs` makes a CA and three peer certificates, the
// agents run mutual TLS with a token file, and the CLI reaches them with
// --tls-ca and a token (and is refused without one).
func TestSecuredClusterFromTheCommandLine(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	bin := testutil.Binary(t)
	dir := t.TempDir()
	tlsDir := filepath.Join(dir, "tls")
	run := func(env []string, args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run(nil, "certs", "ca", "--dir", tlsDir); err != nil {
		t.Fatalf("certs ca: %v: %s", err, out)
	}
	if out, err := run(nil, "certs", "ca", "--dir", tlsDir); err == nil || !strings.Contains(out, "already holds a CA") {
		t.Fatalf("a second certs ca overwrote the CA: %v: %s", err, out)
	}
	const admin, shipper = "ops-token-0123456789abcdef", "shipper-token-0123456789"
	tokens := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokens, []byte(admin+"\n"+shipper+" ingest\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pemCA, err := os.ReadFile(filepath.Join(tlsDir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemCA)

	var procs []*testutil.Process
	var seed string
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("p%d", i)
		if out, err := run(nil, "certs", "issue", "--dir", tlsDir, "--host", "127.0.0.1", name); err != nil {
			t.Fatalf("certs issue %s: %v: %s", name, err, out)
		}
		gossip := testutil.FreeAddr(t)
		args := []string{"--gossip-addr", gossip, "--test-timings", "--fsync", "50ms",
			"--tls-cert", filepath.Join(tlsDir, name+".crt"), "--tls-key", filepath.Join(tlsDir, name+".key"),
			"--tls-ca", filepath.Join(tlsDir, "ca.crt"), "--api-token-file", tokens}
		if seed != "" {
			args = append(args, "--join", seed)
		} else {
			seed = gossip
		}
		p := testutil.NewProcess(t, name, args...)
		p.TLS = &tls.Config{RootCAs: pool, ServerName: name}
		p.Start()
		procs = append(procs, p)
	}
	cli := func(token string, args ...string) (string, error) {
		return run([]string{"LOGMESH_TOKEN=" + token}, append(args, "--addr", procs[0].APIAddr,
			"--tls-ca", filepath.Join(tlsDir, "ca.crt"), "--tls-server-name", "p1")...)
	}
	testutil.WaitFor(t, 30*time.Second, "three members alive through the CLI", func() bool {
		out, err := cli(admin, "members")
		return err == nil && strings.Count(out, "alive") == 3
	})
	ingest := exec.Command(bin, "ingest", "--addr", procs[1].APIAddr, "--tls-ca", filepath.Join(tlsDir, "ca.crt"), "--tls-server-name", "p2", "-")
	ingest.Env = append(os.Environ(), "LOGMESH_TOKEN="+shipper)
	ingest.Stdin = strings.NewReader("<11>1 2026-11-25T10:00:00Z web-7 app - - - secured hello\n")
	if out, err := ingest.CombinedOutput(); err != nil {
		t.Fatalf("ingest with an ingest token over TLS: %v: %s", err, out)
	}
	testutil.WaitFor(t, 30*time.Second, "the record ingested at p2 found from p1", func() bool {
		out, err := cli(admin, "query", "--contains", "secured hello")
		return err == nil && strings.Contains(out, "secured hello")
	})
	// --word matches whole words only
	if out, err := cli(admin, "query", "--word", "secured"); err != nil || !strings.Contains(out, "secured hello") {
		t.Fatalf("query --word secured: %v: %s", err, out)
	}
	if out, err := cli(admin, "query", "--word", "secure"); err != nil || strings.Contains(out, "secured hello") {
		t.Fatalf("query --word secure (part of a word): %v: %s", err, out)
	}
	// refusals, as an operator sees them
	if out, err := cli("", "status"); err == nil || !strings.Contains(out, "token") {
		t.Fatalf("status without a token: %v: %s", err, out)
	}
	if out, err := cli(shipper, "query"); err == nil || !strings.Contains(out, "scope") {
		t.Fatalf("query with an ingest-only token: %v: %s", err, out)
	}
	if out, err := run([]string{"LOGMESH_TOKEN=" + admin}, "status", "--addr", procs[0].APIAddr); err == nil {
		t.Fatalf("plain HTTP to a TLS peer answered: %s", out)
	}
	if out, err := cli(admin, "status"); err != nil || !strings.Contains(out, "p3") {
		t.Fatalf("status with a token: %v: %s", err, out)
	}
}
