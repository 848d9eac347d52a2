package index

import (
	"encoding/binary"
	"os"
	"sync"
	"sync/atomic"
	"testing"

	badger "github.com/dgraph-io/badger/v4"
)

// TestBareBadgerCollectionBringsDeletedKeysBack shows, on Badger alone, why
// deletes are settled (settle.go): keys deleted before and during value-log
// collections come back once compactions have merged the tree. It fails
// once Badger no longer does that. It runs only when asked
// (LOGMESH_BADGER_REPRO=1: it shows a property of the dependency, not of
// this code):
//
//	LOGMESH_BADGER_REPRO=1 go test -run TestBareBadgerCollectionBringsDeletedKeysBack -v ./index
func TestBareBadgerCollectionBringsDeletedKeysBack(t *testing.T) {
	if os.Getenv("LOGMESH_BADGER_REPRO") == "" {
		t.Skip("shows a Badger bug, not this code's; LOGMESH_BADGER_REPRO=1 runs it")
	}
	opts := badger.DefaultOptions(t.TempDir()).WithValueThreshold(64).WithValueLogFileSize(4 << 20).
		WithLogger(nil).WithMemTableSize(4 << 20).WithBaseTableSize(1 << 20).WithNumLevelZeroTables(2)
	db, err := badger.OpenManaged(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var ts atomic.Uint64
	key := func(i int) []byte { return binary.BigEndian.AppendUint64(nil, uint64(i)) }
	write := func(from, to int, del bool) { // in transactions of 1 000 keys
		for i := from; i < to; i += 1000 {
			v := ts.Add(1)
			txn := db.NewTransactionAt(v, true)
			for j := i; j < min(i+1000, to); j++ {
				if del {
					err = txn.Delete(key(j))
				} else {
					err = txn.Set(key(j), make([]byte, 200))
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if err := txn.CommitAt(v, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	const n = 400_000
	write(0, n, false)
	for i := 0; i < n; i += 2000 { // every other thousand deleted and compacted away
		write(i, i+1000, true)
	}
	db.SetDiscardTs(ts.Load())
	if err := db.Flatten(2); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // collections without pause while the rest is deleted
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				_ = db.RunValueLogGC(0.1)
			}
		}
	}()
	for i := 1000; i < n; i += 2000 {
		write(i, i+1000, true)
	}
	close(stop)
	wg.Wait()
	db.SetDiscardTs(ts.Load())
	for range 3 {
		if err := db.Flatten(2); err != nil {
			t.Fatal(err)
		}
	}
	txn := db.NewTransactionAt(ts.Load(), false)
	defer txn.Discard()
	it := txn.NewIterator(badger.IteratorOptions{})
	defer it.Close()
	back := 0
	for it.Rewind(); it.Valid(); it.Next() {
		back++
	}
	t.Logf("%d of %d deleted keys came back", back, n)
	if back == 0 {
		t.Fatal("no deleted key came back: Badger may no longer need deletes settled (settle.go)")
	}
}
