package repair

import (
	"context"
	"time"

	"github.com/logmesh/logmesh/antientropy"
	"github.com/logmesh/logmesh/peer/view"
	"github.com/logmesh/logmesh/record"
)

// round compares with the co-replicas (each pair is run by the peer with
// the smaller name, unless asked for explicitly), settles debts and hands
// over what this peer holds without owning. Each peer gets a time budget
// per round, so one long fill does not hold up the repair of every other
// peer; more reports that some work was cut short.
func (r *Repairer) round(ctx context.Context, req request) (results []antientropy.Result, more bool) {
	v := r.cfg.View()
	budget := max(2*r.cfg.Interval, 10*time.Second)
	if req.peer != settleOnly {
		for _, other := range v.Targets() {
			explicit := req.done != nil && (req.peer == "" || req.peer == other) || req.peer == other
			if !v.Usable(other) || (!explicit && other < v.Self) {
				continue
			}
			parts := v.SharedPartitions(v.Self, other)
			if len(parts) == 0 {
				continue
			}
			rs, done := r.syncUntilDone(ctx, other, parts, true, time.Now().Add(budget))
			results = append(results, rs...)
			more = more || !done
		}
	}
	rs, m := r.settleDebts(ctx, v, budget)
	results, more = append(results, rs...), more || m
	rs, m = r.handOver(ctx, v, budget)
	results, more = append(results, rs...), more || m
	r.mu.Lock()
	r.mu.last = results
	r.mu.Unlock()
	return results, more
}

// syncUntilDone runs rounds with a peer until one leaves nothing to do
// (done), the deadline passes or a round fails.
func (r *Repairer) syncUntilDone(ctx context.Context, peer string, parts []record.Partition, pull bool, deadline time.Time) (out []antientropy.Result, done bool) {
	for ctx.Err() == nil && time.Now().Before(deadline) {
		res, err := r.ae.Sync(ctx, &transport{r}, peer, parts, pull)
		if err != nil {
			r.log.Warn("anti-entropy round failed", "peer", peer, "err", err)
			return out, false
		}
		out = append(out, res)
		if res.Sent+res.Received > 0 {
			r.log.Info("anti-entropy repaired records", "peer", peer, "sent", res.Sent, "received", res.Received,
				"differing_buckets", res.DifferingBuckets, "took", res.Took.Round(time.Millisecond))
		}
		if !res.More && res.Sent+res.Received == 0 {
			return out, true
		}
	}
	return out, false
}

// settleDebts pushes to each target the partitions this peer owes it, and
// settles the debt once a round finds nothing left to send.
func (r *Repairer) settleDebts(ctx context.Context, v *view.View, budget time.Duration) (results []antientropy.Result, more bool) {
	if r.cfg.Debts == nil {
		return nil, false
	}
	for target, d := range r.cfg.Debts() {
		if ctx.Err() != nil {
			return results, true
		}
		// only what the target owns now and this peer holds is owed
		owed := new(view.Mask)
		for _, p := range d.Parts.Partitions() {
			if v.Owns(target, p) && len(r.cfg.DB.Windows(p)) > 0 {
				owed[p] = true
			}
		}
		if owed.Empty() {
			r.cfg.Settle(target, &d.Parts, d.Gen)
			continue
		}
		if !v.Usable(target) {
			more = true
			continue
		}
		rs, done := r.syncUntilDone(ctx, target, owed.Partitions(), false, time.Now().Add(budget))
		results = append(results, rs...)
		if done {
			r.cfg.Settle(target, &d.Parts, d.Gen)
		} else {
			more = true
		}
	}
	return results, more
}
