package peer_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/logmesh/logmesh/client"
	"github.com/logmesh/logmesh/peer"
	"github.com/logmesh/logmesh/testutil"
)

// TestABatchPastTheRecordCapIsRefusedWhole: a write of more records than
// MaxBatchRecords is refused (413) and stores nothing; one at the cap is
// stored.
func TestABatchPastTheRecordCapIsRefusedWhole(t *testing.T) {
	c := testutil.NewCluster(t, 1, func(i int, cfg *peer.Config) { cfg.MaxBatchRecords = 1000 })
	for _, ct := range []string{"application/x-ndjson", "text/plain"} {
		line := "{}\n"
		if ct == "text/plain" {
			line = "<13>Dec  3 09:00:00 host app: hi\n"
		}
		before := c.Peer(0).Status().Records
		_, err := c.Client(0).Ingest(context.Background(), []byte(strings.Repeat(line, 1001)), ct, nil)
		var se *client.StatusError
		if !errors.As(err, &se) || se.Code != http.StatusRequestEntityTooLarge || !strings.Contains(se.Message, "nothing of it was stored") {
			t.Fatalf("%s: 1001 records with a cap of 1000: %v, want 413 saying nothing was stored", ct, err)
		}
		if got := c.Peer(0).Status().Records; got != before {
			t.Fatalf("%s: the refused batch stored %d records", ct, got-before)
		}
		res, err := c.Client(0).Ingest(context.Background(), []byte(strings.Repeat(line, 1000)), ct, nil)
		if err != nil || res.Accepted != 1000 {
			t.Fatalf("%s: 1000 records at a cap of 1000: %+v %v", ct, res, err)
		}
	}
}

// TestTinyLineFloodsStayBounded, on a real process: 16 MiB bodies of "{}"
// lines (5.6 M records each, which parsed whole to 2.7 GB) are refused at
// the record cap with the peer's memory bounded, and a well-behaved client
// is answered within a second throughout.
func TestTinyLineFloodsStayBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real process")
	}
	p := testutil.NewProcess(t, "p1")
	p.Start()
	cl, err := client.New(p.APIAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.CloseIdleConnections()
	if _, err := cl.Ingest(context.Background(), []byte(strings.Repeat(`{"message":"warm"}`+"\n", 1000)), "application/x-ndjson", nil); err != nil {
		t.Fatal(err)
	}
	base, err := p.PeakRSS()
	if err != nil {
		t.Skipf("skipped: cannot read the peak RSS: %v", err)
	}
	flood := bytes.Repeat([]byte("{}\n"), (16<<20)/3)
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := cl.Ingest(context.Background(), flood, "application/x-ndjson", nil)
			errs <- err
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	slowest := time.Duration(0)
	for waiting := true; waiting; {
		select {
		case <-done:
			waiting = false
		case <-time.After(100 * time.Millisecond):
		}
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := cl.Status(ctx)
		cancel()
		if err != nil {
			t.Fatalf("status during the flood: %v", err)
		}
		slowest = max(slowest, time.Since(start))
	}
	close(errs)
	for err := range errs {
		var se *client.StatusError
		if !errors.As(err, &se) || se.Code != http.StatusRequestEntityTooLarge {
			t.Fatalf("a flood of 5.6 M records: %v, want 413", err)
		}
	}
	peak, err := p.PeakRSS()
	if err != nil {
		t.Fatal(err)
	}
	st, err := cl.Status(context.Background())
	if err != nil || st.Records != 1000 {
		t.Fatalf("after the floods the peer holds %d records (%v), want the 1000 of the warm-up", st.Records, err)
	}
	t.Logf("peak RSS %d MB before the floods, %d MB after; slowest status %v", base>>20, peak>>20, slowest)
	if grew := peak - base; grew > 400<<20 {
		t.Fatalf("three concurrent floods grew the peak RSS by %d MB, want under 400 MB", grew>>20)
	}
	if slowest > time.Second {
		t.Fatalf("a well-behaved client waited %v during the floods", slowest)
	}
}
