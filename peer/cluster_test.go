package peer_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/logmesh/logmesh/client"
	"github.com/logmesh/logmesh/peer"
	"github.com/logmesh/logmesh/peer/link"
	"github.com/logmesh/logmesh/peer/view"
	"github.com/logmesh/logmesh/record"
	"github.com/logmesh/logmesh/testutil"
	"github.com/logmesh/logmesh/wire"
)

// ingestJSON posts n records to a peer and returns their IDs.
func ingestJSON(t *testing.T, cl *client.Client, tag string, n int, params url.Values) []record.ID {
	t.Helper()
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "{\"host\":\"h%d\",\"message\":\"%s %d\"}\n", i%7, tag, i)
	}
	if params == nil {
		params = url.Values{}
	}
	params.Set("ids", "true")
	resp, err := cl.Ingest(context.Background(), []byte(b.String()), "application/x-ndjson", params)
	if err != nil {
		t.Fatalf("ingest %s: %v", tag, err)
	}
	return resp.IDs
}

// localIDs returns what one peer's own store holds.
func localIDs(t *testing.T, cl *client.Client) map[record.ID]bool {
	t.Helper()
	out := map[record.ID]bool{}
	_, err := cl.Query(context.Background(), mustQuery(t, "local=true&limit=0"), func(j *record.JSON) error {
		id, err := record.ParseID(j.ID)
		out[id] = true
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// clusterIDs returns the IDs a fanned-out query at a peer returns, failing on duplicates.
func clusterIDs(t *testing.T, cl *client.Client) (map[record.ID]bool, client.Coverage) {
	t.Helper()
	out := map[record.ID]bool{}
	cov, err := cl.Query(context.Background(), mustQuery(t, "limit=0"), func(j *record.JSON) error {
		id, err := record.ParseID(j.ID)
		if out[id] {
			return fmt.Errorf("record %s returned twice", id)
		}
		out[id] = true
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out, cov
}

// everyOwnerHasIt reports the first record some owner lacks, or "".
func everyOwnerHasIt(t *testing.T, c *testutil.Cluster, ids []record.ID) string {
	held := map[string]map[record.ID]bool{}
	for _, i := range c.Running() {
		held[c.Name(i)] = localIDs(t, c.Client(i))
	}
	p := c.Peer(c.Running()[0])
	for _, id := range ids {
		for _, o := range p.Owners(id.Partition()) {
			if h, ok := held[o]; ok && !h[id] {
				return fmt.Sprintf("%s lacks %s", o, id)
			}
		}
	}
	return ""
}

func TestClusterReplicatesToEveryOwnerAndAnswersAlikeEverywhere(t *testing.T) {
	for _, n := range []int{3, 5} {
		t.Run(fmt.Sprintf("%d peers", n), func(t *testing.T) {
			c := testutil.NewCluster(t, n, nil)
			c.WaitAlive(20 * time.Second)
			var ids []record.ID
			for i := 0; i < n; i++ {
				ids = append(ids, ingestJSON(t, c.Client(i), fmt.Sprintf("from-p%d", i+1), 300, nil)...)
			}
			// every peer computes the same placement
			for pt := 0; pt < record.NumPartitions; pt++ {
				want := c.Peer(0).Owners(record.Partition(pt))
				if len(want) != 3 {
					t.Fatalf("partition %d has %d owners, want 3", pt, len(want))
				}
				for i := 1; i < n; i++ {
					if got := c.Peer(i).Owners(record.Partition(pt)); !slices.Equal(got, want) {
						t.Fatalf("p%d places partition %d on %v, p1 on %v", i+1, pt, got, want)
					}
				}
			}
			var detail string
			testutil.WaitFor(t, 30*time.Second, "every record on every one of its owners",
				func() bool { detail = everyOwnerHasIt(t, c, ids); return detail == "" }, func() string { return detail })
			for i := 0; i < n; i++ {
				// under a loaded machine a member may be suspected for a moment
				// (a late UDP ping), and a query then reports partial coverage:
				// every peer must come to answer every record with full coverage
				testutil.WaitFor(t, 30*time.Second, fmt.Sprintf("a query at p%d to answer every record with full coverage", i+1),
					func() bool {
						got, cov := clusterIDs(t, c.Client(i))
						detail = fmt.Sprintf("%d records (coverage %q), want %d", len(got), cov.State, len(ids))
						if cov.State != "full" || len(got) != len(ids) {
							return false
						}
						for _, id := range ids {
							if !got[id] {
								detail = fmt.Sprintf("misses %s", id)
								return false
							}
						}
						return true
					}, func() string { return detail })
			}
			if n > 3 {
				// records held only as hints are deleted once their owners have them
				testutil.WaitFor(t, 30*time.Second, "non-owners to drop delivered hints", func() bool {
					for _, i := range c.Running() {
						for id := range localIDs(t, c.Client(i)) {
							if !slices.Contains(c.Peer(i).Owners(id.Partition()), c.Name(i)) {
								return false
							}
						}
					}
					return true
				})
			}
		})
	}
}

func TestQuorumWritesReportReplicasAndUnreachedOwners(t *testing.T) {
	c := testutil.NewCluster(t, 3, nil)
	c.WaitAlive(20 * time.Second)
	cl := c.Client(0)
	body := []byte("{\"message\":\"q1\"}\n{\"message\":\"q2\"}\n")
	resp, err := cl.Ingest(context.Background(), body, "application/x-ndjson", url.Values{"w": {"all"}})
	if err != nil || resp.Replicas != 3 || resp.Required != 3 || len(resp.Unreached) != 0 {
		t.Fatalf("w=all with every peer up: %+v, %v", resp, err)
	}
	c.Stop(2)
	testutil.WaitFor(t, 20*time.Second, "p3 seen failed", func() bool {
		for _, m := range c.Peer(0).Members() {
			if m.Name == "p3" {
				return m.Status == "failed"
			}
		}
		return false
	})
	resp, err = cl.Ingest(context.Background(), body, "application/x-ndjson", url.Values{"w": {"quorum"}})
	if err != nil || resp.Replicas < 2 || resp.Required != 2 {
		t.Fatalf("w=quorum with one peer down: %+v, %v", resp, err)
	}
	_, err = cl.Ingest(context.Background(), body, "application/x-ndjson", url.Values{"w": {"all"}, "timeout": {"500ms"}})
	se, ok := err.(*client.StatusError)
	if !ok || se.Code != http.StatusGatewayTimeout {
		t.Fatalf("w=all with one peer down answered %v, want 504", err)
	}
	got, _ := cl.Ingest(context.Background(), body, "application/x-ndjson", url.Values{"w": {"1"}})
	if got.Accepted != 2 {
		t.Fatalf("w=1 with one peer down: %+v", got)
	}
	_ = peer.Version
}

func TestPeerWithWrongGossipKeyIsKeptOut(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	c := testutil.NewCluster(t, 3, func(i int, cfg *peer.Config) {
		cfg.EncryptKey = key
		if i == 2 {
			cfg.EncryptKey = []byte("ffffffffffffffffffffffffffffffff") // wrong key
		}
	})
	testutil.WaitFor(t, 20*time.Second, "p1 and p2 to see each other", func() bool {
		return statusIn(c.Peer(0), "p2") == "alive" && statusIn(c.Peer(1), "p1") == "alive"
	})
	deadline := time.Now().Add(3 * time.Second) // many join attempts at test timings
	for time.Now().Before(deadline) {
		if statusIn(c.Peer(0), "p3") != "" || statusIn(c.Peer(2), "p1") != "" {
			t.Fatal("a peer with the wrong gossip key became a member")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestPeerStartedBeforeItsSeedJoinsLater(t *testing.T) {
	dir := t.TempDir()
	seedAddr := testutil.FreeAddr(t)
	early := testutil.PeerConfig(t, dir, 1, seedAddr) // p2, seeded with an address nobody listens on yet
	early.Logger = quietLogger()
	p2, err := peer.New(early)
	if err != nil {
		t.Fatal(err)
	}
	if err := p2.Start(); err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	seed := testutil.PeerConfig(t, dir, 0, "")
	seed.GossipAddr = seedAddr
	seed.Logger = quietLogger()
	p1, err := peer.New(seed)
	if err != nil {
		t.Fatal(err)
	}
	if err := p1.Start(); err != nil {
		t.Fatal(err)
	}
	defer p1.Close()
	testutil.WaitFor(t, 20*time.Second, "the early peer to join the seed", func() bool {
		return statusIn(p1, "p2") == "alive" && statusIn(p2, "p1") == "alive"
	})
}

func statusIn(p *peer.Peer, name string) string {
	for _, m := range p.Members() {
		if m.Name == name {
			return m.Status
		}
	}
	return ""
}

func TestQueryWithoutALiveOwnerSaysItIsPartial(t *testing.T) {
	c := testutil.NewCluster(t, 3, func(i int, cfg *peer.Config) { cfg.Replicas = 1 })
	c.WaitAlive(20 * time.Second)
	ids := ingestJSON(t, c.Client(0), "one-copy", 600, nil)
	var detail string
	testutil.WaitFor(t, 30*time.Second, "every record on its owner",
		func() bool { detail = everyOwnerHasIt(t, c, ids); return detail == "" }, func() string { return detail })
	onP3 := 0
	for _, id := range ids {
		if c.Peer(0).Owners(id.Partition())[0] == "p3" {
			onP3++
		}
	}
	// a count is of every match, whatever the limit, with the coverage
	ctx := testutil.Context(t)
	if n, err := c.Client(1).Count(ctx, mustQuery(t, "contains=one-copy&limit=5")); err != nil || n.Count != 600 || n.Coverage != "full" {
		t.Fatalf("count with every owner up: %+v %v, want 600 full", n, err)
	}
	if n, err := c.Client(1).Count(ctx, mustQuery(t, "contains=one-copy&local=true")); err != nil || n.Coverage != "local" ||
		n.Count != int64(len(localIDs(t, c.Client(1)))) {
		t.Fatalf("local count: %+v %v, want p2's own %d", n, err, len(localIDs(t, c.Client(1))))
	}
	c.Stop(2)
	testutil.WaitFor(t, 20*time.Second, "p3 failed", func() bool { return statusIn(c.Peer(0), "p3") == "failed" })
	got, cov := clusterIDs(t, c.Client(0))
	var want []string
	for pt := 0; pt < record.NumPartitions; pt++ {
		if c.Peer(0).Owners(record.Partition(pt))[0] == "p3" {
			want = append(want, fmt.Sprint(pt))
		}
	}
	if !cov.Partial() || cov.Missing != strings.Join(want, ",") {
		t.Fatalf("coverage %+v with p3 down, want partial, missing p3's partitions %v", cov, want)
	}
	if n, err := c.Client(0).Count(ctx, mustQuery(t, "contains=one-copy")); err != nil || n.Coverage != "partial" ||
		!strings.Contains(n.Reason, strings.Join(want, ",")) || n.Count != int64(len(got)) {
		t.Fatalf("count with p3 down: %+v %v, want partial naming p3's partitions, %d records", n, err, len(got))
	}
	// every record whose only owner is alive is there (copies p1 still
	// holds as hints may add some of p3's)
	for _, id := range ids {
		if c.Peer(0).Owners(id.Partition())[0] != "p3" && !got[id] {
			t.Fatalf("partial answer misses %s, whose owner is alive", id)
		}
	}
	if onP3 == 0 {
		t.Fatal("no record was placed on p3: the test proves nothing")
	}
}

func TestBacklogOverMaxHintsBytesIsSkippedAndCounted(t *testing.T) {
	c := testutil.NewCluster(t, 3, func(i int, cfg *peer.Config) { cfg.MaxHintsBytes = 32 << 10 })
	c.WaitAlive(20 * time.Second)
	c.Stop(2)
	testutil.WaitFor(t, 20*time.Second, "p3 failed", func() bool { return statusIn(c.Peer(0), "p3") == "failed" })
	for b := 0; b < 10; b++ {
		ingestJSON(t, c.Client(0), fmt.Sprintf("backlog-%d", b), 100, nil)
	}
	testutil.WaitFor(t, 20*time.Second, "the backlog for p3 to be dropped", func() bool {
		s := c.Peer(0).Status()
		if s.Skips == 0 {
			return false
		}
		for _, r := range s.Replication {
			if r.Peer == "p3" {
				return r.Skipped && r.UndeliveredBytes <= 32<<10
			}
		}
		return false
	})
}

// TestQueryAtAnyPeerSeesWritesNotYetPushed: a record acknowledged by one
// peer is in every cluster query at once, although a query reads each
// partition from one owner and the push to that owner has not happened yet.
// The receiving peer answers for its undelivered records however old they
// are (its clock is moved half an hour ahead, past the recent window).
func TestQueryAtAnyPeerSeesWritesNotYetPushed(t *testing.T) {
	var blocked atomic.Bool
	var offset atomic.Int64
	c := testutil.NewCluster(t, 3, func(i int, cfg *peer.Config) {
		if i != 1 {
			return
		}
		cfg.Now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
		cfg.DialContext = holdableDialer(&blocked)
	})
	c.WaitAlive(20 * time.Second)
	blocked.Store(true)
	ids := ingestJSON(t, c.Client(1), "held", 50, nil)
	check := func(when string) {
		t.Helper()
		for _, i := range []int{0, 2} {
			if held := localIDs(t, c.Client(i)); held[ids[0]] {
				t.Fatalf("%s: p%d already holds a held record; the test proves nothing", when, i+1)
			}
			got, cov := clusterIDs(t, c.Client(i))
			if cov.State != "full" {
				t.Fatalf("%s: query at p%d: coverage %q", when, i+1, cov.State)
			}
			for _, id := range ids {
				if !got[id] {
					t.Fatalf("%s: query at p%d misses %s, acknowledged by p2 and not pushed yet", when, i+1, id)
				}
			}
		}
	}
	check("just written")
	offset.Store(int64(30 * time.Minute))
	check("p2's clock half an hour later")

	blocked.Store(false)
	var detail string
	testutil.WaitFor(t, 30*time.Second, "held records on every owner once pushes resume",
		func() bool { detail = everyOwnerHasIt(t, c, ids); return detail == "" }, func() string { return detail })
}

// holdableDialer dials connections whose writes fail while held is set:
// a peer's pushes (and calls) held back, kept-alive connections included.
func holdableDialer(held *atomic.Bool) func(ctx context.Context, network, addr string) (net.Conn, error) {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dialer.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return heldConn{conn, held}, nil
	}
}

// heldConn fails writes while held is set, kept-alive connections included.
type heldConn struct {
	net.Conn
	held *atomic.Bool
}

func (c heldConn) Write(b []byte) (int, error) {
	if c.held.Load() {
		return 0, errors.New("test: traffic from p2 is held")
	}
	return c.Conn.Write(b)
}

// TestGossipKeyRotationThroughTheAPI rotates the gossip key of a running
// cluster with the API the CLI uses, and a restarted peer keeps it.
func TestGossipKeyRotationThroughTheAPI(t *testing.T) {
	oldKey := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	newKey := base64.StdEncoding.EncodeToString([]byte("fedcba9876543210fedcba9876543210"))
	c := testutil.NewCluster(t, 3, func(i int, cfg *peer.Config) {
		cfg.EncryptKey = []byte("0123456789abcdef0123456789abcdef")
	})
	c.WaitAlive(20 * time.Second)
	ctx := context.Background()
	cl := c.Client(1)
	if _, err := cl.KeyOp(ctx, "remove", oldKey); err == nil {
		t.Fatal("removing the only key in use was accepted")
	}
	for _, op := range []string{"install", "use", "remove"} {
		key := newKey
		if op == "remove" {
			key = oldKey
		}
		if ks, err := cl.KeyOp(ctx, op, key); err != nil {
			t.Fatalf("%s: %v (%+v)", op, err, ks)
		}
	}
	ks, err := c.Client(2).Keys(ctx)
	if err != nil || len(ks.Keys) != 1 || ks.Primary[newKey] != 3 {
		t.Fatalf("after the rotation: %+v (%v)", ks, err)
	}
	// p3 restarts with its configuration still naming the old key: its
	// keyring file wins and it is back in the cluster
	c.Stop(2)
	c.Start(2)
	c.WaitAlive(20 * time.Second)
	if ks, err := c.Client(0).Keys(ctx); err != nil || ks.Primary[newKey] != 3 || ks.Answered != 3 {
		t.Fatalf("after p3's restart: %+v (%v)", ks, err)
	}
	// the data plane signs with the new key too: writes still replicate
	ids := ingestJSON(t, c.Client(0), "after-rotation", 50, nil)
	testutil.WaitFor(t, 20*time.Second, "every peer to hold the records written after the rotation", func() bool {
		for i := 0; i < 3; i++ {
			held := localIDs(t, c.Client(i))
			for _, id := range ids {
				if !held[id] {
					return false
				}
			}
		}
		return true
	})
}

// TestAForgedFarFutureIDIsRefused: a record pushed with an ID of year
// 10889 (it would sort first in every query and never expire) is refused
// by a cluster peer: no member's clock is anywhere near it. One an hour
// ahead is taken.
func TestAForgedFarFutureIDIsRefused(t *testing.T) {
	c := testutil.NewCluster(t, 2, nil)
	c.WaitAlive(20 * time.Second)
	at := func(ts time.Time) record.ID { return record.NewGenerator(func() time.Time { return ts }).Next() }
	forged, soon := at(time.Date(10889, 1, 1, 0, 0, 0, 0, time.UTC)), at(time.Now().Add(time.Hour))
	var body bytes.Buffer
	ww, err := wire.NewWriter(&body)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []record.ID{forged, soon} {
		r := &record.Record{ID: id, Message: "from the future", Peer: "p2"}
		if err := ww.Record(id, r.AppendEncode(nil)); err != nil {
			t.Fatal(err)
		}
	}
	if err := ww.End(""); err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, "http://"+c.Peer(0).APIAddr()+"/internal/v1/replicate", &body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(link.HeaderFrom, "p2")
	req.Header.Set(link.HeaderProto, peer.ProtoVersion)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var pr struct {
		Written, Future int
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	err = json.Unmarshal(raw, &pr)
	if err != nil || resp.StatusCode != 200 || pr.Future != 1 || pr.Written != 1 {
		t.Fatalf("push of a forged and a near-future record: %d %+v %v, want 1 refused as future and 1 written", resp.StatusCode, pr, err)
	}
	held := localIDs(t, c.Client(0))
	if held[forged] || !held[soon] {
		t.Fatalf("after the push: forged held %v, near-future held %v", held[forged], held[soon])
	}
}

// TestInternalCallsNeedTheClusterKey: with encrypted gossip and no TLS, a
// peer answers /internal only to a member that signs with the gossip key:
// an outsider's push is refused before its body is read, whether unsigned,
// signed with another key, or signed under the receiver's own name.
func TestInternalCallsNeedTheClusterKey(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	c := testutil.NewCluster(t, 2, func(i int, cfg *peer.Config) { cfg.EncryptKey = key })
	c.WaitAlive(20 * time.Second)
	push := func(from string, signKey []byte) int {
		req, err := http.NewRequest(http.MethodPost, "http://"+c.Peer(0).APIAddr()+"/internal/v1/replicate",
			strings.NewReader("not a batch"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set(link.HeaderFrom, from)
		if signKey != nil {
			link.Sign(req, signKey)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		what string
		from string
		key  []byte
	}{
		{"unsigned", "p2", nil},
		{"signed with another key", "p2", []byte("ffffffffffffffffffffffffffffffff")},
		{"signed under its own name", "p1", key},
	} {
		if code := push(tc.from, tc.key); code != http.StatusForbidden {
			t.Errorf("%s: answered %d, want 403", tc.what, code)
		}
	}
	if code := push("p2", key); code == http.StatusForbidden {
		t.Fatal("a member's signed call was refused")
	}
	ids := ingestJSON(t, c.Client(0), "signed", 20, nil)
	testutil.WaitFor(t, 20*time.Second, "p2 to hold what p1 took", func() bool {
		held := localIDs(t, c.Client(1))
		for _, id := range ids {
			if !held[id] {
				return false
			}
		}
		return true
	})
}

// TestLeaveHandsOverWhatOnlyThisPeerHolds: a peer told to leave while its
// pushes are held back stops taking writes and does not leave until the
// others have everything it acknowledged.
func TestLeaveHandsOverWhatOnlyThisPeerHolds(t *testing.T) {
	var held atomic.Bool
	c := testutil.NewCluster(t, 3, func(i int, cfg *peer.Config) {
		if i != 2 {
			return
		}
		cfg.DialContext = holdableDialer(&held)
	})
	c.WaitAlive(20 * time.Second)
	held.Store(true)
	ids := ingestJSON(t, c.Client(2), "only-on-p3", 100, nil)
	done := make(chan error, 1)
	go func() { done <- c.Peer(2).Leave() }()
	testutil.WaitFor(t, 10*time.Second, "p3 to refuse writes once leaving", func() bool {
		_, err := c.Client(2).Ingest(context.Background(), []byte(`{"message":"late"}`+"\n"), "application/x-ndjson", nil)
		var se *client.StatusError
		return errors.As(err, &se) && se.Code == http.StatusServiceUnavailable
	})
	// a gossip leave alone takes about a second: watch three
	select {
	case err := <-done:
		t.Fatalf("p3 left (%v) while the records only it holds could not be pushed", err)
	case <-time.After(3 * time.Second):
	}
	held.Store(false)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("leave: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("p3 did not leave within 30s of its pushes resuming")
	}
	c.Stop(2) // as the agent does right after leaving
	for i := 0; i < 2; i++ {
		held := localIDs(t, c.Client(i))
		for _, id := range ids {
			if !held[id] {
				t.Fatalf("p%d lacks %s after p3 left", i+1, id)
			}
		}
	}
}

// TestQueryAvoidsAPeerStillBeingFilled: a peer that joins a cluster holding
// data owns partitions it has not received yet. Until anti-entropy has
// proven it complete, queries (even at that peer) read those partitions
// from the owners that hold them, so older records are not missed.
func TestQueryAvoidsAPeerStillBeingFilled(t *testing.T) {
	var offset atomic.Int64
	offset.Store(int64(-30 * time.Minute)) // the records will look half an hour old: past the recent window
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	mut := func(cfg *peer.Config) {
		cfg.Now = clock
		cfg.AntiEntropyInterval = time.Second
		cfg.RepairRate = 64 << 10 // bytes/s: 1 MB of records takes a newcomer ~16s to get
	}
	c := testutil.NewCluster(t, 2, func(i int, cfg *peer.Config) { mut(cfg) })
	c.WaitAlive(20 * time.Second)
	var body strings.Builder
	pad := strings.Repeat("x", 2000)
	for i := 0; i < 500; i++ {
		fmt.Fprintf(&body, "{\"message\":\"older %d %s\"}\n", i, pad)
	}
	resp, err := c.Client(0).Ingest(context.Background(), []byte(body.String()), "application/x-ndjson", url.Values{"ids": {"true"}})
	if err != nil {
		t.Fatal(err)
	}
	ids := resp.IDs
	// fillTags returns, as peer i sees them, the partitions each member
	// owns and does not claim complete (in its "cm" gossip tag)
	fillTags := func(i int) map[string]int {
		out := map[string]int{}
		for _, m := range c.Peer(i).Members() {
			claims, _ := view.ParseMask(m.Tags[view.TagComplete])
			for pt := 0; pt < record.NumPartitions; pt++ {
				if slices.Contains(c.Peer(i).Owners(record.Partition(pt)), m.Name) && (claims == nil || !claims[pt]) {
					out[m.Name]++
				}
			}
		}
		return out
	}
	testutil.WaitFor(t, 30*time.Second, "both peers holding the records and proven complete", func() bool {
		f := fillTags(0)
		return c.Peer(0).Status().Records == 500 && c.Peer(1).Status().Records == 500 && f["p1"] == 0 && f["p2"] == 0
	}, func() string { return fmt.Sprint(fillTags(0)) })
	offset.Store(0)
	n := c.Add(mut)
	c.WaitMembers(20 * time.Second)
	testutil.WaitFor(t, 20*time.Second, "the new peer to say it is being filled", func() bool {
		return fillTags(0)[c.Name(n)] > 0
	})
	for _, i := range []int{n, 0} {
		got, cov := clusterIDs(t, c.Client(i))
		if cov.State != "full" {
			t.Fatalf("query at %s: coverage %q", c.Name(i), cov.State)
		}
		for _, id := range ids {
			if !got[id] {
				t.Fatalf("query at %s misses %s while %s is being filled (it holds %d; fill tags seen there: %v)",
					c.Name(i), id, c.Name(n), c.Peer(n).Status().Records, fillTags(i))
			}
		}
	}
	if held := c.Peer(n).Status().Records; held >= 500 {
		t.Fatalf("the new peer held all %d records by the end of the queries: the test proved nothing", held)
	}
}

// TestPeersPublishThatTheirStoreWasInACluster: once two peers see each
// other, each publishes the cl tag. It is what tells a fresh store joining
// later, while nobody claims anything, that the cluster is not new (see
// repair.TestAFreshStoreJoiningAClusterThatExistedIsNotNew).
func TestPeersPublishThatTheirStoreWasInACluster(t *testing.T) {
	c := testutil.NewCluster(t, 2, nil)
	c.WaitAlive(20 * time.Second)
	lacking := ""
	testutil.WaitFor(t, 20*time.Second, "each peer sees the other's cl tag", func() bool {
		for i := 0; i < 2; i++ {
			for _, m := range c.Peer(i).Members() {
				if m.Name != c.Name(i) && m.Tags[view.TagClustered] != "1" {
					lacking = fmt.Sprintf("%s sees %s without it (tags %v)", c.Name(i), m.Name, m.Tags)
					return false
				}
			}
		}
		return true
	}, func() string { return lacking })
}
