package index

// A review's attacks on the default write path (commit.go): duplicates of
// records in flight, retries beside their first attempt, deletes of missing
// records, meta entries, and writes racing Close.

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/logmesh/logmesh/record"
)

type dupResult struct {
	res WriteResult
	err error
}

// holdCommitter parks the committer (inCommitter) until the returned release is
// called; queued polls until n requests wait for it (one group).
func holdCommitter(t *testing.T, db *DB) (release func(), queued func(n int)) {
	t.Helper()
	rel, busy, held := make(chan struct{}), make(chan struct{}), make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(rel) }) }
	go func() {
		defer close(held)
		_ = db.inCommitter(func() error { close(busy); <-rel; return nil })
	}()
	t.Cleanup(func() { release(); <-held })
	<-busy
	queued = func(n int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for len(db.reqCh) < n {
			if time.Now().After(deadline) {
				t.Fatalf("%d requests queued after 10 s, want %d", len(db.reqCh), n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	return release, queued
}

func writeAsync(db *DB, es []Entry, origin Origin) chan dupResult {
	ch := make(chan dupResult, 1)
	go func() {
		res, err := db.Write(context.Background(), es, origin)
		ch <- dupResult{res, err}
	}()
	return ch
}

func waitAnswer(t *testing.T, what string, ch chan dupResult) dupResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: not answered after 20 s on an idle store", what)
	}
	return dupResult{}
}

// journalCounts counts, per ID, the OpAdd journal entries naming it.
func journalCounts(t *testing.T, db *DB) map[record.ID]int {
	t.Helper()
	out := map[record.ID]int{}
	from := uint64(0)
	for {
		es, err := db.ReadJournal(from, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) == 0 {
			return out
		}
		for _, e := range es {
			for _, id := range e.IDs {
				if e.Op == OpAdd {
					out[id]++
				} else {
					out[id]--
				}
			}
			from = e.Seq + 1
		}
	}
}

// enqueueWrite queues a write before it returns (what submit does first)
// and waits for its answer in the background.
func enqueueWrite(db *DB, es []Entry, origin Origin) chan dupResult {
	req := &writeReq{entries: es, origin: origin, done: make(chan struct{})}
	db.reqCh <- req
	ch := make(chan dupResult, 1)
	go func() {
		<-req.done
		ch <- dupResult{req.res, req.err}
	}()
	return ch
}

func hourOldEntries(n int, tag string) []Entry {
	ms := time.Now().Add(-time.Hour).UnixMilli()
	g := record.NewGenerator(func() time.Time { return time.UnixMilli(ms) })
	es := make([]Entry, n)
	for i := range es {
		id := g.Next()
		es[i] = Entry{ID: id, Data: (&record.Record{ID: id, Message: fmt.Sprintf("%s %d", tag, i)}).AppendEncode(nil)}
	}
	return es
}

// A client's local write spans several transactions of a group; its retry
// under the same IDs (OriginLocalRetry, an idempotency key) is queued
// behind it in the same group. Every ID is then stored by the first: the
// retry must count them all as duplicates, and the journal and digests
// hold each ID once. Whether the first attempt's earlier transactions are
// still in flight when the retry is checked depends on timing: ten rounds.
func TestARetryBesideItsFirstAttemptInOneGroupWritesNothingTwice(t *testing.T) {
	db := openTest(t, t.TempDir(), func(c *Config) { c.MemTableBytes = 1 << 20; c.MaxBatchRecords = 1 << 20 })
	n := 4 * int(db.bdb.MaxBatchCount())
	const rounds = 10
	for round := range rounds {
		es := hourOldEntries(n, fmt.Sprint("first", round))
		release, queued := holdCommitter(t, db)
		first := writeAsync(db, es, OriginLocal)
		queued(1)
		retry := writeAsync(db, es, OriginLocalRetry)
		queued(2)
		release()
		r1, r2 := waitAnswer(t, "first", first), waitAnswer(t, "retry", retry)
		if r1.err != nil || r2.err != nil {
			t.Fatalf("round %d: errors: %v / %v", round, r1.err, r2.err)
		}
		if r1.res.Written != n || r2.res.Written != 0 || r2.res.Duplicates != n {
			t.Errorf("round %d: first wrote %d, retry wrote %d and found %d duplicates; want %d, 0, %d", round, r1.res.Written, r2.res.Written, r2.res.Duplicates, n, n)
		}
	}
	n *= rounds
	twice := 0
	for _, c := range journalCounts(t, db) {
		if c != 1 {
			twice++
		}
	}
	if twice > 0 {
		t.Errorf("%d IDs are journaled more than once", twice)
	}
	if d := db.Digest(); d.Count != uint64(n) {
		t.Errorf("the digests count %d records, %d are stored", d.Count, n)
	}
}

// The same, with the retry in the next group (the client gave up waiting
// and retried at once, while the first attempt's commit is in flight).
func TestARetryBehindItsFirstAttemptInFlightWritesNothingTwice(t *testing.T) {
	db := openTest(t, t.TempDir(), func(c *Config) { c.MemTableBytes = 1 << 20 })
	n := int(db.bdb.MaxBatchCount()) / 2
	total, bad := 0, 0
	for round := range 20 {
		es := hourOldEntries(n, fmt.Sprint("r", round))
		// the first attempt is queued before its retry, as in the agent,
		// where the retry learns the IDs from what the first one stored
		first := enqueueWrite(db, es, OriginLocal)
		retry := writeAsync(db, es, OriginLocalRetry)
		r1, r2 := waitAnswer(t, "first", first), waitAnswer(t, "retry", retry)
		if r1.err != nil || r2.err != nil {
			t.Fatalf("errors: %v / %v", r1.err, r2.err)
		}
		total += n
		if r1.res.Written+r2.res.Written != n {
			bad++
			t.Logf("round %d: first wrote %d, retry wrote %d, %d dup (want %d written in all)", round, r1.res.Written, r2.res.Written, r2.res.Duplicates, n)
		}
	}
	if bad > 0 {
		t.Errorf("%d of 20 rounds counted records written twice", bad)
	}
	if d := db.Digest(); d.Count != uint64(total) {
		t.Errorf("the digests count %d records, %d are stored", d.Count, total)
	}
}

// failCommits makes Badger refuse every commit (ErrBlockedWrites), as a
// write error of its log would, until the returned function is called.
func failCommits(t *testing.T, db *DB) func() {
	t.Helper()
	f := reflect.ValueOf(db.bdb).Elem().FieldByName("blockWrites")
	if !f.IsValid() || f.Type() != reflect.TypeFor[atomic.Int32]() {
		t.Skip("this Badger has no blockWrites flag to make commits fail with")
	}
	p := (*atomic.Int32)(unsafe.Pointer(f.UnsafeAddr()))
	p.Store(1)
	return func() { p.Store(0) }
}

// Two replicated requests of one group carry the same record; the first's
// transaction fails in Badger (a log write error). The second counted the
// record as a duplicate of the first: it must not be told it succeeded
// while the record is not stored.
func TestADuplicateOfAFailedCommitFails(t *testing.T) {
	db := openTest(t, t.TempDir())
	es := hourOldEntries(3, "x")
	release, queued := holdCommitter(t, db)
	first := writeAsync(db, es, OriginRemote)
	queued(1)
	second := writeAsync(db, es[1:2], OriginRemote)
	queued(2)
	unblock := failCommits(t, db)
	release()
	r1, r2 := waitAnswer(t, "first", first), waitAnswer(t, "second", second)
	unblock()
	t.Logf("first %+v %v; second %+v %v", r1.res, r1.err, r2.res, r2.err)
	_, getErr := db.Get(es[1].ID)
	if r1.err == nil {
		t.Errorf("first write succeeded although its commit failed")
	}
	if r2.err == nil && r2.res.Written+r2.res.Duplicates > 0 && errors.Is(getErr, ErrNotFound) {
		t.Errorf("second write succeeded (%+v) with its record a duplicate, but it is not stored", r2.res)
	}
}

// The same across groups: the second request is built while the first's
// failing transaction is in flight (the in-flight set).
func TestADuplicateOfAFailedCommitInFlightFails(t *testing.T) {
	db := openTest(t, t.TempDir())
	lies := 0
	for round := range 30 {
		es := hourOldEntries(200, fmt.Sprint("r", round))
		unblock := failCommits(t, db)
		first := writeAsync(db, es, OriginRemote)
		second := writeAsync(db, es, OriginRemote)
		r1, r2 := waitAnswer(t, "first", first), waitAnswer(t, "second", second)
		unblock()
		stored := 0
		for _, e := range es {
			if _, err := db.Get(e.ID); err == nil {
				stored++
			}
		}
		for i, r := range []dupResult{r1, r2} {
			if r.err == nil && stored < r.res.Written+r.res.Duplicates {
				lies++
				t.Logf("round %d: request %d succeeded %+v with %d of %d stored", round, i, r.res, stored, len(es))
			}
		}
	}
	if lies > 0 {
		t.Errorf("%d requests succeeded for records not stored", lies)
	}
}

// A delete of a stored record and of one never stored, then (same group)
// a replicated write of the one never stored: it is not stored, so the
// write must store it (or fail), not count it a duplicate.
func TestAWriteBesideADeleteOfTheMissingRecordStoresIt(t *testing.T) {
	db := openTest(t, t.TempDir())
	es := hourOldEntries(2, "d")
	if _, err := db.Write(context.Background(), es[:1], OriginLocal); err != nil {
		t.Fatal(err)
	}
	release, queued := holdCommitter(t, db)
	del := make(chan dupResult, 1)
	go func() {
		res, err := db.Delete(context.Background(), []record.ID{es[0].ID, es[1].ID})
		del <- dupResult{res, err}
	}()
	queued(1)
	w := writeAsync(db, es[1:], OriginRemote)
	queued(2)
	release()
	rd, rw := waitAnswer(t, "delete", del), waitAnswer(t, "write", w)
	t.Logf("delete %+v %v; write %+v %v", rd.res, rd.err, rw.res, rw.err)
	_, getErr := db.Get(es[1].ID)
	if rw.err == nil && rw.res.Duplicates == 1 && errors.Is(getErr, ErrNotFound) {
		t.Errorf("the write counted a record never stored as a duplicate, and it is not stored")
	}
}

// damagedBlockLate seals a run and damages the block holding es[50]; it
// returns a late record whose duplicate check meets that block (and fails).
func damagedBlockLate(t *testing.T, db *DB) Entry {
	t.Helper()
	es := oneRun(t, db, 100, 5)
	w, s := es[0].ID.Window(), sliceOf(es[0].ID.Millis())
	if _, err := db.sealRun(w, s, 5, 10, 0); err != nil {
		t.Fatal(err)
	}
	bk, _, err := db.coveringBlock(es[50].ID)
	if err != nil || len(bk) != blockKeyLen {
		t.Fatalf("block of es[50]: %x, %v", bk, err)
	}
	updateInCommitter(t, db, func(txn *badger.Txn) error { return txn.Set(bk, []byte("not a block")) })
	return entryAt(es[50].ID.Millis()+1, 5, "late")
}

// Group: R1 writes A (replicated), R2 sends A again (a duplicate of R1's,
// in the open transaction), R3's duplicate check fails and the open
// transaction is discarded. R1 gets an error (ad275a9); R2 must not be told
// it succeeded with A "already stored".
func TestADuplicateInADiscardedTransactionFails(t *testing.T) {
	db := openTest(t, t.TempDir())
	late := damagedBlockLate(t, db)
	a := hourOldEntries(1, "a")
	release, queued := holdCommitter(t, db)
	r1c := writeAsync(db, a, OriginRemote)
	queued(1)
	r2c := writeAsync(db, a, OriginRemote)
	queued(2)
	r3c := writeAsync(db, []Entry{late}, OriginRemote)
	queued(3)
	release()
	r1, r2, r3 := waitAnswer(t, "r1", r1c), waitAnswer(t, "r2", r2c), waitAnswer(t, "r3", r3c)
	t.Logf("r1 %+v %v\nr2 %+v %v\nr3 %+v %v", r1.res, r1.err, r2.res, r2.err, r3.res, r3.err)
	_, getErr := db.Get(a[0].ID)
	if r2.err == nil && errors.Is(getErr, ErrNotFound) {
		t.Errorf("r2 succeeded (%+v) but its record is not stored", r2.res)
	}
}

// Writers (local, replicated, retries of each other's IDs) race Close:
// every caller must be answered, and whatever was acknowledged must be
// stored after a reopen.
func TestWritersRacingCloseAreAnsweredAndKeepWhatWasAcknowledged(t *testing.T) {
	for round := range 6 {
		dir := t.TempDir()
		db := openTest(t, dir, func(c *Config) { c.FsyncInterval = 0 })
		var mu sync.Mutex
		acked := map[record.ID]bool{}
		var wg sync.WaitGroup
		var started atomic.Int64
		for g := range 48 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					es := hourOldEntries(1+(g*7+i)%40, fmt.Sprint(round, g, i))
					origin := []Origin{OriginLocal, OriginRemote, OriginLocalRetry}[(g+i)%3]
					started.Add(1)
					res, err := db.Write(context.Background(), es, origin)
					if err != nil {
						return
					}
					if res.Written+res.Duplicates != len(es) {
						t.Errorf("write of %d: %+v", len(es), res)
					}
					mu.Lock()
					for _, e := range es {
						acked[e.ID] = true
					}
					mu.Unlock()
				}
			}()
		}
		deadline := time.Now().Add(10 * time.Second)
		for started.Load() < int64(100*(round+1)) && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatalf("round %d: writers not all answered 20 s after Close", round)
		}
		db = openTest(t, dir)
		missing := 0
		for id := range acked {
			if _, err := db.Get(id); err != nil {
				missing++
			}
		}
		if missing > 0 {
			t.Errorf("round %d: %d of %d acknowledged records are not stored after a reopen", round, missing, len(acked))
		}
		digestsAgree(t, db)
		db.Close()
	}
}

