package index

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/logmesh/logmesh/record"
)

// settleEntriesAtOrBelow lists the versions of the settle entries at or below ts.
func settleEntriesAtOrBelow(t *testing.T, db *DB, ts uint64) []uint64 {
	t.Helper()
	var out []uint64
	err := db.bdb.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixSettle}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if v := it.Item().Version(); v <= ts {
				out = append(out, v)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDiscardNeverPassesAnUnsettledDelete: deletes outside the group commit
// (a metadata key's) take their timestamp before Badger applies them;
// allowDiscard must not let compactions pass a timestamp whose delete settle
// could not see yet. (Written by review.)
func TestDiscardNeverPassesAnUnsettledDelete(t *testing.T) {
	db := openTest(t, t.TempDir(), func(c *Config) {
		// no maintenance of its own: it would raise readTs while the test reads it
		c.ValueThreshold, c.MaintenanceInterval = 1, time.Hour
	})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := 0; g < 2; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("victim%d", g)
				if err := db.SetMeta(name, []byte(fmt.Sprintf("value %d padding padding padding", i))); err != nil {
					t.Error(err)
					return
				}
				if err := db.SetMeta(name, nil); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()
	// before the fix it failed within 7 iterations; each settles every
	// version of the two hot keys again, so a few hundred suffice
	deadline := time.Now().Add(5 * time.Second)
	for i := 0; i < 300 && time.Now().Before(deadline); i++ {
		db.allowDiscard()
		upTo := db.discardBelow() // nothing but allowDiscard moves readTs here
		_ = db.bdb.Sync()         // give a commit in flight time to land
		if left := settleEntriesAtOrBelow(t, db, upTo); len(left) > 0 {
			t.Fatalf("iteration %d: discard timestamp raised to %d, but settle entries at versions %v (<= it) were never settled",
				i, upTo, left)
		}
	}
}

// TestMigratedRecordsAreSettled: the migration of a format-1 store deletes
// every old record key; those deletes are settled like any other, so no
// value-log collection writes an old key back. (Written by review.)
func TestMigratedRecordsAreSettled(t *testing.T) {
	dir := t.TempDir()
	cfgMut := func(c *Config) { c.ValueThreshold = 1 }
	db := openTest(t, dir, cfgMut)
	es := makeEntries(50, time.Now().Add(-2*time.Hour), time.Hour, 3)
	if _, err := db.Write(context.Background(), es, OriginLocal); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	// turn it into a format-1 store
	cfg := TestConfig(dir)
	cfgMut(&cfg)
	cfg.fillDefaults()
	bdb, err := badger.OpenManaged(engineOptions(cfg, filepath.Join(dir, "badger")).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	ts := bdb.MaxVersion() + 1
	txn := bdb.NewTransactionAt(readAll, true)
	for _, e := range es {
		k := recordKey(e.ID)
		v1 := append([]byte{prefixRecord}, k[1:5]...)
		v1 = append(v1, byte(e.ID.Partition()))
		v1 = append(v1, e.ID[:]...)
		if err := txn.Delete(k); err != nil {
			t.Fatal(err)
		}
		if err := txn.Set(v1, e.Data); err != nil {
			t.Fatal(err)
		}
	}
	if err := txn.Delete(metaKey(metaFormat)); err != nil {
		t.Fatal(err)
	}
	if err := txn.CommitAt(ts, nil); err != nil {
		t.Fatal(err)
	}
	if err := bdb.Close(); err != nil {
		t.Fatal(err)
	}

	db = openTest(t, dir, cfgMut) // migrates
	if got := pendingSettles(t, db); got == 0 {
		t.Errorf("the migration deleted %d format-1 keys but left no delete to settle", len(es))
	}
	db.allowDiscard()
	// every deleted v1 value should now carry a tombstone at its own version
	unsettled := 0
	err = db.bdb.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixRecord}, AllVersions: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if len(it.Item().Key()) == v1RecordKeyLen && !it.Item().IsDeletedOrExpired() {
				unsettled++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if unsettled > 0 {
		t.Fatalf("after allowDiscard, %d deleted format-1 values have no own-version tombstone (a value-log collection writes them back above the migration's tombstone)", unsettled)
	}
}

// unsettledValues counts the record values a newer version hides that have
// no tombstone of their own at their version (settle.go).
func unsettledValues(t *testing.T, db *DB) int {
	t.Helper()
	n := 0
	err := db.bdb.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixRecord}, AllVersions: true})
		defer it.Close()
		var key []byte
		hidden := false
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			if !bytes.Equal(item.Key(), key) {
				key, hidden = item.KeyCopy(key[:0]), false
			}
			if hidden && !item.IsDeletedOrExpired() {
				n++
			}
			hidden = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestRemovalsAndUnsealsAreSettled: the group commit's deletes — records
// removed, and a block a late record unseals — are settled like the
// sealer's, so no value-log collection can write them back.
func TestRemovalsAndUnsealsAreSettled(t *testing.T) {
	db := openTest(t, t.TempDir(), func(c *Config) { c.ValueThreshold, c.MaintenanceInterval = 1, time.Hour })
	w := record.WindowOf(time.Now().UnixMilli() - 2*record.WindowMillis)
	const p = record.Partition(9)
	es := writeSlices(t, db, w, p, 40, 5, 6)
	if _, err := db.sealRun(w, 5, p, 16, 0); err != nil {
		t.Fatal(err)
	}
	db.allowDiscard()
	if n := unsettledValues(t, db); n != 0 {
		t.Fatalf("%d values the sealer deleted are not settled", n)
	}
	var gone []record.ID
	for _, e := range es[40:50] { // loose records of slice 6
		gone = append(gone, e.ID)
	}
	if _, err := db.Delete(context.Background(), gone); err != nil {
		t.Fatal(err)
	}
	late := idIn(sliceStart(w, 5)+150, p) // inside a block of slice 5
	r := &record.Record{ID: late, Message: "late"}
	if _, err := db.Write(context.Background(), []Entry{{ID: late, Data: r.AppendEncode(nil)}}, OriginRemote); err != nil {
		t.Fatal(err)
	}
	if db.Stats().BlocksUnsealed == 0 {
		t.Fatal("the late record unsealed no block")
	}
	before := unsettledValues(t, db)
	db.allowDiscard()
	if n := unsettledValues(t, db); before == 0 || n != 0 {
		t.Fatalf("%d deleted values before settling, %d after; want some, then none", before, n)
	}
}
