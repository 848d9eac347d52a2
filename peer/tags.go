package peer

import (
	"context"
	"encoding/hex"
	"strconv"
	"time"

	"github.com/logmesh/logmesh/gossip"
	"github.com/logmesh/logmesh/peer/view"
)

// tagGenerator publishes the instance tag of this peer's ID generator, so
// that two live peers that drew the same one notice (see tagLoop).
const tagGenerator = "gt"

// deliveredStep rounds the published delivered-through time down, so that
// a busy peer updates its tags every few seconds, not at every push.
const deliveredStep = 2 * time.Second

// selfTags returns what this peer publishes about itself now.
func (p *Peer) selfTags() map[string]string {
	tags := map[string]string{
		view.TagStore:  p.db.StoreID(),
		view.TagCutoff: strconv.FormatUint(uint64(p.db.Cutoff()), 10),
	}
	inst := p.gen.Instance()
	tags[tagGenerator] = hex.EncodeToString(inst[:])
	if p.repair == nil {
		return tags
	}
	complete, witness := p.repair.Claims()
	tags[view.TagComplete], tags[view.TagWitness] = "", ""
	if !complete.Empty() {
		tags[view.TagComplete] = complete.String()
	}
	if !witness.Empty() {
		tags[view.TagWitness] = witness.String()
	}
	if p.repair.Clustered() {
		tags[view.TagClustered] = "1"
	}
	dt := p.repl.DeliveredThrough()
	if dt.IsZero() {
		tags[view.TagDelivered] = "0"
	} else {
		tags[view.TagDelivered] = view.FormatDelivered(dt.Truncate(deliveredStep))
	}
	return tags
}

// tagLoop keeps this peer's tags up to date until ctx ends, and takes a new
// ID generator tag if a live member with a smaller name publishes the same.
func (p *Peer) tagLoop(ctx context.Context) {
	watch, stop := p.cluster.watch()
	defer stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		if ctx.Err() != nil || p.leaving.Load() {
			// a leaving peer publishes its final delivered-through itself
			return
		}
		p.checkGeneratorTag()
		if err := p.cluster.setTags(p.selfTags()); err != nil && ctx.Err() == nil {
			p.log.Warn("cannot publish this peer's state in gossip", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-watch:
		}
	}
}

func (p *Peer) checkGeneratorTag() {
	inst := p.gen.Instance()
	mine := hex.EncodeToString(inst[:])
	for name, m := range p.cluster.view().Members {
		if name < p.cfg.Name && m.Status == gossip.StatusAlive && m.Tags[tagGenerator] == mine {
			p.gen.Retag()
			p.log.Warn("another peer draws record IDs with this peer's instance tag: took a new one", "peer", name)
			return
		}
	}
}
