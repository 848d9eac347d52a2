package repair

import (
	"sync"
	"time"

	"github.com/logmesh/logmesh/gossip"
	"github.com/logmesh/logmesh/peer/view"
	"github.com/logmesh/logmesh/record"
)

// completeness is this peer's per-partition state, kept in the store.
type completeness struct {
	// saving is held from encoding the state to storing it, so that two
	// saves cannot store in the opposite order of their encodes (an older
	// state last, claiming partitions complete that no longer are).
	saving sync.Mutex
	mu     struct {
		sync.Mutex
		complete, witness view.Mask
		// owned: what this peer owned at the last follow; since: when it
		// began to own each of them (in memory, like the proofs).
		owned view.Mask
		since [record.NumPartitions]time.Time
		// unclaimed: since when no other member claims each partition
		// (zero while one does).
		unclaimed [record.NumPartitions]time.Time
		// deleted: when records of each partition were last deleted from
		// this store, and deleting: deletes of it under way (see Deleting;
		// in memory, like the proofs).
		deleted  [record.NumPartitions]time.Time
		deleting [record.NumPartitions]int
		// clustered: this store has been in a cluster with another member.
		clustered bool
		dirty     bool
	}
}

const (
	metaComplete    = "complete"
	completeVersion = 1
	completeLen     = 2 + 2*record.NumPartitions/8
	flagClustered   = 1
)

func (c *completeness) encodeLocked() []byte {
	b := []byte{completeVersion, 0}
	if c.mu.clustered {
		b[1] |= flagClustered
	}
	for _, m := range []*view.Mask{&c.mu.complete, &c.mu.witness} {
		var bits [record.NumPartitions / 8]byte
		for i, on := range m {
			if on {
				bits[i/8] |= 1 << (i % 8)
			}
		}
		b = append(b, bits[:]...)
	}
	return b
}

