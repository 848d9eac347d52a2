package peer

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

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
			RecordsWritten: ds.RecordsWritten, WindowsDropped: ds.WindowsDropped, LSMBytes: ds.LSMBytes, ValueLogBytes: ds.ValueLogBytes,
			Writable: ds.Writable, FreeDiskBytes: ds.FreeDiskBytes, MinFreeDiskBytes: ds.MinFreeDiskBytes, WritesRefused: ds.WritesRefused,
			ValueLogGCRuns: ds.ValueLogGCRuns, PageOuts: ds.PageOuts},
	}
	if p.syslog != nil {
		st := p.syslog.Stats()
		s.Ingest.Syslog = &st
	}
	s.Runtime = runtimeStatus()
	if p.cfg.GossipAddr != "" {
		s.Replication = p.repl.status()
		for _, t := range s.Replication {
			s.UndeliveredBytes += t.UndeliveredBytes
		}
		s.Members = map[string]int{}
		for _, m := range p.cluster.members() {
			s.Members[string(m.Status)]++
		}
		s.ReplicatedIn = p.stats.replicatedIn.Load()
		s.ReplicatedDuplicates = p.stats.replicatedDup.Load()
		s.HintsDeleted = p.repl.hintsDel.Load()
		s.Skips = p.repl.skips.Load()
		if p.repair != nil {
			st := p.repair.ae.Stats()
			s.AntiEntropy = &api.AntiEntropyStatus{Rounds: st.Rounds.Load(), RoundErrors: st.RoundErrors.Load(),
				RoundSeconds: float64(st.RoundNanos.Load()) / 1e9, DifferingLeaves: st.DifferingLeaves.Load(),
				RecordsSent: st.RecordsSent.Load(), RecordsReceived: st.RecordsReceived.Load(),
				BytesSent: st.BytesSent.Load(), BytesReceived: st.BytesReceived.Load()}
		}
	}
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
		if !v.usable(m.Name) {
			out.Peers = append(out.Peers, ps)
			continue
		}
		wg.Add(1)
		go func(ps api.PeerStatus, addr string) {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
			defer cancel()
			var st api.Status
			err := p.getPeerJSON(ctx, addr, "/v1/status", &st)
			if err != nil {
				ps.Error = err.Error()
			} else {
				ps.Status = &st
			}
			mu.Lock()
			out.Peers = append(out.Peers, ps)
			mu.Unlock()
		}(ps, v.apiAddr(m.Name))
	}
	wg.Wait()
	sort.Slice(out.Peers, func(i, j int) bool { return out.Peers[i].Name < out.Peers[j].Name })
	writeJSON(w, http.StatusOK, out)
}

// getPeerJSON GETs path from the peer at addr over the data plane's client
// (mutual TLS when configured) and decodes its JSON answer into out.
func (p *Peer) getPeerJSON(ctx context.Context, addr, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.scheme()+addr+path, nil)
	if err != nil {
		return err
	}
	resp, err := p.repl.client.Do(req)
	if err != nil {
		return unwrapURL(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("answered %d", resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(out)
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
