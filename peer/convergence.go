package peer

import (
	"context"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/logmesh/logmesh/api"
	"github.com/logmesh/logmesh/peer/repair"
)

// localConvergence is this peer's part of the convergence view.
func (p *Peer) localConvergence() api.LocalConvergence {
	if p.repair == nil {
		return api.LocalConvergence{Node: p.cfg.Name, Store: p.db.StoreID()}
	}
	out := p.repair.Local(p.cfg.Now())
	out.OldestUndelivered, out.Debts = p.repl.OldestUndelivered(func(string) bool { return true })
	return out
}

func (p *Peer) handleConvergence(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("local") == "true" {
		writeJSON(w, http.StatusOK, p.localConvergence())
		return
	}
	writeJSON(w, http.StatusOK, p.convergence(r.Context()))
}

// convergence gathers every member's proofs and works out, per partition,
// when all its owners last agreed, and the cluster's converged-through time.
func (p *Peer) convergence(ctx context.Context) api.Convergence {
	v := p.cluster.view()
	locals := []api.LocalConvergence{p.localConvergence()}
	var unreachable []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, name := range v.Table.Members() {
		if name == v.Self {
			continue
		}
		if !v.Readable(name) {
			unreachable = append(unreachable, name)
			continue
		}
		wg.Add(1)
		go func(name string) {
			defer wg.Done()
			var lc api.LocalConvergence
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := p.getPeerJSON(cctx, name, "/v1/convergence?local=true", &lc)
			cancel()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				unreachable = append(unreachable, name)
				return
			}
			locals = append(locals, lc)
		}(name)
	}
	wg.Wait()
	sort.Strings(unreachable)
	return repair.Aggregate(v, p.cfg.Name, locals, unreachable, p.cfg.Now())
}

// handleRepair runs anti-entropy with every co-replica now.
func (p *Peer) handleRepair(w http.ResponseWriter, r *http.Request) {
	if p.repair == nil {
		writeError(w, http.StatusBadRequest, "this peer is not in a cluster: nothing to repair")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Minute)
	defer cancel()
	start := time.Now()
	results, err := p.repair.RepairNow(ctx)
	if err != nil {
		writeError(w, http.StatusGatewayTimeout, "repair did not finish: "+err.Error())
		return
	}
	out := api.RepairResponse{Rounds: len(results), Seconds: time.Since(start).Seconds()}
	for _, res := range results {
		out.Sent += res.Sent
		out.Received += res.Received
	}
	writeJSON(w, http.StatusOK, out)
}
