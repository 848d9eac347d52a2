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
	// Workers is how many goroutines filter in parallel (default 1).
	Workers int
}

// Scan calls fn for every record in the time range, in ID order (ascending,
// or descending with Reverse). data is valid only during the call. fn may
// return ErrStop to end the scan. Scan reads a consistent snapshot.
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
	txn := db.bdb.NewTransaction(false)
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
			err = db.scanWindow(txn, w, parts, from, to, opts, fn)
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
func (db *DB) scanWindow(txn *badger.Txn, w record.Window, parts []record.Partition, from, to int64,
	opts ScanOptions, fn func(record.ID, []byte) error) error {
	m := newMerger(txn, w, parts, from, to, opts.Reverse)
	defer m.close()
	for m.valid() {
		id, item := m.top()
		err := item.Value(func(v []byte) error {
			if opts.Match != nil && !opts.Match(id, v) {
				return nil
			}
			return fn(id, v)
		})
		if err != nil {
			return err
		}
		m.next()
	}
	return nil
}

type scanned struct {
	id   record.ID
	data []byte
}

// scanWindowParallel splits the partitions among workers that merge and
// filter their share; the caller merges the workers' ordered outputs.
func (db *DB) scanWindowParallel(ctx context.Context, txn *badger.Txn, w record.Window, parts []record.Partition,
	from, to int64, opts ScanOptions, fn func(record.ID, []byte) error) error {
	workers := min(opts.Workers, len(parts))
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	outs := make([]chan []scanned, workers)
	for i := range workers {
		outs[i] = make(chan []scanned, 4)
		var share []record.Partition
		for j := i; j < len(parts); j += workers {
			share = append(share, parts[j])
		}
		wg.Add(1)
		go func(out chan<- []scanned, share []record.Partition) {
			defer wg.Done()
			defer close(out)
			m := newMerger(txn, w, share, from, to, opts.Reverse)
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
				id, item := m.top()
				_ = item.Value(func(v []byte) error {
					if opts.Match(id, v) {
						buf = append(buf, scanned{id, bytes.Clone(v)})
					}
					return nil
				})
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

// merger merges the sorted runs of several partitions of one window.
type merger struct {
	its     []*badger.Iterator
	heap    []mergeItem
	from    int64
	to      int64
	reverse bool
}

type mergeItem struct {
	id record.ID
	it *badger.Iterator
}

func newMerger(txn *badger.Txn, w record.Window, parts []record.Partition, from, to int64, reverse bool) *merger {
	m := &merger{from: from, to: to, reverse: reverse}
	for _, p := range parts {
		prefix := partitionPrefix(w, p)
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, Reverse: reverse})
		m.its = append(m.its, it)
		if reverse {
			it.Seek(appendRecordKey(nil, w, p, record.MaxID(to)))
		} else {
			it.Seek(appendRecordKey(nil, w, p, record.MinID(from)))
		}
		m.push(it)
	}
	return m
}

// push adds the iterator's current item to the heap if it is in range.
func (m *merger) push(it *badger.Iterator) {
	if !it.Valid() {
		return
	}
	id, ok := idFromRecordKey(it.Item().Key())
	if !ok {
		return
	}
	ms := id.Millis()
	if ms < m.from || ms > m.to {
		return
	}
	m.heap = append(m.heap, mergeItem{id, it})
	m.up(len(m.heap) - 1)
}

func (m *merger) valid() bool { return len(m.heap) > 0 }

func (m *merger) top() (record.ID, *badger.Item) { return m.heap[0].id, m.heap[0].it.Item() }

func (m *merger) next() {
	it := m.heap[0].it
	last := len(m.heap) - 1
	m.heap[0] = m.heap[last]
	m.heap = m.heap[:last]
	if len(m.heap) > 0 {
		m.down(0)
	}
	it.Next()
	m.push(it)
}

func (m *merger) less(i, j int) bool { return before(m.heap[i].id, m.heap[j].id, m.reverse) }

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

func (m *merger) close() {
	for _, it := range m.its {
		it.Close()
	}
}
