package peer_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/logmesh/logmesh/client"
	"github.com/logmesh/logmesh/peer"
	"github.com/logmesh/logmesh/testutil"
	"github.com/logmesh/logmesh/tlsutil"
)

const (
	tokAll    = "all-scopes-0123456789"
	tokIngest = "shipper-0123456789"
	tokQuery  = "grafana-0123456789"
	tokOld    = "expired-0123456789"
)

// secureCluster starts n peers with mutual TLS under one CA and tokens.
func secureCluster(t *testing.T, n int) (*testutil.Cluster, *tlsutil.CA, string) {
	t.Helper()
	dir := t.TempDir()
	ca, err := tlsutil.NewCA("test cluster", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.WriteCA(dir); err != nil {
		t.Fatal(err)
	}
	tokens := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokens, []byte(tokAll+"\n"+tokIngest+" ingest\n"+tokQuery+" query\n"+tokOld+" query until=2020-01-01\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := testutil.NewCluster(t, n, func(i int, cfg *peer.Config) {
		f, err := ca.IssueFiles(dir, cfg.Name, []string{"127.0.0.1"}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		cfg.TLS, cfg.TokenFile = f, tokens
	})
	return c, ca, dir
}

// tlsClient is a CLI-like client of peer i: it trusts the CA, presents no
// certificate, and sends token.
func tlsClient(t *testing.T, c *testutil.Cluster, i int, ca *tlsutil.CA, token string) *client.Client {
	t.Helper()
	cl, err := client.New(strings.TrimPrefix(c.Client(i).Addr(), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	cl.WithTLS(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13})
	cl.Token = token
	return cl
}

func TestMutualTLSClusterReplicatesAndRefusesWhoeverDoesNotBelong(t *testing.T) {
	c, ca, dir := secureCluster(t, 3)
	c.WaitAlive(20 * time.Second)
	addr := strings.TrimPrefix(c.Client(0).Addr(), "http://")

	// the cluster works over mutual TLS: written at p1, on every peer, found from p3
	ids := ingestJSON(t, tlsClient(t, c, 0, ca, tokIngest), "secure", 50, nil)
	testutil.WaitFor(t, 20*time.Second, "the records on every peer", func() bool {
		for i := 0; i < 3; i++ {
			if c.Peer(i).Status().Records != 50 {
				return false
			}
		}
		return true
	})
	got, cov := clusterIDs(t, tlsClient(t, c, 2, ca, tokQuery))
	if len(got) != len(ids) || cov.State != "full" {
		t.Fatalf("query at p3 over TLS: %d records (%s), want %d", len(got), cov.State, len(ids))
	}

	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	call := func(cfg *tls.Config, method, path, token string) (int, error) {
		hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
		req, _ := http.NewRequest(method, "https://"+addr+path, strings.NewReader(`{"message":"x"}`))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	anon := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13}
	for _, c := range []struct {
		what, method, path, token string
		want                      int
	}{
		{"health without a token", "GET", "/healthz", "", 200},
		{"the dashboard page without a token", "GET", "/", "", 200},
		{"a query without a token", "GET", "/v1/logs", "", 401},
		{"status without a token", "GET", "/v1/status", "", 401},
		{"metrics without a token", "GET", "/metrics", "", 401},
		{"a query with an unknown token", "GET", "/v1/logs", "not-a-token-0123456789", 401},
		{"a query with an ingest token", "GET", "/v1/logs", tokIngest, 403},
		{"a query with an expired token", "GET", "/v1/logs", tokOld, 401},
		{"a write with a query token", "POST", "/v1/logs", tokQuery, 403},
		{"a repair with a query token", "POST", "/v1/repair", tokQuery, 403},
		{"gossip keys with a query token", "GET", "/v1/keys", tokQuery, 403},
		{"a query with a query token", "GET", "/v1/logs", tokQuery, 200},
		{"a write with an ingest token", "POST", "/v1/logs", tokIngest, 200},
		{"a local (admin) write with an ingest token", "POST", "/v1/logs?local=true", tokIngest, 403},
		{"a local write with the all-scopes token", "POST", "/v1/logs?local=true", tokAll, 200},
		{"a peer-only push with the all-scopes token", "POST", "/internal/v1/replicate", tokAll, 403},
	} {
		code, err := call(anon, c.method, c.path, c.token)
		if err != nil || code != c.want {
			t.Errorf("%s: %d (%v), want %d", c.what, code, err, c.want)
		}
	}

	// the scheme of Authorization is case-insensitive
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: anon}}
	for _, h := range []string{"bearer " + tokQuery, "BEARER  " + tokQuery} {
		req, _ := http.NewRequest("GET", "https://"+addr+"/v1/status", nil)
		req.Header.Set("Authorization", h)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("Authorization: %q: %d, want 200", h, resp.StatusCode)
		}
	}
	// a refused write whose body stalls half-way gets its answer at once
	// (net/http would read the rest of the body first) and is closed
	raw, err := tls.Dial("tcp", addr, anon)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	fmt.Fprintf(raw, "POST /v1/logs HTTP/1.1\r\nHost: p1\r\nContent-Length: 100000\r\n\r\n{\"message\":")
	_ = raw.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(raw).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 401") {
		t.Fatalf("a write without a token whose body stalls: %q, %v; want a 401 at once", line, err)
	}

	// plaintext HTTP gets nothing
	resp, err := http.Get("http://" + addr + "/v1/logs")
	if err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 || strings.Contains(string(body), "secure") {
			t.Fatalf("plaintext HTTP was answered: %d %s", resp.StatusCode, body)
		}
	}
	// a certificate of the right CA that names no member may not push
	mallory, err := ca.IssueFiles(dir, "mallory", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	mid, err := tlsutil.Load(mallory, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := mid.ClientConfig("p1")
	if code, err := call(cfg, "POST", "/internal/v1/replicate", ""); err != nil || code != 403 {
		t.Fatalf("a push by a certificate naming no member: %d (%v), want 403", code, err)
	}
	// a client certificate of the cluster's CA never passes as a member,
	// even one that names a member
	cli, err := ca.IssueClientFiles(t.TempDir(), "p2", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cid, err := tlsutil.Load(cli, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/internal/v1/replicate", "/v1/logs"} {
		if code, err := call(cid.ClientConfig("p1"), "POST", path, ""); err != nil || (code != 403 && code != 401) {
			t.Fatalf("a client certificate named p2, %s without a token: %d (%v), want 401 or 403", path, code, err)
		}
	}
	// a client certificate from another CA fails the handshake
	foreign, _ := tlsutil.NewCA("other", time.Hour)
	other := t.TempDir()
	ff, err := foreign.IssueFiles(other, "p2", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	fid, err := tlsutil.Load(ff, nil)
	if err != nil {
		t.Fatal(err)
	}
	fcfg := fid.ClientConfig("p1")
	fcfg.InsecureSkipVerify, fcfg.VerifyConnection = true, nil // it would not trust p1 either; it tries anyway
	if code, err := call(fcfg, "POST", "/internal/v1/replicate", ""); err == nil {
		t.Fatalf("a client certificate of another CA was accepted (%d)", code)
	}
	// refusals are counted
	m := scrapeTLS(t, addr, pool)
	for _, reason := range []string{"no_token", "bad_token", "expired_token", "scope", "not_a_peer"} {
		if m[fmt.Sprintf(`logmesh_api_refused_total{reason=%q}`, reason)] == 0 {
			t.Errorf("no refusal counted for %s", reason)
		}
	}
}

func scrapeTLS(t *testing.T, addr string, pool *x509.CertPool) map[string]float64 {
	t.Helper()
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	return scrapeURL(t, hc, "https://"+addr+"/metrics", tokQuery)
}

// TestPeerWithACertificateOfAnotherCAGetsNoData: a peer that joins the
// gossip (which has no per-node identity) but holds a certificate of
// another CA is pushed nothing, and its own pushes are refused.
func TestPeerWithACertificateOfAnotherCAGetsNoData(t *testing.T) {
	c, ca, _ := secureCluster(t, 2)
	c.WaitAlive(20 * time.Second)
	foreign, _ := tlsutil.NewCA("intruder", time.Hour)
	other := t.TempDir()
	i := c.Add(func(cfg *peer.Config) {
		f, err := foreign.IssueFiles(other, cfg.Name, []string{"127.0.0.1"}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		cfg.TLS = f
		cfg.TokenFile = ""
	})
	c.WaitMembers(20 * time.Second) // it can never prove itself complete: its rounds are refused
	ingestJSON(t, tlsClient(t, c, 0, ca, tokAll), "kept-from-intruder", 20, nil)
	intruder := c.Name(i)
	testutil.WaitFor(t, 20*time.Second, "p1 to fail pushing to the intruder over TLS", func() bool {
		for _, r := range c.Peer(0).Status().Replication {
			if r.Peer == intruder && strings.Contains(r.LastError, "certificate") {
				return true
			}
		}
		return false
	})
	if n := c.Peer(i).Status().Records; n != 0 {
		t.Fatalf("the intruder holds %d records", n)
	}
	// and what it takes in never reaches the cluster
	pool := x509.NewCertPool()
	pool.AddCert(foreign.Cert)
	icl, err := client.New(strings.TrimPrefix(c.Client(i).Addr(), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	icl.WithTLS(&tls.Config{RootCAs: pool})
	ingestJSON(t, icl, "from-intruder", 5, url.Values{})
	testutil.WaitFor(t, 20*time.Second, "the intruder's pushes to be refused", func() bool {
		for _, r := range c.Peer(i).Status().Replication {
			if r.Peer == c.Name(0) && r.LastError != "" {
				return true
			}
		}
		return false
	})
	if n := c.Peer(0).Status().Records; n != 20 {
		t.Fatalf("p1 holds %d records, want its own 20 only", n)
	}

}

func TestCertificateMustNameThePeer(t *testing.T) {
	dir := t.TempDir()
	ca, _ := tlsutil.NewCA("c", time.Hour)
	f, err := ca.IssueFiles(dir, "someone-else", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cfg := testutil.PeerConfig(t, dir, 0, "")
	cfg.TLS = f
	if _, err := peer.New(cfg); err == nil || !strings.Contains(err.Error(), `names "someone-else"`) {
		t.Fatalf("a certificate naming another peer: %v", err)
	}
	cfg.TLS = tlsutil.Files{}
	cfg.TokenFile = filepath.Join(dir, "tokens")
	if _, err := peer.New(cfg); err == nil || !strings.Contains(err.Error(), "need TLS") {
		t.Fatalf("tokens without TLS: %v", err)
	}
}

// TestAPISurvivesSlowAndStalledClients: hundreds of connections that never
// finish a TLS handshake or trickle their headers do not keep a real client
// out, and the header deadline closes them.
func TestAPISurvivesSlowAndStalledClients(t *testing.T) {
	dir := t.TempDir()
	ca, _ := tlsutil.NewCA("c", time.Hour)
	c := testutil.NewCluster(t, 1, func(i int, cfg *peer.Config) {
		f, err := ca.IssueFiles(dir, cfg.Name, []string{"127.0.0.1"}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		cfg.TLS = f
		cfg.APIHeaderTimeout = time.Second
	})
	addr := strings.TrimPrefix(c.Client(0).Addr(), "http://")
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	const stalled = 300
	var conns []net.Conn
	defer func() {
		for _, cn := range conns {
			cn.Close()
		}
	}()
	for i := 0; i < stalled; i++ {
		cn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		if i%2 == 1 { // a finished handshake, then headers one byte at a time
			tc := tls.Client(cn, &tls.Config{RootCAs: pool, ServerName: "p1"})
			if err := tc.Handshake(); err != nil {
				t.Fatalf("handshake %d: %v", i, err)
			}
			if _, err := tc.Write([]byte("G")); err != nil {
				t.Fatal(err)
			}
			cn = tc
		} // else: a TCP connection that never says hello
		conns = append(conns, cn)
	}
	// a real client gets its answer while they hang on
	start := time.Now()
	cl := tlsClient(t, c, 0, ca, "")
	if _, err := cl.Status(context.Background()); err != nil {
		t.Fatalf("a real client among %d stalled ones: %v", stalled, err)
	}
	t.Logf("a real client answered in %v among %d stalled connections", time.Since(start), stalled)
	// and the stalled ones are cut off by the header deadline
	for i, cn := range conns {
		_ = cn.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 1)
		for {
			_, err := cn.Read(buf)
			if err == nil {
				continue // an HTTP error answer before the close is fine
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("stalled connection %d still open 10s after a 1s header deadline", i)
			}
			break
		}
	}
}
