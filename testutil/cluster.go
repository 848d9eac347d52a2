package testutil

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/logmesh/logmesh/client"
	"github.com/logmesh/logmesh/peer"
	"github.com/logmesh/logmesh/peer/view"
	"github.com/logmesh/logmesh/record"
	"github.com/logmesh/logmesh/testutil/faultnet"
)

// Cluster is a set of in-process peers on loopback, each with its own data
// directory, ports and log file (printed when the test fails).
type Cluster struct {
	// Net, when set before peers start, carries their gossip and
	// data-plane traffic so that tests can cut and slow links.
	Net   *faultnet.Network
	t     testing.TB
	mut   func(i int, c *peer.Config)
	mu    sync.Mutex
	peers []*peer.Peer
	cfgs  []peer.Config
	Dir   string
	// clients holds one API client per peer address, so that polls reuse
	// their keep-alive connections
	clients map[string]*client.Client
}

// PeerConfig returns the test configuration of peer i of a cluster in dir:
// real sockets on 127.0.0.1, aggressive failure detection (probe 200ms),
// small stores, replicas 3, peer 0 as the seed, and a gossip label of its
// own (ClusterLabelFor(dir)).
func PeerConfig(t testing.TB, dir string, i int, seed string) peer.Config {
	name := fmt.Sprintf("p%d", i+1)
	cfg := peer.DefaultConfig(filepath.Join(dir, name))
	cfg.Name = name
	cfg.ClusterLabel = ClusterLabelFor(dir)
	cfg.APIAddr, cfg.SyslogTCP, cfg.SyslogUDP = "127.0.0.1:0", "", ""
	cfg.GossipAddr = FreeAddr(t)
	if seed != "" {
		cfg.Seeds = []string{seed}
	}
	cfg.Gossip.TestTimings()
	cfg.Index.MemTableBytes, cfg.Index.BlockCacheBytes, cfg.Index.IndexCacheBytes = 4<<20, 4<<20, 2<<20
	cfg.Index.FsyncInterval = 20 * time.Millisecond
	cfg.Index.CheckpointInterval = time.Second
	cfg.ReplicationRetryMax = 500 * time.Millisecond
	cfg.AntiEntropyInterval = 2 * time.Second
	cfg.RetireAfter = time.Second // tests wait for deletes; the grace still applies
	return cfg
}

// ClusterLabelFor is the gossip label of the test cluster in dir. Every
// test cluster has its own: test binaries of several packages run at once
// and hand out ports from one range, and all name their peers p1, p2, ...;
// without a label, a peer that keeps re-joining a member it lost (Serf's
// reconnect, the seeds' re-join) reaches whatever peer of another test now
// holds that port, and the two clusters merge.
func ClusterLabelFor(dir string) string {
	sum := sha256.Sum256([]byte(dir))
	return "test-" + hex.EncodeToString(sum[:8])
}

// NewCluster starts n peers, the others joining peer 0. mut may adjust each
// configuration. Every peer is closed when the test ends.
func NewCluster(t testing.TB, n int, mut func(i int, c *peer.Config)) *Cluster {
	return NewClusterOn(t, nil, n, mut)
}

// NewClusterOn starts n peers whose traffic goes through net (nil: plain sockets).
func NewClusterOn(t testing.TB, net *faultnet.Network, n int, mut func(i int, c *peer.Config)) *Cluster {
	t.Helper()
	c := &Cluster{t: t, mut: mut, Dir: t.TempDir(), Net: net}
	t.Cleanup(c.Close)
	for i := 0; i < n; i++ {
		seed := ""
		if i > 0 {
			seed = c.cfgs[0].GossipAddr
		}
		cfg := PeerConfig(t, c.Dir, i, seed)
		if mut != nil {
			mut(i, &cfg)
		}
		c.cfgs = append(c.cfgs, cfg)
		c.peers = append(c.peers, nil)
		c.Start(i)
	}
	return c
}

