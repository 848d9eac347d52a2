package gossip

import (
	"encoding/base64"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"
)

// Transport is memberlist's network transport. Tests plug a fault-injecting
// transport in here; nil means real UDP and TCP sockets on BindAddr.
type Transport = memberlist.Transport

// Config configures the membership of one peer.
type Config struct {
	// Name is the peer's member name, unique in the cluster and stable
	// across restarts. Required.
	Name string
	// BindAddr is the gossip listen address, host:port (UDP and TCP on the
	// same port). Port 0 picks a free port (see Gossip.Addr).
	BindAddr string
	// AdvertiseAddr is the address other peers reach this one at; empty
	// means BindAddr (which then must not be a wildcard for multi-host use).
	AdvertiseAddr string
	// Seeds are gossip addresses of peers to join; unreachable seeds are
	// retried forever with backoff.
	Seeds []string
	// Tags are small metadata published to every member (≤ 512 bytes in all).
	Tags map[string]string
	// EncryptKey is the gossip encryption key (16, 24 or 32 bytes; AES-GCM).
	// Peers without the same key can neither join nor read the traffic.
	EncryptKey []byte
	// KeyringFile, when set, keeps the keyring across restarts: loaded at
	// start when it exists (EncryptKey must then be one of its keys), made
	// from EncryptKey otherwise, and rewritten by every key operation.
	KeyringFile string
	// Insecure lets the peer gossip unencrypted on an address other peers
	// can reach (not loopback). Without it, Start refuses: anyone who
	// reaches a plaintext gossip port can join and be given partitions.
	Insecure bool
	// Label, when set, marks every gossip packet: members with another label
	// ignore them, so two clusters that share a key never merge.
	Label string
	// SnapshotPath, when set, lets a restarted peer rejoin as itself with the
	// members it knew.
	SnapshotPath string

	// ProbeInterval, ProbeTimeout, GossipInterval and SuspicionMult tune
	// failure detection (defaults: memberlist's LAN values 1s, 500ms, 200ms,
	// 4). Shorter detects failures sooner and costs more traffic and more
	// false suspicions under load.
	ProbeInterval  time.Duration
	ProbeTimeout   time.Duration
	GossipInterval time.Duration
	SuspicionMult  int
	// PushPullInterval is how often full state is exchanged (default 30s).
	PushPullInterval time.Duration
	// ReconnectInterval is how often Serf retries failed members (default 30s).
	ReconnectInterval time.Duration
	// ReconnectTimeout is how long failed members are kept before they are
	// reaped (default 72h).
	ReconnectTimeout time.Duration
	// TombstoneTimeout is how long left members are remembered (default 24h).
	TombstoneTimeout time.Duration
	// RejoinInterval is how often the peer re-joins its seeds while it sees
	// fewer alive members than it has known (default 10s).
	RejoinInterval time.Duration
	// JoinBackoffMax caps the backoff between attempts to join seeds (default 5s).
	JoinBackoffMax time.Duration
	// LeavePropagateDelay is how long a graceful leave waits for the news
	// to spread (default 1s).
	LeavePropagateDelay time.Duration

	// Transport replaces the network (tests); nil means real sockets.
	Transport Transport
	// Logger receives membership logs (default slog.Default()).
	Logger *slog.Logger
}

// ParseKey decodes a gossip key given in base64 (as `logmesh keygen` prints).
func ParseKey(s string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("gossip key is not base64: %v", err)
	}
	switch len(key) {
	case 16, 24, 32:
		return key, nil
	}
	return nil, fmt.Errorf("gossip key has %d bytes, want 16, 24 or 32", len(key))
}

// TestTimings sets aggressive failure-detection timings for tests: a killed
// peer is marked failed in about a second.
func (c *Config) TestTimings() {
	c.ProbeInterval = 200 * time.Millisecond
	c.ProbeTimeout = 100 * time.Millisecond
	c.GossipInterval = 50 * time.Millisecond
	c.SuspicionMult = 3
	c.PushPullInterval = 2 * time.Second
	c.ReconnectInterval = time.Second
	// Serf gives up on a failed member this soon, so that a long partition
	// exercises re-joining from the seeds
	c.ReconnectTimeout = 8 * time.Second
	c.TombstoneTimeout = 30 * time.Second
	c.RejoinInterval = time.Second
	c.JoinBackoffMax = time.Second
	c.LeavePropagateDelay = 300 * time.Millisecond
}

func (c *Config) validate() error {
	if c.Name == "" {
		return fmt.Errorf("gossip: Name is required")
	}
	if c.BindAddr == "" {
		return fmt.Errorf("gossip: BindAddr is required")
	}
	if _, err := splitAddr(c.BindAddr); err != nil {
		return fmt.Errorf("gossip address %q: %v", c.BindAddr, err)
	}
	if c.AdvertiseAddr != "" {
		if _, err := splitAddr(c.AdvertiseAddr); err != nil {
			return fmt.Errorf("advertise address %q: %v", c.AdvertiseAddr, err)
		}
	}
	for _, s := range c.Seeds {
		if _, _, err := net.SplitHostPort(s); err != nil {
			return fmt.Errorf("seed %q is not host:port", s)
		}
	}
	if n := len(c.EncryptKey); n != 0 && n != 16 && n != 24 && n != 32 {
		return fmt.Errorf("gossip key has %d bytes, want 16, 24 or 32", n)
	}
	def := memberlist.DefaultLANConfig()
	setDur(&c.ProbeInterval, def.ProbeInterval)
	setDur(&c.ProbeTimeout, def.ProbeTimeout)
	setDur(&c.GossipInterval, def.GossipInterval)
	if c.SuspicionMult == 0 {
		c.SuspicionMult = def.SuspicionMult
	}
	setDur(&c.PushPullInterval, def.PushPullInterval)
	setDur(&c.ReconnectInterval, 30*time.Second)
	setDur(&c.ReconnectTimeout, 72*time.Hour)
	setDur(&c.TombstoneTimeout, 24*time.Hour)
	setDur(&c.RejoinInterval, 10*time.Second)
	setDur(&c.JoinBackoffMax, 5*time.Second)
	setDur(&c.LeavePropagateDelay, time.Second)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

func setDur(d *time.Duration, def time.Duration) {
	if *d == 0 {
		*d = def
	}
}

type hostPort struct {
	host string
	port int
}

func splitAddr(addr string) (hostPort, error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return hostPort{}, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return hostPort{}, fmt.Errorf("bad port %q", p)
	}
	if h == "" {
		h = "0.0.0.0"
	}
	return hostPort{h, port}, nil
}
