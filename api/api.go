// Package api holds the JSON types of logmesh's HTTP API, shared by the peer
// that serves them and the clients that read them.
package api

import (
	"time"

	"github.com/logmesh/logmesh/record"
)

// Count answers GET /v1/logs?count=true: how many records match, with the
// same coverage as the records' answer would have.
type Count struct {
	Count int64 `json:"count"`
	// Coverage is full, partial or local (the X-Logmesh-Coverage header).
	Coverage string `json:"coverage"`
	// Reason says why a count is partial, when it is.
	Reason string `json:"reason,omitempty"`
}

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
	// Retired counts copies handed on (delivered hints, handed-over
	// records) that wait out --retire-after before they are deleted.
	Retired int `json:"retired_pending"`
	// Skips counts times a peer's backlog was dropped for --max-hints-bytes.
	Skips uint64 `json:"replication_skips"`
	// AntiEntropy counts anti-entropy work; nil outside a cluster.
	AntiEntropy *AntiEntropyStatus `json:"anti_entropy,omitempty"`
	// DebtPartitions sums, over the other peers, the partitions they may
	// lack records of that this peer held before it tracked them; settled
	// by anti-entropy.
	DebtPartitions int `json:"debt_partitions,omitempty"`
	// DeliveredThrough: every record this peer received before it is on
	// every owner (absent while a debt is outstanding).
	DeliveredThrough time.Time `json:"delivered_through,omitempty"`
	// Partitions says which partitions this peer owns and holds complete.
	Partitions *PartitionsStatus `json:"partitions,omitempty"`
	// Clock compares this peer's clock with the others'.
	Clock *ClockStatus `json:"clock,omitempty"`
	// PartialAnswers counts cluster queries answered with partial coverage.
	PartialAnswers uint64 `json:"partial_answers"`
	// APIConnections is the open API connections; APIConnectionsRefused
	// counts those closed at once because their host was at its cap.
	APIConnections        int    `json:"api_connections"`
	APIConnectionsRefused uint64 `json:"api_connections_refused"`
	// QueriesRefused counts queries refused at --max-queries or
	// --max-queries-per-client; QueryTimeouts those ended at --query-timeout.
	QueriesRefused uint64 `json:"queries_refused"`
	QueryTimeouts  uint64 `json:"query_timeouts"`
	// QueriesRunning is the number of client queries running now (a query
	// whose client went away stops, and leaves this count).
	QueriesRunning int `json:"queries_running"`
	// APIConnectionsReclaimed counts idle keep-alive connections closed
	// to let a new connection in at a cap.
	APIConnectionsReclaimed uint64 `json:"api_connections_reclaimed"`
	// IDRetags counts new ID instance tags (clock stepped back, or a tag
	// another peer used).
	IDRetags uint64 `json:"id_retags"`
	// Runtime describes the process.
	Runtime RuntimeStatus `json:"runtime"`
}

// PartitionsStatus counts a peer's partitions.
type PartitionsStatus struct {
	Owned    int `json:"owned"`
	Complete int `json:"complete"`
	// Witness: not owned any more, held complete until handed over.
	Witness int `json:"witness"`
	// Filling lists owned partitions not complete yet.
	Filling []int `json:"filling,omitempty"`
}

// ClockStatus compares a peer's clock with the others'.
type ClockStatus struct {
	// SkewSeconds is this clock minus the cluster's (the median of the
	// clocks compared, this one included).
	SkewSeconds    float64 `json:"skew_seconds"`
	Skewed         bool    `json:"skewed"`
	MaxSkewSeconds float64 `json:"max_skew_seconds"`
	// Compared counts the clocks the cluster's time is the median of.
	Compared int         `json:"compared"`
	Peers    []PeerClock `json:"peers,omitempty"`
}