// Many writers send overlapping replicated batches (each record sent by
// several), with local writes beside: per record, exactly one request
// counts it written; the journal names each once; after a reopen
// everything acknowledged reads back.
func TestOverlappingReplicationCountsEachRecordOnce(t *testing.T) {
	dir := t.TempDir()
	db := openTest(t, dir, func(c *Config) { c.MemTableBytes = 1 << 20; c.MaxBatchRecords = 3000 })
	pool := hourOldEntries(6000, "pool")
	var written atomic.Int64
	var wg sync.WaitGroup
	var localAcked sync.Map
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 30; i++ {
				start := ((g*997 + i*613) % len(pool))
				n := 1 + (g*31+i*17)%700
				es := pool[start:min(start+n, len(pool))]
				res, err := db.Write(context.Background(), es, OriginRemote)
				if err != nil {
					t.Error(err)
					return
				}
				if res.Written+res.Duplicates != len(es) {
					t.Errorf("write of %d: %+v", len(es), res)
				}
				written.Add(int64(res.Written))
				if i%5 == 0 {
					loc := hourOldEntries(1+i*13, fmt.Sprint("loc", g, i))
					res, err := db.Write(context.Background(), loc, OriginLocal)
					if err != nil || res.Written != len(loc) {
						t.Errorf("local: %+v %v", res, err)
					}
					for _, e := range loc {
						localAcked.Store(e.ID, true)
					}
				}
			}
		}()
	}
	wg.Wait()
	stored := 0
	for _, e := range pool {
		if _, err := db.Get(e.ID); err == nil {
			stored++
		}
	}
	if int(written.Load()) != stored {
		t.Errorf("requests counted %d written, %d of the pool are stored", written.Load(), stored)
	}
	for id, c := range journalCounts(t, db) {
		if c != 1 {
			t.Errorf("%s journaled %d times", id, c)
			break
		}
	}
	digestsAgree(t, db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openTest(t, dir)
	n := 0
	localAcked.Range(func(k, _ any) bool {
		if _, err := db.Get(k.(record.ID)); err != nil {
			n++
		}
		return true
	})
	if n > 0 {
		t.Errorf("%d acknowledged local records lost across a reopen", n)
	}
	digestsAgree(t, db)
}

