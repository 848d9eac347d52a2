package peer

import (
	"context"
	"time"

	"github.com/logmesh/logmesh/record"
)

// A peer that has just become an owner of a partition (it joined, its disk
// was wiped, it came back after a long outage, the placement moved) holds
// only part of it until anti-entropy has filled it. Until a round has proven
// its roots equal to a co-owner's for that partition, it publishes the
// partition in its "fill" gossip tag, and query planners prefer other owners
// for it: otherwise a query could ask it alone and miss older records while
// claiming full coverage. Recent records are covered anyway (every replica
// answers for its recent records, see fanout).

const tagFill = "fill"

// fillLoop keeps the fill tag up to date until ctx ends.
func (p *Peer) fillLoop(ctx context.Context) {
	watch, stop := p.cluster.watch()
	defer stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var since [record.NumPartitions]time.Time // when this peer became an owner
	last := "unset"
	for {
		if ctx.Err() != nil {
			// select below picks at random among ready cases: without this a
			// stopping peer could go round again and wait out another tag
			// update that the shut-down gossip layer never sends
			return
		}
		v := p.cluster.view()
		now := time.Now()
		proofs := p.repair.latestProofs()
		var filling [record.NumPartitions]bool
		for pt := range record.NumPartitions {
			part := record.Partition(pt)
			if !v.table.Owns(v.self, part) {
				since[pt] = time.Time{}
				continue
			}
			if since[pt].IsZero() {
				since[pt] = now
			}
			filling[pt] = len(v.owners(part)) > 1 && proofs[pt].Before(since[pt])
		}
		tag := ""
		if !isEmpty(&filling) {
			tag = encodeMask(&filling)
		}
		mask := filling
		p.selfFill.Store(&mask)
		if tag != last {
			if err := p.cluster.setTag(tagFill, tag); err != nil {
				if ctx.Err() != nil {
					return // stopping: gossip is shut down
				}
				p.log.Warn("cannot publish the partitions being filled", "err", err)
			} else {
				last = tag
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-watch:
		}
	}
}

// latestProofs returns, per partition, when this peer's roots were last
// proven equal to any co-replica's.
func (r *repairer) latestProofs() [record.NumPartitions]time.Time {
	var out [record.NumPartitions]time.Time
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, at := range r.mu.equal {
		if at.After(out[k.p]) {
			out[k.p] = at
		}
	}
	return out
}

// filling reports whether member name is still being filled with partition pt.
func (v *view) filling(name string, pt record.Partition) bool {
	m, ok := v.fill[name]
	return ok && m[pt]
}
