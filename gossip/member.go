package gossip

import "time"

// Status is a member's state as this peer sees it.
type Status string

// Member states.
const (
	// StatusAlive: answering probes.
	StatusAlive Status = "alive"
	// StatusSuspect: missed probes; others are asked to confirm before it is
	// declared failed (SWIM suspicion). Still an owner of its partitions.
	StatusSuspect Status = "suspect"
	// StatusFailed: declared dead by failure detection. Still an owner of its
	// partitions (data for it is kept until it returns or is replaced).
	StatusFailed Status = "failed"
	// StatusLeaving: announced a graceful leave.
	StatusLeaving Status = "leaving"
	// StatusLeft: left gracefully; no longer an owner of anything.
	StatusLeft Status = "left"
)

// Member is one peer of the cluster.
type Member struct {
	Name string `json:"name"`
	// Addr is the member's gossip address (host:port).
	Addr   string            `json:"address"`
	Status Status            `json:"status"`
	Tags   map[string]string `json:"tags,omitempty"`
	// Since is when this peer saw the member enter its current status.
	Since time.Time `json:"since"`
}

// Event reports a change of a member.
type Event struct {
	Member Member
	// Prev is the status before the change; "" for a member seen for the first time.
	Prev Status
	// Removed reports that the member was forgotten (reaped after its
	// failure or leave timed out).
	Removed bool
}
