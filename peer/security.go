package peer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/logmesh/logmesh/auth"
	"github.com/logmesh/logmesh/gossip"
	"github.com/logmesh/logmesh/tlsutil"
)

// Security of the API and of the peer data plane.
//
// With TLS (Config.TLS), the API listens TLS 1.3 only and every call from
// one peer to another is mutual TLS under the cluster's CA: the caller
// checks that the certificate it is shown names exactly the member that
// advertises the address it dialled (the address is a Serf tag: a hint,
// never authority), and peer-only endpoints (/internal/...) require a
// client certificate naming a current member. Without TLS the data plane
// is plaintext and unauthenticated, for trusted networks only.
//
// With tokens (Config.TokenFile, which needs TLS), every API call but
// /healthz and the dashboard's static files needs a bearer token with the
// route's scope, or a member's certificate.

// security holds the loaded TLS identity and tokens.
type security struct {
	tls    *tlsutil.Identity
	tokens atomic.Pointer[auth.Tokens]
	stamp  time.Time // token file's modification time (reload goroutine only)
}

func (p *Peer) loadSecurity() error {
	c := p.cfg
	if c.TLS != (tlsutil.Files{}) {
		id, err := tlsutil.Load(c.TLS, p.log)
		if err != nil {
			return err
		}
		if name := tlsutil.Name(id.Certificate()); name != c.Name {
			return fmt.Errorf("tls: certificate %s names %q, but this peer is %q: peers check that names match", c.TLS.Cert, name, c.Name)
		}
		if !tlsutil.IsPeer(id.Certificate()) {
			return fmt.Errorf("tls: certificate %s is a client certificate (its extended key usage lacks server authentication): a peer needs one issued for a peer (logmesh certs issue without --client)", c.TLS.Cert)
		}
		p.sec.tls = id
	}
	if c.TokenFile != "" {
		t, err := auth.Load(c.TokenFile)
		if err != nil {
			return err
		}
		p.sec.tokens.Store(t)
		if fi, err := os.Stat(c.TokenFile); err == nil {
			p.sec.stamp = fi.ModTime()
		}
	}
	return nil
}

// reloadTokens rereads the token file when it changes, until ctx ends. A
// file that does not parse is logged and the previous tokens stay.
func (p *Peer) reloadTokens(ctx context.Context) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		fi, err := os.Stat(p.cfg.TokenFile)
		if err != nil || fi.ModTime().Equal(p.sec.stamp) {
			continue
		}
		tk, err := auth.Load(p.cfg.TokenFile)
		if err != nil {
			p.log.Error("token file changed but does not load; keeping the previous tokens", "err", err)
			continue
		}
		p.sec.stamp = fi.ModTime()
		p.sec.tokens.Store(tk)
		p.log.Info("tokens reloaded", "tokens", tk.Len())
	}
}

// scheme is how peers reach each other's API.
func (p *Peer) scheme() string {
	if p.sec.tls != nil {
		return "https://"
	}
	return "http://"
}

// dialPeerTLS opens a mutual-TLS connection to the member that advertises
// addr, refusing a certificate that does not name that member.
func (p *Peer) dialPeerTLS(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		name := p.cluster.view().MemberAt(addr)
		if name == "" {
			return nil, fmt.Errorf("no member advertises the API address %s", addr)
		}
		raw, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		conn := tls.Client(raw, p.sec.tls.ClientConfig(name))
		if err := conn.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, fmt.Errorf("TLS with %s at %s: %w", name, addr, err)
		}
		return conn, nil
	}
}

// dataPlaneKeys returns the gossip keys that sign data-plane calls: only
// without TLS (certificates identify peers then) and with encrypted gossip.
func (p *Peer) dataPlaneKeys() [][]byte {
	if p.sec.tls != nil || p.cluster.g == nil {
		return nil
	}
	return p.cluster.g.Keys()
}

// isMember reports whether name is a member that has not left.
func (c *cluster) isMember(name string) bool {
	m, ok := c.view().Members[name]
	return ok && m.Status != gossip.StatusLeft
}

