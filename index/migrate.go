package index

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"time"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/logmesh/logmesh/record"
)

const metaFormat = "format"

// migrateProgressEvery is how often a migration logs how far it is.
const migrateProgressEvery = 5 * time.Second

// migrateBatchBytes bounds the keys and values one migration transaction
// moves (Badger refuses a transaction larger than a fraction of its
// memtable; the default memtable is 64 MiB).
const migrateBatchBytes = 4 << 20

// migrateFormat brings the record keys to keyFormat. A store of format
// version 1 (written before slices: no "format" metadata, 22-byte record
// keys) is rewritten in place, one bounded transaction at a time, each
// moving a batch of records to their new keys and deleting the old ones
// atomically: a crash or a kill during the migration leaves every record
// under exactly one key, and the next start continues where it stopped. A
// store written by a newer format is refused, not misread.
func (db *DB) migrateFormat() error {
	v, err := db.GetMeta(metaFormat)
	if err != nil {
		return err
	}
	if len(v) > 0 {
		n, err := strconv.Atoi(string(v))
		switch {
		case err != nil:
			return fmt.Errorf("index: store in %s has an unreadable format marker %q", db.cfg.Dir, v)
		case n > formatVersion:
			return fmt.Errorf("index: store in %s has format version %d, written by a newer logmesh; this version reads %d: run the newer version, or move the directory aside (anti-entropy refills the peer)",
				db.cfg.Dir, n, formatVersion)
		case n >= keyFormat:
			db.storedFormat.Store(int32(n))
			return nil // 2, 3 and 4 differ only in what the sealer writes
		}
	}
	total, err := db.countV1Keys()
	if err != nil {
		return fmt.Errorf("index: migrate %s: %w", db.cfg.Dir, err)
	}
	if total > 0 {
		if err := db.moveV1Records(total); err != nil {
			return fmt.Errorf("index: migrate %s to format %d (start again to continue where it stopped): %w", db.cfg.Dir, keyFormat, err)
		}
	}
	if err := db.SetMeta(metaFormat, []byte(strconv.Itoa(keyFormat))); err != nil {
		return err
	}
	db.storedFormat.Store(keyFormat)
	if err := db.bdb.Sync(); err != nil {
		return fmt.Errorf("index: sync after migration: %w", err)
	}
	return nil
}

// countV1Keys counts record keys of format version 1.
func (db *DB) countV1Keys() (int, error) {
	n := 0
	err := db.bdb.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixRecord}, PrefetchValues: false})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if len(it.Item().Key()) == v1RecordKeyLen {
				n++
			}
		}
		return nil
	})
	return n, err
}

// v1ID returns the ID in a record key of format version 1.
func v1ID(k []byte) (record.ID, bool) {
	var id record.ID
	if len(k) != v1RecordKeyLen || k[0] != prefixRecord {
		return id, false
	}
	copy(id[:], k[v1RecordKeyLen-record.IDLen:])
	return id, true
}

func (db *DB) moveV1Records(total int) error {
	log := db.cfg.Logger
	start := time.Now()
	log.Info("migrating the store to a new key format: every record is rewritten once; the peer starts when it is done",
		"dir", db.cfg.Dir, "from_format", 1, "to_format", keyFormat, "records", total)
	moved, lastLog := 0, time.Now()
	// old keys sort by window, then partition; the batch resumes after the
	// last old key moved (new keys of the same window sort among them and
	// are skipped)
	next := []byte{prefixRecord}
	// each record is two entries (the new key, the old key's deletion);
	// half of Badger's transaction limits leaves room for its own overhead
	maxCount := max(1, int(db.bdb.MaxBatchCount()/4))
	maxBytes := min(migrateBatchBytes, int(db.bdb.MaxBatchSize()/4))
	for {
		type kv struct {
			old []byte
			id  record.ID
			val []byte
		}
		var batch []kv
		size := 0
		err := db.bdb.View(func(txn *badger.Txn) error {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixRecord}, PrefetchValues: false})
			defer it.Close()
			for it.Seek(next); it.Valid() && size < maxBytes && len(batch) < maxCount; it.Next() {
				item := it.Item()
				id, ok := v1ID(item.Key())
				if !ok {
					continue
				}
				val, err := item.ValueCopy(nil)
				if err != nil {
					return fmt.Errorf("read record %s: %w", id, err)
				}
				batch = append(batch, kv{item.KeyCopy(nil), id, val})
				size += 2*recordKeyLen + len(val)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if len(batch) == 0 {
			break
		}
		err = db.update(func(txn *badger.Txn) error {
			// the old keys it deletes are settled (settle.go)
			span := keyRange{batch[0].old, append(slices.Clip(batch[len(batch)-1].old), 0)}
			if err := db.settleLater(txn, []keyRange{span}); err != nil {
				return err
			}
			for _, e := range batch {
				if err := txn.Set(recordKey(e.id), e.val); err != nil {
					return err
				}
				if err := txn.Delete(e.old); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("move %d records: %w", len(batch), err)
		}
		moved += len(batch)
		next = append(batch[len(batch)-1].old, 0)
		if db.cfg.migrateHook != nil {
			if err := db.cfg.migrateHook(moved); err != nil {
				return err
			}
		}
		if time.Since(lastLog) >= migrateProgressEvery {
			lastLog = time.Now()
			log.Info("migrating the store", "moved", moved, "of", total,
				"percent", moved*100/total, "window", record.Window(binary.BigEndian.Uint32(batch[len(batch)-1].old[1:5])))
		}
	}
	log.Info("store migrated", "dir", db.cfg.Dir, "records", moved, "to_format", keyFormat,
		"took", time.Since(start).Round(time.Millisecond))
	return nil
}
