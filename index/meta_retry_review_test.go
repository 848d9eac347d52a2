package index

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// A keyed write spanning transactions in a group with a retry of itself
// and of another write; commits fail until the first error.
func TestAFailedKeyTransactionBesideRetriesAnswersHonestly(t *testing.T) {
	for round := range 4 {
		db := openTest(t, t.TempDir(), func(c *Config) { c.MemTableBytes = 1 << 20; c.MaxBatchRecords = 1 << 20 })
		n := int(db.bdb.MaxBatchCount())
		k := hourOldEntries(2*n, fmt.Sprint("k", round))
		o := hourOldEntries(10, fmt.Sprint("o", round))
		if _, err := db.Write(context.Background(), o, OriginLocal); err != nil {
			t.Fatal(err)
		}
		release, queued := holdCommitter(t, db)
		kc := writeMetaAsync(db, k, OriginLocal, "key")
		queued(1)
		rc := writeAsync(db, o, OriginLocalRetry)
		queued(2)
		krc := writeAsync(db, k[:n/2], OriginLocalRetry)
		queued(3)
		unblock := failCommits(t, db)
		go func() {
			deadline := time.Now().Add(20 * time.Second)
			for db.stats.commitErrors.Load() == 0 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Microsecond)
			}
			if round%2 == 0 {
				unblock()
			}
		}()
		release()
		rk, rr, rkr := waitAnswer(t, "k", kc), waitAnswer(t, "r", rc), waitAnswer(t, "kr", krc)
		unblock()
		meta, _ := db.GetMeta("key")
		t.Logf("round %d: k W=%d %v; r W=%d dup=%d %v; kr W=%d dup=%d %v; meta %v", round, rk.res.Written, rk.err, rr.res.Written, rr.res.Duplicates, rr.err, rkr.res.Written, rkr.res.Duplicates, rkr.err, meta != nil)
		got := storedOf(t, db, k)
		if rk.err == nil && got != len(k) {
			t.Errorf("k told success, %d stored", got)
		}
		if rkr.err == nil && storedOf(t, db, k[:n/2]) != n/2 {
			t.Errorf("k retry told success, not all stored")
		}
		if meta == nil && got > n/2 {
			t.Errorf("%d of k stored without meta (beyond its retry's)", got)
		}
	}
}
