package index

import (
	"bytes"
	"context"
	"errors"
	"sync"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/logmesh/logmesh/record"
)

// ErrStop may be returned by a scan callback to end the scan early without error.
var ErrStop = errors.New("index: stop scan")

// ScanOptions select records by receive time.
type ScanOptions struct {
	// FromMillis and ToMillis bound the receive time, inclusive; ToMillis 0
	// means no upper bound.
	FromMillis, ToMillis int64
	// Reverse scans newest first.
	Reverse bool
	// Match, when set, filters records before they reach the callback. With
	// Workers > 1 it runs in parallel in worker goroutines, so it must be safe
	// for concurrent use; data is valid only during the call.
	Match func(id record.ID, data []byte) bool
	// Partitions, when set, restricts the scan to partitions marked true.
	Partitions *[record.NumPartitions]bool
	// Workers is how many cores filter in parallel (default 1). A window is
	// split into sharesPerWorker shares per worker, each filtered by a
	// goroutine of its own (see scanWindowParallel).
	Workers int
	// Limit, when set, is the most records the caller will take: no
	// partition run buffers more than that many ahead (a limit=1 query
	// holds one record per run, not a chunk of 128).
	Limit int
}

// Scan calls fn for every record in the time range, in ID order (ascending,
// or descending with Reverse). data is valid only during the call. fn may
// return ErrStop to end the scan. Scan sees every write acknowledged before
// it started; of the writes that land while it runs, it may see some.
func (db *DB) Scan(ctx context.Context, opts ScanOptions, fn func(id record.ID, data []byte) error) error {
	if db.closed.Load() {
		return ErrClosed
	}
	to := opts.ToMillis
	if to == 0 || to > 1<<48-1 {
		to = 1<<48 - 1
	}
	from := max(opts.FromMillis, 0)
	if from > to {
		return nil
	}
	fw, tw := record.WindowOf(from), record.WindowOf(to)
	var windows []record.Window
	for _, w := range db.AllWindows() {
		if w >= fw && w <= tw {
			windows = append(windows, w)
		}
	}
	if opts.Reverse {
		for i, j := 0, len(windows)-1; i < j; i, j = i+1, j-1 {
			windows[i], windows[j] = windows[j], windows[i]
		}
	}
	txn := db.bdb.NewTransactionAt(readAll, false)
	defer txn.Discard()
	for _, w := range windows {
		if err := ctx.Err(); err != nil {
			return err
		}
		counts := db.partitionCounts(w)
		var parts []record.Partition
		for p := 0; p < record.NumPartitions; p++ {
			if counts[p] > 0 && (opts.Partitions == nil || opts.Partitions[p]) {
				parts = append(parts, record.Partition(p))
			}
		}
		if len(parts) == 0 {
			continue
		}
		var err error
		if opts.Workers > 1 && opts.Match != nil && len(parts) > 1 {
			err = db.scanWindowParallel(ctx, txn, w, parts, from, to, opts, fn)
		} else {
			err = db.scanWindow(ctx, txn, w, parts, from, to, opts, fn)
		}
		if errors.Is(err, ErrStop) {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// scanWindow merges the partition runs of one window in one goroutine.
func (db *DB) scanWindow(ctx context.Context, txn *badger.Txn, w record.Window, parts []record.Partition, from, to int64,
	opts ScanOptions, fn func(record.ID, []byte) error) error {
	m := newMerger(ctx, txn, w, parts, from, to, opts.Reverse, opts.Match, chunkFor(opts.Limit))
	defer m.close()
	for n := 0; m.valid(); n++ {
		if n%256 == 255 && ctx.Err() != nil {
			return ctx.Err()
		}
		s := m.top()
		if err := fn(s.id, s.data); err != nil {
			return err
		}
		m.next()
	}
	return ctx.Err() // a cancelled fill ends its run early: not a full answer
}

type scanned struct {
	id   record.ID
	data []byte
}

// sharesPerWorker: a window is split into this many shares per worker, each
// merged and filtered by a goroutine of its own. Shares differ in size, and
// with one share per worker a worker that finished early left its core idle
// until the window's last share was done. BenchmarkScanWord/parallel, 7 runs
// each: median 89.7 ms (84–99) with one share per worker, 81.5 ms (79–89)
// with two; four gave 87–91 ms (3 runs).
const sharesPerWorker = 2

// scanWindowParallel splits the partitions into shares merged and filtered
// by goroutines of their own; the caller merges their ordered outputs.
func (db *DB) scanWindowParallel(ctx context.Context, txn *badger.Txn, w record.Window, parts []record.Partition,
	from, to int64, opts ScanOptions, fn func(record.ID, []byte) error) error {
	workers := min(sharesPerWorker*opts.Workers, len(parts))
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	outs := make([]chan []scanned, workers)
	for i := range workers {
		outs[i] = make(chan []scanned, 4)
		// contiguous shares: a worker reads its part of the window in key order
		share := parts[i*len(parts)/workers : (i+1)*len(parts)/workers]
		wg.Add(1)
		go func(out chan<- []scanned, share []record.Partition) {
			defer wg.Done()
			defer close(out)
			m := newMerger(ctx, txn, w, share, from, to, opts.Reverse, opts.Match, chunkFor(opts.Limit))
			defer m.close()
			var buf []scanned
			send := func() bool {
				select {
				case out <- buf:
					buf = nil
					return true
				case <-ctx.Done():
					return false
				}
			}
			for m.valid() {
				buf = append(buf, m.top())
				if len(buf) >= 64 && !send() {
					return
				}
				m.next()
			}
			if len(buf) > 0 {
				send()
			}
		}(outs[i], share)
	}
	// merge the workers' ordered streams
	heads := make([][]scanned, workers)
	live := workers
	fill := func(i int) {
		for len(heads[i]) == 0 && outs[i] != nil {
			b, ok := <-outs[i]
			if !ok {
				outs[i] = nil
				live--
				return
			}
			heads[i] = b
		}
	}
	for i := range heads {
		fill(i)
	}
	for live > 0 || anyLeft(heads) {
		best := -1
		for i := range heads {
			if len(heads[i]) == 0 {
				continue
			}
			if best < 0 || before(heads[i][0].id, heads[best][0].id, opts.Reverse) {
				best = i
			}
		}
		if best < 0 {
			break
		}
		s := heads[best][0]
		heads[best] = heads[best][1:]
		if err := fn(s.id, s.data); err != nil {
			return err
		}
		fill(best)
	}
	return ctx.Err()
}

func anyLeft(h [][]scanned) bool {
	for _, s := range h {
		if len(s) > 0 {
			return true
		}
	}
	return false
}

func before(a, b record.ID, reverse bool) bool {
	c := record.Compare(a, b)
	if reverse {
		return c > 0
	}
	return c < 0
}

// merger merges the sorted runs of several partitions of one window. It
// reads every run through one Badger iterator, a chunk at a time: each
// partition keeps a small buffer of its next matching records and the
// position to resume from, so a scan costs one iterator per window (not one
// per partition) and one seek per chunk.
type merger struct {
	ctx context.Context
	it  *badger.Iterator
	// last is the key the iterator consumed last: it is positioned just
	// after it, so a fill that resumes there needs no seek (a seek reloads,
	// and often decompresses again, the block it lands in). A seek empties
	// it until the next key is consumed: a fill that seeks and finds its
	// partition ended moves the iterator past keys nobody consumed.
	last    []byte
	runs    []*run
	heap    []*run
	from    int64
	to      int64
	reverse bool
	match   func(record.ID, []byte) bool
	chunk   int // records a run buffers at most (chunkFor)
}

// run is one partition's cursor.
type run struct {
	w      record.Window
	p      record.Partition
	buf    []scanned // matching records not yet merged, in scan order
	head   int
	resume []byte // key to seek to for the next chunk
	skip   bool   // the resume key was already read
	done   bool
	budget int // records the next fill may scan
}

// A fill of a run stops once it buffered mergeChunk matching records or
// scanned its scan budget, which starts at minScan records and doubles with
// every fill up to maxScan: a selective filter scans long stretches per seek
// (and decompresses each block about once), while a query that stops early
// reads little more than it returns.
// A fill also stops once it buffered mergeChunkBytes of record data: a
// query holds one chunk per partition run, and 128 records of 30 KB in each
// of 256 runs was close to a gigabyte for a query asking for one record.
const mergeChunkBytes = 64 << 10

const (
	mergeChunk = 128
	minScan    = 128
	maxScan    = 8192
)

// chunkFor is the records a run buffers at most for a caller that takes
// at most limit (0: no limit).
func chunkFor(limit int) int {
	if limit > 0 && limit < mergeChunk {
		return limit
	}
	return mergeChunk
}

func newMerger(ctx context.Context, txn *badger.Txn, w record.Window, parts []record.Partition, from, to int64, reverse bool,
	match func(record.ID, []byte) bool, chunk int) *merger {
	m := &merger{ctx: ctx, from: from, to: to, reverse: reverse, match: match, chunk: chunk}
	m.it = txn.NewIterator(badger.IteratorOptions{Prefix: windowPrefix(w), Reverse: reverse})
	for _, p := range parts {
		r := &run{w: w, p: p, budget: minScan}
		if match != nil {
			r.budget = maxScan // a filter keeps only what matches: scan long stretches
		}
		if reverse {
			r.resume = appendRecordKey(nil, w, p, record.MaxID(to))
		} else {
			r.resume = appendRecordKey(nil, w, p, record.MinID(from))
		}
		m.runs = append(m.runs, r)
		m.fill(r)
		m.push(r)
	}
	return m
}

// fill reads chunks of r until it has a matching record or is exhausted.
func (m *merger) fill(r *run) {
	r.buf, r.head = r.buf[:0], 0
	prefix := partitionPrefix(r.w, r.p)
	for !r.done && len(r.buf) == 0 {
		if m.ctx.Err() != nil {
			// a filter that keeps little scans long stretches in here: a
			// cancelled query (its client gone) stops at the next chunk
			r.done = true
			break
		}
		if !m.positioned(r) {
			m.it.Seek(r.resume)
			// the iterator no longer stands just after the last key consumed:
			// should this fill consume nothing, the next must seek too
			m.last = m.last[:0]
			if r.skip && m.it.Valid() && bytes.Equal(m.it.Item().Key(), r.resume) {
				m.it.Next()
			}
		}
		held := 0
		for n := 0; n < r.budget && len(r.buf) < m.chunk && held < mergeChunkBytes; n++ {
			if !m.it.Valid() || !bytes.HasPrefix(m.it.Item().Key(), prefix) {
				r.done = true
				break
			}
			item := m.it.Item()
			id, ok := idFromRecordKey(item.Key())
			if !ok {
				m.it.Next()
				continue
			}
			if ms := id.Millis(); ms < m.from || ms > m.to {
				r.done = true
				break
			}
			_ = item.Value(func(v []byte) error {
				if m.match == nil || m.match(id, v) {
					r.buf = append(r.buf, scanned{id, bytes.Clone(v)})
					held += len(v)
				}
				return nil
			})
			r.resume = append(r.resume[:0], item.Key()...)
			m.last = append(m.last[:0], r.resume...)
			m.it.Next()
		}
		r.skip = true
		r.budget = min(2*r.budget, maxScan)
	}
}

// positioned reports whether the iterator already stands where r resumes:
// everything between the last key consumed and the current key is either
// consumed or before r's resume point.
func (m *merger) positioned(r *run) bool {
	if len(m.last) == 0 || !m.it.Valid() {
		return false
	}
	// the first key not yet passed must be the first one r wants: at or
	// after its resume key, or strictly after it when that key was read
	cmpLast, cmpCur := bytes.Compare(m.last, r.resume), bytes.Compare(m.it.Item().Key(), r.resume)
	if m.reverse {
		cmpLast, cmpCur = -cmpLast, -cmpCur
	}
	if r.skip {
		return cmpLast <= 0 && cmpCur > 0
	}
	return cmpLast < 0 && cmpCur >= 0
}

func (m *merger) push(r *run) {
	if r.head >= len(r.buf) {
		return
	}
	m.heap = append(m.heap, r)
	m.up(len(m.heap) - 1)
}

func (m *merger) valid() bool { return len(m.heap) > 0 }

func (m *merger) top() scanned {
	r := m.heap[0]
	return r.buf[r.head]
}

func (m *merger) next() {
	r := m.heap[0]
	r.head++
	if r.head >= len(r.buf) {
		m.fill(r)
	}
	if r.head < len(r.buf) {
		m.down(0)
		return
	}
	last := len(m.heap) - 1
	m.heap[0] = m.heap[last]
	m.heap = m.heap[:last]
	if len(m.heap) > 0 {
		m.down(0)
	}
}

func (m *merger) less(i, j int) bool {
	a, b := m.heap[i], m.heap[j]
	return before(a.buf[a.head].id, b.buf[b.head].id, m.reverse)
}

func (m *merger) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !m.less(i, p) {
			return
		}
		m.heap[i], m.heap[p] = m.heap[p], m.heap[i]
		i = p
	}
}

func (m *merger) down(i int) {
	for {
		l, r, s := 2*i+1, 2*i+2, i
		if l < len(m.heap) && m.less(l, s) {
			s = l
		}
		if r < len(m.heap) && m.less(r, s) {
			s = r
		}
		if s == i {
			return
		}
		m.heap[i], m.heap[s] = m.heap[s], m.heap[i]
		i = s
	}
}

func (m *merger) close() { m.it.Close() }
