package gossip

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/logmesh/logmesh/testutil/leaks"
	"github.com/logmesh/logmesh/testutil/ports"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, leaks.Options()...)
}

// freeAddr returns a loopback address whose port is free for TCP and UDP.
func freeAddr(t *testing.T) string {
	t.Helper()
	addr, err := ports.Free("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

type node struct {
	*Gossip
	cfg Config
}

func startNode(t *testing.T, name string, seeds []string, mut ...func(*Config)) *node {
	t.Helper()
	cfg := Config{Name: name, BindAddr: freeAddr(t), Seeds: seeds, Tags: map[string]string{"api": "x"},
		Logger: slog.New(slog.DiscardHandler)}
	cfg.TestTimings()
	for _, m := range mut {
		m(&cfg)
	}
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return &node{g, cfg}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool, detail ...func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			for _, f := range detail {
				what += " (" + f() + ")"
			}
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func statusOf(g *Gossip, name string) Status {
	m, ok := g.Member(name)
	if !ok {
		return ""
	}
	return m.Status
}

func allSee(nodes []*node, name string, st Status) func() bool {
	return func() bool {
		for _, n := range nodes {
			if statusOf(n.Gossip, name) != st {
				return false
			}
		}
		return true
	}
}

func TestClusterFormsFromOneSeedAndSeesFailureAndLeave(t *testing.T) {
	seed := startNode(t, "n1", nil)
	nodes := []*node{seed}
	for i := 2; i <= 5; i++ {
		nodes = append(nodes, startNode(t, fmt.Sprintf("n%d", i), []string{seed.Addr()}))
	}
	for _, n := range nodes {
		waitFor(t, 10*time.Second, "n1..n5 all alive everywhere", allSee(nodes, n.Name(), StatusAlive))
	}
	if m, _ := nodes[0].Member("n3"); m.Tags["api"] != "x" {
		t.Fatalf("tags not gossiped: %v", m.Tags)
	}
	events, stop := nodes[0].Subscribe(64)
	defer stop()

	// n5 dies without a word: failure detection marks it failed (passing through suspect)
	nodes[4].Close()
	start := time.Now()
	waitFor(t, 10*time.Second, "n5 failed everywhere", allSee(nodes[:4], "n5", StatusFailed))
	t.Logf("n5 seen failed by all survivors after %v", time.Since(start).Round(10*time.Millisecond))
	sawFailed := false
	for len(events) > 0 {
		if e := <-events; e.Member.Name == "n5" && e.Member.Status == StatusFailed {
			sawFailed = true
		}
	}
	if !sawFailed {
		t.Fatal("no event announced n5's failure")
	}

	// n4 leaves gracefully: left, not failed
	if err := nodes[3].Leave(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "n4 left everywhere", allSee(nodes[:3], "n4", StatusLeft), func() string {
		return fmt.Sprint(statusOf(nodes[0].Gossip, "n4"), statusOf(nodes[1].Gossip, "n4"), statusOf(nodes[2].Gossip, "n4"))
	})
}

func TestPeerStartedBeforeItsSeedJoinsWhenTheSeedAppears(t *testing.T) {
	seedAddr := freeAddr(t)
	early := startNode(t, "early", []string{seedAddr})
	time.Sleep(300 * time.Millisecond) // let it fail a few join attempts; no synchronisation depends on this
	if n := len(early.Members()); n != 1 {
		t.Fatalf("early peer sees %d members before the seed exists", n)
	}
	seed := startNode(t, "seed", nil, func(c *Config) { c.BindAddr = seedAddr })
	waitFor(t, 10*time.Second, "early and seed see each other", func() bool {
		return statusOf(early.Gossip, "seed") == StatusAlive && statusOf(seed.Gossip, "early") == StatusAlive
	})
}

func TestWrongOrMissingKeyCannotJoin(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	other := []byte("fedcba9876543210fedcba9876543210")
	seed := startNode(t, "seed", nil, func(c *Config) { c.EncryptKey = key })
	good := startNode(t, "good", []string{seed.Addr()}, func(c *Config) { c.EncryptKey = key })
	waitFor(t, 10*time.Second, "peer with the right key joins", func() bool { return statusOf(seed.Gossip, "good") == StatusAlive })
	wrong := startNode(t, "wrong", []string{seed.Addr()}, func(c *Config) { c.EncryptKey = other })
	plain := startNode(t, "plain", []string{seed.Addr()})
	// give them many join attempts (backoff caps at 1s in test timings)
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		for _, n := range []string{"wrong", "plain"} {
			if _, ok := seed.Member(n); ok {
				t.Fatalf("peer %q joined an encrypted cluster without its key", n)
			}
		}
		if len(wrong.Members()) != 1 || len(plain.Members()) != 1 {
			t.Fatalf("outsiders learned the member list: wrong sees %d, plain sees %d", len(wrong.Members()), len(plain.Members()))
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = good
}

func TestRestartWithSameNameRejoinsAsItself(t *testing.T) {
	dir := t.TempDir()
	seed := startNode(t, "seed", nil)
	addr := freeAddr(t)
	mk := func() *node {
		return startNode(t, "phoenix", []string{seed.Addr()}, func(c *Config) {
			c.BindAddr = addr
			c.SnapshotPath = filepath.Join(dir, "serf.snapshot")
		})
	}
	p := mk()
	waitFor(t, 10*time.Second, "phoenix alive", func() bool { return statusOf(seed.Gossip, "phoenix") == StatusAlive })

	// crash, then restart with the same name and data
	p.Close()
	waitFor(t, 10*time.Second, "phoenix failed", func() bool { return statusOf(seed.Gossip, "phoenix") == StatusFailed })
	p = mk()
	waitFor(t, 10*time.Second, "phoenix alive again after a crash", func() bool { return statusOf(seed.Gossip, "phoenix") == StatusAlive })

	// graceful leave, then restart with the same name (serf#231: must not stay `left`)
	if err := p.Leave(); err != nil {
		t.Fatal(err)
	}
	p.Close()
	waitFor(t, 10*time.Second, "phoenix left", func() bool { return statusOf(seed.Gossip, "phoenix") == StatusLeft })
	p = mk()
	waitFor(t, 10*time.Second, "phoenix alive again after leaving", func() bool { return statusOf(seed.Gossip, "phoenix") == StatusAlive })
	_ = p
}

// TestSetTagsAfterCloseFailsAtOnce: in a cluster, Serf's SetTags after
// Shutdown waits out its broadcast timeout (5 s) for a broadcast that is never
// sent; a stopping peer's tag loop must not hold its Close that long.
func TestSetTagsAfterCloseFailsAtOnce(t *testing.T) {
	n := startNode(t, "a", nil)
	b := startNode(t, "b", []string{n.cfg.BindAddr})
	waitFor(t, 10*time.Second, "a and b to see each other", allSee([]*node{n, b}, "a", StatusAlive))
	waitFor(t, 10*time.Second, "a and b to see each other", allSee([]*node{n, b}, "b", StatusAlive))
	if err := n.SetTags(map[string]string{"api": "x", "fill": "1"}); err != nil {
		t.Fatalf("SetTags on a running node: %v", err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := n.SetTags(map[string]string{"api": "x"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("SetTags after Close: %v, want ErrClosed", err)
	}
}

// TestPlaintextGossipOffLoopbackNeedsConsent: a peer without a key whose
// gossip others could reach (a wildcard or non-loopback bind, or a
// non-loopback advertised address) refuses to start unless Insecure says
// the operator chose it; on loopback, or with a key, it starts.
func TestPlaintextGossipOffLoopbackNeedsConsent(t *testing.T) {
	start := func(mut func(*Config)) error {
		cfg := Config{Name: "n", BindAddr: freeAddr(t), Logger: slog.New(slog.DiscardHandler)}
		cfg.TestTimings()
		mut(&cfg)
		g, err := New(cfg)
		if err != nil {
			return err
		}
		if err := g.Start(); err != nil {
			return err
		}
		return g.Close()
	}
	for _, tc := range []struct {
		name    string
		mut     func(*Config)
		refused bool
	}{
		{"wildcard bind", func(c *Config) { c.BindAddr = ":0" }, true},
		{"advertised off loopback", func(c *Config) { c.AdvertiseAddr = "10.255.0.9:7946" }, true},
		{"advertised off loopback, insecure", func(c *Config) { c.AdvertiseAddr, c.Insecure = "10.255.0.9:7946", true }, false},
		{"advertised off loopback, with a key", func(c *Config) {
			c.AdvertiseAddr, c.EncryptKey = "10.255.0.9:7946", []byte("0123456789abcdef")
		}, false},
		{"loopback", func(c *Config) {}, false},
	} {
		err := start(tc.mut)
		if tc.refused && (err == nil || !strings.Contains(err.Error(), "--insecure-gossip")) {
			t.Errorf("%s: want a refusal naming --insecure-gossip, got %v", tc.name, err)
		}
		if !tc.refused && err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}
