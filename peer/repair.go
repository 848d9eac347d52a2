package peer

import (
	"bytes"
	"context"
	"encoding"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/logmesh/logmesh/antientropy"
	"github.com/logmesh/logmesh/antientropy/indexstore"
	"github.com/logmesh/logmesh/record"
)

// repairer schedules anti-entropy: periodic rounds with every co-replica,
// immediate rounds when a peer comes back or the placement changes, and
// hand-over of partitions this peer holds but no longer owns.
type repairer struct {
	p   *Peer
	log *slog.Logger
	ae  *antientropy.Peer
	tr  *aeTransport

	trigger chan repairRequest

	mu struct {
		sync.Mutex
		// equal holds, per co-replica and partition, when their roots were
		// last proven equal.
		equal map[pairKey]time.Time
		last  []antientropy.Result
	}
}

type pairKey struct {
	peer string
	p    record.Partition
}

// repairRequest asks for rounds now: with one peer, or everyone ("").
type repairRequest struct {
	peer string
	done chan []antientropy.Result
}

func newRepairer(p *Peer) *repairer {
	r := &repairer{p: p, log: p.log.With("subsystem", "anti-entropy"), trigger: make(chan repairRequest, 16)}
	r.mu.equal = map[pairKey]time.Time{}
	r.ae = antientropy.New(antientropy.Config{
		Store:   indexstore.New(p.db),
		Limiter: antientropy.NewLimiter(p.cfg.RepairRate),
		OnEqual: r.proven,
	})
	r.tr = &aeTransport{p: p}
	return r
}

// proven records that this peer and peer held the same records of parts at.
func (r *repairer) proven(peer string, parts []record.Partition, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range parts {
		k := pairKey{peer, p}
		if at.After(r.mu.equal[k]) {
			r.mu.equal[k] = at
		}
	}
}

func (r *repairer) run(ctx context.Context) {
	watch, stop := r.p.cluster.watch()
	defer stop()
	prev := r.statuses()
	interval := r.p.cfg.AntiEntropyInterval
	jitter := func() time.Duration { return interval*8/10 + time.Duration(rand.Int64N(int64(interval)*4/10+1)) }
	timer := time.NewTimer(jitter())
	defer timer.Stop()
	for {
		var req repairRequest
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
			timer.Reset(jitter())
		case req = <-r.trigger:
		case <-watch:
			// a peer that comes back (or a new placement) gets a round now
			cur := r.statuses()
			back := ""
			for name, st := range cur {
				if st == "alive" && prev[name] != "alive" && name != r.p.cfg.Name {
					back = name
				}
			}
			prev = cur
			if back == "" {
				continue
			}
			r.log.Info("peer is back: anti-entropy round now", "peer", back)
			req = repairRequest{peer: back}
		}
		if r.p.cfg.DisableAntiEntropy && req.done == nil {
			continue
		}
		results := r.round(ctx, req)
		if req.done != nil {
			req.done <- results
		}
	}
}

func (r *repairer) statuses() map[string]string {
	out := map[string]string{}
	for name, m := range r.p.cluster.view().members {
		out[name] = string(m.Status)
	}
	return out
}

// round compares with the co-replicas (each pair is run by the peer with the
// smaller name, unless asked for explicitly) and hands over what this peer
// holds without owning.
func (r *repairer) round(ctx context.Context, req repairRequest) []antientropy.Result {
	v := r.p.cluster.view()
	var results []antientropy.Result
	for _, other := range v.targets() {
		explicit := req.done != nil && (req.peer == "" || req.peer == other) || req.peer == other
		if !v.usable(other) || (!explicit && other < v.self) {
			continue
		}
		parts := sharedPartitions(v, v.self, other)
		if len(parts) == 0 {
			continue
		}
		results = append(results, r.syncUntilDone(ctx, other, parts, true)...)
	}
	results = append(results, r.handOver(ctx, v)...)
	r.mu.Lock()
	r.mu.last = results
	r.mu.Unlock()
	return results
}

// syncUntilDone runs rounds with a peer until one leaves nothing to do.
func (r *repairer) syncUntilDone(ctx context.Context, peer string, parts []record.Partition, pull bool) []antientropy.Result {
	var out []antientropy.Result
	for i := 0; i < 1000 && ctx.Err() == nil; i++ {
		res, err := r.ae.Sync(ctx, r.tr, peer, parts, pull)
		if err != nil {
			r.log.Warn("anti-entropy round failed", "peer", peer, "err", err)
			return out
		}
		out = append(out, res)
		if res.Sent+res.Received > 0 {
			r.log.Info("anti-entropy repaired records", "peer", peer, "sent", res.Sent, "received", res.Received,
				"differing_buckets", res.DifferingBuckets, "took", res.Took.Round(time.Millisecond))
		}
		if !res.More && res.Sent+res.Received == 0 {
			return out
		}
	}
	return out
}

func sharedPartitions(v *view, a, b string) []record.Partition {
	var out []record.Partition
	for p := 0; p < record.NumPartitions; p++ {
		owners := v.owners(record.Partition(p))
		if slices.Contains(owners, a) && slices.Contains(owners, b) {
			out = append(out, record.Partition(p))
		}
	}
	return out
}

