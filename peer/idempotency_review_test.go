package peer_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/logmesh/logmesh/client"
	"github.com/logmesh/logmesh/index"
	"github.com/logmesh/logmesh/peer"
	"github.com/logmesh/logmesh/record"
	"github.com/logmesh/logmesh/testutil"
)

// storeOf reaches a peer's store (test-only reflection).
func storeOf(p *peer.Peer) *index.DB {
	f := reflect.ValueOf(p).Elem().FieldByName("db")
	return *(**index.DB)(unsafe.Pointer(f.UnsafeAddr()))
}

// holdStore parks the store's committer in an exclusive function until
// release; queued reports how many write requests wait for it.
func holdStore(t *testing.T, db *index.DB) (release func(), queued func() int) {
	t.Helper()
	v := reflect.ValueOf(db).Elem()
	excl := *(*chan func())(unsafe.Pointer(v.FieldByName("exclCh").UnsafeAddr()))
	reqCh := v.FieldByName("reqCh")
	gate := make(chan struct{})
	held := make(chan struct{})
	excl <- func() { close(held); <-gate }
	<-held
	var once sync.Once
	release = func() { once.Do(func() { close(gate) }) }
	t.Cleanup(release)
	return release, func() int { return reqCh.Len() }
}

func keyedBody(tag string, n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "{\"message\":\"%s %d\"}\n", tag, i)
	}
	return b.String()
}

