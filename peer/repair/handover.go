package repair

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/logmesh/logmesh/antientropy"
	"github.com/logmesh/logmesh/peer/link"
	"github.com/logmesh/logmesh/peer/retire"
	"github.com/logmesh/logmesh/peer/view"
	"github.com/logmesh/logmesh/placement"
	"github.com/logmesh/logmesh/record"
)

// HavePath is the endpoint that confirms which records a peer holds.
const HavePath = "/internal/v1/have"

// handOver pushes every partition this peer holds but does not own to all
// its owners, asks each owner to confirm it holds every record listed, and
// deletes exactly those records: no record ever has fewer copies than
// before the placement changed. The confirmation is explicit, by ID, and
// made after the owner synced: not inferred from digests, which lag the
// store while commits are in flight.
//
// A pass spends at most budget in all (a new peer can take hundreds of
// partitions at the repair rate): the round's other work, repairs between
// the peers that already own a partition, comes round again in time.
func (r *Repairer) handOver(ctx context.Context, v *view.View, budget time.Duration) (results []antientropy.Result, left undone) {
	deadline := time.Now().Add(budget)
	from := int(r.handOverFrom.Load())
	// failed: a round of this pass failed. Rounds that fail slowly (an
	// owner gossip still shows alive whose calls time out) can use up the
	// budget; the pass is then not cut short but blocked, or the next
	// round would start at once and spend it the same way.
	failed := false
	spent := func(p int) ([]antientropy.Result, undone) {
		r.handOverFrom.Store(int32(p)) // resume with it
		left.more, left.blocked = !failed, left.blocked || failed
		return results, left
	}
	for i := 0; i < record.NumPartitions && ctx.Err() == nil; i++ {
		p := (from + i) % record.NumPartitions
		if time.Now().After(deadline) {
			return spent(p)
		}
		pt := record.Partition(p)
		if v.Owns(v.Self, pt) || len(r.cfg.DB.Windows(pt)) == 0 {
			continue
		}
		owners := v.Owners(pt)
		usable := len(owners) > 0
		for _, o := range owners {
			usable = usable && v.Usable(o)
		}
		if !usable {
			left.blocked = true
			continue // cannot confirm with every owner now
		}
		ids, err := r.partitionIDs(pt)
		if err != nil {
			r.log.Warn("hand-over: cannot list records", "partition", p, "err", err)
			continue
		}
		confirmed := true
		for _, o := range owners {
			rs, l := r.syncUntilDone(ctx, o, []record.Partition{pt}, false, deadline)
			results = append(results, rs...)
			confirmed = confirmed && l.done()
			failed = failed || l.blocked
		}
		if !confirmed {
			if time.Now().After(deadline) {
				return spent(p)
			}
			left.blocked = true // a round failed
			continue
		}
		_, witness := r.Claims()
		for _, o := range owners {
			missing, err := r.confirm(ctx, o, pt, ids, witness[p], false)
			if err != nil || missing > 0 {
				r.log.Info("hand-over: an owner does not hold every record yet", "partition", p, "owner", o, "missing", missing, "err", err)
				confirmed = false
				break
			}
		}
		if !confirmed || len(ids) == 0 {
			left.blocked = left.blocked || !confirmed // replication has yet to push them
			continue
		}
		if r.cfg.TestAfterConfirm != nil {
			r.cfg.TestAfterConfirm(pt, owners)
		}
		// a leaving owner may count this copy as the one that stays: the
		// copy is kept until it is gone, or its mark lapses
		skipped := false
		_ = r.cfg.Leaving.Delete(func(leaving func(string) bool) error {
			for _, o := range owners {
				skipped = skipped || leaving(o)
			}
			return nil
		})
		if skipped {
			continue
		}
		// replication deletes it after the grace, if no owner is leaving
		// then (see package retire)
		r.cfg.Retire.Add(retire.HandedOver, v.Gen, ids)
		r.log.Info("handed a partition over to its owners", "partition", p, "owners", owners, "records", len(ids))
	}
	return results, left
}