// handOver pushes every partition this peer holds but does not own to all
// its owners, and deletes its copy once every owner has confirmed holding all
// of it: no record ever has fewer copies than before the placement changed.
func (r *repairer) handOver(ctx context.Context, v *view) []antientropy.Result {
	var results []antientropy.Result
	for p := 0; p < record.NumPartitions && ctx.Err() == nil; p++ {
		pt := record.Partition(p)
		if v.table.Owns(v.self, pt) || len(r.p.db.Windows(pt)) == 0 {
			continue
		}
		owners := v.owners(pt)
		usable := len(owners) > 0
		for _, o := range owners {
			usable = usable && v.usable(o)
		}
		if !usable {
			continue // cannot confirm with every owner now
		}
		ids, err := r.partitionIDs(pt)
		if err != nil {
			r.log.Warn("hand-over: cannot list records", "partition", p, "err", err)
			continue
		}
		confirmed := true
		for _, o := range owners {
			rs := r.syncUntilDone(ctx, o, []record.Partition{pt}, false)
			results = append(results, rs...)
			// confirmed when the last round found nothing of ours missing there
			if len(rs) == 0 || rs[len(rs)-1].Sent > 0 || rs[len(rs)-1].More {
				confirmed = false
			}
		}
		if !confirmed || len(ids) == 0 {
			continue
		}
		if _, err := r.p.db.Delete(ctx, ids); err != nil {
			r.log.Warn("hand-over: cannot delete the handed-over copy", "partition", p, "err", err)
			continue
		}
		r.log.Info("handed a partition over to its owners", "partition", p, "owners", owners, "records", len(ids))
	}
	return results
}

func (r *repairer) partitionIDs(p record.Partition) ([]record.ID, error) {
	var ids []record.ID
	first, end := p.Buckets()
	for _, w := range r.p.db.Windows(p) {
		err := r.p.db.PartitionIDs(w, p, first, end, func(id record.ID) error {
			ids = append(ids, id)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return ids, nil
}

// repairNow runs rounds with every co-replica now and returns their results.
func (r *repairer) repairNow(ctx context.Context) ([]antientropy.Result, error) {
	req := repairRequest{done: make(chan []antientropy.Result, 1)}
	select {
	case r.trigger <- req:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case res := <-req.done:
		return res, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// aeTransport carries rounds over HTTP to peers' /internal/v1/ae endpoints.
type aeTransport struct{ p *Peer }

func (t *aeTransport) call(ctx context.Context, peer, step string, req encoding.BinaryMarshaler, reply encoding.BinaryUnmarshaler) error {
	addr := t.p.cluster.view().apiAddr(peer)
	if addr == "" {
		return fmt.Errorf("peer %s published no API address", peer)
	}
	body, err := req.MarshalBinary()
	if err != nil {
		return err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, t.p.scheme()+addr+"/internal/v1/ae/"+step, bytes.NewReader(body))
	if err != nil {
		return err
	}
	hr.Header.Set("Content-Type", "application/octet-stream")
	hr.Header.Set(headerFrom, t.p.cfg.Name)
	hr.Header.Set(headerProto, protoVersion)
	resp, err := t.p.repl.client.Do(hr)
	if err != nil {
		return unwrapURL(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<30))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %d: %s", peer, resp.StatusCode, bytes.TrimSpace(b[:min(len(b), 512)]))
	}
	return reply.UnmarshalBinary(b)
}

func (t *aeTransport) Roots(ctx context.Context, peer string, req *antientropy.RootsRequest) (*antientropy.RootsReply, error) {
	reply := &antientropy.RootsReply{}
	return reply, t.call(ctx, peer, "roots", req, reply)
}

func (t *aeTransport) Buckets(ctx context.Context, peer string, req *antientropy.BucketsRequest) (*antientropy.BucketsReply, error) {
	reply := &antientropy.BucketsReply{}
	return reply, t.call(ctx, peer, "buckets", req, reply)
}

func (t *aeTransport) Exchange(ctx context.Context, peer string, req *antientropy.ExchangeRequest) (*antientropy.ExchangeReply, error) {
	reply := &antientropy.ExchangeReply{}
	return reply, t.call(ctx, peer, "exchange", req, reply)
}

// handleAE answers a step of a round another peer initiated.
func (p *Peer) handleAE(w http.ResponseWriter, req *http.Request) {
	if req.Header.Get(headerProto) != protoVersion {
		writeError(w, http.StatusBadRequest, "protocol version mismatch")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, 1<<30))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if p.repair == nil {
		writeError(w, http.StatusNotFound, "this peer is not in a cluster")
		return
	}
	from := req.Header.Get(headerFrom)
	var reply encoding.BinaryMarshaler
	ae := p.repair.ae
	switch req.PathValue("step") {
	case "roots":
		m := &antientropy.RootsRequest{}
		if err = m.UnmarshalBinary(body); err == nil {
			reply, err = ae.Roots(req.Context(), from, m)
		}
	case "buckets":
		m := &antientropy.BucketsRequest{}
		if err = m.UnmarshalBinary(body); err == nil {
			reply, err = ae.Buckets(req.Context(), from, m)
		}
	case "exchange":
		m := &antientropy.ExchangeRequest{}
		if err = m.UnmarshalBinary(body); err == nil {
			reply, err = ae.Exchange(req.Context(), from, m)
		}
	default:
		writeError(w, http.StatusNotFound, "no such anti-entropy step")
		return
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	out, err := reply.MarshalBinary()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(out)
}
