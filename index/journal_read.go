package index

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/logmesh/logmesh/record"
)

// Applied returns the journal sequence of the last commit applied: every
// journal entry up to it is durable (per the fsync policy) and readable.
func (db *DB) Applied() uint64 { return db.applied.Load() }

// Changes returns a channel that receives a value (coalesced: at most one
// pending) whenever commits are applied, and a function to stop. Replication
// waits on it instead of polling.
func (db *DB) Changes() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	db.subs.Lock()
	id := db.subs.next
	db.subs.next++
	db.subs.m[id] = ch
	db.subs.Unlock()
	return ch, func() {
		db.subs.Lock()
		delete(db.subs.m, id)
		db.subs.Unlock()
	}
}

func (db *DB) notifyChanges() {
	db.subs.Lock()
	for _, ch := range db.subs.m {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	db.subs.Unlock()
}

// ReadJournal returns up to max journal entries with sequences from from up
// to Applied, in order. Entries pruned already are skipped; the first entry
// returned may therefore come after from.
func (db *DB) ReadJournal(from uint64, max int) ([]JournalEntry, error) {
	if db.closed.Load() {
		return nil, ErrClosed
	}
	limit := db.Applied()
	var out []JournalEntry
	err := db.bdb.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixJournal}})
		defer it.Close()
		for it.Seek(journalKey(from)); it.Valid() && len(out) < max; it.Next() {
			seq := binary.BigEndian.Uint64(it.Item().Key()[1:])
			if seq > limit {
				break
			}
			var e JournalEntry
			if err := it.Item().Value(func(v []byte) (err error) { e, err = decodeJournal(seq, v); return err }); err != nil {
				return err
			}
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("index: read journal from %d: %w", from, err)
	}
	return out, nil
}

// Delete removes records by ID (those not stored are ignored), with their
// digests, and returns once that is durable per the fsync policy. Result's
// Written counts the records removed.
func (db *DB) Delete(ctx context.Context, ids []record.ID) (WriteResult, error) {
	if db.closed.Load() {
		return WriteResult{}, ErrClosed
	}
	if len(ids) == 0 {
		return WriteResult{}, nil
	}
	entries := make([]Entry, len(ids))
	for i, id := range ids {
		entries[i].ID = id
	}
	return db.submit(ctx, &writeReq{entries: entries, remove: true, done: make(chan struct{})})
}

// GetMeta returns a small metadata value ("" and no error when unset).
func (db *DB) GetMeta(name string) ([]byte, error) {
	var v []byte
	err := db.bdb.View(func(txn *badger.Txn) error {
		item, err := txn.Get(metaKey(name))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		v, err = item.ValueCopy(nil)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("index: get %s: %w", name, err)
	}
	return v, nil
}

// SetMeta stores a small metadata value (nil deletes it). It is written
// without waiting for a sync; callers that need durability call Sync.
func (db *DB) SetMeta(name string, value []byte) error {
	err := db.update(func(txn *badger.Txn) error {
		if value == nil {
			if err := db.settleLater(txn, []keyRange{prefixRange(metaKey(name))}); err != nil {
				return err
			}
			return txn.Delete(metaKey(name))
		}
		return txn.Set(metaKey(name), value)
	})
	if err != nil {
		return fmt.Errorf("index: set %s: %w", name, err)
	}
	return nil
}

// MetaKeys returns the names of metadata values that start with prefix.
func (db *DB) MetaKeys(prefix string) ([]string, error) {
	var out []string
	err := db.bdb.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: metaKey(prefix)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			out = append(out, string(it.Item().Key()[1:]))
		}
		return nil
	})
	return out, err
}
