package index

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/logmesh/logmesh/record"
)

// A filtering scan that wants every match (no limit: an export, the whole
// store searched for a word) reads each slice once in key order instead of
// merging its partition runs: the merger seeks into every run for every
// chunk, and right after a burst of writes each of those seeks reads a block
// of every level-0 table that overlaps the slice. Measured on the bench's
// store of 8 M syslog lines right after 3 M more arrived: 36 s for the
// merged word query, 11 s for one sequential read on one core (7 s and
// 6.4 s once compactions had caught up). The matches of a slice are few when
// the filter is selective; they are sorted by ID and passed on. A slice
// whose matches would take more than sortedScanBudget is merged as before.

// sortedScanBudget bounds the bytes of matches one slice buffers in
// scanSorted (a variable: tests shrink it).
var sortedScanBudget int64 = 32 << 20

// errOverBudget ends the reads of a slice whose matches outgrew the budget.
var errOverBudget = errors.New("index: matches over the budget of a sorted scan")

// sortedScan reports whether a scan with opts reads slices whole and sorts
// their matches (scanSorted) rather than merging runs.
func sortedScan(opts ScanOptions) bool {
	return opts.Match != nil && opts.Limit == 0 && opts.Workers > 1 && !opts.Unordered
}

// scanSorted scans the slices of window w that hold records in [from, to]
// in scan order, each read by opts.Workers goroutines in parallel and its
// matches sorted (see above); parts and blocks are what a merge of one slice
// needs where a slice has too many matches to hold.
func scanSorted(ctx context.Context, txn *badger.Txn, w record.Window, parts []record.Partition, blocks bool,
	from, to int64, opts ScanOptions, fn func(record.ID, []byte) error) error {
	lo, hi := sliceRange(w, from, to)
	for i := 0; i <= hi-lo; i++ {
		s := lo + i
		if opts.Reverse {
			s = hi - i
		}
		workers := sliceReaders(opts)
		found := make([][]scanned, workers)
		var size atomic.Int64
		err := readSlices(ctx, txn, w, s, s, from, to, opts, workers, func(k int) func(record.ID, []byte) error {
			var arena []byte
			return func(id record.ID, data []byte) error {
				if size.Add(int64(len(data)+len(id)+24)) > sortedScanBudget {
					return errOverBudget
				}
				if len(arena)+len(data) > cap(arena) {
					arena = make([]byte, 0, max(len(data), 256<<10))
				}
				arena = append(arena, data...)
				found[k] = append(found[k], scanned{id, arena[len(arena)-len(data) : len(arena) : len(arena)]})
				return nil
			}
		})
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
		all := slices.Concat(found...)
		slices.SortFunc(all, func(a, b scanned) int {
			if opts.Reverse {
				return record.Compare(b.id, a.id)
			}
			return record.Compare(a.id, b.id)
		})
		for _, r := range all {
			if err := fn(r.id, r.data); err != nil {
				return err
			}
		}
	}
	return ctx.Err()
}

// sliceReaders is how many goroutines readSlices splits a slice among.
func sliceReaders(opts ScanOptions) int {
	return min(max(opts.Workers, 1), record.NumPartitions)
}

// readSlices reads slices lo to hi of window w in key order, split by
// partition among workers goroutines. Goroutine k gets its own callback
// from newVisit(k) (called in that goroutine) and passes it the records in [from, to] that opts.Match (nil: all) and
// opts.Partitions keep, in no order across goroutines. The first error of
// any goroutine, a callback's among them, ends them all and is returned.
func readSlices(ctx context.Context, txn *badger.Txn, w record.Window, lo, hi int, from, to int64,
	opts ScanOptions, workers int, newVisit func(k int) func(record.ID, []byte) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for k := range workers {
		pFrom, pTo := k*record.NumPartitions/workers, (k+1)*record.NumPartitions/workers
		wg.Go(func() {
			visit := newVisit(k)
			for s := lo; s <= hi; s++ {
				if err := readRuns(ctx, txn, w, uint8(s), pFrom, pTo, from, to, opts, visit); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return ctx.Err()
}

// readRuns reads the runs of partitions pFrom to pTo-1 of slice s of window
// w through one iterator, records and blocks alike.
func readRuns(ctx context.Context, txn *badger.Txn, w record.Window, s uint8, pFrom, pTo int, from, to int64,
	opts ScanOptions, visit func(record.ID, []byte) error) error {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: slicePrefix(w, s)})
	defer it.Close()
	var end []byte
	if pTo < record.NumPartitions {
		end = runPrefix(w, s, record.Partition(pTo))
	}
	n := 0
	for it.Seek(runPrefix(w, s, record.Partition(pFrom))); it.Valid(); it.Next() {
		if n++; n%1024 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		item := it.Item()
		k := item.Key()
		if end != nil && bytes.Compare(k, end) >= 0 {
			break
		}
		id, ok := idFromRecordKey(k)
		if !ok {
			if _, last, isBlock := blockRange(k); isBlock && (opts.Partitions == nil || opts.Partitions[last.Partition()]) {
				if err := scanBlock(item, from, to, opts.Match, visit); err != nil {
					return err
				}
			}
			continue
		}
		if ms := id.Millis(); ms < from || ms > to {
			continue
		}
		if opts.Partitions != nil && !opts.Partitions[id.Partition()] {
			continue
		}
		err := item.Value(func(v []byte) error {
			if opts.Match != nil && !opts.Match(id, v) {
				return nil
			}
			return visit(id, v)
		})
		if err != nil {
			return err
		}
	}
	return ctx.Err()
}
