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
// peer; left says what it left undone.
func (r *Repairer) round(ctx context.Context, req request) (results []antientropy.Result, left undone) {
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
			rs, l := r.syncUntilDone(ctx, other, parts, true, time.Now().Add(budget))
			results = append(results, rs...)
			left.add(l)
		}
	}
	rs, l := r.settleDebts(ctx, v, budget)
	results = append(results, rs...)
	left.add(l)
	rs, l = r.handOver(ctx, v, budget)
	results = append(results, rs...)
	left.add(l)
	r.mu.Lock()
	r.mu.last = results
	r.mu.Unlock()
	return results, left
}

// undone is what a round left to do.
type undone struct {
	// more: work cut short by the round's time budget, to go on with at
	// once.
	more bool
	// blocked: work that waits on others (a peer unreachable or not usable,
	// an owner that lacks records replication has yet to push), tried
	// again after a backoff rather than in a loop that would spin for as
	// long as a peer is down.
	blocked bool
}

func (u *undone) add(o undone) { u.more, u.blocked = u.more || o.more, u.blocked || o.blocked }

func (u undone) done() bool { return !u.more && !u.blocked }

// syncUntilDone runs rounds with a peer until one leaves nothing to do, the
// deadline passes (more) or a round fails (blocked).
func (r *Repairer) syncUntilDone(ctx context.Context, peer string, parts []record.Partition, pull bool, deadline time.Time) (out []antientropy.Result, left undone) {
	for ctx.Err() == nil && time.Now().Before(deadline) {
		res, err := r.ae.Sync(ctx, &transport{r}, peer, parts, pull)
		if err != nil {
			r.log.Warn("anti-entropy round failed", "peer", peer, "err", err)
			return out, undone{blocked: true}
		}
		out = append(out, res)
		if res.Sent+res.Received > 0 {
			r.log.Info("anti-entropy repaired records", "peer", peer, "sent", res.Sent, "received", res.Received,
				"differing_buckets", res.DifferingBuckets, "took", res.Took.Round(time.Millisecond))
		}
		if !res.More && res.Sent+res.Received == 0 {
			return out, undone{}
		}
	}
	return out, undone{more: true}
}

// settleDebts pushes to each target the partitions this peer owes it, and
// settles the debt once a round finds nothing left to send.
func (r *Repairer) settleDebts(ctx context.Context, v *view.View, budget time.Duration) (results []antientropy.Result, left undone) {
	if r.cfg.Debts == nil {
		return nil, left
	}
	for target, d := range r.cfg.Debts() {
		if ctx.Err() != nil {
			left.more = true
			return results, left
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
			left.blocked = true
			continue
		}
		rs, l := r.syncUntilDone(ctx, target, owed.Partitions(), false, time.Now().Add(budget))
		results = append(results, rs...)
		if l.done() {
			r.cfg.Settle(target, &d.Parts, d.Gen)
		}
		left.add(l)
	}
	return results, left
}
