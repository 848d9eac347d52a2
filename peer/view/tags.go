package view

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/logmesh/logmesh/record"
)

// Gossip tags a peer publishes. Tags are small metadata (memberlist caps
// all of a member's tags at 512 bytes); bulk data goes over the data plane.
const (
	// TagAPI is the API address other peers call.
	TagAPI = "api"
	// TagProto is the peer-to-peer protocol version.
	TagProto = "proto"
	// TagComplete lists, as a partition mask, the partitions the peer owns
	// and holds complete (absent: none).
	TagComplete = "cm"
	// TagWitness lists partitions the peer no longer owns but held complete
	// when it lost them, and still holds (absent: none).
	TagWitness = "wm"
	// TagDelivered is the delivered-through time, in Unix milliseconds:
	// every record the peer received before it is on every owner of its
	// partition. "all" once a peer has left with nothing undelivered.
	TagDelivered = "dt"
	// TagStore identifies the peer's store: it changes when the data
	// directory is wiped, so proofs made with the old store are discarded.
	TagStore = "sid"
	// TagCutoff is the first time window the peer's retention keeps.
	TagCutoff = "co"
	// TagClustered is "1" once the peer's store has been in a cluster
	// with another member: a peer that sees it knows the cluster is not
	// new, even when nobody claims anything.
	TagClustered = "cl"
)

// DeliveredAll is TagDelivered's value for a peer that holds nothing undelivered, ever.
const DeliveredAll = "all"

// Info is what a member published about itself.
type Info struct {
	Complete, Witness *Mask
	// Delivered is the delivered-through time (zero: unknown or nothing).
	Delivered time.Time
	// DeliveredAll: the member left with everything delivered.
	DeliveredAll bool
	Store        string
	Cutoff       record.Window
	HasCutoff    bool
	// Clustered: the member's store has been in a cluster.
	Clustered bool
}

// ParseInfo reads a member's tags. Malformed values read as absent: a
// member that publishes garbage claims nothing.
func ParseInfo(tags map[string]string) Info {
	var in Info
	if s := tags[TagComplete]; s != "" {
		in.Complete, _ = ParseMask(s)
	}
	if s := tags[TagWitness]; s != "" {
		in.Witness, _ = ParseMask(s)
	}
	switch s := tags[TagDelivered]; s {
	case "":
	case DeliveredAll:
		in.DeliveredAll = true
	default:
		if ms, err := strconv.ParseInt(s, 10, 64); err == nil && ms > 0 {
			in.Delivered = time.UnixMilli(ms)
		}
	}
	in.Store = tags[TagStore]
	in.Clustered = tags[TagClustered] == "1"
	if s := tags[TagCutoff]; s != "" {
		if w, err := strconv.ParseUint(s, 10, 32); err == nil {
			in.Cutoff, in.HasCutoff = record.Window(w), true
		}
	}
	return in
}

// FormatDelivered is the tag value of a delivered-through time.
func FormatDelivered(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// Mask is a set of partitions.
type Mask [record.NumPartitions]bool

// Empty reports whether the mask holds no partition.
func (m *Mask) Empty() bool {
	for _, on := range m {
		if on {
			return false
		}
	}
	return true
}

// Count returns the number of partitions in the mask.
func (m *Mask) Count() int {
	n := 0
	for _, on := range m {
		if on {
			n++
		}
	}
	return n
}

// MaskCount counts the partitions of a plain partition array.
func MaskCount(m *[record.NumPartitions]bool) int { return (*Mask)(m).Count() }

// Union adds every partition of o to m.
func (m *Mask) Union(o *Mask) {
	for i, on := range o {
		m[i] = m[i] || on
	}
}

// Partitions lists the partitions in the mask, in order.
func (m *Mask) Partitions() []record.Partition {
	var out []record.Partition
	for i, on := range m {
		if on {
			out = append(out, record.Partition(i))
		}
	}
	return out
}

// String is the mask's hex form: one bit per partition.
func (m *Mask) String() string {
	var b [record.NumPartitions / 8]byte
	for i, on := range m {
		if on {
			b[i/8] |= 1 << (i % 8)
		}
	}
	return hex.EncodeToString(b[:])
}

// MaskOf returns the mask holding parts.
func MaskOf(parts ...record.Partition) *Mask {
	m := new(Mask)
	for _, p := range parts {
		m[p] = true
	}
	return m
}

// ParseMask reads the hex form of a mask.
func ParseMask(s string) (*Mask, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != record.NumPartitions/8 {
		return nil, fmt.Errorf("partition mask %q: want %d hex digits", s, record.NumPartitions/4)
	}
	var m Mask
	for i := range m {
		m[i] = b[i/8]&(1<<(i%8)) != 0
	}
	return &m, nil
}
