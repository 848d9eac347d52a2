package peer_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/logmesh/logmesh/client"
	"github.com/logmesh/logmesh/record"
	"github.com/logmesh/logmesh/testutil"
)

// TestSIGKILLDuringIngestionKeepsEveryAcknowledgedBatch kills a real agent
// process with SIGKILL while four writers post batches, restarts it, and
// checks that every record of every acknowledged batch is there.
func TestSIGKILLDuringIngestionKeepsEveryAcknowledgedBatch(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	for _, fsync := range []string{"always", "100ms"} {
		t.Run("fsync="+fsync, func(t *testing.T) {
			p := testutil.NewProcess(t, "victim", "--fsync", fsync, "--memtable-size", "8MiB", "--cache-size", "8MiB")
			p.Start()
			c, err := client.New(p.APIAddr)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var mu sync.Mutex
			var acked []record.ID
			var wg sync.WaitGroup
			for w := 0; w < 4; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					for b := 0; ctx.Err() == nil; b++ {
						var body strings.Builder
						for i := 0; i < 100; i++ {
							fmt.Fprintf(&body, "{\"message\":\"w%d b%d r%d\"}\n", w, b, i)
						}
						resp, err := c.Ingest(ctx, []byte(body.String()), "application/x-ndjson", url.Values{"ids": {"true"}})
						if err != nil {
							return // the peer died: this batch is indeterminate
						}
						mu.Lock()
						acked = append(acked, resp.IDs...)
						mu.Unlock()
					}
				}(w)
			}
			testutil.WaitFor(t, 30*time.Second, "a few thousand acknowledged records", func() bool {
				mu.Lock()
				defer mu.Unlock()
				return len(acked) >= 5000
			})
			p.Kill()
			cancel()
			wg.Wait()

			p.Start()
			var stored = map[string]bool{}
			q := mustQuery(t, "limit=0&order=asc")
			if _, err := c.Query(context.Background(), q, func(j *record.JSON) error { stored[j.ID] = true; return nil }); err != nil {
				t.Fatal(err)
			}
			lost := 0
			for _, id := range acked {
				if !stored[id.String()] {
					lost++
				}
			}
			if lost > 0 {
				t.Fatalf("%d of %d acknowledged records lost after SIGKILL", lost, len(acked))
			}
			t.Logf("fsync=%s: %d acknowledged, %d stored after SIGKILL and restart, 0 lost", fsync, len(acked), len(stored))
		})
	}
}