// PeerClock is one peer's measured clock offset.
type PeerClock struct {
	Peer string `json:"peer"`
	// OffsetSeconds is its clock minus this one, within ±RTTSeconds/2.
	OffsetSeconds float64 `json:"offset_seconds"`
	RTTSeconds    float64 `json:"rtt_seconds"`
	AgeSeconds    float64 `json:"age_seconds"`
	Skewed        bool    `json:"skewed,omitempty"`
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
	// DebtPartitions counts partitions of which the peer may lack records
	// this one held before it started (or stopped) queueing for it; anti-
	// entropy settles them (DebtSince: when the debt was last extended).
	DebtPartitions int    `json:"debt_partitions,omitempty"`
	DebtSince      string `json:"debt_since,omitempty"`
	// Refused counts records the peer refused (expired in its window).
	Refused uint64 `json:"refused_records,omitempty"`
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
	Syslog *SyslogStats `json:"syslog,omitempty"`
	HTTP   HTTPIngest   `json:"http"`
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
	// Syncs counts syncs of the store's logs to disk.
	// Scrubs counts whole reads of the store; ScrubDifferingBuckets the
	// digest buckets they found out of step with the records stored (then
	// repaired by anti-entropy), ScrubDamagedRecords the records whose bytes
	// did not decode (deleted, and fetched again from a replica).
	Scrubs                uint64 `json:"scrubs"`
	ScrubDifferingBuckets uint64 `json:"scrub_differing_buckets"`
	ScrubDamagedRecords   uint64 `json:"scrub_damaged_records"`
	Syncs                 uint64 `json:"syncs"`
	PageOuts              uint64 `json:"page_outs"`
	// BlocksWritten counts blocks the sealer wrote (--seal-after),
	// RecordsSealed the records it moved into them, BlocksUnsealed the
	// blocks a late record or a delete turned back into loose records.
	BlocksWritten  uint64 `json:"blocks_written"`
	RecordsSealed  uint64 `json:"records_sealed"`
	BlocksUnsealed uint64 `json:"blocks_unsealed"`
	// BlocksSkipped counts blocks that word queries passed over, unread,
	// because their word filter ruled the word out.
	BlocksSkipped uint64 `json:"blocks_skipped"`
	// DeletesSettled counts the tombstones written at the versions of
	// deleted values before compactions could drop their deletes, so that
	// a value-log collection cannot bring them back (docs/architecture.md).
	DeletesSettled uint64 `json:"deletes_settled"`
	// SlicesMoved counts the minute slices the sealer switched to their
	// blocks; SlicesDropped those whose loose records were then dropped;
	// BlocksMerged the blocks a switch re-encoded with the late records and
	// deletes of their range.
	SlicesMoved   uint64 `json:"slices_moved"`
	SlicesDropped uint64 `json:"slices_dropped"`
	BlocksMerged  uint64 `json:"blocks_merged"`
	// ExpiredBlocksDeleted counts the blocks (and late records among them)
	// retention deleted one by one, so that value-log collections can
	// reclaim the files of those in the value log.
	ExpiredBlocksDeleted uint64 `json:"expired_blocks_deleted"`
	// With --seal-capture: CapturedBytes is what the records the sealer
	// keeps in memory take now; RunsFromMemory and RunsReadBack count the
	// partition runs moves took from memory and read back from the store;
	// CaptureShed the slices given up, to be read back, for memory.
	CapturedBytes  int64  `json:"captured_bytes"`
	RunsFromMemory uint64 `json:"runs_from_memory"`
	RunsReadBack   uint64 `json:"runs_read_back"`
	CaptureShed    uint64 `json:"capture_shed"`
	// Drops counts the store's bulk drops (retention, the loose records of
	// moved slices) and DropSeconds their total time: each holds every
	// write while it runs.
	Drops       uint64  `json:"drops"`
	DropSeconds float64 `json:"drop_seconds"`
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
	// Filling names owners that do not hold the partition complete yet.
	Filling []string `json:"filling,omitempty"`
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
	// Store identifies the peer's store (a wiped peer has a new one).
	Store string `json:"store"`
	// Complete is the mask of partitions the peer holds complete.
	Complete string `json:"complete"`
	// Proofs lists when this peer's roots last equalled a co-replica's.
	Proofs            []PairProof `json:"proofs"`
	OldestUndelivered time.Time   `json:"oldest_undelivered,omitempty"`
	// Debts: some peer may lack records this one held before it tracked
	// it (see docs/architecture.md); nothing it received is proven
	// everywhere until they are settled.
	Debts   bool             `json:"debts,omitempty"`
	Repairs []RepairProgress `json:"repairs,omitempty"`
}