// countTagged counts the records a peer's own store holds whose message has tag.
func countTagged(t *testing.T, c *testutil.Cluster, i int, tag string) (int, map[string]int) {
	t.Helper()
	n := 0
	msgs := map[string]int{}
	_, err := c.Client(i).Query(context.Background(), mustQuery(t, "local=true&limit=0&contains="+tag), func(j *record.JSON) error {
		n++
		msgs[fmt.Sprint(j.Message)]++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n, msgs
}

func postKeyed(ctx context.Context, addr, body string, params url.Values, key string) (int, http.Header, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/v1/logs?"+params.Encode(), strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-ndjson")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header, nil
}

// TestAUsedKeyRefusesADifferentBatchOfTheSameSize: a key reused for another
// batch must be refused (422), whatever the batch's size; otherwise the
// second batch is answered 200 and never stored.
func TestAUsedKeyRefusesADifferentBatchOfTheSameSize(t *testing.T) {
	c := testutil.NewCluster(t, 1, nil)
	c.WaitAlive(20 * time.Second)
	addr := c.Peer(0).APIAddr()
	code, _, err := postKeyed(context.Background(), addr, keyedBody("reveA-first", 2), nil, "revE-A")
	if err != nil || code != http.StatusOK {
		t.Fatalf("first batch: %d %v", code, err)
	}
	code, hdr, err := postKeyed(context.Background(), addr, keyedBody("reveA-second", 2), nil, "revE-A")
	if err != nil {
		t.Fatal(err)
	}
	n, _ := countTagged(t, c, 0, "reveA-second")
	if code != http.StatusUnprocessableEntity {
		t.Errorf("another batch of the same size under a used key: %d (Idempotent-Replayed %q), want 422; "+
			"%d of its 2 records are stored", code, hdr.Get("Idempotent-Replayed"), n)
	}
}

// TestAClientGivingUpWhileItsWriteIsQueuedThenRetryingStoresItOnce: the first attempt's
// write waits for the committer when the client gives up; the retry under
// the same key must not store the batch a second time.
func TestAClientGivingUpWhileItsWriteIsQueuedThenRetryingStoresItOnce(t *testing.T) {
	c := testutil.NewCluster(t, 1, nil)
	c.WaitAlive(20 * time.Second)
	addr := c.Peer(0).APIAddr()
	const tag, key, n = "reveB", "revE-B", 3
	body := keyedBody(tag, n)
	release, queued := holdStore(t, storeOf(c.Peer(0)))
	base := queued()
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() {
		_, _, err := postKeyed(ctx, addr, body, nil, key)
		first <- err
	}()
	testutil.WaitFor(t, 10*time.Second, "the first attempt's write queued", func() bool { return queued() > base })
	cancel()
	<-first
	type answer struct {
		code int
		hdr  http.Header
		err  error
	}
	retry := make(chan answer, 1)
	go func() {
		code, hdr, err := postKeyed(context.Background(), addr, body, url.Values{"ids": {"true"}}, key)
		retry <- answer{code, hdr, err}
	}()
	// either the retry waits for the first attempt (no second write) or it
	// queues a write of its own
	secondQueued := testutil.Poll(3*time.Second, func() bool { return queued() > base+1 }) == nil
	release()
	a := <-retry
	if a.err != nil || a.code != http.StatusOK {
		t.Fatalf("retry: %d %v", a.code, a.err)
	}
	testutil.WaitFor(t, 10*time.Second, "the batch stored", func() bool { got, _ := countTagged(t, c, 0, tag); return got >= n })
	// a third attempt after everything settled
	code, hdr, err := postKeyed(context.Background(), addr, body, nil, key)
	if err != nil || code != http.StatusOK {
		t.Fatalf("third attempt: %d %v", code, err)
	}
	got, msgs := countTagged(t, c, 0, tag)
	if got != n {
		t.Errorf("a batch of %d records, its first attempt given up while queued and retried with its key, is stored as %d records: %v "+
			"(retry queued a second write: %v; third attempt replayed: %q)", n, got, msgs, secondQueued, hdr.Get("Idempotent-Replayed"))
	}
}

// TestAClientGivingUpWhileWaitingForReplicasThenRetryingStoresItOnce: a w=all attempt whose
// client gives up while it waits for a down replica; retries (w=all while
// the replica is down: 504; once it is back: 200) store the batch once.
func TestAClientGivingUpWhileWaitingForReplicasThenRetryingStoresItOnce(t *testing.T) {
	c := testutil.NewCluster(t, 3, nil)
	c.WaitAlive(20 * time.Second)
	c.Stop(2)
	testutil.WaitFor(t, 20*time.Second, "p3 failed", func() bool { return statusIn(c.Peer(0), "p3") == "failed" })
	addr := c.Peer(0).APIAddr()
	const tag, key, n = "reveC", "revE-C", 50
	body := keyedBody(tag, n)
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	if _, _, err := postKeyed(ctx, addr, body, url.Values{"w": {"all"}, "timeout": {"5s"}}, key); err == nil {
		t.Fatal("the first attempt was answered before the client gave up")
	}
	code, _, err := postKeyed(context.Background(), addr, body, url.Values{"w": {"all"}, "timeout": {"300ms"}}, key)
	if err != nil || code != http.StatusGatewayTimeout {
		t.Fatalf("retry with w=all and p3 down: %d %v, want 504", code, err)
	}
	c.Start(2)
	testutil.WaitFor(t, 30*time.Second, "p3 alive", func() bool { return statusIn(c.Peer(0), "p3") == "alive" })
	var last int
	testutil.WaitFor(t, 60*time.Second, "a w=all retry answered 200", func() bool {
		last, _, err = postKeyed(context.Background(), addr, body, url.Values{"w": {"all"}, "timeout": {"2s"}}, key)
		return err == nil && last == http.StatusOK
	}, func() string { return fmt.Sprint(last, err) })
	for i := 0; i < 3; i++ {
		testutil.WaitFor(t, 30*time.Second, "every peer holds the batch", func() bool { got, _ := countTagged(t, c, i, tag); return got >= n })
		if got, _ := countTagged(t, c, i, tag); got != n {
			t.Errorf("p%d holds %d records of a batch of %d", i+1, got, n)
		}
	}
}

// TestALargeKeyedBatchOverSeveralTransactionsIsStoredOnce: a batch far larger than one
// transaction, sent with a key by several clients at once (one of them
// giving up early), then retried, is stored once under one set of IDs.
func TestALargeKeyedBatchOverSeveralTransactionsIsStoredOnce(t *testing.T) {
	c := testutil.NewCluster(t, 1, nil)
	c.WaitAlive(20 * time.Second)
	addr := c.Peer(0).APIAddr()
	const tag, key, n = "reveD", "revE-D", 30000
	body := keyedBody(tag, n)
	var wg sync.WaitGroup
	codes := make([]int, 4)
	for i := range codes {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ctx := context.Background()
			if i == 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, 150*time.Millisecond)
				defer cancel()
			}
			codes[i], _, _ = postKeyed(ctx, addr, body, nil, key)
		}(i)
	}
	wg.Wait()
	code, hdr, err := postKeyed(context.Background(), addr, body, nil, key)
	if err != nil || code != http.StatusOK || hdr.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retry: %d %v replayed=%q (concurrent attempts: %v)", code, err, hdr.Get("Idempotent-Replayed"), codes)
	}
	got, msgs := countTagged(t, c, 0, tag)
	twice := 0
	for _, k := range msgs {
		if k > 1 {
			twice++
		}
	}
	if got != n || len(msgs) != n {
		t.Errorf("a batch of %d stored as %d records (%d distinct, %d more than once); attempts answered %v", n, got, len(msgs), twice, codes)
	}
}

