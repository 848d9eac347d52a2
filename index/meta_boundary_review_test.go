package index

import (
	"context"
	"fmt"
	"testing"
	"time"
)

func recordsPerTransaction(t *testing.T) int {
	db := openTest(t, t.TempDir(), func(c *Config) { c.MemTableBytes = 1 << 20; c.MaxBatchRecords = 1 << 20 })
	n := int(db.bdb.MaxBatchCount())
	if _, err := db.Write(context.Background(), hourOldEntries(3*n, "cap"), OriginLocal); err != nil {
		t.Fatal(err)
	}
	es, err := db.ReadJournal(0, 10)
	if err != nil || len(es) < 2 {
		t.Fatalf("journal %d %v", len(es), err)
	}
	return len(es[0].IDs)
}

// A keyed batch at a transaction boundary, before (a) or as (k) the batch
// that fills it, with commits failing until the first error.
func TestAKeyedBatchAtATransactionBoundaryKeepsItsKey(t *testing.T) {
	capN := recordsPerTransaction(t)
	t.Logf("records per transaction: %d", capN)
	for _, shape := range []struct{ a, k int }{
		{capN - 2, 5}, {capN - 1, 5}, {capN, 5}, {capN + 1, 5},
		{0, capN - 1}, {0, capN}, {0, capN + 1}, {1, capN}, {3, capN - 1},
	} {
		for _, fix := range []bool{true, false} {
			db := openTest(t, t.TempDir(), func(c *Config) { c.MemTableBytes = 1 << 20; c.MaxBatchRecords = 1 << 20 })
			tag := fmt.Sprint(shape.a, "-", shape.k, fix)
			a := hourOldEntries(shape.a, "a"+tag)
			k := hourOldEntries(shape.k, "k"+tag)
			c := hourOldEntries(7, "c"+tag)
			release, queued := holdCommitter(t, db)
			q := 0
			var ac chan dupResult
			if len(a) > 0 {
				ac = writeAsync(db, a, OriginLocal)
				q++
				queued(q)
			}
			kc := writeMetaAsync(db, k, OriginLocal, "key")
			q++
			queued(q)
			cc := writeAsync(db, c, OriginLocal)
			q++
			queued(q)
			unblock := failCommits(t, db)
			go func() {
				deadline := time.Now().Add(20 * time.Second)
				for db.stats.commitErrors.Load() == 0 && time.Now().Before(deadline) {
					time.Sleep(20 * time.Microsecond)
				}
				if fix {
					unblock()
				}
			}()
			release()
			var ra dupResult
			if ac != nil {
				ra = waitAnswer(t, "a", ac)
			}
			rk, rc := waitAnswer(t, "k", kc), waitAnswer(t, "c", cc)
			unblock()
			meta, _ := db.GetMeta("key")
			t.Logf("%s: a W=%d %v; k W=%d %v; c W=%d %v; meta %v", tag, ra.res.Written, ra.err, rk.res.Written, rk.err, rc.res.Written, rc.err, meta != nil)
			for _, x := range []struct {
				name string
				r    dupResult
				es   []Entry
			}{{"a", ra, a}, {"k", rk, k}, {"c", rc, c}} {
				got := storedOf(t, db, x.es)
				if x.r.err == nil && got != len(x.es) {
					t.Errorf("%s: %s told success, %d of %d stored", tag, x.name, got, len(x.es))
				}
				if x.r.res.Written != got {
					t.Errorf("%s: %s Written=%d, %d stored", tag, x.name, x.r.res.Written, got)
				}
				if x.name == "k" && meta == nil && got > 0 {
					t.Errorf("%s: %d of k's records stored without its meta entry", tag, got)
				}
				if x.name == "k" && meta != nil && x.r.err == nil && got != len(x.es) {
					t.Errorf("%s: k ok with meta but partial", tag)
				}
			}
		}
	}
}
