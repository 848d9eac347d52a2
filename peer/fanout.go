package peer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/logmesh/logmesh/index"
	"github.com/logmesh/logmesh/query"
	"github.com/logmesh/logmesh/record"
	"github.com/logmesh/logmesh/wire"
)

// A query at any peer is answered from the whole cluster: each partition is
// assigned to one usable owner (this peer when it owns it), every usable
// peer is asked for its assigned partitions plus the partitions it holds
// without owning them (hints not yet handed over), plus the recent records
// of its other partitions (acknowledged here, maybe not yet pushed to the
// assigned owner: see recentSince), and the ordered answers
// are merged with duplicates removed by ID. A peer that cannot be reached
// before the answer starts is replaced by another owner of its partitions;
// partitions with no usable owner make the answer partial, and say so.

// plan assigns partitions to peers.
type plan struct {
	assigned map[string]*[record.NumPartitions]bool
	missing  []int
}

func (v *view) plan(exclude map[string]bool, selfFill *[record.NumPartitions]bool) plan {
	pl := plan{assigned: map[string]*[record.NumPartitions]bool{}}
	load := map[string]int{}
	for p := 0; p < record.NumPartitions; p++ {
		owners := v.owners(record.Partition(p))
		// an owner that holds the whole partition beats one still being
		// filled; then this peer; then the least loaded
		best, bestFull := "", false
		for _, o := range owners {
			if exclude[o] || !v.usable(o) {
				continue
			}
			full := !v.filling(o, record.Partition(p))
			if o == v.self { // this peer's own state is fresher than its gossip tag
				full = selfFill == nil || !selfFill[p]
			}
			switch {
			case best == "", full && !bestFull:
			case full != bestFull, best == v.self:
				continue
			case o != v.self && load[o] >= load[best]:
				continue
			}
			best, bestFull = o, full
		}
		if best == "" {
			pl.missing = append(pl.missing, p)
			continue
		}
		if pl.assigned[best] == nil {
			pl.assigned[best] = new([record.NumPartitions]bool)
		}
		pl.assigned[best][p] = true
		load[best]++
	}
	return pl
}

// source is one ordered stream of records taking part in a merge.
type source interface {
	// next returns the next record; io.EOF at a clean end.
	next() (record.ID, []byte, error)
	close()
}

// fanout answers q from the cluster into out.
func (p *Peer) fanout(w http.ResponseWriter, r *http.Request, q query.Query, out *ndjson) error {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	v := p.cluster.view()
	failed := map[string]bool{}
	var sources []source
	var missing []int
	defer func() {
		for _, s := range sources {
			s.close()
		}
	}()
	// Open every stream before the first record is written: a peer that
	// fails now can be replaced; one that fails later makes the answer partial.
	for attempt := 0; attempt < 3; attempt++ {
		for _, s := range sources {
			s.close()
		}
		sources = sources[:0]
		pl := v.plan(failed, p.selfFill.Load())
		missing = pl.missing
		var mu sync.Mutex
		var wg sync.WaitGroup
		retry := false
		for name := range v.members {
			if failed[name] || !v.usable(name) {
				continue
			}
			mask, recent := new([record.NumPartitions]bool), new([record.NumPartitions]bool)
			if a := pl.assigned[name]; a != nil {
				*mask = *a
			}
			for pt := 0; pt < record.NumPartitions; pt++ {
				switch {
				case !v.table.Owns(name, record.Partition(pt)):
					mask[pt] = true // hints it may hold
				case !mask[pt]:
					recent[pt] = true // what it received that the assigned owner may lack yet
				}
			}
			if isEmpty(mask) && isEmpty(recent) {
				continue
			}
			if name == v.self {
				mu.Lock()
				sources = append(sources, p.localSource(ctx, q, mask, recent))
				mu.Unlock()
				continue
			}
			wg.Add(1)
			go func(name string, mask, recent *[record.NumPartitions]bool) {
				defer wg.Done()
				s, err := p.remoteSource(ctx, v.apiAddr(name), q, mask, recent)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					p.log.Warn("query: peer did not answer; asking other replicas", "peer", name, "err", err)
					failed[name] = true
					if pl.assigned[name] != nil {
						retry = true
					}
					return
				}
				sources = append(sources, s)
			}(name, mask, recent)
		}
		wg.Wait()
		if !retry {
			break
		}
	}
	coverage := "full"
	if len(missing) > 0 {
		coverage = "partial"
		w.Header().Set(headerMissing, joinInts(missing))
	}
	w.Header().Set(headerCoverage, coverage)
	w.Header().Set("Trailer", headerCoverage)
	emit := out.record
	if p.cfg.TestDuplicateAnswers { // the deliberately broken query path
		emit = func(id record.ID, data []byte) error {
			if err := out.record(id, data); err != nil {
				return err
			}
			return out.record(id, data)
		}
	}
	err := mergeSources(sources, !q.Ascending, q.Limit, emit)
	var se *sourceError
	if errors.As(err, &se) {
		p.log.Warn("query: a peer failed while answering; the answer is partial", "err", err)
		w.Header().Set(headerCoverage, "partial")
		out.err("partial answer: " + err.Error())
		return nil
	}
	w.Header().Set(headerCoverage, coverage) // as a trailer
	return err
}

