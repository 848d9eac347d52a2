package replicate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/logmesh/logmesh/index"
	"github.com/logmesh/logmesh/peer/link"
	"github.com/logmesh/logmesh/peer/view"
	"github.com/logmesh/logmesh/record"
	"github.com/logmesh/logmesh/wire"
)

// PushPath is the endpoint that takes pushed records.
const PushPath = "/internal/v1/replicate"

// runTarget pushes to one peer until ctx ends.
func (r *Replicator) runTarget(ctx context.Context, t *target) {
	defer close(t.done)
	db := r.db
	changes, stopChanges := db.Changes()
	defer stopChanges()
	watch, stopWatch := r.cfg.Watch()
	defer stopWatch()
	backoff := time.Duration(0)
	wait := func(d time.Duration) bool {
		var timer <-chan time.Time
		if d > 0 {
			tm := time.NewTimer(d)
			defer tm.Stop()
			timer = tm.C
		}
		select {
		case <-ctx.Done():
			return false
		case <-changes:
		case <-watch:
		case <-timer:
		}
		return true
	}
	for ctx.Err() == nil {
		v := r.cfg.View()
		cursor := t.cursor()
		if r.cfg.Disabled && cursor < db.Applied() {
			// delivery is off: everything becomes a debt anti-entropy settles
			r.skip(t, v)
			if !wait(time.Second) { // not once per commit while ingestion runs
				return
			}
			continue
		}
		if !v.Usable(t.name) || cursor >= db.Applied() {
			t.mu.Lock()
			if t.mu.gen != v.Gen && t.mu.cursor >= db.Applied() {
				// caught up under a new placement: nothing was pushed under the old one since
				t.mu.gen, t.mu.genStart = v.Gen, t.mu.cursor
			}
			t.mu.Unlock()
			if !wait(time.Second) {
				return
			}
			continue
		}
		if backoff > 0 && !wait(backoff) {
			return
		}
		err := r.pushNext(ctx, t, v, cursor)
		if err == nil {
			backoff = 0
			continue
		}
		if ctx.Err() != nil {
			return
		}
		backoff = min(max(2*backoff, 100*time.Millisecond), r.cfg.RetryMax)
		t.mu.Lock()
		first := t.mu.lastErr == ""
		t.mu.lastErr, t.mu.lastErrAt = err.Error(), time.Now()
		t.mu.Unlock()
		if first {
			r.log.Warn("cannot push records; retrying", "target", t.name, "err", err, "retry_in", backoff)
		}
	}
}

// pushNext pushes the records of the next journal entries after cursor that
// the target owns under view v, and advances the cursor past them once they
// are durable there.
func (r *Replicator) pushNext(ctx context.Context, t *target, v *view.View, cursor uint64) error {
	t.mu.Lock()
	if t.mu.gen != v.Gen {
		// a new placement: what the cursor passed so far was judged under the old one
		t.mu.gen, t.mu.genStart = v.Gen, t.mu.cursor
	}
	t.mu.Unlock()
	entries, err := r.db.ReadJournal(cursor+1, 256)
	if err != nil {
		return err
	}
	if len(entries) == 0 {
		// pruned: nothing after the cursor exists any more, so the target
		// may lack any of them
		r.log.Warn("journal entries a cursor needed were pruned; anti-entropy will settle them", "target", t.name)
		r.skip(t, v)
		return nil
	}
	var ids []record.ID
	hints := false
	last := cursor
	for _, e := range entries {
		if len(ids) > 0 && len(ids)+e.Local > r.cfg.BatchRecords {
			break
		}
		if e.Op == index.OpAdd {
			for _, id := range e.IDs[:e.Local] {
				if p := id.Partition(); v.Owns(t.name, p) {
					ids = append(ids, id)
					hints = hints || !v.Owns(r.cfg.Self, p)
				}
			}
		}
		last = e.Seq
	}
	var refused []record.ID
	if len(ids) > 0 {
		if refused, err = r.push(ctx, t.name, ids, r.cfg.SyncPushes || hints); err != nil {
			return err
		}
	}
	t.noteRefused(refused)
	r.advance(t, last, ids)
	return nil
}

