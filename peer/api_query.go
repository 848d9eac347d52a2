package peer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/logmesh/logmesh/api"
	"github.com/logmesh/logmesh/index"
	"github.com/logmesh/logmesh/peer/fanout"
	"github.com/logmesh/logmesh/peer/view"
	"github.com/logmesh/logmesh/query"
	"github.com/logmesh/logmesh/record"
	"github.com/logmesh/logmesh/wire"
)

// handleGetLogs answers a query. With local=true (or outside a cluster) it
// reads this peer's store; otherwise it fans out to the peers that cover
// every partition and merges their answers. A coordinating peer's request
// for this peer's part comes in the binary format.
func (p *Peer) handleGetLogs(w http.ResponseWriter, r *http.Request) {
	params := r.URL.Query()
	part, err := fanout.DecodeRequest(params)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	q, err := query.Parse(params, p.mintNow()) // "-15m" in the time base of IDs
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if !isMemberCall(r) {
		release, ok := p.queries.acquire(remoteHost(r))
		if !ok {
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusTooManyRequests, fmt.Sprintf("too many queries at once (at most %d from one client, %d in all): retry shortly",
				p.cfg.MaxQueriesPerClient, p.cfg.MaxQueries))
			return
		}
		defer release()
	}
	if p.cfg.QueryTimeout > 0 {
		ctx, cancel := context.WithTimeoutCause(r.Context(), p.cfg.QueryTimeout, errQueryTimeout)
		defer cancel()
		r = r.WithContext(ctx)
	}
	start := time.Now()
	if q.Count {
		if part != nil {
			writeError(w, http.StatusBadRequest, "count=true is for clients, not a member's part of a query")
			return
		}
		p.countQuery(w, r, q)
		p.metrics.observeQuery(q.Local, time.Since(start))
		return
	}
	if r.Header.Get("Accept") == wire.ContentType {
		if part != nil && r.Header.Get("X-Logmesh-Proto") != protoVersion {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("protocol version %q is not %s", r.Header.Get("X-Logmesh-Proto"), protoVersion))
			return
		}
		p.streamWire(w, r, q, part)
		p.metrics.observeQuery(true, time.Since(start))
		return
	}
	defer func() { p.metrics.observeQuery(q.Local, time.Since(start)) }()
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	out := newNDJSON(w)
	if q.Local || p.fan == nil {
		w.Header().Set(fanout.HeaderCoverage, "local")
		err = p.scan(r.Context(), q, nil, out.record)
	} else {
		err = p.fanoutQuery(w, r, q, out)
	}
	switch {
	case errors.Is(context.Cause(r.Context()), errQueryTimeout):
		p.stats.queryTimeouts.Add(1)
		out.err(fmt.Sprintf("partial answer: the query ran past --query-timeout (%v) and was ended; narrow its time range or filter", p.cfg.QueryTimeout))
	case err != nil && !errors.Is(err, r.Context().Err()):
		p.log.Warn("query failed", "err", err)
		out.err("query failed: " + err.Error())
	}
	out.flush()
}

// countQuery answers how many records match q, as one JSON object
// (api.Count), without sending them: the same scan or fan-out as the
// records' answer with no limit, counted where that answer would be
// assembled, with the same coverage (in the header and the body).
func (p *Peer) countQuery(w http.ResponseWriter, r *http.Request, q query.Query) {
	var res api.Count
	count := func(record.ID, []byte) error { res.Count++; return nil }
	var err error
	if q.Local || p.fan == nil {
		res.Coverage = "local"
		// a count needs no order: whole windows without a filter from their
		// digests, the rest read once in storage order
		opts := p.scanOptions(q, nil)
		if !q.Filtering() && q.After == nil {
			opts.Match = nil
		}
		var n uint64
		n, err = p.db.Count(r.Context(), opts)
		res.Count = int64(n)
	} else {
		a := p.fan.Open(r.Context(), q)
		err = a.Stream(count)
		a.Close()
		a.Coverage.Header(w.Header())
		res.Coverage = "full"
		if !a.Coverage.Full() {
			p.stats.partialAnswers.Add(1)
			res.Coverage = "partial"
			switch {
			case a.Coverage.Failed != nil:
				res.Reason = "a peer failed while answering: " + a.Coverage.Failed.Error()
			case len(a.Coverage.Missing) > 0:
				res.Reason = "no complete owner answered for partitions " + w.Header().Get(fanout.HeaderMissing)
			default:
				res.Reason = "peers that may hold records not yet replicated could not be read: " + w.Header().Get(fanout.HeaderUnread)
			}
		}
	}
	switch {
	case errors.Is(context.Cause(r.Context()), errQueryTimeout):
		p.stats.queryTimeouts.Add(1)
		res.Coverage = "partial"
		res.Reason = fmt.Sprintf("the count ran past --query-timeout (%v) and was ended; narrow its time range or filter", p.cfg.QueryTimeout)
	case r.Context().Err() != nil:
		return // its client left
	case err != nil:
		p.log.Warn("count failed", "err", err)
		writeError(w, http.StatusInternalServerError, "count failed: "+err.Error())
		return
	}
	w.Header().Set(fanout.HeaderCoverage, res.Coverage)
	writeJSON(w, http.StatusOK, res)
}

