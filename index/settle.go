package index

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	badger "github.com/dgraph-io/badger/v4"
)

// Deletes are settled before compactions may drop them.
//
// Badger's value-log collection (RunValueLogGC) keeps a value of a log file
// if looking its key up *at the value's own version* finds it, and writes it
// back at that version. A tombstone is newer than the value it deletes, so
// the look-up does not see it: until a compaction has merged tombstone and
// value, a collection writes the deleted value back, and the copy lands
// above the tombstone in the tree. Reads still take the newest version (the
// tombstone) — until a compaction drops the tombstone at the last level
// (nothing below it overlaps, its version is below the discard timestamp)
// before the copy has come down to meet it. Then the deleted key is back
// (Badger v4.9.6; its fix of #2286 holds tombstones only while a rewrite
// runs). In this store that is a loose record the sealer replaced coming
// back beside its block, a block an unseal replaced beside its records:
// records read twice, counts too high
// (TestValueLogCollectionBesideTheSealerResurrectsNothing).
//
// So every deleted version gets a tombstone of its own, at its own version:
// the collection's look-up finds that tombstone (it is newer in the tree than
// the value) and drops the value, and a copy written back before it sits
// below it. A transaction that deletes stores, with its deletes, the key
// ranges it deleted in (settleLater). Before the discard timestamp is
// raised past such a transaction, settle reads every version of every key
// in them and writes, beside each version that a newer version at or
// below the new discard timestamp hides, a tombstone at that version. Only
// then may compactions drop the newer tombstone. A snapshot older than the
// delete would miss the value under its own-version tombstone, so settle
// waits until no such snapshot is in use. A collection does not run while
// settle writes (db.collecting): one that read a value as live before its
// tombstone was written would write the copy above it.

// prefixSettle is the prefix of the deletes still to settle: 's' seq(8),
// valued with the key ranges they deleted in; the key's version is the
// deleting transaction's.
const prefixSettle = 's'

func settleKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefixSettle}, seq)
}

// keyRange is the keys from start up to, not including, end.
type keyRange struct{ start, end []byte }

// prefixRange is the range of the keys that begin with p.
func prefixRange(p []byte) keyRange {
	end := append([]byte(nil), p...)
	for len(end) > 0 && end[len(end)-1] == 0xff {
		end = end[:len(end)-1]
	}
	if len(end) > 0 {
		end[len(end)-1]++
	}
	return keyRange{p, end}
}

// prefixRanges is prefixRange of each of ps.
func prefixRanges(ps [][]byte) []keyRange {
	out := make([]keyRange, len(ps))
	for i, p := range ps {
		out[i] = prefixRange(p)
	}
	return out
}

// settleLater records in txn (a transaction or a write batch) that it
// deletes keys in ranges.
func (db *DB) settleLater(txn interface{ Set(k, v []byte) error }, ranges []keyRange) error {
	if len(ranges) == 0 {
		return nil
	}
	var v []byte
	for _, r := range ranges {
		for _, k := range [][]byte{r.start, r.end} {
			v = binary.AppendUvarint(v, uint64(len(k)))
			v = append(v, k...)
		}
	}
	return txn.Set(settleKey(db.settleSeq.Add(1)), v)
}

func decodeSettle(v []byte) ([]keyRange, error) {
	var keys [][]byte
	for len(v) > 0 {
		n, k := binary.Uvarint(v)
		if k <= 0 || uint64(len(v)-k) < n {
			return nil, errors.New("damaged list of key ranges")
		}
		keys = append(keys, v[k:k+int(n)])
		v = v[k+int(n):]
	}
	if len(keys)%2 != 0 {
		return nil, errors.New("damaged list of key ranges")
	}
	out := make([]keyRange, 0, len(keys)/2)
	for i := 0; i < len(keys); i += 2 {
		out = append(out, keyRange{keys[i], keys[i+1]})
	}
	return out, nil
}

// loadSettleSeq continues the numbering of the deletes to settle.
func (db *DB) loadSettleSeq() error {
	return db.bdb.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixSettle}, Reverse: true})
		defer it.Close()
		it.Seek(settleKey(^uint64(0)))
		if it.Valid() {
			db.settleSeq.Store(binary.BigEndian.Uint64(it.Item().Key()[1:]))
		}
		return nil
	})
}

// settle settles every delete committed at or below upTo (no snapshot in
// use reads below it) and returns how many own-version tombstones it wrote.
func (db *DB) settle(upTo uint64) (int, error) {
	type pending struct {
		key    []byte
		ranges []keyRange
	}
	var todo []pending
	err := db.bdb.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixSettle}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			if item.Version() > upTo {
				continue
			}
			v, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			rs, err := decodeSettle(v)
			if err != nil {
				return fmt.Errorf("settle entry %x: %w", item.Key(), err)
			}
			todo = append(todo, pending{item.KeyCopy(nil), rs})
		}
		return nil
	})
	if err != nil || len(todo) == 0 {
		return 0, err
	}
	db.collecting.RLock()
	defer db.collecting.RUnlock()
	written := 0
	seen := map[string]bool{}
	for _, p := range todo {
		for _, r := range p.ranges {
			if seen[string(r.start)+"\x00"+string(r.end)] {
				continue
			}
			seen[string(r.start)+"\x00"+string(r.end)] = true
			n, err := db.settleRange(r, upTo)
			written += n
			if err != nil {
				return written, err
			}
		}
	}
	db.stats.settled.Add(uint64(written))
	for len(todo) > 0 { // in transactions Badger takes
		n := min(len(todo), 1000)
		err := db.update(func(txn *badger.Txn) error {
			for _, p := range todo[:n] {
				if err := txn.Delete(p.key); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return written, fmt.Errorf("index: forget settled deletes: %w", err)
		}
		todo = todo[n:]
	}
	return written, nil
}

// settleRange writes, in r, a tombstone at the version of every value that
// a newer version at or below upTo hides.
func (db *DB) settleRange(r keyRange, upTo uint64) (int, error) {
	wb := db.bdb.NewManagedWriteBatch()
	defer wb.Cancel()
	n := 0
	err := db.bdb.View(func(txn *badger.Txn) error {
		common := 0 // the iterator skips tables outside the common prefix
		for common < len(r.start) && common < len(r.end) && r.start[common] == r.end[common] {
			common++
		}
		it := txn.NewIterator(badger.IteratorOptions{Prefix: r.start[:common], AllVersions: true})
		defer it.Close()
		var key []byte
		hidden := false // a newer version of key, at or below upTo, hides the rest
		for it.Seek(r.start); it.Valid(); it.Next() {
			item := it.Item()
			if len(r.end) > 0 && bytes.Compare(item.Key(), r.end) >= 0 {
				break
			}
			if !bytes.Equal(item.Key(), key) {
				key, hidden = item.KeyCopy(key[:0]), false
			}
			v := item.Version()
			if hidden && !item.IsDeletedOrExpired() {
				if err := wb.DeleteAt(item.KeyCopy(nil), v); err != nil {
					return err
				}
				n++
			}
			if v <= upTo {
				hidden = true
			}
		}
		return nil
	})
	if err == nil {
		err = wb.Flush()
	}
	if err != nil {
		return n, fmt.Errorf("index: settle deletes in %x..%x: %w", r.start, r.end, err)
	}
	return n, nil
}
