package peer

import (
	"net/http"

	"github.com/logmesh/logmesh/api"
)

// Version is the logmesh version, set at build time with
// -ldflags "-X github.com/logmesh/logmesh/peer.Version=...".
var Version = "dev"

// Status returns the peer's status.
func (p *Peer) Status() api.Status {
	ds := p.db.Stats()
	now := p.cfg.Now()
	s := api.Status{
		Node: p.cfg.Name, Version: Version, Started: p.started.UTC(), UptimeSeconds: now.Sub(p.started).Seconds(),
		Records: ds.Records, DiskBytes: ds.LSMBytes + ds.ValueLogBytes, Windows: ds.Windows,
		Ingest: api.IngestStatus{HTTP: api.HTTPIngest{
			Accepted:        p.stats.httpAccepted.Load(),
			Bytes:           p.stats.httpBytes.Load(),
			RejectedBatches: p.stats.httpRejectedBatch.Load(),
			RejectedLines:   p.stats.httpRejectedLines.Load(),
			MalformedLines:  p.stats.httpMalformedLines.Load(),
		}},
		Store: api.StoreStatus{Commits: ds.Commits, CommitErrors: ds.CommitErrors, CommitSeconds: ds.CommitSeconds,
			RecordsWritten: ds.RecordsWritten, WindowsDropped: ds.WindowsDropped, LSMBytes: ds.LSMBytes, ValueLogBytes: ds.ValueLogBytes},
	}
	if p.syslog != nil {
		st := p.syslog.Stats()
		s.Ingest.Syslog = &st
	}
	return s
}

func (p *Peer) handleStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, p.Status())
}