// errQueryTimeout is the cause of a query's end at Config.QueryTimeout.
var errQueryTimeout = errors.New("query timeout")

// fanoutQuery answers q from the cluster, with its coverage in the headers
// (and in a trailer if a peer fails while the answer streams).
func (p *Peer) fanoutQuery(w http.ResponseWriter, r *http.Request, q query.Query, out *ndjson) error {
	a := p.fan.Open(r.Context(), q)
	defer a.Close()
	a.Coverage.Header(w.Header())
	w.Header().Set("Trailer", fanout.HeaderCoverage)
	if !a.Coverage.Full() {
		p.stats.partialAnswers.Add(1)
	}
	err := a.Stream(out.record)
	if a.Coverage.Failed != nil {
		p.log.Warn("query: a peer failed while answering; the answer is partial", "err", a.Coverage.Failed)
		out.err("partial answer: " + a.Coverage.Failed.Error())
	}
	w.Header().Set(fanout.HeaderCoverage, map[bool]string{true: "full", false: "partial"}[a.Coverage.Full()]) // the trailer
	return err
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

// streamWire answers from the local store in the binary record format: a
// coordinating peer's request for this peer's part (part), or a plain
// local query.
func (p *Peer) streamWire(w http.ResponseWriter, r *http.Request, q query.Query, part *fanout.Request) {
	w.Header().Set("Content-Type", wire.ContentType)
	ww, err := wire.NewWriter(w)
	if err != nil {
		return
	}
	if part == nil {
		err = p.scan(r.Context(), q, nil, ww.Record)
	} else {
		emit := ww.Record
		if part.IDsOnly { // a count: the coordinator needs no data
			emit = func(id record.ID, _ []byte) error { return ww.Record(id, nil) }
		}
		s := p.localPart(r.Context(), q, *part)
		err = fanout.Merge([]fanout.Named{{Name: p.cfg.Name, Source: s}}, !q.Ascending, q.Limit, emit)
		s.Close()
		var se *fanout.SourceError
		if errors.As(err, &se) {
			err = se.Err
		}
	}
	if err != nil {
		_ = ww.Error(err.Error())
		return
	}
	_ = ww.End("ok")
}

// scan runs q against this peer's store, restricted to mask when set,
// calling fn in order.
func (p *Peer) scan(ctx context.Context, q query.Query, mask *view.Mask, fn func(record.ID, []byte) error) error {
	opts := p.scanOptions(q, mask)
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

// localPart is this peer's part of a fanned-out query: the partitions it
// was asked for whole, and for each other owner the partitions it also
// owns, read back to the oldest record that owner may still lack from
// here — all of it where this peer owes the owner a debt or does not track
// it at all — and at least recentWindow back.
func (p *Peer) localPart(ctx context.Context, q query.Query, req fanout.Request) fanout.Source {
	whole := req.Parts
	since := map[time.Time]*view.Mask{}
	floor := p.mintNow().Add(-p.recentWindow()) // the time base of IDs
	for owner, m := range req.Recent {
		var owed struct {
			tracked bool
			since   time.Time
			debt    view.Mask
		}
		if p.repl != nil {
			o := p.repl.OwedTo(owner)
			owed.tracked, owed.since, owed.debt = o.Tracked, o.Since, o.Debt
		}
		s := floor
		if !owed.since.IsZero() && owed.since.Before(s) {
			s = owed.since
		}
		for _, pt := range m.Partitions() {
			if !owed.tracked || owed.debt[pt] {
				whole[pt] = true
				continue
			}
			if since[s] == nil {
				since[s] = new(view.Mask)
			}
			since[s][pt] = true
		}
	}
	var srcs []fanout.Named
	if !whole.Empty() {
		opts := p.scanOptions(q, &whole)
		srcs = append(srcs, fanout.Named{Name: "whole", Source: p.scanSource(ctx, opts, q.Limit)})
	}
	for s, m := range since {
		opts := p.scanOptions(q, m)
		opts.FromMillis = max(opts.FromMillis, s.UnixMilli())
		srcs = append(srcs, fanout.Named{Name: "recent", Source: p.scanSource(ctx, opts, q.Limit)})
	}
	return p.goSource(ctx, func(ctx context.Context, fn func(record.ID, []byte) error) error {
		defer func() {
			for _, s := range srcs {
				s.Close()
			}
		}()
		err := fanout.Merge(srcs, !q.Ascending, q.Limit, fn)
		var se *fanout.SourceError
		if errors.As(err, &se) {
			return se.Err
		}
		return err
	})
}

func (p *Peer) scanOptions(q query.Query, mask *view.Mask) index.ScanOptions {
	from, to := q.Range()
	opts := index.ScanOptions{FromMillis: from, ToMillis: to, Reverse: !q.Ascending, Match: q.Matcher(), Limit: q.Limit}
	if q.Word != "" {
		opts.Word = []byte(q.Word) // sealed blocks whose word filter rules it out are skipped
	}
	if mask != nil {
		opts.Partitions = (*[record.NumPartitions]bool)(mask)
	}
	// the query's cores filter in parallel, and read in parallel what a
	// query without a limit reads whole (index/scan_sorted.go)
	opts.Workers = p.cfg.QueryWorkers
	return opts
}

// recentWindow is the least a fan-out reads of the partitions another
// owner answers for: belt and braces over the exact backlog.
func (p *Peer) recentWindow() time.Duration {
	return max(2*time.Minute, 3*p.cfg.AntiEntropyInterval)
}

// scanSource scans this peer's store in a goroutine, stopping after limit
// records (0: no limit).
func (p *Peer) scanSource(ctx context.Context, opts index.ScanOptions, limit int) fanout.Source {
	return p.goSource(ctx, func(ctx context.Context, fn func(record.ID, []byte) error) error {
		n := 0
		return p.db.Scan(ctx, opts, func(id record.ID, data []byte) error {
			if err := fn(id, data); err != nil {
				return err
			}
			n++
			if limit > 0 && n >= limit {
				return index.ErrStop
			}
			return nil
		})
	})
}

// goSource turns a producer of ordered records into a source; the producer
// runs in a goroutine that Close stops and waits for.
func (p *Peer) goSource(ctx context.Context, produce func(context.Context, func(record.ID, []byte) error) error) fanout.Source {
	ctx, cancel := context.WithCancel(ctx)
	s := &local{ch: make(chan []scannedRec, 4), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		defer close(s.ch)
		var buf []scannedRec
		err := produce(ctx, func(id record.ID, data []byte) error {
			buf = append(buf, scannedRec{id, bytes.Clone(data)})
			if len(buf) >= 128 {
				select {
				case s.ch <- buf:
					buf = nil
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			return nil
		})
		if len(buf) > 0 && err == nil {
			select {
			case s.ch <- buf:
			case <-ctx.Done():
			}
		}
		s.err = err
	}()
	return s
}

type scannedRec struct {
	id   record.ID
	data []byte
}

type local struct {
	ch     chan []scannedRec
	buf    []scannedRec
	err    error
	cancel context.CancelFunc
	done   chan struct{}
}

func (s *local) Next() (record.ID, []byte, error) {
	for len(s.buf) == 0 {
		b, ok := <-s.ch
		if !ok {
			<-s.done
			if s.err != nil && !errors.Is(s.err, context.Canceled) {
				return record.ID{}, nil, s.err
			}
			return record.ID{}, nil, io.EOF
		}
		s.buf = b
	}
	r := s.buf[0]
	s.buf = s.buf[1:]
	return r.id, r.data, nil
}

func (s *local) Close() {
	s.cancel()
	for range s.ch {
	}
	<-s.done
}