// PairProof is one proof of equality between two peers for one partition.
type PairProof struct {
	Peer string `json:"peer"`
	// PeerStore is the store the peer had then.
	PeerStore string    `json:"peer_store"`
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

// ForgetResponse is the answer to POST /v1/members/{name}/forget.
type ForgetResponse struct {
	Peer string `json:"peer"`
	// Forgotten: some peer knew it, failed or departed, and gave it up.
	Forgotten bool `json:"forgotten"`
	// Told names the members that forgot it too; Errors those that could not be told.
	Told   []string `json:"told,omitempty"`
	Errors []string `json:"errors,omitempty"`
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

// SyslogStats is a snapshot of a peer's syslog listeners' counters, per transport. Every field
// except ConnectionsOpen only grows, so a Prometheus collector can export
// them as counters (logmesh_syslog_<json name>_total{transport="tcp"|"udp"|"tls"},
// Malformed and HandshakeFailures with a reason label) and ConnectionsOpen
// as a gauge.
type SyslogStats struct {
	TCP SyslogTransport `json:"tcp"`
	UDP SyslogTransport `json:"udp"`
	TLS SyslogTransport `json:"tls"`
	// LargeReadBuffers is the number of TCP connections holding a large
	// read buffer now (a gauge): connections whose sender has (or lately
	// had) a backlog, at most 64. TLS connections keep their small one.
	LargeReadBuffers int64 `json:"large_read_buffers"`
}

// SyslogTransport counts what one transport received.
type SyslogTransport struct {
	// Received counts the messages turned into records (empty ones are
	// not); each ends up in Messages or Dropped, or is on its way.
	Received uint64 `json:"received"`
	// Messages counts the records the Sink accepted, Bytes their raw bytes.
	Messages uint64 `json:"messages"`
	Bytes    uint64 `json:"bytes"`
	// Malformed counts the messages received with a reason, by the reason's
	// label (the reason's label: "no_pri", "truncated"...); reasons never
	// seen are absent. Empty messages (empty lines and datagrams, "empty")
	// are counted here and not stored.
	Malformed map[string]uint64 `json:"malformed"`
	// Truncated counts the messages cut to MaxMessageBytes, DiscardedBytes
	// the bytes cut off them.
	Truncated      uint64 `json:"truncated"`
	DiscardedBytes uint64 `json:"discarded_bytes"`
	// Dropped counts the records lost after they were received: the Sink
	// failed, or (UDP) the queue in front of the Sink was full.
	Dropped uint64 `json:"dropped"`
	// SinkErrors counts the Ingest calls that failed.
	SinkErrors uint64 `json:"sink_errors"`
	// NotAllowed counts what came from a source outside Config.Allow:
	// connections closed at accept (TCP, TLS) or datagrams dropped (UDP).
	NotAllowed uint64 `json:"not_allowed"`

	// TCP and TLS only.

	// ConnectionsOpen is the number of connections open now (a gauge).
	ConnectionsOpen int64 `json:"connections_open"`
	// ConnectionsAccepted counts the connections served (for TLS: whose
	// handshake began), ConnectionsRejected those closed at once because
	// MaxConnections, or MaxConnectionsPerSource from their source, were
	// open.
	ConnectionsAccepted uint64 `json:"connections_accepted"`
	ConnectionsRejected uint64 `json:"connections_rejected"`
	// FramingErrors counts the connections closed for broken octet framing.
	FramingErrors uint64 `json:"framing_errors"`
	// IdleTimeouts and FrameTimeouts count the connections closed by
	// Config.IdleTimeout and Config.FrameTimeout.
	IdleTimeouts  uint64 `json:"idle_timeouts"`
	FrameTimeouts uint64 `json:"frame_timeouts"`

	// TLS only.

	// HandshakeFailures counts the connections closed because their TLS
	// handshake failed, by reason: "timeout" (not done within
	// HandshakeTimeout), "not_tls" (the client spoke something else, such
	// as plaintext syslog), "no_client_cert" and "bad_client_cert"
	// (TLSClientAuth verify: none presented, or one not signed by the CA),
	// "closed" (the client hung up) and "protocol" (anything else: no
	// common version or cipher suite, a bad message). Reasons never seen
	// are absent.
	HandshakeFailures map[string]uint64 `json:"handshake_failures,omitempty"`
	// LineFrames counts the messages that arrived newline-framed: RFC
	// 5425 requires octet counting, so each is stored flagged (reason
	// "framing", also counted in Malformed). A sender that shows up here
	// needs octet-counted framing switched on.
	LineFrames uint64 `json:"line_frames"`
}
