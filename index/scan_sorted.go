package index

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"slices"
	"sync"
	"sync/atomic"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/logmesh/logmesh/record"
)

// A filtering scan that wants every match (no limit: an export, the whole
// store searched for a word) reads the window once in key order instead of
// merging its partition runs: the merger seeks into every run for every
// chunk, newest-first merges go Badger's slow way, and right after a burst
// of writes each seek reads a block of every level-0 table that overlaps the
// slice. The matches are sorted by ID and passed on. A sparse window
// (fewer than denseWindowRecords) is read whole, its slices split among the
// goroutines, one seek each; a dense one slice by slice, each slice's
// partitions split among them. Matches over sortedScanBudget make a sparse
// window go slice by slice, and a slice merge as before.

// sortedScanBudget bounds the bytes of matches scanSorted buffers at once
// (a variable: tests shrink it).
var sortedScanBudget int64 = 32 << 20

// sortedScanTotal bounds the bytes of matches all sorted scans of the
// process buffer at once (the agent admits up to 64 queries): a scan that
// would go over it merges instead, as one over its own budget does.
var sortedScanTotal int64 = 128 << 20

// sortedInUse is the bytes the sorted scans of the process hold.
var sortedInUse atomic.Int64

// errOverBudget ends reads whose matches outgrew the budget.
var errOverBudget = errors.New("index: matches over the budget of a sorted scan")

// sortedScan reports whether a scan with opts of a window holding records
// reads it in key order and sorts the matches (scanSorted) rather than
// merging runs: when it wants every match and either filters (Workers > 1
// says so: matches are fewer than records, and too many fall back to the
// merge) or takes every record of a window small enough that all of it fits
// the budget (at sortedRecordBytes a record), so that nothing is read twice.
func sortedScan(opts ScanOptions, records uint64) bool {
	if opts.Limit != 0 || opts.Unordered {
		return false
	}
	return (opts.Match != nil && opts.Workers > 1) || records*sortedRecordBytes <= uint64(sortedScanBudget)
}

// sortedRecordBytes is what one buffered record is taken to cost when
// deciding whether a whole window fits the budget: syslog lines of 200
// bytes encode to about as much, plus the ID and the slice header.
const sortedRecordBytes = 300

// sliceReaders is how many goroutines read a window in key order.
func sliceReaders(opts ScanOptions) int {
	return min(max(opts.Workers, 1), record.NumPartitions)
}

// piece is what one goroutine reads of a window: slices lo to hi, of each
// the runs of partitions pFrom to pTo-1.
type piece struct {
	lo, hi     int
	pFrom, pTo int
}

// pieces splits slices lo to hi among n goroutines: by slice when the
// window is sparse (each piece then is one stretch of keys), by partition
// when it is dense (a burst may have put most of it in one slice).
func pieces(lo, hi, n int, dense bool) []piece {
	var ps []piece
	if dense {
		for k := range n {
			ps = append(ps, piece{lo, hi, k * record.NumPartitions / n, (k + 1) * record.NumPartitions / n})
		}
		return ps
	}
	n = min(n, hi-lo+1)
	for k := range n {
		ps = append(ps, piece{lo + k*(hi-lo+1)/n, lo + (k+1)*(hi-lo+1)/n - 1, 0, record.NumPartitions})
	}
	return ps
}

