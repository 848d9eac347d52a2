package index

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"slices"
	"sync"
	"sync/atomic"

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
	// Workers is how many cores filter in parallel (default 1). Without a
	// Limit each slice is read whole by that many goroutines and its matches
	// sorted (scan_sorted.go); with one a window is split into
	// sharesPerWorker shares per worker, each merged and filtered by a
	// goroutine of its own (scanSlices).
	Workers int
	// Unordered passes records in storage order (by slice, then partition)
	// instead of ID order: one sequential read of each slice, no merge of
	// partition runs. For callers that need no order: counts. Match runs in
	// the scanning goroutine; Workers is ignored.
	Unordered bool
	// Word, when set, says that Match keeps only records that hold this
	// word, or phrase of words, in their message or raw line
	// (record.ContainsWord): a block whose word filter rules it out is
	// skipped without being decompressed. Match must still check it (a
	// filter answers "maybe" for some absent words).
	Word []byte
	// Limit, when set, is the most records the caller will take: no
	// partition run buffers more than that many ahead (a limit=1 query
	// holds one record per run, not a chunk of 128).
	Limit int

	// skipped counts the blocks Word ruled out: the DB's counter, set by
	// Scan and Count.
	skipped *atomic.Uint64
	// moved is the set of the scanned window's slices the snapshot finds
	// moved (moved.go), set by Scan and Count per window.
	moved moved
}

