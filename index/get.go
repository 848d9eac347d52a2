package index

import (
	"errors"
	"fmt"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/logmesh/logmesh/record"
)

// Get returns a copy of the encoded record with the given ID.
func (db *DB) Get(id record.ID) ([]byte, error) {
	if db.closed.Load() {
		return nil, ErrClosed
	}
	var out []byte
	err := db.bdb.View(func(txn *badger.Txn) error {
		item, err := txn.Get(recordKey(id))
		if err != nil {
			return err
		}
		out, err = item.ValueCopy(nil)
		return err
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("index: get %s: %w", id, err)
	}
	return out, nil
}

// GetMany calls fn for each of ids that is stored, in the order given, with
// data valid only during the call. Missing IDs are skipped.
func (db *DB) GetMany(ids []record.ID, fn func(id record.ID, data []byte) error) error {
	if db.closed.Load() {
		return ErrClosed
	}
	return db.bdb.View(func(txn *badger.Txn) error {
		for _, id := range ids {
			item, err := txn.Get(recordKey(id))
			if errors.Is(err, badger.ErrKeyNotFound) {
				continue
			}
			if err != nil {
				return fmt.Errorf("index: get %s: %w", id, err)
			}
			if err := item.Value(func(v []byte) error { return fn(id, v) }); err != nil {
				return err
			}
		}
		return nil
	})
}

// PartitionIDs calls fn with the IDs of every record of partition p in
// window w whose bucket lies in [first, end), in ID order.
func (db *DB) PartitionIDs(w record.Window, p record.Partition, first, end record.Bucket, fn func(record.ID) error) error {
	if db.closed.Load() {
		return ErrClosed
	}
	return db.bdb.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: partitionPrefix(w, p)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			id, ok := idFromRecordKey(it.Item().Key())
			if !ok {
				continue
			}
			if b := id.Bucket(); b < first || b >= end {
				continue
			}
			if err := fn(id); err != nil {
				return err
			}
		}
		return nil
	})
}
