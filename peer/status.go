package peer

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/logmesh/logmesh/api"
	"github.com/logmesh/logmesh/peer/view"
	"github.com/logmesh/logmesh/syslog"
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
			RecordsWritten: ds.RecordsWritten, WindowsDropped: ds.WindowsDropped, LSMBytes: ds.LSMBytes, ValueLogBytes: ds.ValueLogBytes,
			Writable: ds.Writable, FreeDiskBytes: ds.FreeDiskBytes, MinFreeDiskBytes: ds.MinFreeDiskBytes, WritesRefused: ds.WritesRefused,
			ValueLogGCRuns: ds.ValueLogGCRuns, Syncs: ds.Syncs,
			Scrubs: ds.Scrubs, ScrubDifferingBuckets: ds.ScrubBuckets, ScrubDamagedRecords: ds.ScrubUndecodable, PageOuts: ds.PageOuts,
			BlocksWritten: ds.BlocksWritten, RecordsSealed: ds.RecordsSealed, BlocksUnsealed: ds.BlocksUnsealed,
			BlocksSkipped: ds.BlocksSkipped, DeletesSettled: ds.DeletesSettled, ExpiredBlocksDeleted: ds.ExpiredBlocksDeleted,
			SlicesMoved: ds.SlicesMoved, SlicesDropped: ds.SlicesDropped, BlocksMerged: ds.BlocksMerged,
			CapturedBytes: ds.CapturedBytes, RunsFromMemory: ds.RunsFromMemory, RunsReadBack: ds.RunsReadBack, CaptureShed: ds.CaptureShed,
			Drops: ds.Drops, DropSeconds: ds.DropSeconds},
	}
	if p.syslog != nil {
		s.Ingest.Syslog = syslogStatus(p.syslog.Stats())
	}
	s.Runtime = runtimeStatus()
	if p.repl != nil {
		s.Replication = p.repl.Status()
		for _, t := range s.Replication {
			s.UndeliveredBytes += t.UndeliveredBytes
			s.DebtPartitions += t.DebtPartitions
		}
		s.Members = map[string]int{}
		for _, m := range p.cluster.members() {
			s.Members[string(m.Status)]++
		}
		rs := p.repl.Stats()
		s.ReplicatedIn = rs.PushedInWritten
		s.ReplicatedDuplicates = rs.PushedInDuplicates
		s.HintsDeleted = rs.HintsDeleted
		s.Retired = p.retire.Pending()
		s.Skips = rs.Skips
		if dt := p.repl.DeliveredThrough(); !dt.IsZero() {
			s.DeliveredThrough = dt.UTC()
		}
		st := p.repair.Stats()
		s.AntiEntropy = &api.AntiEntropyStatus{Rounds: st.Rounds.Load(), RoundErrors: st.RoundErrors.Load(),
			RoundSeconds: float64(st.RoundNanos.Load()) / 1e9, DifferingLeaves: st.DifferingLeaves.Load(),
			RecordsSent: st.RecordsSent.Load(), RecordsReceived: st.RecordsReceived.Load(),
			BytesSent: st.BytesSent.Load(), BytesReceived: st.BytesReceived.Load()}
		complete, witness := p.repair.Claims()
		owned := p.cluster.view().Table.Partitions(p.cfg.Name)
		s.Partitions = &api.PartitionsStatus{Owned: view.MaskCount(&owned), Complete: complete.Count(), Witness: witness.Count()}
		for i, on := range owned {
			if on && !complete[i] {
				s.Partitions.Filling = append(s.Partitions.Filling, i)
			}
		}
		s.Clock = p.clockStatus()
		s.PartialAnswers = p.stats.partialAnswers.Load()
	}
	s.IDRetags = p.gen.Retags()
	if p.apiLimit != nil {
		s.APIConnections, s.APIConnectionsRefused = p.apiLimit.Open(), p.apiLimit.Refused()
		s.APIConnectionsReclaimed = p.apiLimit.Reclaimed()
	}
	if p.queries != nil {
		s.QueriesRefused = p.queries.refused.Load()
		s.QueriesRunning = p.queries.running()
	}
	s.QueryTimeouts = p.stats.queryTimeouts.Load()
	return s
}

// handleCluster gathers every member's status.
func (p *Peer) handleCluster(w http.ResponseWriter, r *http.Request) {
	v := p.cluster.view()
	out := api.ClusterStatus{AnsweredBy: p.cfg.Name}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, m := range p.cluster.members() {
		ps := api.PeerStatus{Name: m.Name, State: string(m.Status)}
		if m.Name == p.cfg.Name {
			st := p.Status()
			ps.Status = &st
			out.Peers = append(out.Peers, ps)
			continue
		}
		if !v.Readable(m.Name) {
			out.Peers = append(out.Peers, ps)
			continue
		}
		wg.Add(1)
		go func(ps api.PeerStatus, name string) {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
			defer cancel()
			var st api.Status
			err := p.getPeerJSON(ctx, name, "/v1/status", &st)
			if err != nil {
				ps.Error = err.Error()
			} else {
				ps.Status = &st
			}
			mu.Lock()
			out.Peers = append(out.Peers, ps)
			mu.Unlock()
		}(ps, m.Name)
	}
	wg.Wait()
	sort.Slice(out.Peers, func(i, j int) bool { return out.Peers[i].Name < out.Peers[j].Name })
	writeJSON(w, http.StatusOK, out)
}

// getPeerJSON GETs path from member name over the data plane (mutual TLS
// when configured) and decodes its JSON answer into out.
func (p *Peer) getPeerJSON(ctx context.Context, name, path string, out any) error {
	resp, err := p.link.Do(ctx, name, http.MethodGet, path, nil, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(out)
}

// postPeerJSON POSTs to path at member name and decodes its JSON answer.
func (p *Peer) postPeerJSON(ctx context.Context, name, path string, out any) error {
	resp, err := p.link.Do(ctx, name, http.MethodPost, path, nil, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(out)
}

// clockStatus describes this peer's clock against the others'.
func (p *Peer) clockStatus() *api.ClockStatus {
	off, n := p.clock.ClusterOffset()
	cs := &api.ClockStatus{SkewSeconds: (-off).Seconds(), Skewed: p.clock.Skewed(), MaxSkewSeconds: p.clock.MaxSkew().Seconds(),
		Compared: n}
	for _, o := range p.clock.Offsets() {
		cs.Peers = append(cs.Peers, api.PeerClock{Peer: o.Peer, OffsetSeconds: o.Offset.Seconds(), RTTSeconds: o.RTT.Seconds(),
			AgeSeconds: o.Age.Seconds(), Skewed: p.clock.PeerSkewed(o.Peer)})
	}
	return cs
}

func (p *Peer) handleStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, p.Status())
}

// runtimeStatus reads the process's goroutines, heap, resident memory and
// open file descriptors.
func runtimeStatus() api.RuntimeStatus {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rs := api.RuntimeStatus{PID: os.Getpid(), Goroutines: runtime.NumGoroutine(), HeapBytes: int64(ms.HeapInuse)}
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
				rs.RSSBytes = kb << 10
			}
		}
	}
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		rs.OpenFDs = len(fds)
	}
	return rs
}

// syslogStatus is the API's copy of the syslog listeners' counters (api
// does not depend on the syslog package).
func syslogStatus(st syslog.Stats) *api.SyslogStats {
	return &api.SyslogStats{TCP: api.SyslogTransport(st.TCP), UDP: api.SyslogTransport(st.UDP), TLS: api.SyslogTransport(st.TLS),
		LargeReadBuffers: st.LargeReadBuffers}
}
