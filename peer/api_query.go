package peer

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/logmesh/logmesh/api"
	"github.com/logmesh/logmesh/index"
	"github.com/logmesh/logmesh/query"
	"github.com/logmesh/logmesh/record"
	"github.com/logmesh/logmesh/wire"
)

// Coverage headers of query answers. A trailer of the same name overrides
// the header when a peer failed while the answer was streaming.
const (
	headerCoverage = "X-Logmesh-Coverage" // "full" or "partial"
	headerMissing  = "X-Logmesh-Missing"  // partitions no live replica answered for, comma-separated
)

// handleGetLogs answers a query. With local=true (or outside a cluster) it
// reads this peer's store; otherwise it fans out to the peers that cover
// every partition and merges their answers.
func (p *Peer) handleGetLogs(w http.ResponseWriter, r *http.Request) {
	params := r.URL.Query()
	// partitions and recent come from a coordinating peer (see fanout)
	var mask, recent *[record.NumPartitions]bool
	for _, f := range []struct {
		name string
		dst  **[record.NumPartitions]bool
	}{{"partitions", &mask}, {"recent", &recent}} {
		if s := params.Get(f.name); s != "" {
			m, err := decodeMask(s)
			if err != nil {
				writeError(w, http.StatusBadRequest, fmt.Sprintf("%s: %v", f.name, err))
				return
			}
			*f.dst = m
		}
		params.Del(f.name)
	}
	q, err := query.Parse(params, p.cfg.Now())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	start := time.Now()
	if r.Header.Get("Accept") == wire.ContentType {
		p.streamWire(w, r, q, mask, recent)
		p.metrics.observeQuery(true, time.Since(start))
		return
	}
	defer func() { p.metrics.observeQuery(q.Local, time.Since(start)) }()
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	out := newNDJSON(w)
	if q.Local || len(p.cluster.view().table.Members()) <= 1 {
		w.Header().Set(headerCoverage, "local")
		err = p.localQuery(r.Context(), q, mask, nil, out.record)
	} else {
		err = p.fanout(w, r, q, out)
	}
	if err != nil && !errors.Is(err, r.Context().Err()) {
		p.log.Warn("query failed", "err", err)
		out.err("query failed: " + err.Error())
	}
	out.flush()
}

// ndjson writes records as NDJSON, flushing every 256 records.
type ndjson struct {
	bw      *bufio.Writer
	enc     *json.Encoder
	flusher http.Flusher
	n       int
}

func newNDJSON(w http.ResponseWriter) *ndjson {
	bw := bufio.NewWriterSize(w, 32<<10)
	o := &ndjson{bw: bw, enc: json.NewEncoder(bw)}
	o.flusher, _ = w.(http.Flusher)
	return o
}

func (o *ndjson) record(id record.ID, data []byte) error {
	rec, err := record.Decode(id, data)
	if err != nil {
		return err
	}
	if err := o.enc.Encode(rec.ToJSON()); err != nil {
		return err
	}
	o.n++
	if o.n%256 == 0 {
		return o.flush()
	}
	return nil
}

// err ends a stream that had begun with an error object.
func (o *ndjson) err(msg string) { _ = o.enc.Encode(api.Error{Error: msg}) }

func (o *ndjson) flush() error {
	if err := o.bw.Flush(); err != nil {
		return err
	}
	if o.flusher != nil {
		o.flusher.Flush()
	}
	return nil
}

// streamWire answers a peer's fan-out request from the local store, in the
// binary record format.
func (p *Peer) streamWire(w http.ResponseWriter, r *http.Request, q query.Query, mask, recent *[record.NumPartitions]bool) {
	w.Header().Set("Content-Type", wire.ContentType)
	ww, err := wire.NewWriter(w)
	if err != nil {
		return
	}
	err = p.localQuery(r.Context(), q, mask, recent, ww.Record)
	if err != nil {
		_ = ww.Error(err.Error())
		return
	}
	_ = ww.End("ok")
}

// localQuery runs q against this peer's store (restricted to mask when set),
// calling fn in order. Partitions in recent are read too, but only for
// records received since recentSince: a fan-out reads most partitions from
// one owner, and these are the records that owner may not have yet.
func (p *Peer) localQuery(ctx context.Context, q query.Query, mask, recent *[record.NumPartitions]bool, fn func(record.ID, []byte) error) error {
	opts := p.scanOptions(q, mask)
	if recent == nil || isEmpty(recent) {
		n := 0
		return p.db.Scan(ctx, opts, func(id record.ID, data []byte) error {
			if err := fn(id, data); err != nil {
				return err
			}
			n++
			if q.Limit > 0 && n >= q.Limit {
				return index.ErrStop
			}
			return nil
		})
	}
	ropts := p.scanOptions(q, recent)
	ropts.FromMillis = max(ropts.FromMillis, p.recentSince().UnixMilli())
	srcs := []source{p.scanSource(ctx, opts, q.Limit), p.scanSource(ctx, ropts, q.Limit)}
	defer func() {
		for _, s := range srcs {
			s.close()
		}
	}()
	err := mergeSources(srcs, opts.Reverse, q.Limit, fn)
	var se *sourceError
	if errors.As(err, &se) {
		return se.err
	}
	return err
}

func (p *Peer) scanOptions(q query.Query, mask *[record.NumPartitions]bool) index.ScanOptions {
	from, to := q.Range()
	opts := index.ScanOptions{FromMillis: from, ToMillis: to, Reverse: !q.Ascending, Match: q.Matcher(), Partitions: mask}
	if q.Filtering() {
		opts.Workers = p.cfg.QueryWorkers
	}
	return opts
}

// recentSince is how far back a fan-out reads the partitions of a peer that
// another owner answers for: records received since then may not have
// reached that owner. It covers the oldest record this peer received and
// has not yet delivered to every live target, and at least recentWindow,
// for records that reached this peer from a third one that could not
// deliver them everywhere (anti-entropy repairs those within an interval or two).
func (p *Peer) recentSince() time.Time {
	since := p.cfg.Now().Add(-p.recentWindow())
	v := p.cluster.view()
	if t := p.repl.oldestUndelivered(v.usable); !t.IsZero() && t.Before(since) {
		since = t
	}
	return since
}

func (p *Peer) recentWindow() time.Duration {
	return max(2*time.Minute, 3*p.cfg.AntiEntropyInterval)
}

func encodeMask(m *[record.NumPartitions]bool) string {
	var b [record.NumPartitions / 8]byte
	for i, on := range m {
		if on {
			b[i/8] |= 1 << (i % 8)
		}
	}
	return hex.EncodeToString(b[:])
}

func decodeMask(s string) (*[record.NumPartitions]bool, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != record.NumPartitions/8 {
		return nil, fmt.Errorf("partitions=%q: want %d hex digits", s, record.NumPartitions/4)
	}
	var m [record.NumPartitions]bool
	for i := range m {
		m[i] = b[i/8]&(1<<(i%8)) != 0
	}
	return &m, nil
}
