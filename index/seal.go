package index

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/logmesh/logmesh/record"
)

// Sealed runs (store format 2, read side).
//
// A partition's run in a slice may hold blocks (block.go) besides loose
// records: a block replaces the loose records first..last of the run with
// one entry keyed at its last record (appendBlockKey). Two rules keep every
// reader simple: no loose record of a run lies inside the range of one of
// its blocks, and the blocks of a run do not overlap. Then a run read in key
// order yields its records in ID order, a forward seek to an ID lands on the
// block that may hold it, and the last key of a run names its newest record.
//
// A window that holds blocks carries a marker key (windowPrefix, then the
// slice byte blocksMarker), written with its first block and dropped with
// the window. Readers ask mayHaveBlocks where a block costs them a
// different path: a reverse seek to an ID in the middle of a run misses the
// block that straddles it, so in such a window a reverse read starts at the
// end of the run instead.
//
// Only sealRun writes blocks, and nothing calls it yet but the tests: the
// write side (sealing closed windows in the background, a late record or a
// delete inside a block's range rewriting the block, the format version
// that tells an older binary it cannot read the store) comes next; see
// docs/architecture.md.

// blocksMarker is the slice byte of a window's blocks marker: no slice has it.
const blocksMarker = 0xff

func blocksMarkerKey(w record.Window) []byte { return append(windowPrefix(w), blocksMarker) }

// blockWindows is the set of windows that may hold blocks.
type blockWindows struct {
	mu sync.RWMutex
	m  map[record.Window]bool
}

func (db *DB) mayHaveBlocks(w record.Window) bool {
	db.blocks.mu.RLock()
	defer db.blocks.mu.RUnlock()
	return db.blocks.m[w]
}

func (db *DB) noteBlocks(w record.Window) {
	db.blocks.mu.Lock()
	defer db.blocks.mu.Unlock()
	if db.blocks.m == nil {
		db.blocks.m = map[record.Window]bool{}
	}
	db.blocks.m[w] = true
}

// loadBlockWindows reads the windows' blocks markers.
func (db *DB) loadBlockWindows() error {
	return db.bdb.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixRecord}, PrefetchValues: false})
		defer it.Close()
		for it.Rewind(); it.Valid(); {
			k := it.Item().Key()
			if len(k) < 5 {
				it.Next()
				continue
			}
			w := record.Window(uint32(k[1])<<24 | uint32(k[2])<<16 | uint32(k[3])<<8 | uint32(k[4]))
			if _, err := txn.Get(blocksMarkerKey(w)); err == nil {
				db.noteBlocks(w)
			} else if !errors.Is(err, badger.ErrKeyNotFound) {
				return err
			}
			it.Seek(windowPrefix(w + 1))
		}
		return nil
	})
}

// findInRun looks id up with a forward iterator positioned anywhere: the
// first key at or after id's key is either id's own or the block that may
// hold it. It calls fn with the record's encoding and reports whether it
// was found.
func findInRun(it *badger.Iterator, id record.ID, fn func(data []byte) error) (bool, error) {
	key := recordKey(id)
	it.Seek(key)
	if !it.Valid() {
		return false, nil
	}
	item := it.Item()
	k := item.Key()
	if bytes.Equal(k, key) {
		return true, item.Value(fn)
	}
	first, last, ok := blockRange(k)
	if !ok || !bytes.HasPrefix(k, key[:recordKeyLen-record.IDLen]) ||
		record.Compare(id, first) < 0 || record.Compare(id, last) > 0 {
		return false, nil
	}
	var data []byte
	err := item.Value(func(v []byte) error {
		b, err := decodeBlock(v)
		if err != nil {
			return fmt.Errorf("block %x: %w", k, err)
		}
		if i, found := slices.BinarySearchFunc(b.IDs, id, record.Compare); found {
			data = b.Data[i]
		}
		return nil
	})
	if err != nil || data == nil {
		return false, err
	}
	return true, fn(data)
}

// blockRecords decodes the block of key k (value v) and returns its records
// in scan order (reverse: newest first).
func blockRecords(k, v []byte, reverse bool) (decodedBlock, error) {
	b, err := decodeBlock(v)
	if err != nil {
		return b, fmt.Errorf("index: block %x: %w", k, err)
	}
	if reverse {
		slices.Reverse(b.IDs)
		slices.Reverse(b.Data)
	}
	return b, nil
}

// sealRun replaces loose records of partition p in slice s of window w by
// blocks of at most per records: the first limit of them (0: all), cut
// wherever a block already stands, one block and the deletion of its loose
// records per transaction. It returns how many records it sealed. It must
// not run beside writes or deletes of the same run (nothing calls it but
// the tests yet).
func (db *DB) sealRun(w record.Window, s uint8, p record.Partition, per, limit int) (int, error) {
	if per < 1 {
		return 0, fmt.Errorf("index: seal: %d records per block", per)
	}
	var groups [][]blockRecord // runs of consecutive loose records
	err := db.bdb.View(func(txn *badger.Txn) error {
		prefix := runPrefix(w, s, p)
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		var cur []blockRecord
		n := 0
		for it.Rewind(); it.Valid() && (limit == 0 || n < limit); it.Next() {
			id, ok := idFromRecordKey(it.Item().Key())
			if !ok {
				if len(cur) > 0 {
					groups, cur = append(groups, cur), nil
				}
				continue
			}
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			cur = append(cur, blockRecord{ID: id, Data: v})
			n++
		}
		if len(cur) > 0 {
			groups = append(groups, cur)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("index: seal window %d slice %d partition %d: %w", w, s, p, err)
	}
	sealed := 0
	for _, g := range groups {
		for i := 0; i < len(g); i += per {
			recs := g[i:min(i+per, len(g))]
			blk, err := appendBlock(nil, recs)
			if err != nil {
				return sealed, err
			}
			db.noteBlocks(w) // before any reader can meet the block
			err = db.update(func(txn *badger.Txn) error {
				if err := txn.Set(blocksMarkerKey(w), nil); err != nil {
					return err
				}
				if err := txn.Set(appendBlockKey(nil, w, s, p, recs[0].ID, recs[len(recs)-1].ID), blk); err != nil {
					return err
				}
				for _, r := range recs {
					if err := txn.Delete(recordKey(r.ID)); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return sealed, fmt.Errorf("index: seal window %d slice %d partition %d: %w", w, s, p, err)
			}
			sealed += len(recs)
		}
	}
	return sealed, nil
}
