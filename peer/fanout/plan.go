package fanout

import (
	"github.com/logmesh/logmesh/peer/view"
	"github.com/logmesh/logmesh/record"
)

// Plan assigns partitions to peers.
type Plan struct {
	// Assigned maps a peer to the partitions it answers for.
	Assigned map[string]*view.Mask
	// Owner maps each assigned partition to its peer.
	Owner [record.NumPartitions]string
	// Missing lists partitions no readable complete owner can answer for.
	Missing []record.Partition
}

// Eligibility says whether an owner may answer for a partition.
type Eligibility struct {
	// SelfComplete reports this peer's own completeness (fresher than its tag).
	SelfComplete func(record.Partition) bool
	// SelfCutoff is this peer's retention cutoff.
	SelfCutoff record.Window
	// From is the first window the query reads.
	From record.Window
}

// MakePlan picks, for every partition, one readable owner not in exclude
// that holds it complete and has not dropped windows another owner still
// keeps (or that the query does not reach back to): this peer first, then
// the least loaded.
func MakePlan(v *view.View, exclude map[string]bool, el Eligibility) Plan {
	pl := Plan{Assigned: map[string]*view.Mask{}}
	load := map[string]int{}
	for p := 0; p < record.NumPartitions; p++ {
		pt := record.Partition(p)
		owners := v.Owners(pt)
		// the earliest cutoff any owner has published: windows from it on
		// may still hold records somewhere
		var minCut record.Window
		haveCut := false
		cutoff := func(o string) (record.Window, bool) {
			if o == v.Self {
				return el.SelfCutoff, true
			}
			in := v.Info[o]
			return in.Cutoff, in.HasCutoff
		}
		for _, o := range owners {
			if c, ok := cutoff(o); ok && (!haveCut || c < minCut) {
				minCut, haveCut = c, true
			}
		}
		best := ""
		for _, o := range owners {
			if exclude[o] || !v.Readable(o) {
				continue
			}
			complete := v.Complete(o, pt)
			if o == v.Self && el.SelfComplete != nil {
				complete = el.SelfComplete(pt)
			}
			if !complete {
				continue
			}
			if c, ok := cutoff(o); ok && haveCut && c > max(el.From, minCut+1) {
				continue // it dropped a window another owner still keeps
			}
			switch {
			case best == "":
			case best == v.Self:
				continue
			case o != v.Self && load[o] >= load[best]:
				continue
			}
			best = o
		}
		if best == "" {
			pl.Missing = append(pl.Missing, pt)
			continue
		}
		if pl.Assigned[best] == nil {
			pl.Assigned[best] = new(view.Mask)
		}
		pl.Assigned[best][p] = true
		pl.Owner[p] = best
		load[best]++
	}
	return pl
}

// Request is what one peer is asked for.
type Request struct {
	// Parts are read whole: the partitions it answers for, and those it
	// holds without owning.
	Parts view.Mask
	// Recent maps an owner to the partitions this peer also owns, for which
	// it sends what it has not yet delivered to that owner.
	Recent map[string]*view.Mask
	// IDsOnly asks for the records' IDs without their data: the coordinator
	// of a count needs nothing else (it still merges by ID, so that a record
	// on two peers counts once).
	IDsOnly bool
}

// Empty reports whether there is nothing to ask.
func (r *Request) Empty() bool { return r.Parts.Empty() && len(r.Recent) == 0 }

// RequestFor returns what peer name is asked for under plan pl.
func RequestFor(v *view.View, pl *Plan, name string) Request {
	var req Request
	if a := pl.Assigned[name]; a != nil {
		req.Parts = *a
	}
	for p := 0; p < record.NumPartitions; p++ {
		pt := record.Partition(p)
		switch {
		case !v.Owns(name, pt):
			req.Parts[p] = true // records it may hold without owning them
		case pl.Owner[p] == "":
			req.Parts[p] = true // no complete owner: whatever each owner holds
		case !req.Parts[p] && pl.Owner[p] != "" && pl.Owner[p] != name:
			o := pl.Owner[p]
			if req.Recent == nil {
				req.Recent = map[string]*view.Mask{}
			}
			if req.Recent[o] == nil {
				req.Recent[o] = new(view.Mask)
			}
			req.Recent[o][p] = true
		}
	}
	return req
}
