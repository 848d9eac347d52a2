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
	// Accepted is the number of records stored durably.
	Accepted int `json:"accepted"`
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
}
