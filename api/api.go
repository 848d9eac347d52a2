// Package api holds the JSON types of logmesh's HTTP API, shared by the peer
// that serves them and the clients that read them.
package api

import (
	"time"

	"github.com/logmesh/logmesh/record"
	"github.com/logmesh/logmesh/syslog"
)

// Error is the JSON body of every error answer.
type Error struct {
	Error string `json:"error"`
}

// IngestResponse is the answer to POST /v1/logs.
type IngestResponse struct {
	// Accepted is the number of records stored durably by the peer that
	// answers (as an owner, or as a hint for the owners).
	Accepted int `json:"accepted"`
	// W is the consistency asked for: "1", "quorum" or "all".
	W string `json:"w"`
	// Replicas is the number of owners holding the batch durably (for a
	// batch spanning partitions: the fewest any of its partitions has).
	Replicas int `json:"replicas"`
	// Required is the number of owners W asked for (the most any partition needs).
	Required int `json:"required"`
	// Unreached names owners that had not confirmed when the answer was sent.
	Unreached []string `json:"unreached,omitempty"`
	// IDs lists the records' IDs in request order, when asked for with ids=true.
	IDs []record.ID `json:"ids,omitempty"`
}

// Status is the answer to GET /v1/status.
type Status struct {
	Node          string       `json:"node"`
	Version       string       `json:"version"`
	Started       time.Time    `json:"started"`
	UptimeSeconds float64      `json:"uptime_seconds"`
	Records       uint64       `json:"records"`
	DiskBytes     int64        `json:"disk_bytes"`
	Windows       int          `json:"windows"`
	Ingest        IngestStatus `json:"ingest"`
	Store         StoreStatus  `json:"store"`
	// Replication describes the pushes to every other owner; empty outside a cluster.
	Replication []TargetStatus `json:"replication,omitempty"`
	// Members is the number of peers this peer knows, by state.
	Members map[string]int `json:"members,omitempty"`
	// UndeliveredBytes sums the data waiting for other peers.
	UndeliveredBytes int64 `json:"undelivered_bytes"`
	// ReplicatedIn counts records other peers pushed here.
	ReplicatedIn uint64 `json:"replicated_in"`
	// ReplicatedDuplicates counts pushed records this peer already had.
	ReplicatedDuplicates uint64 `json:"replicated_duplicates"`
	// HintsDeleted counts records held for other peers and deleted once delivered.
	HintsDeleted uint64 `json:"hints_deleted"`
	// Skips counts times a peer's backlog was dropped for --max-hints-bytes.
	Skips uint64 `json:"replication_skips"`
	// AntiEntropy counts anti-entropy work; nil outside a cluster.
	AntiEntropy *AntiEntropyStatus `json:"anti_entropy,omitempty"`
	// Runtime describes the process.
	Runtime RuntimeStatus `json:"runtime"`
}

// RuntimeStatus describes the peer's process.
type RuntimeStatus struct {
	PID        int   `json:"pid"`
	Goroutines int   `json:"goroutines"`
	HeapBytes  int64 `json:"heap_bytes"`
	RSSBytes   int64 `json:"rss_bytes"`
	OpenFDs    int   `json:"open_fds"`
}

// TargetStatus describes replication from one peer to another.
type TargetStatus struct {
	Peer             string `json:"peer"`
	UndeliveredCount int64  `json:"undelivered_records"`
	UndeliveredBytes int64  `json:"undelivered_bytes"`
	Delivered        uint64 `json:"delivered_records"`
	Cursor           uint64 `json:"cursor"`
	Head             uint64 `json:"head"`
	// Skipped: the backlog for this peer was dropped for --max-hints-bytes
	// (since this peer started); anti-entropy repairs it.
	Skipped           bool    `json:"skipped,omitempty"`
	LagP50Seconds     float64 `json:"lag_p50_seconds"`
	LagP99Seconds     float64 `json:"lag_p99_seconds"`
	LagMaxSeconds     float64 `json:"lag_max_seconds"`
	LastError         string  `json:"last_error,omitempty"`
	LastErrorAt       string  `json:"last_error_at,omitempty"`
	OldestUndelivered float64 `json:"oldest_undelivered_seconds,omitempty"`
}

// Member is one peer of the cluster as GET /v1/members lists it.
type Member struct {
	Name    string            `json:"name"`
	Address string            `json:"address"`
	Status  string            `json:"status"`
	Tags    map[string]string `json:"tags,omitempty"`
}

// ClusterStatus is the answer to GET /v1/cluster: every member's status.
type ClusterStatus struct {
	// Answered by names the peer that gathered the answer.
	AnsweredBy string       `json:"answered_by"`
	Peers      []PeerStatus `json:"peers"`
}

// PeerStatus is one member's membership state and, when it answered, its status.
type PeerStatus struct {
	Name   string  `json:"name"`
	State  string  `json:"state"`
	Status *Status `json:"status,omitempty"`
	Error  string  `json:"error,omitempty"`
}

// IngestStatus holds the ingestion counters by transport.
type IngestStatus struct {
	Syslog *syslog.Stats `json:"syslog,omitempty"`
	HTTP   HTTPIngest    `json:"http"`
}

