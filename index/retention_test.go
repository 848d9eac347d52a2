package index

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"
	"weak"
)

// TestAnsweredWritesAreNotRetained: once a write is answered, the store
// keeps no reference to its batch. Before, the committer's list of waiting
// writers was re-sliced, and the array kept every answered request (and
// its entries) reachable until it happened to be reallocated: an idle peer
// held ~130 MB after a burst.
func TestAnsweredWritesAreNotRetained(t *testing.T) {
	db := openTest(t, t.TempDir())
	var probes []weak.Pointer[Entry]
	var wg sync.WaitGroup
	for i := 0; i < 32; i++ { // at once: the committer's list grows
		entries := makeEntries(100, time.Now(), time.Second, uint64(i))
		probes = append(probes, weak.Make(&entries[0]))
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := db.Write(context.Background(), entries, OriginLocal); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	// one more small write so that the committer loop ran past them
	if _, err := db.Write(context.Background(), makeEntries(1, time.Now(), time.Second, 99), OriginLocal); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	runtime.GC()
	for i, p := range probes {
		if p.Value() != nil {
			t.Fatalf("the entries of answered write %d are still reachable", i)
		}
	}
}