func (r *Replicator) advance(t *target, to uint64, ids []record.ID) {
	t.mu.Lock()
	if to > t.mu.cursor {
		t.mu.cursor = to
	}
	hadErr := t.mu.lastErr != ""
	t.mu.lastErr = ""
	t.mu.Unlock()
	if hadErr {
		r.log.Info("pushing records again", "target", t.name)
	}
	if len(ids) > 0 {
		t.delivered.Add(uint64(len(ids)))
		now := r.cfg.Now()
		for _, id := range ids {
			t.lag.add(now.Sub(id.Time()))
		}
	}
	r.persist(t)
	r.advanced()
}

// pushResponse is the answer to a push.
type pushResponse struct {
	Written    int `json:"written"`
	Duplicates int `json:"duplicates"`
	Expired    int `json:"expired"`
	// Future counts records refused for IDs stamped too far ahead of this
	// peer's trusted clock (index.Config.MaxFuture).
	Future int `json:"future,omitempty"`
	// Refused lists the records refused as expired or future: they are no copy.
	Refused []record.ID `json:"refused,omitempty"`
}

// push sends records to a peer and returns, once it has made them durable,
// those it refused.
func (r *Replicator) push(ctx context.Context, peer string, ids []record.ID, sync bool) ([]record.ID, error) {
	var body bytes.Buffer
	w, err := wire.NewWriter(&body)
	if err != nil {
		return nil, err
	}
	misses := ids
	if r.cfg.Cache != nil {
		if misses, err = r.cfg.Cache.AppendTo(ids, w.Record); err != nil {
			return nil, err
		}
	}
	if err := r.db.GetMany(misses, w.Record); err != nil {
		return nil, err
	}
	if err := w.End(""); err != nil {
		return nil, err
	}
	hdr := http.Header{"Content-Type": {wire.ContentType}}
	if sync {
		hdr.Set(link.HeaderSync, "1")
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	resp, err := r.cfg.Link.Do(ctx, peer, http.MethodPost, PushPath, &body, hdr)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var pr pushResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&pr); err != nil {
		return nil, fmt.Errorf("%s: bad answer to a push: %w", peer, err)
	}
	return pr.Refused, nil
}

// ServePush stores a pushed batch and answers once it is durable (synced
// first when the pusher asks for it).
func (r *Replicator) ServePush(w http.ResponseWriter, req *http.Request) {
	rd, err := wire.NewReader(http.MaxBytesReader(w, req.Body, 1<<30))
	if err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	var resp pushResponse
	var entries []index.Entry
	flush := func() error {
		if len(entries) == 0 {
			return nil
		}
		res, err := r.db.Write(req.Context(), entries, index.OriginRemote)
		resp.Written += res.Written
		resp.Duplicates += res.Duplicates
		resp.Expired += res.Expired
		resp.Future += res.Future
		resp.Refused = append(resp.Refused, res.ExpiredIDs...)
		entries = entries[:0]
		return err
	}
	for {
		f, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			httpError(w, http.StatusBadRequest, "bad replication stream: "+err.Error())
			return
		}
		if f.Kind != wire.KindRecord {
			continue
		}
		var v record.View
		if err := v.Reset(f.Data); err != nil {
			httpError(w, http.StatusBadRequest, fmt.Sprintf("record %s does not decode: %v", f.ID, err))
			return
		}
		entries = append(entries, index.Entry{ID: f.ID, Data: bytes.Clone(f.Data)})
		if len(entries) >= 4096 {
			if err := flush(); err != nil {
				httpError(w, http.StatusServiceUnavailable, "cannot store: "+err.Error())
				return
			}
		}
	}
	if n := r.cfg.dropPushEvery; n > 0 && r.pushesIn.Add(1)%uint64(n) == 0 {
		entries = entries[:0] // the deliberately broken peer: acknowledge, store nothing
	}
	if err := flush(); err != nil {
		httpError(w, http.StatusServiceUnavailable, "cannot store: "+err.Error())
		return
	}
	if req.Header.Get(link.HeaderSync) != "" && !r.db.FsyncAlways() {
		if err := r.db.Sync(); err != nil {
			httpError(w, http.StatusServiceUnavailable, "cannot sync: "+err.Error())
			return
		}
	}
	r.in.written.Add(uint64(resp.Written))
	r.in.duplicates.Add(uint64(resp.Duplicates))
	r.in.expired.Add(uint64(resp.Expired))
	if resp.Future > 0 {
		r.log.Warn("refused pushed records stamped too far ahead of this peer's clock", "from", req.Header.Get(link.HeaderFrom),
			"records", resp.Future)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}

func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(struct {
		Error string `json:"error"`
	}{msg})
}
