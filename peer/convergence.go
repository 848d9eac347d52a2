package peer

import (
	"context"
	"net/http"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/logmesh/logmesh/api"
	"github.com/logmesh/logmesh/record"
)

// localConvergence is this peer's part of the convergence view.
func (p *Peer) localConvergence() api.LocalConvergence {
	out := api.LocalConvergence{Node: p.cfg.Name}
	if p.repair == nil {
		return out
	}
	p.repair.mu.Lock()
	for k, at := range p.repair.mu.equal {
		out.Proofs = append(out.Proofs, api.PairProof{Peer: k.peer, Partition: int(k.p), At: at})
	}
	p.repair.mu.Unlock()
	now := time.Now()
	for _, pr := range p.repair.ae.Stats().InProgress() {
		out.Repairs = append(out.Repairs, api.RepairProgress{Peer: p.cfg.Name, With: pr.Peer, Started: pr.Started,
			Expected: pr.Expected, Done: pr.Done, ETASeconds: pr.ETA(now).Seconds()})
	}
	out.OldestUndelivered = p.repl.oldestUndelivered(func(string) bool { return true })
	return out
}

func (p *Peer) handleConvergence(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("local") == "true" {
		writeJSON(w, http.StatusOK, p.localConvergence())
		return
	}
	writeJSON(w, http.StatusOK, p.convergence(r.Context()))
}

// convergence gathers every peer's proofs and works out, per partition, when
// all its owners last agreed, and the cluster's converged-through time.
func (p *Peer) convergence(ctx context.Context) api.Convergence {
	v := p.cluster.view()
	out := api.Convergence{AnsweredBy: p.cfg.Name}
	views := []api.LocalConvergence{p.localConvergence()}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, name := range v.table.Members() {
		if name == v.self {
			continue
		}
		if !v.usable(name) {
			out.Unreachable = append(out.Unreachable, name)
			continue
		}
		wg.Add(1)
		go func(name string) {
			defer wg.Done()
			var lc api.LocalConvergence
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := p.getPeerJSON(cctx, v.apiAddr(name), "/v1/convergence?local=true", &lc)
			cancel()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				out.Unreachable = append(out.Unreachable, name)
				return
			}
			views = append(views, lc)
		}(name)
	}
	wg.Wait()
	sort.Strings(out.Unreachable)
	// proof[a][b][p]: when a last saw its roots for p equal to b's
	proof := map[[2]string]map[record.Partition]time.Time{}
	for _, lc := range views {
		for _, pp := range lc.Proofs {
			k := [2]string{min(lc.Node, pp.Peer), max(lc.Node, pp.Peer)}
			if proof[k] == nil {
				proof[k] = map[record.Partition]time.Time{}
			}
			if pp.At.After(proof[k][record.Partition(pp.Partition)]) {
				proof[k][record.Partition(pp.Partition)] = pp.At
			}
		}
		out.Repairs = append(out.Repairs, lc.Repairs...)
		if !lc.OldestUndelivered.IsZero() && (out.OldestUndelivered.IsZero() || lc.OldestUndelivered.Before(out.OldestUndelivered)) {
			out.OldestUndelivered = lc.OldestUndelivered
		}
	}
	now := time.Now()
	through := now
	for pt := 0; pt < record.NumPartitions; pt++ {
		owners := slices.Clone(v.owners(record.Partition(pt)))
		sort.Strings(owners)
		at := now // one owner agrees with itself
		for i := 0; i < len(owners); i++ {
			for j := i + 1; j < len(owners); j++ {
				t := proof[[2]string{owners[i], owners[j]}][record.Partition(pt)]
				if t.Before(at) {
					at = t
				}
			}
		}
		out.Partitions = append(out.Partitions, api.PartitionProof{Partition: pt, Owners: owners, ProvenEqualAt: at})
		if at.Before(through) {
			through = at
		}
	}
	if !out.OldestUndelivered.IsZero() && out.OldestUndelivered.Before(through) {
		through = out.OldestUndelivered
	}
	out.ConvergedThrough = through
	return out
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
	results, err := p.repair.repairNow(ctx)
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