// Start (re)starts peer i with its configuration and data.
func (c *Cluster) Start(i int) *peer.Peer {
	c.t.Helper()
	cfg := c.cfgs[i]
	logPath := filepath.Join(c.Dir, cfg.Name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	cfg.Logger = slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if c.Net != nil {
		tr, err := c.Net.Transport(cfg.Name, cfg.GossipAddr)
		if err != nil {
			c.t.Fatal(err)
		}
		cfg.Gossip.Transport = tr
		cfg.DialContext = c.Net.Dialer(cfg.Name)
	}
	p, err := peer.New(cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		c.t.Fatalf("start %s: %v", cfg.Name, err)
	}
	if c.Net != nil {
		c.Net.Register(cfg.Name, cfg.GossipAddr, p.APIAddr())
	}
	c.mu.Lock()
	c.peers[i] = p
	c.mu.Unlock()
	return p
}

// Config returns peer i's configuration (its data directory, addresses).
func (c *Cluster) Config(i int) peer.Config { return c.cfgs[i] }

// Add starts one more peer, joining peer 0, and returns its index.
func (c *Cluster) Add(mut func(c *peer.Config)) int {
	c.t.Helper()
	i := len(c.cfgs)
	cfg := PeerConfig(c.t, c.Dir, i, c.cfgs[0].GossipAddr)
	if c.mut != nil {
		c.mut(i, &cfg)
	}
	if mut != nil {
		mut(&cfg)
	}
	c.cfgs = append(c.cfgs, cfg)
	c.mu.Lock()
	c.peers = append(c.peers, nil)
	c.mu.Unlock()
	c.Start(i)
	return i
}

// Leave makes peer i leave gracefully, then stops it.
func (c *Cluster) Leave(i int) {
	c.mu.Lock()
	p := c.peers[i]
	c.peers[i] = nil
	c.mu.Unlock()
	if p != nil {
		p.Leave()
		p.Close()
	}
}

// Stop closes peer i without leaving (others see it fail).
func (c *Cluster) Stop(i int) {
	c.mu.Lock()
	p := c.peers[i]
	c.peers[i] = nil
	c.mu.Unlock()
	if p != nil {
		p.Close()
	}
}

// Peer returns peer i (nil while stopped).
func (c *Cluster) Peer(i int) *peer.Peer {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.peers[i]
}

// Len is the number of peers, running or not.
func (c *Cluster) Len() int { return len(c.cfgs) }

// Name returns peer i's name.
func (c *Cluster) Name(i int) string { return c.cfgs[i].Name }

// Client returns an API client for peer i (the same one for each call
// while the peer keeps its address: do not change its Token).
func (c *Cluster) Client(i int) *client.Client {
	c.t.Helper()
	addr := c.Peer(i).APIAddr()
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl := c.clients[addr]; cl != nil {
		return cl
	}
	cl, err := client.New(addr)
	if err != nil {
		c.t.Fatal(err)
	}
	if c.clients == nil {
		c.clients = map[string]*client.Client{}
	}
	c.clients[addr] = cl
	return cl
}

// Running returns the indexes of running peers.
func (c *Cluster) Running() []int {
	var out []int
	for i := range c.cfgs {
		if c.Peer(i) != nil {
			out = append(out, i)
		}
	}
	return out
}

// WaitAlive waits until every running peer sees every running peer alive
// and holds complete every partition it owns (a new cluster's peers prove
// that to each other within an anti-entropy interval or two): until then
// cluster queries may rightly answer partial.
func (c *Cluster) WaitAlive(timeout time.Duration) {
	c.t.Helper()
	c.WaitMembers(timeout)
	var detail string
	WaitFor(c.t, timeout, "every running peer to hold its partitions complete", func() bool {
		detail = c.Filling()
		return detail == ""
	}, func() string { return detail })
}

// Filling names the first running peer still being filled with a partition
// it owns, or whose claim to hold it complete another running peer has not
// seen yet (in its gossip tags), or "".
func (c *Cluster) Filling() string {
	run := c.Running()
	for _, i := range run {
		p := c.Peer(i)
		for pt := 0; pt < record.NumPartitions; pt++ {
			part := record.Partition(pt)
			if slices.Contains(p.Owners(part), p.Name()) && !p.Complete(part) {
				return fmt.Sprintf("%s does not hold partition %d complete yet", p.Name(), pt)
			}
		}
	}
	for _, i := range run {
		seer := c.Peer(i)
		claims := map[string]*view.Mask{}
		for _, m := range seer.Members() {
			claims[m.Name], _ = view.ParseMask(m.Tags[view.TagComplete])
		}
		for _, j := range run {
			name := c.Name(j)
			for pt := 0; pt < record.NumPartitions; pt++ {
				part := record.Partition(pt)
				if slices.Contains(seer.Owners(part), name) && (claims[name] == nil || !claims[name][pt]) {
					return fmt.Sprintf("%s does not see %s claim partition %d yet", seer.Name(), name, pt)
				}
			}
		}
	}
	return ""
}

// WaitMembers waits until every running peer sees every running peer alive.
func (c *Cluster) WaitMembers(timeout time.Duration) {
	c.t.Helper()
	WaitFor(c.t, timeout, "every running peer to see the others alive", func() bool {
		run := c.Running()
		for _, i := range run {
			seen := map[string]string{}
			for _, m := range c.Peer(i).Members() {
				seen[m.Name] = string(m.Status)
			}
			for _, j := range run {
				if seen[c.Name(j)] != "alive" {
					return false
				}
			}
		}
		return true
	})
}

// Close stops every peer and, when the test failed, prints their logs.
func (c *Cluster) Close() {
	for i := range c.cfgs {
		c.Stop(i)
	}
	c.mu.Lock()
	for _, cl := range c.clients {
		cl.CloseIdleConnections()
	}
	c.mu.Unlock()
	if c.t.Failed() {
		for _, cfg := range c.cfgs {
			dumpFile(c.t, filepath.Join(c.Dir, cfg.Name+".log"), 60)
			KeepLog(c.t, filepath.Join(c.Dir, cfg.Name+".log"), cfg.Name+".log")
		}
	}
}

func dumpFile(t testing.TB, path string, n int) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	t.Logf("---- last lines of %s\n%s", path, strings.Join(lines, "\n"))
}