// TestAKeyReplaysWithinItsLifetimeOnly: a key is honoured within IdempotencyTTL and
// forgotten after it (a retry then stores the batch again, as documented).
func TestAKeyReplaysWithinItsLifetimeOnly(t *testing.T) {
	c := testutil.NewCluster(t, 1, func(i int, cfg *peer.Config) { cfg.IdempotencyTTL = 4 * time.Second })
	c.WaitAlive(20 * time.Second)
	addr := c.Peer(0).APIAddr()
	const tag, key = "reveE", "revE-E"
	body := keyedBody(tag, 2)
	start := time.Now()
	if code, _, err := postKeyed(context.Background(), addr, body, nil, key); err != nil || code != http.StatusOK {
		t.Fatalf("first: %d %v", code, err)
	}
	code, hdr, err := postKeyed(context.Background(), addr, body, nil, key)
	if err != nil || code != http.StatusOK || hdr.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retry within the TTL (%v after): %d %v replayed=%q", time.Since(start), code, err, hdr.Get("Idempotent-Replayed"))
	}
	testutil.WaitFor(t, 10*time.Second, "the TTL to pass", func() bool { return time.Since(start) > 5100*time.Millisecond })
	code, hdr, err = postKeyed(context.Background(), addr, body, nil, key)
	if err != nil || code != http.StatusOK || hdr.Get("Idempotent-Replayed") != "" {
		t.Fatalf("retry after the TTL: %d %v replayed=%q, want a new write", code, err, hdr.Get("Idempotent-Replayed"))
	}
	if got, _ := countTagged(t, c, 0, tag); got != 4 {
		t.Errorf("after the TTL the batch is stored anew: %d records, want 4", got)
	}
}

// TestARetryAfterSIGKILLMidBatchCompletesIt: a batch of many transactions whose
// peer is killed (SIGKILL) once part of it is visible; after a restart the
// retry with the key completes it, each record once.
func TestARetryAfterSIGKILLMidBatchCompletesIt(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	p := testutil.NewProcess(t, "victim", "--fsync", "100ms", "--memtable-size", "8MiB", "--cache-size", "8MiB")
	p.Start()
	c, err := client.New(p.APIAddr)
	if err != nil {
		t.Fatal(err)
	}
	const tag, key, n = "reveF", "revE-F", 60000
	body := keyedBody(tag, n)
	count := func() (int, int) {
		got, msgs := 0, map[string]bool{}
		_, err := c.Query(context.Background(), mustQuery(t, "local=true&limit=0&contains="+tag), func(j *record.JSON) error {
			got++
			msgs[fmt.Sprint(j.Message)] = true
			return nil
		})
		if err != nil {
			return -1, -1
		}
		return got, len(msgs)
	}
	first := make(chan int, 1)
	go func() {
		code, _, _ := postKeyed(context.Background(), p.APIAddr, body, nil, key)
		first <- code
	}()
	var seen int
	testutil.WaitFor(t, 60*time.Second, "part of the batch visible", func() bool { seen, _ = count(); return seen > 0 })
	p.Kill()
	code := <-first
	p.Start()
	after, _ := count()
	rcode, hdr, err := postKeyed(context.Background(), p.APIAddr, body, nil, key)
	if err != nil || rcode != http.StatusOK {
		t.Fatalf("retry after restart: %d %v", rcode, err)
	}
	got, distinct := count()
	t.Logf("seen %d before the kill (first attempt answered %d), %d after restart; retry replayed=%q", seen, code, after, hdr.Get("Idempotent-Replayed"))
	if got != n || distinct != n {
		t.Errorf("after SIGKILL mid-batch and a retry: %d records, %d distinct, want %d", got, distinct, n)
	}
}