// A writer that passed Write's closed check just before Close (preempted
// there) reaches submit after the committer has drained its queue and
// exited. submit's select may then still put the request in the buffered
// queue, where nobody reads it: with a context that never ends (as every
// caller's Background), the writer hangs forever.
func TestAWriteReachingTheQueueAfterCloseIsAnswered(t *testing.T) {
	db := openTest(t, t.TempDir())
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	hung := 0
	for i := range 20 {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		es := hourOldEntries(1, fmt.Sprint(i))
		_, err := db.submit(ctx, &writeReq{entries: es, origin: OriginLocal, done: make(chan struct{})})
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			hung++
		} else if !errors.Is(err, ErrClosed) {
			t.Errorf("submit after close: %v", err)
		}
	}
	if hung > 0 {
		t.Errorf("%d of 20 writes reaching submit after the committer exited were never answered (ErrClosed wanted)", hung)
	}
}

// A replicated WriteMeta whose meta entry Badger refuses (too big) fails;
// its record, entered in the in-flight set by the duplicate check, must
// leave it: a later copy of the record is not a duplicate.
func TestAFailedMetaEntryLeavesNothingInFlight(t *testing.T) {
	db := openTest(t, t.TempDir())
	a := hourOldEntries(1, "a")
	huge := string(make([]byte, 70000)) // over Badger's key size
	_, err := db.WriteMeta(context.Background(), a, OriginRemote, huge, []byte("v"), 0)
	t.Logf("WriteMeta with a name of %d bytes: %.80v", len(huge), err)
	if err == nil {
		t.Skip("Badger took the meta entry")
	}
	res, err := db.Write(context.Background(), a, OriginRemote)
	_, getErr := db.Get(a[0].ID)
	t.Logf("then Write: %+v %v; Get: %v", res, err, getErr)
	if err == nil && getErr != nil {
		t.Errorf("the copy was told %+v but the record is not stored", res)
	}
}

