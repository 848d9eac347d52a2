package index

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/logmesh/logmesh/record"
)

// waitInflightEmpty polls until the in-flight set is empty (the store is idle) or
// fails with what is left.
func waitInflightEmpty(t *testing.T, db *DB, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		db.pipe.mu.Lock()
		n, w := len(db.pipe.mu.remote), len(db.pipe.mu.work)
		var some []string
		for id, h := range db.pipe.mu.remote {
			if len(some) < 5 {
				some = append(some, fmt.Sprintf("%s->%p", id, h))
			}
		}
		db.pipe.mu.Unlock()
		if n == 0 && w == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: idle store keeps %d IDs in the in-flight set (%d txns in flight): %v", what, n, w, some)
		}
		time.Sleep(time.Millisecond)
	}
}

// A replicated write (repair after scrub, a hint pushed again) queued
// behind a Delete of the same record, in one group: the delete's removal
// transaction holds the record in the in-flight set, the write counts it
// a duplicate of that transaction and is told it succeeded (Duplicates
// 1) though the record ends up deleted.
func TestAWriteBehindADeleteOfItsRecordInOneGroupStoresIt(t *testing.T) {
	db := openTest(t, t.TempDir())
	lies := 0
	for round := range 5 {
		es := hourOldEntries(1, fmt.Sprint("del", round))
		if _, err := db.Write(context.Background(), es, OriginLocal); err != nil {
			t.Fatal(err)
		}
		release, queued := holdCommitter(t, db)
		del := make(chan dupResult, 1)
		go func() {
			res, err := db.Delete(context.Background(), []record.ID{es[0].ID})
			del <- dupResult{res, err}
		}()
		queued(1)
		w := writeAsync(db, es, OriginRemote)
		queued(2)
		release()
		rd, rw := waitAnswer(t, "delete", del), waitAnswer(t, "write", w)
		_, getErr := db.Get(es[0].ID)
		t.Logf("round %d: delete %+v %v; write %+v %v; Get after: %v", round, rd.res, rd.err, rw.res, rw.err, getErr)
		if rw.err == nil && rw.res.Duplicates == 1 && errors.Is(getErr, ErrNotFound) {
			lies++
		}
		waitInflightEmpty(t, db, "after delete+write")
	}
	if lies > 0 {
		t.Errorf("%d of 5 writes queued after a delete of their record were told it is already stored (Duplicates 1), and it is not stored", lies)
	}
}

// The same across groups: the write is built while the delete's
// transaction is in flight.
func TestAWriteBehindADeleteInFlightStoresIt(t *testing.T) {
	db := openTest(t, t.TempDir())
	lies := 0
	const rounds = 30
	for round := range rounds {
		es := hourOldEntries(300, fmt.Sprint("del", round))
		if _, err := db.Write(context.Background(), es, OriginLocal); err != nil {
			t.Fatal(err)
		}
		ids := make([]record.ID, len(es))
		for i, e := range es {
			ids[i] = e.ID
		}
		req := &writeReq{entries: es, remove: true, done: make(chan struct{})}
		db.reqCh <- req
		w := writeAsync(db, es, OriginRemote)
		<-req.done
		rw := waitAnswer(t, "write", w)
		stored := 0
		for _, e := range es {
			if _, err := db.Get(e.ID); err == nil {
				stored++
			}
		}
		if rw.err == nil && rw.res.Written+rw.res.Duplicates != len(es) {
			t.Errorf("round %d: write of %d counted %+v", round, len(es), rw.res)
		}
		if rw.err == nil && stored < len(es) {
			lies++
			t.Logf("round %d: delete removed %d (%v); write %+v; %d of %d stored after", round, req.res.Written, req.err, rw.res, stored, len(es))
		}
		waitInflightEmpty(t, db, "after delete+write")
	}
	if lies > 0 {
		t.Errorf("%d of %d replicated writes behind a delete succeeded with records not stored", lies, rounds)
	}
}

