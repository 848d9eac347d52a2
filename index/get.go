package index

import (
	"bytes"
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
	err := db.view(func(txn *badger.Txn) error {
		mv := db.movedIn(txn.ReadTs(), id.Window())
		if db.idMayBeInBlock(id) {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: idRunPrefixIn(mv, id)})
			defer it.Close()
			found, err := findInRun(it, mv, id, func(v []byte) error { out = bytes.Clone(v); return nil })
			if err == nil && !found {
				err = badger.ErrKeyNotFound
			}
			return err
		}
		item, err := txn.Get(recordKeyIn(mv, id))
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
	return db.view(func(txn *badger.Txn) error {
		var it *badger.Iterator // for windows with blocks
		defer func() {
			if it != nil {
				it.Close()
			}
		}()
		for _, id := range ids {
			mv := db.movedIn(txn.ReadTs(), id.Window())
			if db.idMayBeInBlock(id) {
				if it == nil {
					it = txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixRecord}})
				}
				if _, err := findInRun(it, mv, id, func(v []byte) error { return fn(id, v) }); err != nil {
					return fmt.Errorf("index: get %s: %w", id, err)
				}
				continue
			}
			item, err := txn.Get(recordKeyIn(mv, id))
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
	return db.view(func(txn *badger.Txn) error {
		// one run per slice: seek to the partition's run in each slice
		// that holds records, jumping over empty slices
		// (with moved slices, a seek per slice: the spaces interleave)
		mv := db.movedIn(txn.ReadTs(), w)
		it := txn.NewIterator(badger.IteratorOptions{Prefix: windowPrefix(w)})
		defer it.Close()
		for s := 0; s < slicesPerWindow; s++ {
			at := mv.at(uint8(s))
			prefix := runPrefix(w, at, p)
			it.Seek(prefix)
			if !it.Valid() {
				if mv == 0 {
					return nil
				}
				continue
			}
			if k := it.Item().Key(); len(k) > 5 && sliceOfKey(k) != at {
				switch b := sliceOfKey(k); {
				case mv != 0:
				case b < movedSpace:
					s = int(b) - 1 // the next slice with records
				default:
					return nil // past the last slice (a sealer's copy, a marker)
				}
				continue
			}
			for ; it.Valid() && bytes.HasPrefix(it.Item().Key(), prefix); it.Next() {
				item := it.Item()
				id, ok := idFromRecordKey(item.Key())
				if !ok {
					if _, _, isBlock := blockRange(item.Key()); isBlock {
						if err := blockIDs(item, first, end, fn); err != nil {
							return err
						}
					}
					continue
				}
				if b := id.Bucket(); b < first || b >= end {
					continue
				}
				if err := fn(id); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// blockIDs calls fn with the IDs of the block item whose buckets lie in
// [first, end), in ID order.
func blockIDs(item *badger.Item, first, end record.Bucket, fn func(record.ID) error) error {
	return item.Value(func(v []byte) error {
		b, err := blockRecords(item.Key(), v, false)
		if err != nil {
			return err
		}
		for _, id := range b.IDs {
			if bk := id.Bucket(); bk >= first && bk < end {
				if err := fn(id); err != nil {
					return err
				}
			}
		}
		return nil
	})
}
