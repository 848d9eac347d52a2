package peer_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/logmesh/logmesh/api"
	"github.com/logmesh/logmesh/peer"
	"github.com/logmesh/logmesh/peer/fanout"
	"github.com/logmesh/logmesh/peer/view"
	"github.com/logmesh/logmesh/query"
	"github.com/logmesh/logmesh/record"
	"github.com/logmesh/logmesh/testutil"
	"github.com/logmesh/logmesh/wire"
)

// TestAMemberSendsOnlyIDsForACount: the coordinator of a count asks the
// other members for IDs only. A member's part asked with ids_only carries
// the same records as without it and none of their data; and a count over
// three peers holding one copy each (two thirds of it remote) is exact and
// full.
func TestAMemberSendsOnlyIDsForACount(t *testing.T) {
	c := testutil.NewCluster(t, 3, func(i int, cfg *peer.Config) { cfg.Replicas = 1 })
	c.WaitAlive(20 * time.Second)
	ids := ingestJSON(t, c.Client(0), "ids-only", 300, nil)
	var detail string
	testutil.WaitFor(t, 30*time.Second, "every record on its owner",
		func() bool { detail = everyOwnerHasIt(t, c, ids); return detail == "" }, func() string { return detail })
	part := func(idsOnly bool) (records, dataBytes int) {
		t.Helper()
		var all view.Mask
		for i := range all {
			all[i] = true
		}
		params := url.Values{"contains": {"ids-only"}, "limit": {"0"}}
		fanout.EncodeRequest(params, fanout.Request{Parts: all, IDsOnly: idsOnly})
		req, err := http.NewRequestWithContext(testutil.Context(t), http.MethodGet, "http://"+c.Peer(1).APIAddr()+"/v1/logs?"+params.Encode(), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Accept", wire.ContentType)
		req.Header.Set("X-Logmesh-Proto", "2")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("member part (ids_only=%v): %s: %s", idsOnly, resp.Status, b)
		}
		rd, err := wire.NewReader(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		for {
			f, err := rd.Next()
			if err != nil {
				t.Fatalf("member part (ids_only=%v): %v", idsOnly, err)
			}
			switch f.Kind {
			case wire.KindRecord:
				records++
				dataBytes += len(f.Data)
			case wire.KindError:
				t.Fatalf("member part (ids_only=%v): %s", idsOnly, f.Data)
			default:
				return records, dataBytes
			}
		}
	}
	n, b := part(false)
	if n == 0 || b == 0 {
		t.Fatalf("p2's part: %d records, %d bytes of data; want some of each", n, b)
	}
	nIDs, bIDs := part(true)
	if nIDs != n || bIDs != 0 {
		t.Fatalf("p2's part with ids_only: %d records, %d bytes of data; want %d records, no data", nIDs, bIDs, n)
	}
	if got, err := c.Client(0).Count(testutil.Context(t), mustQuery(t, "contains=ids-only")); err != nil || got.Count != 300 || got.Coverage != "full" {
		t.Fatalf("count: %+v %v, want 300 full", got, err)
	}
}

// BenchmarkClusterCount counts 100,000 records of ~400 bytes held one copy
// each on three peers, at one of them: two thirds of what it counts come
// from the others. The records query of the same match is the baseline
// measured in the same run (it moves every record's data, as a count's
// member parts did before they carried IDs only).
//
//	go test -run '^$' -bench ClusterCount -benchtime 5x ./peer
func BenchmarkClusterCount(b *testing.B) {
	c := testutil.NewCluster(b, 3, func(i int, cfg *peer.Config) { cfg.Replicas = 1 })
	c.WaitAlive(30 * time.Second)
	pad := strings.Repeat("x", 360)
	for batch := 0; batch < 20; batch++ {
		var sb strings.Builder
		for i := 0; i < 5000; i++ {
			fmt.Fprintf(&sb, "{\"host\":\"h%d\",\"message\":\"counted %d %s\"}\n", i%7, batch*5000+i, pad)
		}
		if _, err := c.Client(0).Ingest(context.Background(), []byte(sb.String()), "application/x-ndjson", nil); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	q := query.Query{Contains: "counted"}
	testutil.WaitFor(b, 60*time.Second, "every record on its owner", func() bool {
		n := 0
		for i := 0; i < 3; i++ {
			got, err := c.Client(i).Count(ctx, query.Query{Contains: "counted", Local: true})
			if err != nil {
				return false
			}
			n += int(got.Count)
		}
		return n == 100_000
	})
	b.Run("count", func(b *testing.B) {
		for b.Loop() {
			got, err := c.Client(0).Count(ctx, q)
			if err != nil || got.Count != 100_000 || got.Coverage != "full" {
				b.Fatalf("count %+v %v", got, err)
			}
		}
	})
	b.Run("records-baseline", func(b *testing.B) {
		for b.Loop() {
			n := 0
			if _, err := c.Client(0).Query(ctx, q, func(*record.JSON) error { n++; return nil }); err != nil || n != 100_000 {
				b.Fatalf("query: %d records, %v", n, err)
			}
		}
	})
}

// TestAWordQueryMatchesWholeWordsAcrossTheCluster: word= reaches every
// member (one copy each, so two thirds of the answer is remote) and matches
// whole words, where contains= matches substrings.
func TestAWordQueryMatchesWholeWordsAcrossTheCluster(t *testing.T) {
	c := testutil.NewCluster(t, 3, func(i int, cfg *peer.Config) { cfg.Replicas = 1 })
	c.WaitAlive(20 * time.Second)
	var ids []record.ID
	for _, tag := range []string{"disk error:", "disk errors", "stderr closed"} {
		ids = append(ids, ingestJSON(t, c.Client(0), tag, 100, nil)...)
	}
	var detail string
	testutil.WaitFor(t, 30*time.Second, "every record on its owner",
		func() bool { detail = everyOwnerHasIt(t, c, ids); return detail == "" }, func() string { return detail })
	ctx := testutil.Context(t)
	for q, want := range map[string]int64{
		"word=error": 100, "word=disk%20error": 100, "word=errors": 100, "word=err": 0, "word=stderr": 100,
		"contains=error": 200, "contains=err": 300,
	} {
		got, err := c.Client(1).Count(ctx, mustQuery(t, q))
		if err != nil || got.Count != want || got.Coverage != "full" {
			t.Errorf("count %s: %+v %v, want %d full", q, got, err, want)
		}
	}
	n := 0
	_, err := c.Client(2).Query(ctx, mustQuery(t, "word=error&limit=0"), func(j *record.JSON) error {
		n++
		if !strings.HasPrefix(j.Message, "disk error: ") {
			return fmt.Errorf("word=error returned %q", j.Message)
		}
		return nil
	})
	if err != nil || n != 100 {
		t.Fatalf("records of word=error: %d, %v; want 100", n, err)
	}
}

// TestAWordQuerySkipsSealedBlocksWithoutTheWord: a query's word= reaches the
// store, whose sealed blocks' word filters let it pass over the blocks that
// lack the word, and the answer is still exact. Records are written three
// hours in the past, then the clock comes back so that their window has
// ended and the sealer turns it into small blocks.
func TestAWordQuerySkipsSealedBlocksWithoutTheWord(t *testing.T) {
	var offset atomic.Int64
	offset.Store(int64(-3 * time.Hour))
	p := startPeer(t, t.TempDir(), func(cfg *peer.Config) {
		cfg.Index.SealAfter, cfg.Index.SealInterval, cfg.Index.SealBlockRecords = time.Millisecond, 20*time.Millisecond, 16
		cfg.Index.SealMinRecords = 1 // 2 008 records over 256 partitions: blocks of any size
		cfg.Now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	})
	c := cli(t, p)
	ctx := testutil.Context(t)

	plain := ingestJSON(t, c, "plain line", 2000, nil)
	rare := ingestJSON(t, c, "a rare zebracorn", 8, nil)
	total := uint64(len(plain) + len(rare))
	offset.Store(0)
	var st api.Status
	var err error
	testutil.WaitFor(t, 30*time.Second, "every record sealed", func() bool {
		if st, err = c.Status(ctx); err != nil {
			t.Fatal(err)
		}
		return st.Store.RecordsSealed == total
	}, func() string { return fmt.Sprintf("%+v", st.Store) })

	got := queryAll(t, c, "word=zebracorn&local=true")
	if len(got) != len(rare) {
		t.Fatalf("word=zebracorn returned %d records, want %d", len(got), len(rare))
	}
	for _, j := range got {
		if !strings.HasPrefix(j.Message, "a rare zebracorn ") {
			t.Fatalf("word=zebracorn returned %q", j.Message)
		}
	}
	n, err := c.Count(ctx, mustQuery(t, "word=zebracorn&local=true"))
	if err != nil || n.Count != int64(len(rare)) {
		t.Fatalf("count of word=zebracorn: %+v, %v; want %d", n, err, len(rare))
	}
	if st, err = c.Status(ctx); err != nil {
		t.Fatal(err)
	}
	// two scans of blocks of about 16 records, eight of which may hold the
	// word: the rest are passed over, bar a few false positives
	if blocks := st.Store.BlocksWritten; blocks < 50 || st.Store.BlocksSkipped < blocks {
		t.Fatalf("word scans skipped %d of %d blocks twice; want most of them", st.Store.BlocksSkipped, blocks)
	}
	t.Logf("%d records sealed into %d blocks; two word scans skipped %d", st.Store.RecordsSealed, st.Store.BlocksWritten, st.Store.BlocksSkipped)
	resp, err := http.Get("http://" + p.APIAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := fmt.Sprintf("logmesh_store_blocks_skipped_total %d", st.Store.BlocksSkipped); !strings.Contains(string(body), want) {
		t.Fatalf("/metrics lacks %q", want)
	}
}
