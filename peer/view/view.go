// Package view is a peer's immutable snapshot of the cluster: the members as
// gossip reports them, the placement computed from them, and what each member
// publishes about itself in its gossip tags (which partitions it holds
// complete, up to when everything it received reached every owner, the
// identity of its store, its retention cutoff). Replication, repair and
// query fan-out read the same snapshot; it is pure data with no I/O.
package view

import (
	"slices"
	"time"

	"github.com/logmesh/logmesh/gossip"
	"github.com/logmesh/logmesh/placement"
	"github.com/logmesh/logmesh/record"
)

// View is one snapshot. It must not be modified once published.
type View struct {
	// Self is this peer's name.
	Self string
	// Members holds every member gossip knows, this peer included.
	Members map[string]gossip.Member
	// Table is the placement over the members that take part in it.
	Table *placement.Table
	// Gen counts placement changes: it increases whenever Table differs
	// from the previous view's.
	Gen uint64
	// Info holds what each member published in its tags.
	Info map[string]Info
	// Departed holds what members that failed and were then forgotten by
	// gossip (reaped) last published: they are in no placement, but may
	// still hold records nobody else has, and until they return or their
	// memory expires queries say so.
	Departed map[string]Info
}

// New builds a view and parses every member's tags.
func New(self string, members map[string]gossip.Member, table *placement.Table, gen uint64) *View {
	v := &View{Self: self, Members: members, Table: table, Gen: gen, Info: make(map[string]Info, len(members))}
	for name, m := range members {
		v.Info[name] = ParseInfo(m.Tags)
	}
	return v
}

// Owners returns the replica set of partition p.
func (v *View) Owners(p record.Partition) []string { return v.Table.Replicas(p) }

// Owns reports whether name replicates partition p.
func (v *View) Owns(name string, p record.Partition) bool { return v.Table.Owns(name, p) }

// Usable reports whether a peer can be sent data now: alive and publishing
// an API address (this peer always is).
func (v *View) Usable(name string) bool {
	if name == v.Self {
		return true
	}
	m, ok := v.Members[name]
	return ok && m.Status == gossip.StatusAlive && m.Tags[TagAPI] != ""
}

// Readable reports whether a peer is worth asking for data: alive or only
// suspected (a suspect peer often still answers; asking costs a timeout at
// worst, while not asking it would leave its records out of an answer).
func (v *View) Readable(name string) bool {
	if name == v.Self {
		return true
	}
	m, ok := v.Members[name]
	return ok && (m.Status == gossip.StatusAlive || m.Status == gossip.StatusSuspect) && m.Tags[TagAPI] != ""
}

// APIAddr returns the API address a member published.
func (v *View) APIAddr(name string) string { return v.Members[name].Tags[TagAPI] }

// MemberAt returns the member advertising API address addr ("" if none).
func (v *View) MemberAt(addr string) string {
	for name, m := range v.Members {
		if m.Tags[TagAPI] == addr {
			return name
		}
	}
	return ""
}

// Targets returns the other peers in the placement: those this peer may
// have to push records to.
func (v *View) Targets() []string {
	var out []string
	for _, m := range v.Table.Members() {
		if m != v.Self {
			out = append(out, m)
		}
	}
	return out
}

// Placed reports whether name takes part in the placement.
func (v *View) Placed(name string) bool { return slices.Contains(v.Table.Members(), name) }

// Complete reports whether member name claims to hold partition p
// complete (see package repair). A member's claim about itself is only as
// fresh as its last tag update; this peer's own state is passed to planners
// separately.
func (v *View) Complete(name string, p record.Partition) bool {
	in, ok := v.Info[name]
	return ok && in.Complete != nil && in.Complete[p]
}

// Witness reports whether member name holds a complete copy of partition
// p that it no longer owns and has not yet handed over.
func (v *View) Witness(name string, p record.Partition) bool {
	in, ok := v.Info[name]
	return ok && in.Witness != nil && in.Witness[p]
}

// Store returns the store identity member name published ("" if none).
func (v *View) Store(name string) string { return v.Info[name].Store }

// SharedPartitions returns the partitions both a and b replicate.
func (v *View) SharedPartitions(a, b string) []record.Partition {
	var out []record.Partition
	for p := 0; p < record.NumPartitions; p++ {
		pt := record.Partition(p)
		if v.Owns(a, pt) && v.Owns(b, pt) {
			out = append(out, pt)
		}
	}
	return out
}

// Unique reports whether member name may hold records received before
// until that are not yet on every owner of their partition, according to
// what it last published. A member that left holds nothing unique: a peer
// leaves only once it delivered everything, and one an operator forgot
// (forced to leave) was given up with what it held. One that never
// published says nothing and is assumed to hold anything.
func (v *View) Unique(name string, until time.Time) bool {
	if m, ok := v.Members[name]; ok && m.Status == gossip.StatusLeft {
		return false
	}
	in, ok := v.Info[name]
	if !ok {
		in, ok = v.Departed[name]
	}
	if !ok {
		return true
	}
	if in.DeliveredAll {
		return false
	}
	return !in.Delivered.After(until)
}

// Since returns when member name entered its current status, as this peer saw it.
func (v *View) Since(name string) time.Time { return v.Members[name].Since }

// OtherAlive reports whether a member other than this peer is alive.
func (v *View) OtherAlive() bool {
	for name, m := range v.Members {
		if name != v.Self && m.Status == gossip.StatusAlive {
			return true
		}
	}
	return false
}
