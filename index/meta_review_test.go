package index

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func writeMetaAsync(db *DB, es []Entry, origin Origin, name string) chan dupResult {
	ch := make(chan dupResult, 1)
	go func() {
		res, err := db.WriteMeta(context.Background(), es, origin, name, []byte("v"), 0)
		ch <- dupResult{res, err}
	}()
	return ch
}

func storedOf(t *testing.T, db *DB, es []Entry) int {
	t.Helper()
	n := 0
	for _, e := range es {
		if _, err := db.Get(e.ID); err == nil {
			n++
		} else if !errors.Is(err, ErrNotFound) {
			t.Fatalf("get: %v", err)
		}
	}
	return n
}

// A keyed write over several transactions beside others in one group; the
// commits fail until the first commit error is seen, then succeed. Nobody
// told success may lack records; the keyed write stores nothing without its
// meta entry; nobody waits forever.
func TestAFailedKeyTransactionStopsItsBatch(t *testing.T) {
	for round := range 4 {
		db := openTest(t, t.TempDir(), func(c *Config) { c.MemTableBytes = 1 << 20; c.MaxBatchRecords = 1 << 20 })
		n := int(db.bdb.MaxBatchCount())
		a := hourOldEntries(n/3, fmt.Sprint("a", round))
		k := hourOldEntries(2*n+7, fmt.Sprint("k", round))
		c := hourOldEntries(n/3, fmt.Sprint("c", round))
		release, queued := holdCommitter(t, db)
		ac := writeAsync(db, a, OriginLocal)
		queued(1)
		kc := writeMetaAsync(db, k, OriginLocal, "key")
		queued(2)
		cc := writeAsync(db, c, OriginLocal)
		queued(3)
		unblock := failCommits(t, db)
		go func() {
			deadline := time.Now().Add(20 * time.Second)
			for db.stats.commitErrors.Load() == 0 && time.Now().Before(deadline) {
				time.Sleep(50 * time.Microsecond)
			}
			if round%2 == 0 {
				unblock()
			}
		}()
		release()
		ra, rk, rc := waitAnswer(t, "a", ac), waitAnswer(t, "k", kc), waitAnswer(t, "c", cc)
		unblock()
		t.Logf("round %d: a %+v %v | k W=%d %v | c W=%d %v", round, ra.res.Written, ra.err, rk.res.Written, rk.err, rc.res.Written, rc.err)
		meta, err := db.GetMeta("key")
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range []struct {
			name string
			r    dupResult
			es   []Entry
		}{{"a", ra, a}, {"k", rk, k}, {"c", rc, c}} {
			got := storedOf(t, db, x.es)
			if x.r.err == nil && got != len(x.es) {
				t.Errorf("round %d: %s told success, %d of %d stored", round, x.name, got, len(x.es))
			}
			if x.r.res.Written != got {
				t.Errorf("round %d: %s Written=%d, %d stored", round, x.name, x.r.res.Written, got)
			}
			if x.name == "k" && meta == nil && got > 0 {
				t.Errorf("round %d: %d of k's records stored without its meta entry", round, got)
			}
		}
	}
}

// A keyed write over several transactions in a group with a retry (the
// committer drained before the group) and a keyed write after the retry:
// answered, all stored once.
func TestAKeyedBatchBesideRetriesIsStoredOnce(t *testing.T) {
	db := openTest(t, t.TempDir(), func(c *Config) { c.MemTableBytes = 1 << 20; c.MaxBatchRecords = 1 << 20 })
	n := int(db.bdb.MaxBatchCount())
	for round := range 5 {
		f := hourOldEntries(n+3, fmt.Sprint("f", round))
		k := hourOldEntries(2*n+1, fmt.Sprint("k", round))
		release, queued := holdCommitter(t, db)
		fc := writeMetaAsync(db, f, OriginLocal, fmt.Sprint("f", round))
		queued(1)
		kc := writeMetaAsync(db, k, OriginLocal, fmt.Sprint("k", round))
		queued(2)
		rc := writeAsync(db, f, OriginLocalRetry)
		queued(3)
		k2 := writeMetaAsync(db, k, OriginLocalRetry, "")
		queued(4)
		release()
		r1, r2, r3, r4 := waitAnswer(t, "f", fc), waitAnswer(t, "k", kc), waitAnswer(t, "retry", rc), waitAnswer(t, "k retry", k2)
		for i, r := range []dupResult{r1, r2, r3, r4} {
			if r.err != nil {
				t.Fatalf("round %d: %d: %v", round, i, r.err)
			}
		}
		if r1.res.Written != len(f) || r2.res.Written != len(k) || r3.res.Written != 0 || r4.res.Written != 0 {
			t.Errorf("round %d: written %d %d %d %d", round, r1.res.Written, r2.res.Written, r3.res.Written, r4.res.Written)
		}
	}
	twice := 0
	for _, c := range journalCounts(t, db) {
		if c != 1 {
			twice++
		}
	}
	if twice > 0 {
		t.Errorf("%d IDs journaled twice", twice)
	}
}

