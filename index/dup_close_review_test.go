package index

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Retries (each group with one drains the transactions in flight) beside
// exclusive functions (inCommitter), failing commits, and Close: every
// caller is answered, nobody deadlocks, successes count each entry once,
// and the in-flight set is empty once idle.
func TestRetriesBesideExclusiveWorkAndCloseAreAnswered(t *testing.T) {
	for round := range 3 {
		dir := t.TempDir()
		db := openTest(t, dir, func(c *Config) { c.MemTableBytes = 1 << 20; c.FsyncInterval = 0 })
		var wg sync.WaitGroup
		var stop atomic.Bool
		var answered, excl atomic.Int64
		for g := range 12 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; !stop.Load(); i++ {
					es := hourOldEntries(1+(g*13+i*7)%300, fmt.Sprint(round, g, i))
					res, err := db.Write(context.Background(), es, OriginLocal)
					answered.Add(1)
					if err != nil {
						if !errors.Is(err, ErrClosed) && stop.Load() {
							return
						}
						continue
					}
					if res.Written != len(es) {
						t.Errorf("local %d: %+v", len(es), res)
					}
					for _, o := range []Origin{OriginLocalRetry, OriginRemote} {
						res, err = db.Write(context.Background(), es, o)
						answered.Add(1)
						if err == nil && res.Duplicates != len(es) {
							t.Errorf("origin %d again of %d: %+v", o, len(es), res)
						}
					}
				}
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				if err := db.inCommitter(func() error { time.Sleep(time.Millisecond); return nil }); err == nil {
					excl.Add(1)
				}
			}
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < 5 && !stop.Load(); k++ {
				unblock := failCommits(t, db)
				time.Sleep(2 * time.Millisecond)
				unblock()
				time.Sleep(10 * time.Millisecond)
			}
		}()
		deadline := time.Now().Add(10 * time.Second)
		for answered.Load() < 300 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if answered.Load() < 300 {
			t.Fatalf("round %d: only %d writes answered in 10 s (%d exclusive runs): stuck?", round, answered.Load(), excl.Load())
		}
		if round < 2 {
			stop.Store(true)
			done := make(chan struct{})
			go func() { wg.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				t.Fatalf("round %d: writers stuck", round)
			}
			waitInflightEmpty(t, db, fmt.Sprint("round ", round))
			digestsAgree(t, db)
			db.Close()
			continue
		}
		// last round: Close while everything runs
		closed := make(chan error, 1)
		go func() { closed <- db.Close() }()
		stop.Store(true)
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatalf("writers not answered 20 s after Close")
		}
		select {
		case <-closed:
		case <-time.After(20 * time.Second):
			t.Fatalf("Close stuck")
		}
	}
}