// Scan calls fn for every record in the time range, in ID order (ascending,
// or descending with Reverse). data is valid only during the call. fn may
// return ErrStop to end the scan. Scan reads a snapshot (snapshot.go): every
// write acknowledged before it started, and nothing that lands while it runs.
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
	opts.skipped = &db.stats.blocksSkipped
	txn, release := db.snapshot()
	defer release()
	for _, w := range windows {
		if err := ctx.Err(); err != nil {
			return err
		}
		counts := db.partitionCounts(w)
		var parts []record.Partition
		var records uint64
		for p := 0; p < record.NumPartitions; p++ {
			records += counts[p]
			if counts[p] > 0 && (opts.Partitions == nil || opts.Partitions[p]) {
				parts = append(parts, record.Partition(p))
			}
		}
		if len(parts) == 0 {
			continue
		}
		var err error
		opts := opts
		opts.moved = db.movedIn(txn.ReadTs(), w)
		switch {
		case opts.Unordered:
			err = scanStored(ctx, txn, w, from, to, opts, fn)
		case sortedScan(opts, records):
			err = scanSorted(ctx, txn, w, parts, db.mayHaveBlocks(w), records >= denseWindowRecords, from, to, opts, fn)
		default:
			err = db.scanSlices(ctx, txn, w, parts, from, to, opts, fn)
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

// Count returns how many records Scan with opts would pass. A window the
// range holds whole is counted from its digests when opts.Match is nil
// (every write updates them before it is acknowledged, so the count holds
// every acknowledged record, as a scan does); a window the range cuts, and
// every window when opts.Match is set, is read once in storage order, split
// by partition among opts.Workers goroutines.
func (db *DB) Count(ctx context.Context, opts ScanOptions) (uint64, error) {
	if db.closed.Load() {
		return 0, ErrClosed
	}
	to := opts.ToMillis
	if to == 0 || to > 1<<48-1 {
		to = 1<<48 - 1
	}
	from := max(opts.FromMillis, 0)
	if from > to {
		return 0, nil
	}
	fw, tw := record.WindowOf(from), record.WindowOf(to)
	var n uint64
	opts.skipped = &db.stats.blocksSkipped
	txn, release := db.snapshot()
	defer release()
	for _, w := range db.AllWindows() {
		if w < fw || w > tw {
			continue
		}
		if err := ctx.Err(); err != nil {
			return n, err
		}
		if opts.Match == nil && from <= w.Start() && to >= w.End()-1 {
			for p, c := range db.partitionCounts(w) {
				if opts.Partitions == nil || opts.Partitions[p] {
					n += c
				}
			}
			continue
		}
		lo, hi := sliceRange(w, from, to)
		ps := pieces(lo, hi, sliceReaders(opts), db.windowCount(w) >= denseWindowRecords)
		counts := make([]uint64, len(ps))
		opts := opts
		opts.moved = db.movedIn(txn.ReadTs(), w)
		err := readPieces(ctx, txn, w, ps, from, to, opts, func(k int) func(record.ID, []byte) error {
			return func(record.ID, []byte) error { counts[k]++; return nil }
		})
		for _, c := range counts {
			n += c
		}
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// scanSlices scans the slices of window w that hold records in [from, to],
// in scan order. Slices are disjoint in time, so each is merged on its own
// and their outputs follow one another: a time range reads only the slices
// it touches.
func (db *DB) scanSlices(ctx context.Context, txn *badger.Txn, w record.Window, parts []record.Partition, from, to int64,
	opts ScanOptions, fn func(record.ID, []byte) error) error {
	lo, hi := sliceRange(w, from, to)
	blocks := db.mayHaveBlocks(w)
	shareOf := func(w record.Window, lo, hi int, parts []record.Partition) share {
		return share{w: w, lo: lo, hi: hi, parts: parts, blocks: blocks}
	}
	if opts.Workers <= 1 || opts.Match == nil {
		return scanRange(ctx, txn, shareOf(w, lo, hi, parts), from, to, opts, fn)
	}
	workers := sharesPerWorker * opts.Workers
	var shares []share
	if n := db.windowCount(w); n >= denseWindowRecords && len(parts) > 1 {
		// a window this full may hold most of its records in one slice
		// (the minute being written): split the partitions, merge the
		// shares' outputs
		workers = min(workers, len(parts))
		for i := range workers {
			shares = append(shares, shareOf(w, lo, hi, parts[i*len(parts)/workers:(i+1)*len(parts)/workers]))
		}
		return scanShares(ctx, txn, shares, true, from, to, opts, fn)
	}
	// split the slices: each share is a contiguous stretch of time, and
	// the outputs follow one another (a seek per slice and share would cost
	// more than a sparse slice's records)
	n := hi - lo + 1
	workers = min(workers, n)
	for i := range workers {
		shares = append(shares, shareOf(w, lo+i*n/workers, lo+(i+1)*n/workers-1, parts))
	}
	if opts.Reverse {
		slices.Reverse(shares)
	}
	return scanShares(ctx, txn, shares, false, from, to, opts, fn)
}

// scanStored reads the records of window w in [from, to] in key order
// through one iterator: every block is read once, where a merge of the
// partition runs of a full slice seeks (and decompresses again) for every
// chunk of every run.
func scanStored(ctx context.Context, txn *badger.Txn, w record.Window, from, to int64,
	opts ScanOptions, fn func(record.ID, []byte) error) error {
	lo, hi := sliceRange(w, from, to)
	it := txn.NewIterator(badger.IteratorOptions{Prefix: windowPrefix(w)})
	defer it.Close()
	if opts.moved != 0 {
		// the slices' spaces interleave: a seek per slice
		for s := lo; s <= hi; s++ {
			at := opts.moved.at(uint8(s))
			if err := readKeys(ctx, it, slicePrefix(w, at), slicePrefix(w, at+1), from, to, opts, fn); err != nil {
				return err
			}
		}
		return ctx.Err()
	}
	n := 0
	for it.Seek(slicePrefix(w, uint8(lo))); it.Valid(); it.Next() {
		if n++; n%1024 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		item := it.Item()
		k := item.Key()
		if len(k) > 5 && int(sliceOfKey(k)) > hi {
			break // (the moved space and the markers sort after every slice)
		}
		if err := visitItem(item, from, to, opts, fn); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// visitItem passes fn the records of one stored item (a record or a block)
// in [from, to] that opts.Match (nil: all) and opts.Partitions keep.
func visitItem(item *badger.Item, from, to int64, opts ScanOptions, fn func(record.ID, []byte) error) error {
	k := item.Key()
	id, ok := idFromRecordKey(k)
	if !ok {
		if _, last, isBlock := blockRange(k); isBlock && (opts.Partitions == nil || opts.Partitions[last.Partition()]) {
			return scanBlock(item, from, to, opts, fn)
		}
		return nil
	}
	if ms := id.Millis(); ms < from || ms > to {
		return nil
	}
	if opts.Partitions != nil && !opts.Partitions[id.Partition()] {
		return nil
	}
	return item.Value(func(v []byte) error {
		if opts.Match != nil && !opts.Match(id, v) {
			return nil
		}
		return fn(id, v)
	})
}

// scanBlock calls fn for each record of the block item in [from, to] that
// match (nil: all) keeps, in ID order; none if its filter rules out word.
func scanBlock(item *badger.Item, from, to int64, opts ScanOptions, fn func(record.ID, []byte) error) error {
	match := opts.Match
	return item.Value(func(v []byte) error {
		if blockRulesOut(v, opts.Word, opts.skipped) {
			return nil
		}
		b, err := blockRecordsFor(item.Key(), v, false, opts.Word)
		if err != nil {
			return err
		}
		for i, id := range b.IDs {
			if ms := id.Millis(); ms < from || ms > to {
				continue
			}
			if b.Data[i] == nil { // cannot hold opts.Word
				continue
			}
			if match != nil && !match(id, b.Data[i]) {
				continue
			}
			if err := fn(id, b.Data[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

// denseWindowRecords: a window with at least this many records is split
// among parallel workers by partition, a sparser one by slice (a variable:
// tests take both ways through small windows).
var denseWindowRecords uint64 = 200_000

// sliceRange is the first and the last slice of window w that [from, to]
// touches.
func sliceRange(w record.Window, from, to int64) (lo, hi int) {
	lo, hi = 0, slicesPerWindow-1
	if from > w.Start() {
		lo = int(sliceOf(from))
	}
	if to < w.End()-1 {
		hi = int(sliceOf(to))
	}
	return lo, hi
}

// share is the part of a window one goroutine scans: the runs of parts in
// slices lo to hi.
type share struct {
	w      record.Window
	lo, hi int
	parts  []record.Partition
	blocks bool // the window may hold blocks (mayHaveBlocks)
}

// scanRange scans one share in one goroutine, slice after slice in scan
// order, through one iterator: the next slice with records is where the
// iterator already stands when the last one ended, or one seek away.
func scanRange(ctx context.Context, txn *badger.Txn, sh share, from, to int64,
	opts ScanOptions, fn func(record.ID, []byte) error) error {
	m := newMergerIn(ctx, txn, sh.w, sh.parts, from, to, opts.Reverse, opts.Match, chunkFor(opts.Limit))
	m.word, m.skipped = opts.Word, opts.skipped
	m.blocks = sh.blocks
	m.moved = opts.moved
	defer m.close()
	s, ok := m.nextSlice(-1, sh.lo, sh.hi)
	for ok {
		m.start(uint8(s))
		for n := 0; m.valid(); n++ {
			if n%256 == 255 && ctx.Err() != nil {
				return ctx.Err()
			}
			if m.err != nil {
				return m.err // a block that does not decode: no answer is complete
			}
			s := m.top()
			if err := fn(s.id, s.data); err != nil {
				return err
			}
			m.next()
		}
		if err := ctx.Err(); err != nil {
			return err // a cancelled fill ends its run early: not a full answer
		}
		if m.err != nil {
			return m.err
		}
		s, ok = m.nextSlice(s, sh.lo, sh.hi)
	}
	return nil
}

// nextSlice finds the slice with records that follows slice after (-1:
// none yet) in scan order, within [lo, hi]. Where the iterator stands
// beyond slice after, no key lies between (it got there by stepping, or by
// a seek from inside that slice), so the slice it stands in is the next one;
// otherwise it seeks.
func (m *merger) nextSlice(after, lo, hi int) (int, bool) {
	target := lo
	if m.reverse {
		target = hi
	}
	if after >= 0 {
		if target = after + 1; m.reverse {
			target = after - 1
		}
	}
	if target < lo || target > hi {
		return 0, false
	}
	if m.moved != 0 {
		// the slices' spaces interleave: a seek per slice
		step := 1
		if m.reverse {
			step = -1
		}
		for t := target; t >= lo && t <= hi; t += step {
			at := m.moved.at(uint8(t))
			if m.reverse {
				m.it.Seek(append(slicePrefix(m.w, at), sliceEnd...))
			} else {
				m.it.Seek(slicePrefix(m.w, at))
			}
			m.last = m.last[:0]
			if m.it.Valid() {
				if k := m.it.Item().Key(); len(k) > 5 && sliceOfKey(k) == at {
					return t, true
				}
			}
		}
		return 0, false
	}
	beyond := func(k []byte) bool {
		if len(k) < 6 {
			return false
		}
		if m.reverse {
			return int(sliceOfKey(k)) <= target
		}
		return int(sliceOfKey(k)) >= target
	}
	if after < 0 || !m.it.Valid() || !beyond(m.it.Item().Key()) {
		if m.reverse {
			m.it.Seek(append(slicePrefix(m.w, uint8(target)), sliceEnd...))
		} else {
			m.it.Seek(slicePrefix(m.w, uint8(target)))
		}
		m.last = m.last[:0] // the iterator moved without consuming
	}
	if !m.it.Valid() || len(m.it.Item().Key()) < 6 {
		return 0, false
	}
	s := int(sliceOfKey(m.it.Item().Key()))
	return s, s >= lo && s <= hi
}

// sliceEnd, appended to a slice prefix, sorts after every key of the slice.
var sliceEnd = bytes.Repeat([]byte{0xff}, blockKeyLen-6)

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

// scanShares scans each share in a goroutine of its own and passes their
// outputs on in scan order: merged by ID when the shares split the
// partitions (merge), one after another when they split the time.
func scanShares(ctx context.Context, txn *badger.Txn, shares []share, merge bool,
	from, to int64, opts ScanOptions, fn func(record.ID, []byte) error) error {
	workers := len(shares)
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	outs := make([]chan []scanned, workers)
	for i := range workers {
		outs[i] = make(chan []scanned, 4)
		wg.Add(1)
		go func(out chan<- []scanned, sh share) {
			defer wg.Done()
			defer close(out)
			var buf []scanned
			send := func() error {
				select {
				case out <- buf:
					buf = nil
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			err := scanRange(ctx, txn, sh, from, to, opts, func(id record.ID, data []byte) error {
				// data is a copy the merger made for this record
				buf = append(buf, scanned{id, data})
				if len(buf) >= 64 {
					return send()
				}
				return nil
			})
			if err == nil && len(buf) > 0 {
				send()
			}
		}(outs[i], shares[i])
	}
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
	if !merge {
		// shares in scan order: each one's output in full, then the next's
		for i := range outs {
			for fill(i); len(heads[i]) > 0; fill(i) {
				for _, s := range heads[i] {
					if err := fn(s.id, s.data); err != nil {
						return err
					}
				}
				heads[i] = nil
			}
		}
		return ctx.Err()
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

// merger merges the sorted runs of several partitions of one slice. It
// reads every run through one Badger iterator, a chunk at a time: each
// partition keeps a small buffer of its next matching records and the
// position to resume from, so a scan costs one iterator per slice (not one
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
	w       record.Window
	parts   []record.Partition
	runs    []*run
	heap    []*run
	from    int64
	to      int64
	reverse bool
	match   func(record.ID, []byte) bool
	word    []byte         // ScanOptions.Word: blocks whose filter rules it out are skipped
	skipped *atomic.Uint64 // counts them
	chunk   int            // records a run buffers at most (chunkFor)
	// err is the first block that did not decode
	err error
	// blocks: the window may hold blocks, so a reverse read starts at the
	// end of each run (a seek to the range's end would miss the block that
	// straddles it) and skips what lies beyond
	blocks bool
	// moved: the window's slices the snapshot finds moved (moved.go)
	moved moved
}

// run is one partition's cursor in one slice.
type run struct {
	w      record.Window
	s      uint8
	p      record.Partition
	buf    []scanned // matching records not yet merged, in scan order
	head   int
	resume []byte // key to seek to for the next chunk
	prefix []byte // of the run's keys
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

func newMerger(ctx context.Context, txn *badger.Txn, w record.Window, s uint8, parts []record.Partition, from, to int64, reverse bool,
	match func(record.ID, []byte) bool, chunk int) *merger {
	m := newMergerIn(ctx, txn, w, parts, from, to, reverse, match, chunk)
	m.start(s)
	return m
}

// newMergerIn returns a merger over the given partitions of window w, not
// yet started on a slice.
func newMergerIn(ctx context.Context, txn *badger.Txn, w record.Window, parts []record.Partition, from, to int64, reverse bool,
	match func(record.ID, []byte) bool, chunk int) *merger {
	m := &merger{ctx: ctx, w: w, parts: parts, from: from, to: to, reverse: reverse, match: match, chunk: chunk}
	m.it = txn.NewIterator(badger.IteratorOptions{Prefix: windowPrefix(w), Reverse: reverse})
	m.runs = make([]*run, len(parts))
	for i := range m.runs {
		m.runs[i] = &run{}
	}
	return m
}

// start makes m merge the partition runs of slice s of its window, with
// the iterator and the runs (and their buffers) it already has. The
// iterator keeps its place: the first run needs no seek when it stands
// at that run's first key.
func (m *merger) start(s uint8) {
	m.heap = m.heap[:0]
	for i, p := range m.parts {
		r := m.runs[i]
		at := m.moved.at(s)
		*r = run{w: m.w, s: s, p: p, budget: minScan, buf: r.buf[:0], resume: r.resume[:0],
			prefix: binary.BigEndian.AppendUint16(appendSlicePrefix(r.prefix[:0], m.w, at), uint16(p))}
		if m.match != nil {
			r.budget = maxScan // a filter keeps only what matches: scan long stretches
		}
		switch {
		case m.reverse && m.blocks:
			r.resume = append(append(r.resume, r.prefix...), runEnd...)
		case m.reverse:
			r.resume = appendRunKey(r.resume, m.w, at, p, record.MaxID(m.to))
		default:
			r.resume = appendRunKey(r.resume, m.w, at, p, record.MinID(m.from))
		}
		m.fill(r)
		m.push(r)
	}
}

// fill reads chunks of r until it has a matching record or is exhausted.
func (m *merger) fill(r *run) {
	r.buf, r.head = r.buf[:0], 0
	prefix := r.prefix
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
				if _, _, isBlock := blockRange(item.Key()); isBlock {
					if m.fillBlock(r, item) {
						r.done = true
						break
					}
					r.resume = append(r.resume[:0], item.Key()...)
					m.last = append(m.last[:0], r.resume...)
				}
				m.it.Next()
				continue
			}
			if ms := id.Millis(); m.reverse && m.blocks && ms > m.to {
				// beyond the range's end: read from the run's end
				r.resume = append(r.resume[:0], item.Key()...)
				m.last = append(m.last[:0], r.resume...)
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

// fillBlock buffers the records of the block item that lie in m's range
// and that m.match keeps, in scan order. It reports whether the block
// reaches past the range (the run has nothing more for m).
func (m *merger) fillBlock(r *run, item *badger.Item) (past bool) {
	err := item.Value(func(v []byte) error {
		if blockRulesOut(v, m.word, m.skipped) {
			// nothing of it is wanted; whether it reaches past the range
			// its key says
			first, last, _ := blockRange(item.Key())
			past = m.reverse && first.Millis() < m.from || !m.reverse && last.Millis() > m.to
			return nil
		}
		b, err := blockRecordsFor(item.Key(), v, m.reverse, m.word)
		if err != nil {
			return err
		}
		for i, id := range b.IDs {
			ms := id.Millis()
			if ms < m.from || ms > m.to {
				if (ms < m.from) == m.reverse {
					past = true
				}
				continue
			}
			if b.Data[i] == nil { // cannot hold m.word
				continue
			}
			if m.match == nil || m.match(id, b.Data[i]) {
				r.buf = append(r.buf, scanned{id, b.Data[i]})
			}
		}
		return nil
	})
	if err != nil {
		m.err = err
		return true
	}
	return past
}

// runEnd, appended to a run prefix, sorts after every key of the run.
var runEnd = bytes.Repeat([]byte{0xff}, 2*record.IDLen)

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