// A keyed write whose records fall in a sealed block (unseal) and span
// several transactions.
func TestAKeyedBatchThatUnsealsBlocksIsStoredWhole(t *testing.T) {
	db := openTest(t, t.TempDir(), func(c *Config) { c.MemTableBytes = 1 << 20; c.MaxBatchRecords = 1 << 20 })
	es := oneRun(t, db, 100, 5)
	w, s := es[0].ID.Window(), sliceOf(es[0].ID.Millis())
	if _, err := db.sealRun(w, s, 5, 10, 0); err != nil {
		t.Fatal(err)
	}
	n := int(db.bdb.MaxBatchCount())
	var k []Entry
	for i := range 2*n + 5 {
		k = append(k, entryAt(es[i%100].ID.Millis()+1, 5, fmt.Sprint("late", i)))
	}
	// dedupe IDs
	seen := map[string]bool{}
	var kk []Entry
	for _, e := range k {
		if !seen[string(e.ID[:])] {
			seen[string(e.ID[:])] = true
			kk = append(kk, e)
		}
	}
	other := hourOldEntries(n/2, "o")
	release, queued := holdCommitter(t, db)
	oc := writeAsync(db, other, OriginLocal)
	queued(1)
	kc := writeMetaAsync(db, kk, OriginLocal, "u")
	queued(2)
	rc := writeAsync(db, other, OriginLocalRetry)
	queued(3)
	release()
	ro, rk, rr := waitAnswer(t, "o", oc), waitAnswer(t, "k", kc), waitAnswer(t, "r", rc)
	t.Logf("o %+v %v; k W=%d %v; r %+v %v", ro.res.Written, ro.err, rk.res.Written, rk.err, rr.res.Written, rr.err)
	if rk.err == nil && storedOf(t, db, kk) != len(kk) {
		t.Errorf("k told success, not all stored")
	}
}

// The same with commits failing until the first error: the meta
// transaction may be sent by unseal's flush.
func TestAKeyedBatchThatUnsealsBlocksAnswersHonestlyWhenCommitsFail(t *testing.T) {
	for round := range 4 {
		db := openTest(t, t.TempDir(), func(c *Config) { c.MemTableBytes = 1 << 20; c.MaxBatchRecords = 1 << 20 })
		es := oneRun(t, db, 100, 5)
		w, s := es[0].ID.Window(), sliceOf(es[0].ID.Millis())
		if _, err := db.sealRun(w, s, 5, 10, 0); err != nil {
			t.Fatal(err)
		}
		n := int(db.bdb.MaxBatchCount())
		seen := map[string]bool{}
		var kk []Entry
		for i := range 2*n + 5 {
			e := entryAt(es[i%100].ID.Millis()+1, 5, fmt.Sprint("late", i))
			if !seen[string(e.ID[:])] {
				seen[string(e.ID[:])] = true
				kk = append(kk, e)
			}
		}
		other := hourOldEntries(n-200, fmt.Sprint("o", round))
		after := hourOldEntries(50, fmt.Sprint("c", round))
		release, queued := holdCommitter(t, db)
		oc := writeAsync(db, other, OriginLocal)
		queued(1)
		kc := writeMetaAsync(db, kk, OriginLocal, "u")
		queued(2)
		cc := writeAsync(db, after, OriginLocal)
		queued(3)
		unblock := failCommits(t, db)
		go func() {
			deadline := time.Now().Add(20 * time.Second)
			for db.stats.commitErrors.Load() == 0 && time.Now().Before(deadline) {
				time.Sleep(50 * time.Microsecond)
			}
			if round%2 == 0 {
				unblock()
			}
		}()
		release()
		ro, rk, rc := waitAnswer(t, "o", oc), waitAnswer(t, "k", kc), waitAnswer(t, "c", cc)
		unblock()
		meta, _ := db.GetMeta("u")
		t.Logf("round %d unsealed=%d: o W=%d %v; k W=%d %v; c W=%d %v; meta %v", round, db.stats.blocksUnsealed.Load(), ro.res.Written, ro.err, rk.res.Written, rk.err, rc.res.Written, rc.err, meta != nil)
		for _, x := range []struct {
			name string
			r    dupResult
			es   []Entry
		}{{"o", ro, other}, {"k", rk, kk}, {"c", rc, after}} {
			got := storedOf(t, db, x.es)
			if x.r.err == nil && got != len(x.es) {
				t.Errorf("round %d: %s told success, %d of %d stored", round, x.name, got, len(x.es))
			}
			if x.name == "k" && meta == nil && got > 0 {
				t.Errorf("round %d: %d of k's records stored without its meta entry", round, got)
			}
		}
	}
}
