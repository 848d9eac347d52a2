package index

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/logmesh/logmesh/record"
)

// The store picks Badger's commit timestamps itself (managed mode). A
// reopened store must go on above every version on disk, or a key written
// after the restart would hide behind its older version.
func TestWritesAfterReopenAreNewest(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	db := openTest(t, dir)
	for i := range 50 {
		if err := db.SetMeta("k", fmt.Appendf(nil, "v%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	es := makeEntries(10, time.Now().Add(-time.Minute), time.Minute, 1)
	if _, err := db.Write(ctx, es, OriginLocal); err != nil {
		t.Fatal(err)
	}
	crash(db)

	db = openTest(t, dir)
	if err := db.SetMeta("k", []byte("after")); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Delete(ctx, []record.ID{es[0].ID}); err != nil {
		t.Fatal(err)
	}
	check := func(db *DB, when string) {
		t.Helper()
		if v, err := db.GetMeta("k"); err != nil || string(v) != "after" {
			t.Fatalf("%s: meta k = %q, %v; want the write made after the restart", when, v, err)
		}
		if _, err := db.Get(es[0].ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("%s: record deleted after the restart is back: %v", when, err)
		}
		if _, err := db.Get(es[1].ID); err != nil {
			t.Fatalf("%s: record 1: %v", when, err)
		}
	}
	check(db, "before reopening")
	crash(db)
	check(openTest(t, dir), "after reopening")
}

// A data directory written by Badger in its own timestamp mode (logmesh
// before managed mode) opens with its versions intact, and new writes are
// newer than all of them.
func TestOpensStoreWrittenInBadgersOwnMode(t *testing.T) {
	dir := t.TempDir()
	db := openTest(t, dir)
	crash(db)
	opts := engineOptions(TestConfig(dir), filepath.Join(dir, "badger")).WithLogger(nil)
	bdb, err := badger.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 { // move Badger's own timestamps well ahead
		if err := bdb.Update(func(txn *badger.Txn) error {
			return txn.Set(metaKey("k"), fmt.Appendf(nil, "old%d", i))
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := bdb.Close(); err != nil {
		t.Fatal(err)
	}
	db = openTest(t, dir)
	if v, err := db.GetMeta("k"); err != nil || string(v) != "old99" {
		t.Fatalf("meta k = %q, %v; want old99", v, err)
	}
	if err := db.SetMeta("k", []byte("new")); err != nil {
		t.Fatal(err)
	}
	if v, err := db.GetMeta("k"); err != nil || string(v) != "new" {
		t.Fatalf("meta k = %q, %v; want new", v, err)
	}
}

// Maintenance lets compactions drop the versions newer ones hide: without
// it Badger keeps every version in managed mode.
func TestMaintenanceLetsCompactionsDropHiddenVersions(t *testing.T) {
	db := openTest(t, t.TempDir(), func(c *Config) {
		c.MemTableBytes, c.L0Tables = 1<<20, 1 // compact soon after a flush
		c.MaintenanceInterval = time.Hour      // only when the test says
	})
	for i := range 200 {
		if err := db.SetMeta("k", fmt.Appendf(nil, "v%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	versions := func() int {
		t.Helper()
		n := 0
		txn := db.bdb.NewTransactionAt(readAll, false)
		defer txn.Discard()
		it := txn.NewIterator(badger.IteratorOptions{AllVersions: true, Prefix: metaKey("k")})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			n++
		}
		return n
	}
	if n := versions(); n != 200 {
		t.Fatalf("%d versions before maintenance, want all 200", n)
	}
	db.Maintain()
	// fill memtables so that the versions go through flushes and compactions
	filler := make([]byte, 32<<10)
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; versions() > 1; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("%d versions of a key after %d filler writes; compactions kept the hidden ones", versions(), i)
		}
		if err := db.SetMeta(fmt.Sprintf("filler/%d", i), filler); err != nil {
			t.Fatal(err)
		}
	}
	if v, err := db.GetMeta("k"); err != nil || string(v) != "v199" {
		t.Fatalf("meta k = %q, %v; want v199", v, err)
	}
}
