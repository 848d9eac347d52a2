package peer_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/logmesh/logmesh/client"
	"github.com/logmesh/logmesh/record"
)

// ackedBatch is one acknowledged batch and when its answer arrived.
type ackedBatch struct {
	ids []record.ID
	at  time.Time
}

// writers post 100-record batches through each client until stopped and
// keep what was acknowledged: what a durability test must find again.
type writers struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	batches []ackedBatch
	n       int
}

// startWriters starts one writer per client. A write that fails ends its
// writer (the batch is indeterminate); onErr, when set, hears of failures
// that happen before stop.
func startWriters(cls []*client.Client, onErr func(w int, err error)) *writers {
	ctx, cancel := context.WithCancel(context.Background())
	ws := &writers{cancel: cancel}
	for w, cl := range cls {
		ws.wg.Add(1)
		go func() {
			defer ws.wg.Done()
			for b := 0; ctx.Err() == nil; b++ {
				var body strings.Builder
				for i := 0; i < 100; i++ {
					fmt.Fprintf(&body, "{\"message\":\"w%d b%d r%d\"}\n", w, b, i)
				}
				resp, err := cl.Ingest(ctx, []byte(body.String()), "application/x-ndjson", url.Values{"ids": {"true"}})
				if err != nil {
					if ctx.Err() == nil && onErr != nil {
						onErr(w, err)
					}
					return
				}
				now := time.Now()
				ws.mu.Lock()
				ws.batches = append(ws.batches, ackedBatch{ids: resp.IDs, at: now})
				ws.n += len(resp.IDs)
				ws.mu.Unlock()
			}
		}()
	}
	return ws
}

// count is how many records have been acknowledged so far.
func (ws *writers) count() int {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return ws.n
}

// stop ends the writers and returns every acknowledged batch.
func (ws *writers) stop() []ackedBatch {
	ws.cancel()
	ws.wg.Wait()
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return ws.batches
}

// ids flattens batches.
func ids(batches []ackedBatch) []record.ID {
	var out []record.ID
	for _, b := range batches {
		out = append(out, b.ids...)
	}
	return out
}