// scopeOf is what a route needs; open routes need nothing.
func scopeOf(r *http.Request) (scope auth.Scope, open, peerOnly bool) {
	path := r.URL.Path
	switch {
	case path == "/healthz", path == "/", strings.HasPrefix(path, "/ui/"):
		return 0, true, false
	case strings.HasPrefix(path, "/internal/"):
		return 0, false, true
	case path == "/v1/logs" && r.Method == http.MethodPost && r.URL.Query().Get("local") == "true":
		// stored here only and pushed nowhere: a drill, not a shipper's write
		return auth.Ingest | auth.Admin, false, false
	case path == "/v1/logs" && r.Method == http.MethodPost:
		return auth.Ingest, false, false
	case path == "/v1/repair", path == "/v1/keys", strings.HasPrefix(path, "/v1/keys/"), strings.HasPrefix(path, "/debug/"),
		strings.HasPrefix(path, "/v1/members/") && r.Method == http.MethodPost:
		return auth.Admin, false, false
	}
	return auth.Query, false, false
}

// bearer returns the token of an Authorization header; the scheme is
// case-insensitive (RFC 9110, 11.1).
func bearer(h string) (string, bool) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(h), " ")
	tok = strings.TrimSpace(tok)
	return tok, ok && strings.EqualFold(scheme, "Bearer") && tok != ""
}

// guard enforces peer certificates and tokens in front of the API.
func (p *Peer) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody {
			// a refusal must not wait for a body the handler never read
			tb := &trackedBody{ReadCloser: r.Body}
			r.Body = tb
			w = &closeOnRefusal{ResponseWriter: w, body: tb}
		}
		scope, open, peerOnly := scopeOf(r)
		if scope&auth.Ingest != 0 {
			// held until the write is answered: Leave waits for it
			p.leaveGate.RLock()
			defer p.leaveGate.RUnlock()
			if p.leaving.Load() {
				w.Header().Set("Retry-After", "1")
				writeError(w, http.StatusServiceUnavailable, "this peer is leaving the cluster: send to another peer")
				return
			}
		}
		if open {
			next.ServeHTTP(w, r)
			return
		}
		member := p.memberCaller(r)
		if member {
			r = withMemberCall(r)
		}
		if p.sec.tls != nil {
			if name := tlsutil.PeerName(r.TLS); name != "" && name != p.cfg.Name && p.cluster.isMember(name) {
				next.ServeHTTP(w, r) // a member: peers call each other's query and internal endpoints
				return
			}
			if peerOnly {
				p.metrics.refused("not_a_peer")
				writeError(w, http.StatusForbidden, "this endpoint is for peers: it needs the client certificate of a cluster member")
				return
			}
		} else if keys := p.dataPlaneKeys(); peerOnly && len(keys) > 0 {
			// no TLS identities, but a gossip key: members sign their calls
			// (memberCaller checks the name and the signature)
			if !member {
				p.metrics.refused("not_a_peer")
				writeError(w, http.StatusForbidden, "this endpoint is for peers: the call must come from a member, signed with the cluster's gossip key")
				return
			}
		}
		tokens := p.sec.tokens.Load()
		if tokens == nil {
			next.ServeHTTP(w, r)
			return
		}
		tok, ok := bearer(r.Header.Get("Authorization"))
		if !ok {
			p.metrics.refused("no_token")
			w.Header().Set("WWW-Authenticate", `Bearer realm="logmesh"`)
			writeError(w, http.StatusUnauthorized, "a bearer token is needed (Authorization: Bearer TOKEN)")
			return
		}
		has, res := tokens.Check(tok, time.Now())
		switch res {
		case auth.Unknown:
			p.metrics.refused("bad_token")
			w.Header().Set("WWW-Authenticate", `Bearer realm="logmesh", error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, "the token is not valid")
			return
		case auth.Expired:
			p.metrics.refused("expired_token")
			w.Header().Set("WWW-Authenticate", `Bearer realm="logmesh", error="invalid_token", error_description="expired"`)
			writeError(w, http.StatusUnauthorized, "the token has expired")
			return
		}
		if has&scope != scope {
			p.metrics.refused("scope")
			writeError(w, http.StatusForbidden, fmt.Sprintf("the token lacks a scope this needs (%s)", scope))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// trackedBody notes whether a request body was read to its end.
type trackedBody struct {
	io.ReadCloser
	done atomic.Bool
}

func (b *trackedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) {
		b.done.Store(true)
	}
	return n, err
}

// closeOnRefusal closes the connection after an error answer to a request
// whose body was not read: net/http would otherwise read the rest of the
// body before sending the answer, and a client that stalls mid-body would
// hold the answer (and the connection) for ever.
type closeOnRefusal struct {
	http.ResponseWriter
	body *trackedBody
}

func (w *closeOnRefusal) WriteHeader(code int) {
	if code >= 400 && !w.body.done.Load() {
		w.Header().Set("Connection", "close")
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *closeOnRefusal) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *closeOnRefusal) Unwrap() http.ResponseWriter { return w.ResponseWriter }