func isEmpty(m *[record.NumPartitions]bool) bool {
	for _, on := range m {
		if on {
			return false
		}
	}
	return true
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
}

// sourceError marks the failure of one source during a merge.
type sourceError struct{ err error }

func (e *sourceError) Error() string { return e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }

// mergeSources merges ordered sources, drops repeated IDs and stops after limit.
func mergeSources(srcs []source, reverse bool, limit int, fn func(record.ID, []byte) error) error {
	type head struct {
		s    source
		id   record.ID
		data []byte
	}
	var heads []*head
	pull := func(h *head) (bool, error) {
		id, data, err := h.s.next()
		if err == io.EOF {
			return false, nil
		}
		if err != nil {
			return false, &sourceError{err}
		}
		h.id, h.data = id, data
		return true, nil
	}
	for _, s := range srcs {
		h := &head{s: s}
		ok, err := pull(h)
		if err != nil {
			return err
		}
		if ok {
			heads = append(heads, h)
		}
	}
	less := func(a, b *head) bool {
		c := record.Compare(a.id, b.id)
		if reverse {
			return c > 0
		}
		return c < 0
	}
	n := 0
	var last record.ID
	first := true
	for len(heads) > 0 {
		sort.Slice(heads, func(i, j int) bool { return less(heads[i], heads[j]) })
		h := heads[0]
		if first || h.id != last {
			if err := fn(h.id, h.data); err != nil {
				return err
			}
			n++
			if limit > 0 && n >= limit {
				return nil
			}
		}
		last, first = h.id, false
		ok, err := pull(h)
		if err != nil {
			return err
		}
		if !ok {
			heads = heads[1:]
		}
	}
	return nil
}

// remoteSource asks a peer for its part of the answer.
func (p *Peer) remoteSource(ctx context.Context, addr string, q query.Query, mask, recent *[record.NumPartitions]bool) (source, error) {
	if addr == "" {
		return nil, errors.New("no API address published")
	}
	lq := q
	lq.Local = true
	params := lq.Values()
	params.Set("partitions", encodeMask(mask))
	if !isEmpty(recent) {
		params.Set("recent", encodeMask(recent))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.scheme()+addr+"/v1/logs?"+params.Encode(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", wire.ContentType)
	req.Header.Set(headerProto, protoVersion)
	resp, err := p.repl.client.Do(req)
	if err != nil {
		return nil, unwrapURL(err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return nil, fmt.Errorf("answered %d: %s", resp.StatusCode, bytes.TrimSpace(b))
	}
	rd, err := wire.NewReader(resp.Body)
	if err != nil {
		resp.Body.Close()
		return nil, err
	}
	return &remote{addr: addr, body: resp.Body, rd: rd}, nil
}

func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

type remote struct {
	addr string
	body io.ReadCloser
	rd   *wire.Reader
}

func (s *remote) next() (record.ID, []byte, error) {
	f, err := s.rd.Next()
	if err != nil {
		if err == io.EOF {
			return record.ID{}, nil, io.EOF
		}
		return record.ID{}, nil, fmt.Errorf("peer %s: %w", s.addr, err)
	}
	switch f.Kind {
	case wire.KindRecord:
		return f.ID, f.Data, nil
	case wire.KindError:
		return record.ID{}, nil, fmt.Errorf("peer %s: %s", s.addr, f.Data)
	}
	return record.ID{}, nil, io.EOF
}

func (s *remote) close() { s.body.Close() }

// scanSource scans this peer's store in a goroutine, stopping after limit
// records (0: no limit).
func (p *Peer) scanSource(ctx context.Context, opts index.ScanOptions, limit int) source {
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

// localSource runs the local part of a fanned-out query in a goroutine.
func (p *Peer) localSource(ctx context.Context, q query.Query, mask, recent *[record.NumPartitions]bool) source {
	return p.goSource(ctx, func(ctx context.Context, fn func(record.ID, []byte) error) error {
		return p.localQuery(ctx, q, mask, recent, fn)
	})
}

// goSource turns a producer of ordered records into a source; the producer
// runs in a goroutine that close stops and waits for.
func (p *Peer) goSource(ctx context.Context, produce func(context.Context, func(record.ID, []byte) error) error) source {
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

func (s *local) next() (record.ID, []byte, error) {
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

func (s *local) close() {
	s.cancel()
	for range s.ch {
	}
	<-s.done
}
