package index

import (
	"context"
	"fmt"
	"sync"
	"testing"
)

// A request that counts records duplicates of transactions in flight (of
// its group or earlier ones) must not be answered before they are
// applied: the moment it returns success, every record it counted
// (written or duplicate) reads back.
func TestADuplicateIsAnsweredAfterTheWriteItCounts(t *testing.T) {
	db := openTest(t, t.TempDir(), func(c *Config) { c.MemTableBytes = 1 << 20 })
	n := int(db.bdb.MaxBatchCount()) // a few transactions each
	for round := range 12 {
		es := hourOldEntries(n, fmt.Sprint("h", round))
		var wg sync.WaitGroup
		for k := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				part := es[k*n/8:]
				origin := []Origin{OriginRemote, OriginRemote, OriginLocalRetry, OriginRemote}[k]
				res, err := db.Write(context.Background(), part, origin)
				if err != nil {
					t.Errorf("round %d writer %d: %v", round, k, err)
					return
				}
				if res.Written+res.Duplicates != len(part) {
					t.Errorf("round %d writer %d: %+v of %d", round, k, res, len(part))
				}
				if res.Seq > db.Applied() {
					t.Errorf("round %d writer %d answered with Seq %d > applied %d", round, k, res.Seq, db.Applied())
				}
				missing := 0
				for _, e := range part {
					if _, err := db.Get(e.ID); err != nil {
						missing++
					}
				}
				if missing > 0 {
					t.Errorf("round %d writer %d (%+v) answered while %d of its %d records do not read back", round, k, res, missing, len(part))
				}
			}()
		}
		wg.Wait()
	}
	waitInflightEmpty(t, db, "end")
}
