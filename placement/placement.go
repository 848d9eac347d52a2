// Package placement decides which peers replicate each partition. It is pure:
// the same membership view gives the same table on every peer.
//
// Each partition's replica set is chosen by rendezvous (highest random
// weight) hashing: every member gets a score per partition and the Replicas
// highest scores win. Adding or removing one member changes only the
// partitions where that member enters or leaves the top Replicas — about
// Replicas/N of them, one slot each — so membership changes move about 1/N
// of the data and nothing else.
package placement

import (
	"hash/fnv"
	"slices"
	"sort"

	"github.com/logmesh/logmesh/record"
)

// Table maps every partition to its replica set.
type Table struct {
	members  []string
	replicas int
	sets     [record.NumPartitions][]string
}

// Compute returns the placement of every partition over members (the peers
// that are not `left`; order and duplicates do not matter) with the given
// replication factor. With fewer members than replicas, every member holds
// every partition.
func Compute(members []string, replicas int) *Table {
	ms := slices.Clone(members)
	sort.Strings(ms)
	ms = slices.Compact(ms)
	if replicas < 1 {
		replicas = 1
	}
	t := &Table{members: ms, replicas: replicas}
	n := min(replicas, len(ms))
	if n == 0 {
		return t
	}
	seeds := make([]uint64, len(ms))
	for i, m := range ms {
		h := fnv.New64a()
		h.Write([]byte(m))
		seeds[i] = h.Sum64()
	}
	type scored struct {
		score uint64
		name  string
	}
	buf := make([]scored, len(ms))
	for p := 0; p < record.NumPartitions; p++ {
		for i, m := range ms {
			buf[i] = scored{score(seeds[i], record.Partition(p)), m}
		}
		sort.Slice(buf, func(i, j int) bool {
			if buf[i].score != buf[j].score {
				return buf[i].score > buf[j].score
			}
			return buf[i].name < buf[j].name
		})
		set := make([]string, n)
		for i := range set {
			set[i] = buf[i].name
		}
		t.sets[p] = set
	}
	return t
}

func score(seed uint64, p record.Partition) uint64 {
	k := seed ^ (uint64(p)+1)*0x9e3779b97f4a7c15
	k ^= k >> 33
	k *= 0xff51afd7ed558ccd
	k ^= k >> 33
	k *= 0xc4ceb9fe1a85ec53
	k ^= k >> 33
	return k
}

// Members returns the members the table was computed over, sorted.
func (t *Table) Members() []string { return t.members }

// ReplicationFactor returns the requested number of replicas per partition.
func (t *Table) ReplicationFactor() int { return t.replicas }

// Replicas returns the replica set of partition p, highest score first. The
// caller must not modify it.
func (t *Table) Replicas(p record.Partition) []string { return t.sets[p] }

// Owns reports whether name is a replica of partition p.
func (t *Table) Owns(name string, p record.Partition) bool {
	return slices.Contains(t.sets[p], name)
}

// Partitions returns the partitions name replicates, as a membership mask.
func (t *Table) Partitions(name string) (mask [record.NumPartitions]bool) {
	for p := range t.sets {
		mask[p] = slices.Contains(t.sets[p], name)
	}
	return mask
}

// Equal reports whether two tables place every partition identically.
func (t *Table) Equal(o *Table) bool {
	if t == nil || o == nil {
		return t == o
	}
	for p := range t.sets {
		if !slices.Equal(t.sets[p], o.sets[p]) {
			return false
		}
	}
	return true
}

// Quorum returns the number of replicas a quorum write needs for partition p.
func (t *Table) Quorum(p record.Partition) int { return len(t.sets[p])/2 + 1 }