// TestARetryAfterTheFirstTransactionFailedStoresNothingTwice: a batch over several
// transactions whose first transaction (the one with the key) fails in
// Badger while a later one commits (a transient log write error, as
// failCommits in package index makes). The answer is 503 "part of it may
// be stored (a retry stores them twice unless it carries the same
// Idempotency-Key)"; the retry with the key must not store that part twice.
func TestARetryAfterTheFirstTransactionFailedStoresNothingTwice(t *testing.T) {
	c := testutil.NewCluster(t, 1, nil)
	c.WaitAlive(20 * time.Second)
	addr := c.Peer(0).APIAddr()
	db := storeOf(c.Peer(0))
	bdb := reflect.ValueOf(db).Elem().FieldByName("bdb")
	bdbPtr := *(*unsafe.Pointer)(unsafe.Pointer(bdb.UnsafeAddr()))
	f := bdb.Type().Elem()
	sf, ok := f.FieldByName("blockWrites")
	if !ok || sf.Type != reflect.TypeFor[atomic.Int32]() {
		t.Skip("no blockWrites flag in this Badger")
	}
	block := (*atomic.Int32)(unsafe.Add(bdbPtr, sf.Offset))
	const tag, key, n = "reveG", "revE-G", 20000
	body := keyedBody(tag, n)
	release, queued := holdStore(t, db)
	base := queued()
	first := make(chan int, 1)
	go func() {
		code, _, _ := postKeyed(context.Background(), addr, body, nil, key)
		first <- code
	}()
	testutil.WaitFor(t, 10*time.Second, "the first attempt queued", func() bool { return queued() > base })
	errs := db.Stats().CommitErrors
	block.Store(1)
	unblocked := make(chan struct{})
	go func() {
		defer close(unblocked)
		deadline := time.Now().Add(10 * time.Second)
		for db.Stats().CommitErrors == errs && time.Now().Before(deadline) {
			runtime.Gosched()
		}
		block.Store(0)
	}()
	release()
	code := <-first
	<-unblocked
	part, _ := countTagged(t, c, 0, tag)
	t.Logf("first attempt: %d, %d of %d records stored, %d commit errors", code, part, n, db.Stats().CommitErrors-errs)
	if part == 0 || part == n {
		t.Skipf("no partial write this time (%d stored)", part)
	}
	rcode, hdr, err := postKeyed(context.Background(), addr, body, nil, key)
	if err != nil || rcode != http.StatusOK {
		t.Fatalf("retry: %d %v", rcode, err)
	}
	got, msgs := countTagged(t, c, 0, tag)
	if got != n || len(msgs) != n {
		t.Errorf("first attempt %d stored %d of %d; retry (replayed=%q) left %d records, %d distinct: the part stored without the key was stored again",
			code, part, n, hdr.Get("Idempotent-Replayed"), got, len(msgs))
	}
}

// TestClientTimeoutsThenImmediateRetriesStoreEachBatchOnce: the plain client pattern
// (a timeout, then the retry at once with the same key), no test hooks:
// the batch must be stored once whatever moment the timeout hits.
func TestClientTimeoutsThenImmediateRetriesStoreEachBatchOnce(t *testing.T) {
	c := testutil.NewCluster(t, 1, nil)
	c.WaitAlive(20 * time.Second)
	addr := c.Peer(0).APIAddr()
	const n = 8000
	bad := 0
	for i, d := range []time.Duration{20, 40, 60, 80, 100, 120, 150, 200, 250, 300} {
		tag, key := fmt.Sprintf("reveH%d", i), fmt.Sprintf("revE-H%d", i)
		body := keyedBody(tag, n)
		ctx, cancel := context.WithTimeout(context.Background(), d*time.Millisecond)
		code1, _, err1 := postKeyed(ctx, addr, body, nil, key)
		cancel()
		code2, hdr, err2 := postKeyed(context.Background(), addr, body, nil, key)
		if err2 != nil || code2 != http.StatusOK {
			t.Fatalf("retry %d: %d %v", i, code2, err2)
		}
		got, msgs := countTagged(t, c, 0, tag)
		t.Logf("timeout %dms: first %d %v; retry replayed=%q; %d records, %d distinct", d, code1, err1 != nil, hdr.Get("Idempotent-Replayed"), got, len(msgs))
		if got != n {
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%d of 10 batches given up by the client and retried at once with their key are not stored exactly once", bad)
	}
}
