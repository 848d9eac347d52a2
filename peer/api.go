package peer

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/logmesh/logmesh/api"
	"github.com/logmesh/logmesh/dashboard"
	"github.com/logmesh/logmesh/peer/link"
	"github.com/logmesh/logmesh/peer/repair"
	"github.com/logmesh/logmesh/peer/replicate"
	"github.com/logmesh/logmesh/tlsutil"
)

func (p *Peer) newAPIServer() *http.Server {
	mux := http.NewServeMux()
	ui := dashboard.Handler()
	mux.Handle("GET /{$}", ui)
	mux.Handle("GET /ui/", ui)
	mux.HandleFunc("GET /healthz", p.handleHealthz)
	mux.HandleFunc("GET /v1/status", p.handleStatus)
	mux.Handle("GET /metrics", p.metrics.handler())
	mux.HandleFunc("POST /v1/logs", p.handlePostLogs)
	mux.HandleFunc("GET /v1/logs", p.handleGetLogs)
	mux.HandleFunc("GET /v1/members", p.handleMembers)
	mux.HandleFunc("POST /v1/members/{name}/forget", p.handleForget)
	mux.HandleFunc("GET /v1/cluster", p.handleCluster)
	mux.HandleFunc("GET /v1/convergence", p.handleConvergence)
	mux.HandleFunc("POST /v1/repair", p.handleRepair)
	mux.HandleFunc("GET /v1/keys", p.handleKeys)
	mux.HandleFunc("POST /v1/keys/{op}", p.handleKeys)
	mux.HandleFunc("POST "+replicate.PushPath, p.internal(p.unlessLeaving(func(w http.ResponseWriter, r *http.Request, from string) {
		p.repl.ServePush(w, r)
	})))
	mux.HandleFunc("POST "+repair.AEPath+"{step}", p.internal(func(w http.ResponseWriter, r *http.Request, from string) {
		p.repair.ServeAE(w, r, r.PathValue("step"), from)
	}))
	mux.HandleFunc("POST "+repair.HavePath, p.internal(p.unlessLeaving(p.repairHave)))
	mux.HandleFunc("GET "+clockPath, p.internal(func(w http.ResponseWriter, r *http.Request, from string) {
		w.WriteHeader(http.StatusOK)
	}))
	if p.cfg.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return &http.Server{
		Handler:           idleDeadlines(p.cfg.APIIdleTimeout, p.stampClock(p.guard(mux))),
		ReadHeaderTimeout: p.cfg.APIHeaderTimeout, // also bounds the TLS handshake
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slogLogger(p.log),
		// keep-alives between requests are what the connection caps
		// close first to let a new connection in
		ConnState: func(c net.Conn, s http.ConnState) {
			if p.apiLimit != nil {
				p.apiLimit.SetIdle(c.RemoteAddr(), s == http.StateIdle)
			}
		},
	}
}

// internal wraps a peer-to-peer endpoint: it needs a cluster and the
// caller's protocol version, and learns the caller's name.
func (p *Peer) internal(h func(w http.ResponseWriter, r *http.Request, from string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if v := r.Header.Get(link.HeaderProto); v != protoVersion {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("protocol version %q is not %s: every peer of a cluster must run a compatible logmesh", v, protoVersion))
			return
		}
		if p.repl == nil {
			writeError(w, http.StatusNotFound, "this peer is not in a cluster")
			return
		}
		from := r.Header.Get(link.HeaderFrom)
		if name := tlsutil.PeerName(r.TLS); name != "" {
			from = name // the certificate says who calls, not a header
		}
		h(w, r, from)
	}
}

// unlessLeaving refuses h once this peer is leaving: a push it took, or a
// copy it confirmed, lets the sender delete its own, and nothing this peer
// takes after it listed what to hand over would stay anywhere.
func (p *Peer) unlessLeaving(h func(w http.ResponseWriter, r *http.Request, from string)) func(w http.ResponseWriter, r *http.Request, from string) {
	return func(w http.ResponseWriter, r *http.Request, from string) {
		p.leaveGate.RLock()
		defer p.leaveGate.RUnlock()
		if p.leaving.Load() {
			writeError(w, link.StatusLeaving, "this peer is leaving the cluster")
			return
		}
		h(w, r, from)
	}
}

func (p *Peer) repairHave(w http.ResponseWriter, r *http.Request, from string) {
	p.repair.ServeHave(w, r, from)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, api.Error{Error: msg})
}

func (p *Peer) handleHealthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte("ok\n"))
}

func (p *Peer) handleMembers(w http.ResponseWriter, r *http.Request) {
	var out []api.Member
	for _, m := range p.cluster.members() {
		out = append(out, api.Member{Name: m.Name, Address: m.Addr, Status: string(m.Status), Tags: m.Tags})
	}
	writeJSON(w, http.StatusOK, out)
}