// A local write nearly fills the open transaction by bytes; a WriteMeta of
// one record with a meta value under the value threshold (stored inline)
// joins the group. fits does not count the meta entry's bytes: Badger
// refuses it (ErrTxnTooBig), the open transaction is discarded, and the
// first write, which did nothing wrong, fails with it.
func TestAMetaValueStartsTheNextTransaction(t *testing.T) {
	db := openTest(t, t.TempDir())
	maxSize := db.bdb.MaxBatchSize()
	thr := valueThreshold(db.cfg)
	ms := time.Now().Add(-time.Hour).UnixMilli()
	g := record.NewGenerator(func() time.Time { return time.UnixMilli(ms) })
	var big []Entry
	var size int64
	for size < maxSize*8/10 {
		id := g.Next()
		r := &record.Record{ID: id, Message: string(make([]byte, 1000))}
		e := Entry{ID: id, Data: r.AppendEncode(nil)}
		size += entrySize(make([]byte, recordKeyLen), e.Data)
		big = append(big, e)
	}
	one := hourOldEntries(1, "meta")
	meta := make([]byte, thr-100)
	t.Logf("max batch %d bytes, value threshold %d: %d records of %d bytes, a meta value of %d", maxSize, thr, len(big), size, len(meta))
	release, queued := holdCommitter(t, db)
	first := writeAsync(db, big, OriginLocal)
	queued(1)
	mc := make(chan dupResult, 1)
	go func() {
		res, err := db.WriteMeta(context.Background(), one, OriginLocal, "idem", meta, 0)
		mc <- dupResult{res, err}
	}()
	queued(2)
	release()
	r1, r2 := waitAnswer(t, "first", first), waitAnswer(t, "meta", mc)
	t.Logf("first %+v %v\nmeta %+v %v", r1.res.Written, r1.err, r2.res.Written, r2.err)
	if r1.err != nil || r2.err != nil {
		t.Errorf("a write and a WriteMeta that each fit a transaction failed: %v / %v", r1.err, r2.err)
	}
}
