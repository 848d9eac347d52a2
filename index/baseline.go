package index

import (
	"bytes"
	"fmt"
	"time"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/logmesh/logmesh/record"
)

// Baseline is a bare Badger database with the same engine settings as a DB
// (engineOptions) but none of logmesh's work (no journal, digests, dedup or
// framing). The benchmarks measure logmesh against it in the same run.
type Baseline struct {
	bdb *badger.DB
}

// OpenBaseline opens a bare Badger database in dir with cfg's engine settings.
func OpenBaseline(cfg Config) (*Baseline, error) { return openBaseline(cfg, false) }

// OpenDurableBaseline is OpenBaseline with Badger's SyncWrites: each commit
// returns only once Badger has synced its log to disk.
func OpenDurableBaseline(cfg Config) (*Baseline, error) { return openBaseline(cfg, true) }

func openBaseline(cfg Config, syncWrites bool) (*Baseline, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	opts := engineOptions(cfg, cfg.Dir).WithLogger(nil).WithSyncWrites(syncWrites)
	bdb, err := badger.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("open baseline: %w", err)
	}
	return &Baseline{bdb: bdb}, nil
}

// Write stores values under 'r'+id keys (time-ordered) with one WriteBatch
// and returns how long it took.
func (b *Baseline) Write(ids []record.ID, values [][]byte) (time.Duration, error) {
	return b.write(ids, values, func(id record.ID) []byte { return append([]byte{prefixRecord}, id[:]...) })
}

// WriteLayout stores values under the keys a DB gives records (window,
// partition, id) with one WriteBatch and returns how long it took: Badger's
// cost for logmesh's data layout, without logmesh.
func (b *Baseline) WriteLayout(ids []record.ID, values [][]byte) (time.Duration, error) {
	return b.write(ids, values, recordKey)
}

func (b *Baseline) write(ids []record.ID, values [][]byte, key func(record.ID) []byte) (time.Duration, error) {
	start := time.Now()
	wb := b.bdb.NewWriteBatch()
	for i, id := range ids {
		if err := wb.Set(key(id), values[i]); err != nil {
			wb.Cancel()
			return 0, err
		}
	}
	err := wb.Flush()
	return time.Since(start), err
}

// Commit stores values under the keys a DB gives records in one Badger
// transaction and returns once Badger has applied it. It is the least a
// store could do with a batch in logmesh's layout: no journal, digests,
// duplicate check or sync. Safe for concurrent use: Badger batches
// concurrent commits into shared writes, as a DB's group commit does.
func (b *Baseline) Commit(ids []record.ID, values [][]byte) error {
	txn := b.bdb.NewTransaction(true)
	defer txn.Discard()
	for i, id := range ids {
		if err := txn.Set(recordKey(id), values[i]); err != nil {
			return fmt.Errorf("baseline commit: %w", err)
		}
	}
	if err := txn.Commit(); err != nil {
		return fmt.Errorf("baseline commit: %w", err)
	}
	return nil
}

// Each calls fn with every record stored under logmesh's keys, in key
// order, with data valid only during the call.
func (b *Baseline) Each(fn func(id record.ID, data []byte) error) error {
	return b.bdb.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixRecord}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			id, ok := idFromRecordKey(it.Item().Key())
			if !ok {
				continue
			}
			if err := it.Item().Value(func(v []byte) error { return fn(id, v) }); err != nil {
				return err
			}
		}
		return nil
	})
}

// CountContains iterates every record and counts values containing word.
func (b *Baseline) CountContains(word []byte) (n int, err error) {
	err = b.bdb.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixRecord}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			_ = it.Item().Value(func(v []byte) error {
				if bytes.Contains(v, word) {
					n++
				}
				return nil
			})
		}
		return nil
	})
	return n, err
}

// CountRange iterates the records received in [from, to] ms, reading each value.
func (b *Baseline) CountRange(from, to int64) (n int, err error) {
	lo, hi := record.MinID(from), record.MaxID(to)
	err = b.bdb.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixRecord}})
		defer it.Close()
		for it.Seek(append([]byte{prefixRecord}, lo[:]...)); it.Valid(); it.Next() {
			k := it.Item().Key()
			if bytes.Compare(k[1:], hi[:]) > 0 {
				break
			}
			_ = it.Item().Value(func(v []byte) error { n += len(v) & 0; return nil })
			n++
		}
		return nil
	})
	return n, err
}

// Close closes the baseline database.
func (b *Baseline) Close() error { return b.bdb.Close() }

// Compact flattens the LSM tree and garbage-collects the value log, so disk
// usage reflects the data rather than write amplification in flight.
func (db *DB) Compact() error {
	if err := db.writeCheckpoint(); err != nil {
		return err
	}
	if err := db.pruneJournal(); err != nil {
		return err
	}
	db.allowDiscard()
	if err := db.dropMoved(true); err != nil {
		return err
	}
	if err := db.bdb.Flatten(2); err != nil {
		return fmt.Errorf("index: flatten: %w", err)
	}
	for db.collectValueLog(0.1) == nil {
		db.wrote()
	}
	return nil
}

// DiskBytes returns the disk space the store's files take.
func (db *DB) DiskBytes() int64 {
	lsm, vlog := db.diskUsage()
	return lsm + vlog
}
