package replicate

import (
	"context"
	"encoding/binary"
	"sort"

	"github.com/logmesh/logmesh/index"
	"github.com/logmesh/logmesh/peer/retire"
	"github.com/logmesh/logmesh/peer/view"
	"github.com/logmesh/logmesh/record"
)

// deleteHints retires records this peer does not own once every owner has
// them by push under the current placement (retireDue deletes them after
// the grace). Hints pushed under an earlier placement are left to
// hand-over, which asks the owners themselves.
func (r *Replicator) deleteHints(ctx context.Context) {
	db := r.db
	v := r.cfg.View()
	targets := r.targetsSnapshot()
	upTo := db.Applied()
	for _, t := range targets {
		upTo = min(upTo, t.cursor())
	}
	from := r.hintScan.Load()
	for from < upTo && ctx.Err() == nil {
		entries, err := db.ReadJournal(from+1, 256)
		if err != nil || len(entries) == 0 {
			break
		}
		var gone []record.ID
		last := from
		for _, e := range entries {
			if e.Seq > upTo {
				break
			}
			last = e.Seq
			if e.Op != index.OpAdd {
				continue
			}
			for _, id := range e.IDs[:e.Local] {
				p := id.Partition()
				if v.Owns(v.Self, p) || !deliveredToAll(v, p, id, targets, e.Seq) {
					continue
				}
				gone = append(gone, id)
			}
		}
		// deleted after the grace (see package retire), and only if no
		// owner is leaving then
		r.cfg.Retire.Add(retire.Hint, v.Gen, gone)
		from = last
		r.hintScan.Store(from)
		if err := db.SetMeta(metaHintScan, binary.BigEndian.AppendUint64(nil, from)); err != nil {
			r.log.Warn("cannot save hint position", "err", err)
		}
	}
}

// retireDue deletes the retired copies whose grace has passed: hints, and
// copies hand-over moved to their owners. A batch retired under another
// placement is kept (hand-over asks the owners of this one), and so is a
// record whose partition this peer owns again, or one of whose owners is
// leaving: that owner may already have counted this copy as the one that
// remains (left to hand-over once the placement changed).
func (r *Replicator) retireDue(ctx context.Context) {
	due := r.cfg.Retire.Due()
	if len(due) == 0 {
		return
	}
	v := r.cfg.View()
	for _, b := range due {
		if b.Gen != v.Gen {
			continue
		}
		var deleted []record.ID
		err := r.cfg.Leaving.Delete(func(leaving func(string) bool) error {
			keep := b.IDs[:0] // the batch is ours now
			for _, id := range b.IDs {
				p := id.Partition()
				if v.Owns(v.Self, p) || anyLeaving(v.Owners(p), leaving) {
					continue
				}
				keep = append(keep, id)
			}
			if len(keep) == 0 || r.cfg.View().Gen != v.Gen {
				return nil // the placement moved on: decided again under the new one
			}
			// the view may still change before the delete is applied, and
			// this peer own some of these partitions then: repair holds
			// them incomplete from before the delete until after it (a
			// failed one included: some may be gone)
			if r.cfg.Deleting != nil {
				defer r.cfg.Deleting(keep)()
			}
			_, err := r.db.Delete(ctx, keep)
			deleted = keep
			return err
		})
		if err != nil {
			// what stays is handed over later
			r.log.Warn("cannot delete copies delivered to their owners", "err", err)
			return
		}
		if b.Kind == retire.Hint {
			r.hintsDel.Add(uint64(len(deleted)))
		}
	}
}

// deliveredToAll reports whether every owner of p holds record id of entry
// seq by push under the current placement. A record an owner refused (its
// window had expired there) is delivered nowhere: the hint stays, and
// hand-over keeps it too, since no owner confirms it.
func anyLeaving(peers []string, leaving func(string) bool) bool {
	for _, p := range peers {
		if leaving(p) {
			return true
		}
	}
	return false
}

func deliveredToAll(v *view.View, p record.Partition, id record.ID, targets map[string]*target, seq uint64) bool {
	owners := v.Owners(p)
	if len(owners) == 0 {
		return false
	}
	for _, o := range owners {
		t := targets[o]
		if t == nil {
			return false
		}
		t.mu.Lock()
		_, refused := t.mu.refused[id]
		ok := t.deliveredLocked(p, seq, v.Gen) && !refused
		t.mu.Unlock()
		if !ok {
			return false
		}
	}
	return true
}

// Copies returns, for a write of ids applied at journal entry seq (its
// entries all after startApplied), how many owners of each of its
// partitions hold it durably, how many owners each has, and the owners not
// yet confirmed. This peer counts when it owns the partition; another owner
// counts once its cursor passed the write while pushing under the current
// placement, it owes nothing of the partition from before, and it refused
// none of the write's records.
func (r *Replicator) Copies(ids []record.ID, seq, startApplied uint64) (parts []record.Partition, have, owners []int, missing []string) {
	v := r.cfg.View()
	targets := r.targetsSnapshot()
	byPart := map[record.Partition][]record.ID{}
	for _, id := range ids {
		p := id.Partition()
		if _, ok := byPart[p]; !ok {
			parts = append(parts, p)
		}
		byPart[p] = append(byPart[p], id)
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	miss := map[string]bool{}
	for _, p := range parts {
		n := 0
		for _, o := range v.Owners(p) {
			if o == v.Self {
				n++
				continue
			}
			if t := targets[o]; t != nil && t.holds(p, byPart[p], seq, startApplied, v.Gen) {
				n++
				continue
			}
			miss[o] = true
		}
		have = append(have, n)
		owners = append(owners, len(v.Owners(p)))
	}
	for m := range miss {
		missing = append(missing, m)
	}
	sort.Strings(missing)
	return parts, have, owners, missing
}

func (t *target) holds(p record.Partition, ids []record.ID, seq, startApplied, gen uint64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mu.gen != gen || t.mu.genStart > startApplied || t.mu.cursor < seq || t.mu.debt.covers(p, seq) {
		return false
	}
	for _, id := range ids {
		if _, ok := t.mu.refused[id]; ok {
			return false
		}
	}
	return true
}
