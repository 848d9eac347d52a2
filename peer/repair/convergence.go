package repair

import (
	"slices"
	"sort"
	"time"

	"github.com/logmesh/logmesh/api"
	"github.com/logmesh/logmesh/peer/view"
	"github.com/logmesh/logmesh/record"
)

// Local returns this peer's part of the convergence view (the caller adds
// what replication still owes).
func (r *Repairer) Local(now time.Time) api.LocalConvergence {
	complete, _ := r.Claims()
	out := api.LocalConvergence{Node: r.cfg.Self, Store: r.cfg.DB.StoreID(), Complete: complete.String()}
	r.mu.Lock()
	for k, at := range r.mu.proofs {
		out.Proofs = append(out.Proofs, api.PairProof{Peer: k.peer, PeerStore: k.store, Partition: int(k.p), At: at})
	}
	r.mu.Unlock()
	for _, pr := range r.ae.Stats().InProgress() {
		out.Repairs = append(out.Repairs, api.RepairProgress{Peer: r.cfg.Self, With: pr.Peer, Started: pr.Started,
			Expected: pr.Expected, Done: pr.Done, ETASeconds: pr.ETA(now).Seconds()})
	}
	return out
}

// Aggregate works out, from every peer's local view, per partition when
// all its owners last agreed and which of them are still being filled,
// and the cluster's converged-through time: every record received before
// it is on all its owners. A partition with an owner being filled, or an
// owner that could not be asked, has no such time yet; nor has any record
// while some peer owes another a debt.
func Aggregate(v *view.View, answered string, locals []api.LocalConvergence, unreachable []string, now time.Time) api.Convergence {
	out := api.Convergence{AnsweredBy: answered, Unreachable: unreachable}
	stores := map[string]string{}
	complete := map[string]*view.Mask{}
	debts := false
	for _, lc := range locals {
		stores[lc.Node] = lc.Store
		if m, err := view.ParseMask(lc.Complete); err == nil {
			complete[lc.Node] = m
		}
		debts = debts || lc.Debts
	}
	// proof[{a,b}][p]: when a last saw its roots for p equal to b's, with
	// the stores both have now
	proof := map[[2]string]map[record.Partition]time.Time{}
	for _, lc := range locals {
		for _, pp := range lc.Proofs {
			if s, ok := stores[pp.Peer]; ok && s != pp.PeerStore {
				continue // made with a store the peer no longer has
			}
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
	through := now
	for pt := 0; pt < record.NumPartitions; pt++ {
		p := record.Partition(pt)
		owners := slices.Clone(v.Owners(p))
		sort.Strings(owners)
		at := now // one owner agrees with itself
		var filling []string
		for _, o := range owners {
			if m := complete[o]; m == nil || !m[p] {
				filling = append(filling, o)
				at = time.Time{}
			}
		}
		for i := 0; i < len(owners) && !at.IsZero(); i++ {
			for j := i + 1; j < len(owners); j++ {
				if t := proof[[2]string{owners[i], owners[j]}][p]; t.Before(at) {
					at = t
				}
			}
		}
		out.Partitions = append(out.Partitions, api.PartitionProof{Partition: pt, Owners: owners, ProvenEqualAt: at, Filling: filling})
		if at.Before(through) {
			through = at
		}
	}
	if !out.OldestUndelivered.IsZero() && out.OldestUndelivered.Before(through) {
		through = out.OldestUndelivered
	}
	if debts || len(unreachable) > 0 {
		through = time.Time{}
	}
	out.ConvergedThrough = through
	return out
}