// HTTPIngest holds the HTTP ingestion counters.
type HTTPIngest struct {
	Accepted        uint64 `json:"accepted"`
	Bytes           uint64 `json:"bytes"`
	RejectedBatches uint64 `json:"rejected_batches"`
	RejectedLines   uint64 `json:"rejected_lines"`
	MalformedLines  uint64 `json:"malformed_lines"`
}

// StoreStatus holds the store's counters.
type StoreStatus struct {
	Commits        uint64  `json:"commits"`
	CommitErrors   uint64  `json:"commit_errors"`
	CommitSeconds  float64 `json:"commit_seconds"`
	RecordsWritten uint64  `json:"records_written"`
	WindowsDropped uint64  `json:"windows_dropped"`
	LSMBytes       int64   `json:"lsm_bytes"`
	ValueLogBytes  int64   `json:"value_log_bytes"`
	// Writable is false while the store refuses writes because its disk is
	// nearly full (HTTP ingest answers 507, syslog waits); it turns true by
	// itself once FreeDiskBytes is back above MinFreeDiskBytes.
	Writable         bool   `json:"writable"`
	FreeDiskBytes    int64  `json:"free_disk_bytes"`
	MinFreeDiskBytes int64  `json:"min_free_disk_bytes"`
	WritesRefused    uint64 `json:"writes_refused"`
	// ValueLogGCRuns counts value-log files rewritten by garbage collection;
	// PageOuts the times mapped tables were paged out (--max-mapped-memory).
	ValueLogGCRuns uint64 `json:"value_log_gc_runs"`
	PageOuts       uint64 `json:"page_outs"`
}

// Convergence is the answer to GET /v1/convergence: proof of when replicas
// last agreed.
type Convergence struct {
	AnsweredBy string `json:"answered_by"`
	// ConvergedThrough: every record received before it is on all its
	// replicas (zero when not proven yet).
	ConvergedThrough time.Time `json:"converged_through"`
	// Partitions lists, per partition, its owners and when all their roots
	// were last proven equal (zero: not yet, or an owner could not be asked).
	Partitions []PartitionProof `json:"partitions"`
	// Repairs under way.
	Repairs []RepairProgress `json:"repairs,omitempty"`
	// Unreachable names peers whose view could not be gathered.
	Unreachable []string `json:"unreachable,omitempty"`
	// OldestUndelivered is the receive time of the oldest record still
	// waiting to be pushed somewhere (zero: none).
	OldestUndelivered time.Time `json:"oldest_undelivered,omitempty"`
}

// PartitionProof is one partition's convergence.
type PartitionProof struct {
	Partition     int       `json:"partition"`
	Owners        []string  `json:"owners"`
	ProvenEqualAt time.Time `json:"proven_equal_at"`
}

// RepairProgress is an anti-entropy repair under way.
type RepairProgress struct {
	Peer       string    `json:"peer"`
	With       string    `json:"with"`
	Started    time.Time `json:"started"`
	Expected   int       `json:"expected_records"`
	Done       int       `json:"done_records"`
	ETASeconds float64   `json:"eta_seconds,omitempty"`
}

// LocalConvergence is one peer's part of the convergence view.
type LocalConvergence struct {
	Node string `json:"node"`
	// Proofs lists when this peer's roots last equalled a co-replica's.
	Proofs            []PairProof      `json:"proofs"`
	OldestUndelivered time.Time        `json:"oldest_undelivered,omitempty"`
	Repairs           []RepairProgress `json:"repairs,omitempty"`
}

// PairProof is one proof of equality between two peers for one partition.
type PairProof struct {
	Peer      string    `json:"peer"`
	Partition int       `json:"partition"`
	At        time.Time `json:"at"`
}

// AntiEntropyStatus counts a peer's anti-entropy work.
type AntiEntropyStatus struct {
	Rounds          uint64  `json:"rounds"`
	RoundErrors     uint64  `json:"round_errors"`
	RoundSeconds    float64 `json:"round_seconds"`
	DifferingLeaves uint64  `json:"differing_leaves"`
	RecordsSent     uint64  `json:"records_sent"`
	RecordsReceived uint64  `json:"records_received"`
	BytesSent       uint64  `json:"bytes_sent"`
	BytesReceived   uint64  `json:"bytes_received"`
}

// RepairResponse is the answer to POST /v1/repair.
type RepairResponse struct {
	Rounds   int     `json:"rounds"`
	Sent     int     `json:"records_sent"`
	Received int     `json:"records_received"`
	Seconds  float64 `json:"seconds"`
}

// KeyStatus is the answer to GET /v1/keys and POST /v1/keys/{op}: the
// cluster's gossip encryption keys.
type KeyStatus struct {
	// Members is how many members were asked, Answered how many answered.
	Members  int `json:"members"`
	Answered int `json:"answered"`
	// Keys counts, per base64 key, the members holding it; Primary, the
	// members encrypting with it.
	Keys    map[string]int `json:"keys"`
	Primary map[string]int `json:"primary"`
	// Failed names failed members, which a rotation would strand.
	Failed []string          `json:"failed,omitempty"`
	Errors map[string]string `json:"errors,omitempty"`
	// Error says why an operation was refused or incomplete.
	Error string `json:"error,omitempty"`
}

// KeyRequest is the body of POST /v1/keys/{op} (op: install, use, remove).
type KeyRequest struct {
	Key string `json:"key"`
}