func (c *completeness) decode(b []byte) bool {
	if len(b) != completeLen || b[0] != completeVersion {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mu.clustered = b[1]&flagClustered != 0
	for k, m := range []*view.Mask{&c.mu.complete, &c.mu.witness} {
		bits := b[2+k*record.NumPartitions/8:]
		for i := range m {
			m[i] = bits[i/8]&(1<<(i%8)) != 0
		}
	}
	return true
}

// load reads the state; a store that predates it (data but no state) is
// trusted to hold complete what it owns, as logmesh assumed before.
func (r *Repairer) loadCompleteness() {
	c := &r.comp
	v, err := r.cfg.DB.GetMeta(metaComplete)
	if err == nil && c.decode(v) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !r.cfg.DB.Fresh() {
		for i := range c.mu.complete {
			c.mu.complete[i] = true
		}
		c.mu.clustered = true
		r.log.Info("store predates completeness tracking: it is taken as complete for the partitions it owns")
	}
	c.mu.dirty = true
}

func (r *Repairer) saveCompleteness() {
	c := &r.comp
	c.saving.Lock()
	defer c.saving.Unlock()
	c.mu.Lock()
	if !c.mu.dirty {
		c.mu.Unlock()
		return
	}
	b := c.encodeLocked()
	c.mu.dirty = false
	c.mu.Unlock()
	if err := r.cfg.DB.SetMeta(metaComplete, b); err != nil {
		r.log.Warn("cannot save which partitions this peer holds complete", "err", err)
		c.mu.Lock()
		c.mu.dirty = true
		c.mu.Unlock()
	}
}

// Complete reports whether this peer holds partition p complete.
func (r *Repairer) Complete(p record.Partition) bool {
	r.comp.mu.Lock()
	defer r.comp.mu.Unlock()
	return r.comp.mu.complete[p]
}

// Claims returns the partitions this peer holds complete and those it holds
// as a witness.
func (r *Repairer) Claims() (complete, witness view.Mask) {
	r.comp.mu.Lock()
	defer r.comp.mu.Unlock()
	return r.comp.mu.complete, r.comp.mu.witness
}

// vouches reports whether this peer may vouch for partition p in a round.
func (r *Repairer) vouches(p record.Partition) bool {
	r.comp.mu.Lock()
	defer r.comp.mu.Unlock()
	return r.comp.mu.complete[p] || r.comp.mu.witness[p]
}

// follow updates the state for view v: partitions gained start incomplete,
// partitions lost are kept as a witness while their data is here, and
// partitions nobody claims are complete at genesis.
func (r *Repairer) follow(v *view.View) { r.followAt(v, time.Now()) }

func (r *Repairer) followAt(v *view.View, now time.Time) {
	genesis := r.genesisAllowed(v, now)
	// A new cluster (neither this store nor any member's was ever in one,
	// and no member claims anything) starts complete at once; otherwise
	// genesis needs proofs with the other owners (see provenWithOwners).
	// A fresh store joining a cluster that existed is not a new cluster,
	// even while nobody there claims anything (the owners left after a
	// forget wait for their proofs): it would call itself complete empty.
	var claims view.Mask
	for p := range claims {
		claims[p] = claimed(v, record.Partition(p))
	}
	// With anti-entropy off no round will ever prove anything: genesis
	// goes on without proofs, as pushes alone must reach every owner then.
	newCluster, proven := false, new(view.Mask)
	if genesis {
		newCluster = !r.Clustered() && claims.Empty() && !othersClustered(v) || r.cfg.Disabled
		if !newCluster {
			proven = r.provenWithOwners(v)
		}
	}
	c := &r.comp
	c.mu.Lock()
	changed := false
	if !c.mu.clustered && v.OtherAlive() {
		c.mu.clustered, changed = true, true
	}
	var gained []int
	for p := 0; p < record.NumPartitions; p++ {
		pt := record.Partition(p)
		owns := v.Owns(v.Self, pt)
		if owns && !c.mu.owned[p] {
			c.mu.since[p] = now
		}
		c.mu.owned[p] = owns
		if claims[p] {
			c.mu.unclaimed[p] = time.Time{}
		} else if c.mu.unclaimed[p].IsZero() {
			c.mu.unclaimed[p] = now
		}
		switch {
		case !owns && c.mu.complete[p]:
			c.mu.complete[p] = false
			c.mu.witness[p] = len(r.cfg.DB.Windows(pt)) > 0
			changed = true
		case !owns && c.mu.witness[p] && len(r.cfg.DB.Windows(pt)) == 0:
			c.mu.witness[p], changed = false, true
		case owns && c.mu.witness[p]:
			c.mu.witness[p], changed = false, true // owner again: what it missed meanwhile is elsewhere
		case owns && !c.mu.complete[p] && genesis && !claims[p] && (newCluster || proven[p]):
			c.mu.complete[p], changed = true, true
			gained = append(gained, p)
		}
	}
	if changed {
		c.mu.dirty = true
	}
	c.mu.Unlock()
	if len(gained) > 0 {
		r.log.Info("no member holds these partitions complete: this owner is complete for them (a new cluster, or every complete holder is gone)",
			"partitions", len(gained))
	}
	if changed {
		r.saveCompleteness()
	}
}

// genesisAllowed: this peer knows the cluster well enough to tell that
// nobody claims a partition. Its placement holds every member it knows
// (left ones aside): once it reassigned a failed member's partitions, it
// owns some that the members it cannot hear still place elsewhere, so the
// records they acknowledged for them are tracked for other owners, not for
// it (CI's seed 601: a peer on the minority side of a partition, its
// placement reassigned, called itself complete for partitions the other
// side had claimed after the cut, and a query it answered "full" lacked a
// record). Then it sees another member alive (whose tags it has), or it
// was never in a cluster and has been alone for the grace period: long
// enough for the members of a cluster it does not know about (it is a seed
// restarted with an empty disk) to reconnect to it.
func (r *Repairer) genesisAllowed(v *view.View, now time.Time) bool {
	if r.cfg.Joined != nil && !r.cfg.Joined() {
		return false
	}
	for name, m := range v.Members {
		if name != v.Self && m.Status != gossip.StatusLeft && !v.Placed(name) {
			return false
		}
	}
	if v.OtherAlive() {
		return true
	}
	r.comp.mu.Lock()
	clustered := r.comp.mu.clustered
	r.comp.mu.Unlock()
	return !clustered && now.Sub(r.started) >= r.cfg.GenesisGrace
}

// provenWithOwners returns the partitions that, since before the last
// follow, this peer has owned and no other member has claimed, and that a
// round has proven equal, since then, with every other owner that has not
// failed or left. Genesis in a cluster that existed needs them: the owners
// left after every complete holder is gone hold different parts of a
// partition (one was still being filled from the
// holders, another was given it when they failed and holds nothing), and
// calling each complete as it stands made a query answer "full" from the
// empty one (CI: TestNewOwnersDoNotVouchForEachOther, where the two
// failed peers were forgotten before p1 had finished its first fill). Once
// their roots are equal, each holds what any of them holds. A proof made
// before this peer owned the partition does not count (the records written
// while it did not were pushed to the owners, not to it), nor one made
// before the last claim went (a holder may have repaired records into one
// owner and not yet into another), nor one made before records of it were
// last deleted here, nor any while a delete of it is under way (see
// Deleting).
func (r *Repairer) provenWithOwners(v *view.View) *view.Mask {
	c := &r.comp
	c.mu.Lock()
	owned, since, unclaimed, deleted, deleting := c.mu.owned, c.mu.since, c.mu.unclaimed, c.mu.deleted, c.mu.deleting
	c.mu.Unlock()
	out := new(view.Mask)
	r.mu.Lock()
	defer r.mu.Unlock()
	for p := 0; p < record.NumPartitions; p++ {
		pt := record.Partition(p)
		if !owned[p] || !v.Owns(v.Self, pt) || unclaimed[p].IsZero() || deleting[p] > 0 {
			continue
		}
		from := since[p]
		if unclaimed[p].After(from) {
			from = unclaimed[p]
		}
		if deleted[p].After(from) {
			from = deleted[p]
		}
		ok := true
		for _, o := range v.Owners(pt) {
			if o == v.Self {
				continue
			}
			if m, known := v.Members[o]; known && (m.Status == gossip.StatusFailed || m.Status == gossip.StatusLeft) {
				continue
			}
			at, proved := r.mu.proofs[proofKey{o, v.Store(o), pt}]
			if !proved || at.Before(from) {
				ok = false
				break
			}
		}
		out[p] = ok
	}
	return out
}

// othersClustered reports whether a known member other than this one (left
// ones aside) publishes that its store has been in a cluster.
func othersClustered(v *view.View) bool {
	for name, m := range v.Members {
		if name != v.Self && m.Status != gossip.StatusLeft && v.Info[name].Clustered {
			return true
		}
	}
	for name, in := range v.Departed {
		if _, member := v.Members[name]; !member && name != v.Self && in.Clustered {
			return true
		}
	}
	return false
}

// claimed reports whether a known member other than this one claims
// partition p, complete or as a witness (members that left claim nothing;
// members gossip forgot after they failed still do, for as long as this
// peer remembers them).
func claimed(v *view.View, p record.Partition) bool {
	for name, m := range v.Members {
		if name == v.Self || m.Status == gossip.StatusLeft {
			continue
		}
		if v.Complete(name, p) || v.Witness(name, p) {
			return true
		}
	}
	for name, in := range v.Departed {
		if _, member := v.Members[name]; !member && name != v.Self &&
			((in.Complete != nil && in.Complete[p]) || (in.Witness != nil && in.Witness[p])) {
			return true
		}
	}
	return false
}

// earned makes partition p complete: proven against a peer that vouched
// for it, with this peer's records as they were at at (when the round
// began). A proof made before records of p were last deleted here, or while
// a delete of them is under way, counts none: they may have been the copies
// it matched (see Deleting). It reports whether anything changed.
func (r *Repairer) earned(p record.Partition, from string, at time.Time) bool {
	v := r.cfg.View()
	if !v.Owns(v.Self, p) {
		return false
	}
	c := &r.comp
	c.mu.Lock()
	if c.mu.complete[p] || c.mu.deleting[p] > 0 || !at.After(c.mu.deleted[p]) {
		c.mu.Unlock()
		return false
	}
	c.mu.complete[p], c.mu.dirty = true, true
	c.mu.Unlock()
	r.log.Debug("partition complete: proven against a peer that holds it complete", "partition", p, "peer", from)
	r.saveCompleteness()
	return true
}

// Deleting tells that records of ids are about to be deleted from this
// store: copies it held without owning their partition (hints,
// handed-over copies), retired under an earlier placement. Replication
// decides such a delete under one view and finishes it under the next,
// which may have made this peer an owner; a round run in between proves
// this peer equal to a complete holder with those copies, and made it
// complete without them (CI: TestNewOwnersDoNotVouchForEachOther, where p2
// held every record of a partition as hints, gained it when the failed p4
// and p5 were reassigned, proved equal to p3, and answered "full" with
// nothing once the hints were gone). Every partition of ids is incomplete
// from now on (in memory and in the store, before the delete can be
// applied), no proof counts for it until the returned done is called once
// the delete is over (applied or failed), and then only a proof from a
// round that began after that.
func (r *Repairer) Deleting(ids []record.ID) (done func()) {
	ps := r.deleting(ids, time.Now())
	return func() { r.deleted(ps, time.Now()) }
}

// deleting marks the partitions of ids as being deleted from at now, and
// returns them.
func (r *Repairer) deleting(ids []record.ID, now time.Time) []record.Partition {
	var ps []record.Partition
	seen := map[record.Partition]bool{}
	for _, id := range ids {
		if p := id.Partition(); !seen[p] {
			seen[p] = true
			ps = append(ps, p)
		}
	}
	r.revoke(ps, 1, now)
	return ps
}

// deleted ends the deletes deleting began, at now.
func (r *Repairer) deleted(ps []record.Partition, now time.Time) { r.revoke(ps, -1, now) }

// revoke adds under way (1 as a delete begins, -1 as it ends) to the deletes
// of partitions ps, notes records of them deleted at now and makes them
// incomplete.
func (r *Repairer) revoke(ps []record.Partition, underWay int, now time.Time) {
	c := &r.comp
	c.mu.Lock()
	var lost []int
	for _, p := range ps {
		c.mu.deleting[p] += underWay
		if now.After(c.mu.deleted[p]) {
			c.mu.deleted[p] = now
		}
		if c.mu.complete[p] {
			c.mu.complete[p], c.mu.dirty = false, true
			lost = append(lost, int(p))
		}
	}
	c.mu.Unlock()
	if len(lost) > 0 {
		r.log.Info("copies this peer held are deleted from partitions it holds complete: complete again only by a new proof",
			"partitions", lost)
		r.saveCompleteness()
	}
}

// Clustered reports whether this store has ever been in a cluster with
// another member.
func (r *Repairer) Clustered() bool {
	r.comp.mu.Lock()
	defer r.comp.mu.Unlock()
	return r.comp.mu.clustered
}
