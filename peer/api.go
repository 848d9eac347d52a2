package peer

import (
	"encoding/json"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/logmesh/logmesh/api"
	"github.com/logmesh/logmesh/dashboard"
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
	mux.HandleFunc("GET /v1/cluster", p.handleCluster)
	mux.HandleFunc("GET /v1/convergence", p.handleConvergence)
	mux.HandleFunc("POST /v1/repair", p.handleRepair)
	mux.HandleFunc("GET /v1/keys", p.handleKeys)
	mux.HandleFunc("POST /v1/keys/{op}", p.handleKeys)
	mux.HandleFunc("POST /internal/v1/replicate", p.handleReplicate)
	mux.HandleFunc("POST /internal/v1/ae/{step}", p.handleAE)
	if p.cfg.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return &http.Server{
		Handler:           p.guard(mux),
		ReadHeaderTimeout: p.cfg.APIHeaderTimeout, // also bounds the TLS handshake
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slogLogger(p.log),
		BaseContext:       nil,
	}
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
