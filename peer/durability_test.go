package peer_test

import (
	"context"
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
			ws := startWriters([]*client.Client{c, c, c, c}, nil)
			testutil.WaitFor(t, 30*time.Second, "a few thousand acknowledged records", func() bool { return ws.count() >= 5000 })
			p.Kill()
			acked := ids(ws.stop())

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