// scanSorted passes on the records of window w in [from, to] that opts
// keeps, in scan order (see above); parts and blocks are what a merge of one
// slice needs where a slice has too many matches to hold.
func scanSorted(ctx context.Context, txn *badger.Txn, w record.Window, parts []record.Partition, blocks, dense bool,
	from, to int64, opts ScanOptions, fn func(record.ID, []byte) error) error {
	lo, hi := sliceRange(w, from, to)
	if !dense {
		c, err := collect(ctx, txn, w, pieces(lo, hi, sliceReaders(opts), false), from, to, opts)
		if err == nil {
			err = passSorted(c.recs, opts.Reverse, fn)
			c.release()
			return err
		}
		if !errors.Is(err, errOverBudget) {
			return err
		}
	}
	order := make([]int, 0, hi-lo+1)
	for s := lo; s <= hi; s++ {
		order = append(order, s)
	}
	if opts.Reverse {
		slices.Reverse(order)
	}
	for _, s := range order {
		c, err := collect(ctx, txn, w, pieces(s, s, sliceReaders(opts), true), from, to, opts)
		if errors.Is(err, errOverBudget) {
			sh := share{w: w, lo: s, hi: s, parts: parts, blocks: blocks}
			if err := scanRange(ctx, txn, sh, from, to, opts, fn); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		err = passSorted(c.recs, opts.Reverse, fn)
		c.release()
		if err != nil {
			return err
		}
	}
	return ctx.Err()
}

// collected is what collect read: the matches in ascending ID order, the
// arenas that hold their bytes and the bytes of sortedInUse they take.
type collected struct {
	recs   []scanned
	arenas []*[]byte
	held   int64
}

// release gives back what c holds; its records are not to be read after.
func (c *collected) release() {
	for _, a := range c.arenas {
		arenaPool.Put(a)
	}
	c.arenas, c.recs = nil, nil
	sortedInUse.Add(-c.held)
	c.held = 0
}

// arenaBytes is the size of the buffers matches are copied into; a record
// larger than that gets one of its own.
const arenaBytes = 256 << 10

// arenaPool keeps arenas between sorted scans: a fresh one is cleared by
// the runtime, which cost as much as copying the records into it.
var arenaPool = sync.Pool{New: func() any { b := make([]byte, 0, arenaBytes); return &b }}

// collect reads the pieces of window w in parallel and returns copies of
// the records in [from, to] that opts keeps, in ascending ID order (the
// caller releases them), or errOverBudget once they take more than
// sortedScanBudget or all sorted scans more than sortedScanTotal (then it
// holds nothing).
func collect(ctx context.Context, txn *badger.Txn, w record.Window, ps []piece, from, to int64, opts ScanOptions) (*collected, error) {
	found := make([][]scanned, len(ps))
	arenas := make([][]*[]byte, len(ps))
	var size atomic.Int64 // reserved of sortedInUse by this scan
	chunk := min(max(sortedScanBudget/256, 1), 64<<10)
	err := readPieces(ctx, txn, w, ps, from, to, opts, func(k int) func(record.ID, []byte) error {
		var arena []byte
		var reserved int64 // of size, not yet taken by a record
		return func(id record.ID, data []byte) error {
			n := int64(len(data) + len(id) + 24)
			if n > reserved {
				// the budgets are taken a chunk at a time: two shared counters
				// touched by every record cost a tenth of the scan
				r := max(n, chunk)
				total := sortedInUse.Add(r)
				if size.Add(r) > sortedScanBudget || total > sortedScanTotal {
					return errOverBudget
				}
				reserved += r
			}
			reserved -= n
			if len(arena)+len(data) > cap(arena) {
				if len(data) > arenaBytes {
					arena = make([]byte, 0, len(data))
				} else {
					a := arenaPool.Get().(*[]byte)
					arenas[k] = append(arenas[k], a)
					arena = (*a)[:0]
				}
			}
			arena = append(arena, data...)
			found[k] = append(found[k], scanned{id, arena[len(arena)-len(data) : len(arena) : len(arena)]})
			return nil
		}
	})
	c := &collected{arenas: slices.Concat(arenas...), held: size.Load()}
	if err != nil {
		c.release()
		return nil, err
	}
	// each piece sorted on a core of its own into its place in one array,
	// then merged if the pieces interleave
	total := 0
	for _, f := range found {
		total += len(f)
	}
	sorted := make([]scanned, total)
	var wg sync.WaitGroup
	off := 0
	for k := range found {
		dst := sorted[off : off+len(found[k])]
		off += len(found[k])
		wg.Go(func() { sortByID(found[k], dst); found[k] = dst })
	}
	wg.Wait()
	c.recs = mergeSorted(sorted, found)
	return c, nil
}

// compareIDs orders IDs as record.Compare does, on two words instead of
// sixteen bytes.
func compareIDs(a, b *record.ID) int {
	if x, y := binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(b[:8]); x != y {
		return cmp.Compare(x, y)
	}
	return cmp.Compare(binary.BigEndian.Uint64(a[8:]), binary.BigEndian.Uint64(b[8:]))
}

// sortByID puts the records rs of one window into dst (as long) sorted by
// ID: a radix sort of their milliseconds in the window (22 bits; stable, so
// records of one millisecond keep their key order), then each run of one
// millisecond by the rest of the ID. Comparison sorts of the records cost as
// much as reading them; this costs a few passes over an array of words. It
// reports whether the result had to be sorted whole again (records of more
// than one window: never those of one piece).
func sortByID(rs, dst []scanned) (whole bool) {
	byID := func(a, b scanned) int { return compareIDs(&a.id, &b.id) }
	if len(rs) < 2 || len(rs) >= 1<<32 {
		copy(dst, rs)
		slices.SortFunc(dst, byID)
		return false
	}
	keys := make([]uint64, len(rs))
	for i, r := range rs {
		keys[i] = uint64(r.id.Millis()%record.WindowMillis)<<32 | uint64(i)
	}
	tmp := make([]uint64, len(rs))
	for shift := 32; shift < 56; shift += 8 {
		var count [256]int
		for _, k := range keys {
			count[byte(k>>shift)]++
		}
		if count[byte(keys[0]>>shift)] == len(keys) {
			continue // one value of this byte: nothing moves
		}
		pos := 0
		for b, c := range count {
			count[b] = pos
			pos += c
		}
		for _, k := range keys {
			b := byte(k >> shift)
			tmp[count[b]] = k
			count[b]++
		}
		keys, tmp = tmp, keys
	}
	for i, k := range keys {
		dst[i] = rs[uint32(k)]
	}
	for i := 0; i < len(dst); {
		j := i + 1
		for j < len(dst) && dst[j].id.Millis() == dst[i].id.Millis() {
			j++
		}
		if j-i > 1 {
			slices.SortFunc(dst[i:j], byID)
		}
		i = j
	}
	if !slices.IsSortedFunc(dst, byID) {
		slices.SortFunc(dst, byID)
		return true
	}
	return false
}

// mergeSorted returns the records of lists, each sorted by ID, in one
// sorted list; all is lists one after the other. Pieces of slices follow
// each other and are all already; pieces of partitions interleave and are
// merged.
func mergeSorted(all []scanned, lists [][]scanned) []scanned {
	lists = slices.DeleteFunc(lists, func(l []scanned) bool { return len(l) == 0 })
	joined := true
	for k := 1; k < len(lists); k++ {
		prev := lists[k-1]
		if compareIDs(&prev[len(prev)-1].id, &lists[k][0].id) >= 0 {
			joined = false
		}
	}
	if joined {
		return all
	}
	out := make([]scanned, 0, len(all))
	for len(lists) > 0 {
		best := 0
		for k := 1; k < len(lists); k++ {
			if compareIDs(&lists[k][0].id, &lists[best][0].id) < 0 {
				best = k
			}
		}
		out = append(out, lists[best][0])
		if lists[best] = lists[best][1:]; len(lists[best]) == 0 {
			lists = slices.Delete(lists, best, best+1)
		}
	}
	return out
}

// passSorted passes records sorted by ID to fn, newest first when reverse.
func passSorted(all []scanned, reverse bool, fn func(record.ID, []byte) error) error {
	for i := range all {
		r := all[i]
		if reverse {
			r = all[len(all)-1-i]
		}
		if err := fn(r.id, r.data); err != nil {
			return err
		}
	}
	return nil
}

// readPieces reads each piece of window w in key order in a goroutine of
// its own. Goroutine k gets its own callback from newVisit(k) (called in
// that goroutine) and passes it the records in [from, to] that opts.Match
// (nil: all) and opts.Partitions keep, in no order across goroutines. The
// first error of any goroutine, a callback's among them, ends them all and
// is returned.
func readPieces(ctx context.Context, txn *badger.Txn, w record.Window, ps []piece, from, to int64,
	opts ScanOptions, newVisit func(k int) func(record.ID, []byte) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	var first error // the first goroutine's error that ended them all
	fail := func(err error) {
		mu.Lock()
		if first == nil {
			first = err
		}
		mu.Unlock()
		cancel()
	}
	var wg sync.WaitGroup
	for k, p := range ps {
		wg.Go(func() {
			visit := newVisit(k)
			it := txn.NewIterator(badger.IteratorOptions{Prefix: windowPrefix(w)})
			defer it.Close()
			mv := opts.moved
			if p.pFrom == 0 && p.pTo == record.NumPartitions && mv == 0 {
				// whole slices: one stretch of keys
				if err := readKeys(ctx, it, slicePrefix(w, uint8(p.lo)), slicePrefix(w, uint8(p.hi+1)), from, to, opts, visit); err != nil {
					fail(err)
				}
				return
			}
			for s := p.lo; s <= p.hi; s++ {
				at := mv.at(uint8(s))
				var end []byte
				if p.pTo < record.NumPartitions {
					end = runPrefix(w, at, record.Partition(p.pTo))
				} else {
					end = slicePrefix(w, at+1)
				}
				if err := readKeys(ctx, it, runPrefix(w, at, record.Partition(p.pFrom)), end, from, to, opts, visit); err != nil {
					fail(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if first != nil && !errors.Is(first, context.Canceled) {
		return first
	}
	return ctx.Err()
}

// readKeys reads the record keys from start up to end through it (an
// iterator over one window), records and blocks alike. Slices are
// 0..slicesPerWindow-1, so the prefix of slice hi+1 ends slice hi and sorts
// before the moved space and the window's markers; the same holds in the
// moved space (at most 0x40|59+1, below the markers).
func readKeys(ctx context.Context, it *badger.Iterator, start, end []byte, from, to int64,
	opts ScanOptions, visit func(record.ID, []byte) error) error {
	n := 0
	for it.Seek(start); it.Valid(); it.Next() {
		if n++; n%1024 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		item := it.Item()
		k := item.Key()
		if bytes.Compare(k, end) >= 0 {
			break
		}
		if err := visitItem(item, from, to, opts, visit); err != nil {
			return err
		}
	}
	return ctx.Err()
}
