package peer_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/logmesh/logmesh/client"
	"github.com/logmesh/logmesh/peer"
	"github.com/logmesh/logmesh/record"
	"github.com/logmesh/logmesh/testutil"
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
				got, cov := clusterIDs(t, c.Client(i))
				if len(got) != len(ids) || cov.State != "full" {
					t.Fatalf("query at p%d returned %d records (coverage %q), want %d", i+1, len(got), cov.State, len(ids))
				}
				for _, id := range ids {
					if !got[id] {
						t.Fatalf("query at p%d misses %s", i+1, id)
					}
				}
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