// A retry group holding an OriginLocal write of an ID that an earlier
// transaction of the group holds (here: a replicated copy, then a local
// write under the same ID). The retry path sets the holder to nil
// unconditionally.
func TestALocalWriteBesideARetryLeavesNothingInFlight(t *testing.T) {
	db := openTest(t, t.TempDir())
	es := hourOldEntries(1, "x")
	other := hourOldEntries(1, "retry")
	release, queued := holdCommitter(t, db)
	r1 := writeAsync(db, es, OriginRemote)
	queued(1)
	r2 := writeAsync(db, es, OriginLocal)
	queued(2)
	r3 := writeAsync(db, other, OriginLocalRetry)
	queued(3)
	release()
	for i, ch := range []chan dupResult{r1, r2, r3} {
		r := waitAnswer(t, fmt.Sprint(i), ch)
		t.Logf("r%d %+v %v", i+1, r.res, r.err)
	}
	waitInflightEmpty(t, db, "local beside retry")
}

// Mixed workload with failures: local, replicated, retries overlapping,
// repeated IDs inside a request, deletes (of stored, missing, in-flight
// records), WriteMeta with a refused meta entry, failed commits, failed
// duplicate checks (a damaged block). Once idle, the in-flight set must be
// empty; every success counts each entry once.
func TestMixedWritesWithFailuresLeaveNothingInFlight(t *testing.T) {
	db := openTest(t, t.TempDir(), func(c *Config) { c.MemTableBytes = 1 << 20; c.MaxBatchRecords = 4000 })
	late := damagedBlockLate(t, db)
	pool := hourOldEntries(3000, "pool")
	var failing atomic.Bool
	var wg sync.WaitGroup
	var bad atomic.Int64
	check := func(what string, es []Entry, res WriteResult, err error) {
		if err == nil && res.Written+res.Duplicates+res.Expired+res.Future != len(es) {
			bad.Add(1)
			t.Errorf("%s of %d: %+v", what, len(es), res)
		}
	}
	for g := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				start := (g*523 + i*211) % len(pool)
				n := 1 + (g*37+i*19)%400
				es := pool[start:min(start+n, len(pool))]
				switch (g + i) % 7 {
				case 0:
					res, err := db.Write(context.Background(), es, OriginRemote)
					check("remote", es, res, err)
				case 1:
					res, err := db.Write(context.Background(), es, OriginLocalRetry)
					check("retry", es, res, err)
				case 2:
					rep := append(append([]Entry{}, es...), es[:min(5, len(es))]...)
					res, err := db.Write(context.Background(), rep, OriginRemote)
					check("repeat", rep, res, err)
				case 3:
					ids := make([]record.ID, 0, len(es))
					for _, e := range es[:min(30, len(es))] {
						ids = append(ids, e.ID)
					}
					ids = append(ids, hourOldEntries(2, "missing")[0].ID)
					_, _ = db.Delete(context.Background(), ids)
				case 4:
					withLate := append([]Entry{es[0]}, late)
					_, _ = db.Write(context.Background(), withLate, OriginRemote)
				case 5:
					huge := string(make([]byte, 70000))
					_, _ = db.WriteMeta(context.Background(), es[:1], OriginRemote, huge, []byte("v"), 0)
				case 6:
					loc := hourOldEntries(1+i, fmt.Sprint("loc", g, i))
					res, err := db.Write(context.Background(), loc, OriginLocal)
					check("local", loc, res, err)
					res, err = db.Write(context.Background(), loc, OriginLocalRetry)
					check("local retry", loc, res, err)
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 15 {
			unblock := failCommits(t, db)
			failing.Store(true)
			time.Sleep(3 * time.Millisecond)
			unblock()
			failing.Store(false)
			time.Sleep(20 * time.Millisecond)
		}
	}()
	wg.Wait()
	waitInflightEmpty(t, db, "mixed work")
	// nothing stays a duplicate for ever: every pool record not stored is
	// stored by one more replicated write
	res, err := db.Write(context.Background(), pool, OriginRemote)
	if err != nil {
		t.Fatal(err)
	}
	missing := 0
	for _, e := range pool {
		if _, err := db.Get(e.ID); err != nil {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("after a final replicated write (%+v), %d of the pool are not stored", res, missing)
	}
	waitInflightEmpty(t, db, "final write")
	for id, c := range journalCounts(t, db) {
		if c < 0 || c > 1 {
			t.Errorf("%s journaled net %d times", id, c)
			break
		}
	}
}