func (r *Repairer) partitionIDs(p record.Partition) ([]record.ID, error) {
	var ids []record.ID
	first, end := p.Buckets()
	for _, w := range r.cfg.DB.Windows(p) {
		err := r.cfg.DB.PartitionIDs(w, p, first, end, func(id record.ID) error {
			ids = append(ids, id)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return ids, nil
}

const haveChunk = 1 << 16

// confirm asks owner how many of ids (records of partition p) it does not
// hold durably. With vouch, the last chunk tells it that this peer's copy
// was complete: an owner holding all of it is complete too.
func (r *Repairer) confirm(ctx context.Context, owner string, p record.Partition, ids []record.ID, vouch, leaving bool) (int, error) {
	for start := 0; start < len(ids) || start == 0; start += haveChunk {
		chunk := ids[start:min(len(ids), start+haveChunk)]
		last := start+haveChunk >= len(ids)
		req := haveRequest{P: p, Vouch: vouch && last, Leaving: leaving, IDs: chunk}
		body, _ := req.MarshalBinary()
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		resp, err := r.cfg.Link.Do(cctx, owner, http.MethodPost, HavePath, bytes.NewReader(body),
			http.Header{"Content-Type": {"application/octet-stream"}})
		if err != nil {
			cancel()
			return 0, err
		}
		var hr haveResponse
		err = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&hr)
		resp.Body.Close()
		cancel()
		if err != nil {
			return 0, fmt.Errorf("%s: bad answer to have: %w", owner, err)
		}
		if hr.Missing > 0 {
			return hr.Missing, nil
		}
	}
	return 0, nil
}

// haveRequest lists records of one partition a peer is asked to confirm.
type haveRequest struct {
	P     record.Partition
	Vouch bool
	// Leaving says the asking peer is leaving: the answering peer keeps,
	// from then on, the copies it holds on the strength of the asker's.
	Leaving bool
	IDs     []record.ID
}

type haveResponse struct {
	Missing int `json:"missing"`
}

const (
	haveVersion = 1
	haveVouch   = 1 << 0
	haveLeaving = 1 << 1
)

func (m *haveRequest) MarshalBinary() ([]byte, error) {
	b := []byte{haveVersion, byte(m.P), 0}
	if m.Vouch {
		b[2] |= haveVouch
	}
	if m.Leaving {
		b[2] |= haveLeaving
	}
	b = binary.AppendUvarint(b, uint64(len(m.IDs)))
	for _, id := range m.IDs {
		b = append(b, id[:]...)
	}
	return b, nil
}

func (m *haveRequest) UnmarshalBinary(b []byte) error {
	if len(b) < 4 || b[0] != haveVersion || b[2]&^(haveVouch|haveLeaving) != 0 {
		return fmt.Errorf("repair: malformed have request")
	}
	m.P, m.Vouch, m.Leaving = record.Partition(b[1]), b[2]&haveVouch != 0, b[2]&haveLeaving != 0
	n, k := binary.Uvarint(b[3:])
	rest := b[3+max(k, 0):]
	if k <= 0 || n != uint64(len(rest)/record.IDLen) || len(rest)%record.IDLen != 0 {
		return fmt.Errorf("repair: malformed have request")
	}
	m.IDs = make([]record.ID, n)
	for i := range m.IDs {
		copy(m.IDs[i][:], rest[i*record.IDLen:])
	}
	for _, id := range m.IDs {
		if id.Partition() != m.P {
			return fmt.Errorf("repair: have request lists %s, not of partition %d", id, m.P)
		}
	}
	return nil
}

// ServeHave answers how many of the listed records this peer does not hold
// durably, and takes a complete copy's vouch.
func (r *Repairer) ServeHave(w http.ResponseWriter, req *http.Request, from string) {
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, 8<<20))
	if err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	var hr haveRequest
	if err := hr.UnmarshalBinary(body); err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	if hr.Leaving {
		if from == "" {
			httpError(w, http.StatusBadRequest, "a leaving peer must say who it is")
			return
		}
		// waits for a delete under way: what GetMany finds below stays
		r.cfg.Leaving.Mark(from)
	}
	if len(hr.IDs) > 0 && !r.cfg.DB.FsyncAlways() {
		if err := r.cfg.DB.Sync(); err != nil { // held means durable
			httpError(w, http.StatusServiceUnavailable, err.Error())
			return
		}
	}
	held, at := 0, time.Now()
	if err := r.cfg.DB.GetMany(hr.IDs, func(record.ID, []byte) error { held++; return nil }); err != nil {
		httpError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	missing := len(hr.IDs) - held
	if missing == 0 && hr.Vouch {
		r.earned(hr.P, from, at)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(haveResponse{Missing: missing})
}

func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(struct {
		Error string `json:"error"`
	}{msg})
}

// HandOverForLeave makes sure that every partition this peer holds stays
// somewhere once it has left. An owner that stays an owner under next (the
// placement without this peer) and that gossip says holds the partition
// complete keeps it — once it has answered that it stays: it may be leaving
// at the same moment (it then refuses). Otherwise the partition is pushed to every next
// owner and each confirms holding every record; a next owner that is
// leaving too is passed over as long as one that stays confirmed. Every
// confirmation marks this peer leaving on the confirming peer (package
// leaving). It returns an error when some partition cannot be handed over
// now.
func (r *Repairer) HandOverForLeave(ctx context.Context, next *placement.Table) error {
	v := r.cfg.View()
	complete, witness := r.Claims()
	for p := 0; p < record.NumPartitions && ctx.Err() == nil; p++ {
		pt := record.Partition(p)
		if len(r.cfg.DB.Windows(pt)) == 0 {
			continue
		}
		owners := next.Replicas(pt)
		if len(owners) == 0 {
			return fmt.Errorf("partition %d: no other peer to hand it to", p)
		}
		ids, err := r.partitionIDs(pt)
		if err != nil {
			return err
		}
		vouch := complete[p] || witness[p]
		kept, leaving := false, map[string]bool{}
		for _, o := range owners {
			if o == v.Self || !v.Usable(o) || !v.Owns(o, pt) || !v.Complete(o, pt) {
				continue
			}
			// a complete owner that stays keeps it; asked whether it stays
			// (an empty confirmation, which marks this peer there), for it
			// may be leaving at this very moment too
			_, err := r.confirm(ctx, o, pt, nil, false, true)
			if err == nil {
				kept = true
				break
			}
			if link.IsLeaving(err) {
				leaving[o] = true
			}
		}
		if kept {
			continue
		}
		confirmed := 0
		for _, o := range owners {
			if leaving[o] {
				continue
			}
			if !v.Usable(o) {
				return fmt.Errorf("partition %d: its next owner %s cannot be reached", p, o)
			}
			if _, l := r.syncUntilDone(ctx, o, []record.Partition{pt}, false, time.Now().Add(time.Minute)); !l.done() {
				return fmt.Errorf("partition %d: could not push it to %s", p, o)
			}
			missing, err := r.confirm(ctx, o, pt, ids, vouch, true)
			if link.IsLeaving(err) {
				continue // it leaves too: the next owners that stay keep it
			}
			if err != nil {
				return fmt.Errorf("partition %d: %s: %w", p, o, err)
			}
			if missing > 0 {
				return fmt.Errorf("partition %d: %s lacks %d records", p, o, missing)
			}
			confirmed++
		}
		if confirmed == 0 {
			return fmt.Errorf("partition %d: every next owner is leaving too", p)
		}
		r.log.Info("handed a partition to its next owners before leaving", "partition", p, "owners", owners, "records", len(ids))
	}
	return ctx.Err()
}
