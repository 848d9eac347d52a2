package peer

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/logmesh/logmesh/gossip"
	"github.com/logmesh/logmesh/index"
	"github.com/logmesh/logmesh/record"
	"github.com/logmesh/logmesh/syslog"
	"github.com/logmesh/logmesh/tlsutil"
)

// Config configures a peer. Zero values mean the defaults of DefaultConfig.
type Config struct {
	// Name identifies the peer in the cluster; it must be unique and stable
	// across restarts (default: the host name).
	Name string
	// DataDir holds the store. Required.
	DataDir string
	// APIAddr is the HTTP API listen address (default ":7070"; "" is refused).
	APIAddr string
	// SyslogTCP and SyslogUDP are the syslog listen addresses; "" disables one.
	SyslogTCP, SyslogUDP string
	// SyslogTLS is the syslog-over-TLS (RFC 5425) listen address; "" (the
	// default) disables it. It serves the certificate of TLS, so it needs
	// TLS set; Syslog.TLSClientAuth decides whether clients must present a
	// certificate, verified against SyslogTLSCA.
	SyslogTLS string
	// SyslogTLSCA is the CA file that signs syslog clients' certificates;
	// "" means TLS.CA, the cluster's CA. Reread when it changes.
	SyslogTLSCA string

	// GossipAddr is the gossip listen address (UDP and TCP on one port). ""
	// runs the peer alone, outside any cluster.
	GossipAddr string
	// Advertise is the gossip address other peers reach this one at
	// (default: GossipAddr, which must then not be a wildcard address).
	Advertise string
	// APIAdvertise is the API address other peers reach this one at
	// (default: the advertised gossip host with the API port).
	APIAdvertise string
	// Seeds are gossip addresses to join; they are retried until one answers.
	Seeds []string
	// EncryptKey is the gossip encryption key (16, 24 or 32 bytes).
	EncryptKey []byte
	// InsecureGossip lets gossip run unencrypted on a non-loopback address
	// (see gossip.Config.Insecure); without it and without EncryptKey
	// such a peer refuses to start.
	InsecureGossip bool
	// ClusterLabel, when set, keeps gossip from merging with a cluster of
	// another label (two clusters that share a key, a staging seed in a
	// production list). Every peer of a cluster needs the same one.
	ClusterLabel string
	// Gossip holds the failure-detection timings (its name and addresses come
	// from the fields above).
	Gossip gossip.Config
	// Replicas is the number of copies of each record (default 3). With
	// fewer peers than that, every peer holds everything.
	Replicas int
	// MaxHintsBytes bounds the data waiting for delivery to other peers
	// (estimated from the journal backlog). Past it, pushes to the peer with
	// the largest backlog stop and anti-entropy repairs it instead (default 1 GiB).
	MaxHintsBytes int64
	// ReplicationBatchRecords bounds the records of one push (default 4096).
	ReplicationBatchRecords int
	// ReplicationCacheBytes is the memory that keeps the latest ingested
	// records for replication, so pushes need not read them back from the
	// store (default 32 MiB; 0 after validation means the default, <0 none).
	ReplicationCacheBytes int64
	// ReplicationRetryMax caps the backoff between failed pushes (default 5s).
	ReplicationRetryMax time.Duration
	// WriteTimeout bounds how long a write with w=quorum or w=all waits for
	// replicas (default 10s; the request's timeout parameter overrides it).
	WriteTimeout time.Duration
	// AntiEntropyInterval is how often a peer compares every partition it
	// holds with each co-replica (default 30s, jittered by ±20%).
	AntiEntropyInterval time.Duration
	// RepairRate bounds the record bytes per second a peer sends for
	// anti-entropy repair and hand-over (0: no limit).
	RepairRate int64
	// FailedReassignAfter is how long a peer may stay failed before its
	// partitions are given to other peers (default 1h). Anti-entropy fills
	// the new owners; the failed peer gets its partitions back when it returns.
	FailedReassignAfter time.Duration
	// RetireAfter is how long a copy this peer handed on (a hint delivered
	// to every owner, a partition handed over) is kept before it is
	// deleted: longer than a query's parts take to start on every peer
	// (see package retire). Default 10s; negative: deleted at once.
	RetireAfter time.Duration
	// MaxClockSkew is how far this peer's clock may be from the cluster's
	// (the median of every peer's, measured on every call between peers)
	// before it is skewed: it then says so loudly, mints IDs and runs
	// retention on the cluster's time, and makes no proofs of convergence
	// (default 5s).
	MaxClockSkew time.Duration
	// DisableAntiEntropy stops anti-entropy rounds (tests and drills).
	DisableAntiEntropy bool
	// DialContext, when set, opens the peer-to-peer connections of the data
	// plane (tests route them through a fault-injecting network).
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// TestDropPushEvery, when above zero, makes this peer acknowledge but
	// silently drop every n-th batch pushed to it: a deliberately broken
	// peer, to show that the fault checker notices lost records.
	TestDropPushEvery int
	// TestDuplicateAnswers makes cluster queries return every record twice:
	// a deliberately broken query path for the checker's own tests.
	TestDuplicateAnswers bool
	// TestBeforeLeaveGossip, when set, runs in Leave once every record is
	// handed over and before gossip hears of it: the window in which the
	// others still count this peer an owner.
	TestBeforeLeaveGossip func()
	// TestAfterHandOverConfirm, when set, runs in a hand-over between the
	// owners' confirmation and the delete of this peer's copy.
	TestAfterHandOverConfirm func(p record.Partition, owners []string)
	// TLS, when its files are set, makes the API TLS 1.3 and every call
	// between peers mutual TLS under the cluster's CA; the certificate must
	// name this peer (Name). Files are reread when they change.
	TLS tlsutil.Files
	// LeaveDrainTimeout bounds how long Leave waits for the records only
	// this peer holds to reach the other peers (default 30s).
	LeaveDrainTimeout time.Duration
	// APIHeaderTimeout bounds the TLS handshake and the request headers of an
	// API connection (default 10s): slow or stalled clients are cut off.
	APIHeaderTimeout time.Duration
	// APIIdleTimeout ends a request whose client sends none of its body, or
	// reads none of the answer, for this long (default 30s).
	APIIdleTimeout time.Duration
	// APIMaxConns caps the open API connections (default 4096, and never
	// more than a quarter of the descriptor limit); past it new ones wait.
	APIMaxConns int
	// APIMaxConnsPerHost caps the open API connections of one remote
	// address (default 512); past it its new ones are closed at once.
	APIMaxConnsPerHost int
	// TokenFile, when set, requires a bearer token on API calls (see package
	// auth for the format); it needs TLS. Reread when it changes.
	TokenFile string
	// DisableReplication stops pushes (tests and drills: anti-entropy alone
	// must then restore every replica).
	DisableReplication bool

	// Index configures the store; its Dir is DataDir/store.
	Index index.Config
	// Syslog holds the syslog limits (maximum message size, connections,
	// timeouts); its addresses come from SyslogTCP and SyslogUDP.
	Syslog syslog.Config

	// ScrubInterval is how often the store is read whole to check every
	// record and re-derive the digests anti-entropy compares (default 24h,
	// paced to about 50,000 records a second; negative: never).
	ScrubInterval time.Duration

	// IdempotencyTTL is how long a batch's Idempotency-Key is remembered:
	// a retry with the same key within it stores nothing twice (default 24h).
	IdempotencyTTL time.Duration

	// MaxBodyBytes bounds one HTTP request body (default 64 MiB).
	MaxBodyBytes int64
	// MaxLineBytes bounds one line of an HTTP ingest body (default 1 MiB).
	MaxLineBytes int
	// QueryTimeout ends a query that runs longer (default 5m; negative:
	// none); its answer ends with an error saying it is incomplete.
	QueryTimeout time.Duration
	// MaxQueries and MaxQueriesPerClient cap the queries running at once,
	// in all and per client address (defaults 64 and 16; negative: no
	// cap); past them a query is refused with 429. Members' fan-out calls
	// are not counted.
	MaxQueries, MaxQueriesPerClient int
	// MaxBatchRecords bounds the records of one HTTP write (default
	// 100000): a body of tiny lines parses to far more memory than its
	// size, so a larger batch is refused whole as soon as it is seen.
	MaxBatchRecords int
	// QueryWorkers is how many cores one query may use: to filter, and to read
	// in parallel a range it takes whole (default 2).
	QueryWorkers int

	// Pprof serves Go's profiler at /debug/pprof on the API address.
	Pprof bool

	// Logger receives the peer's own logs (default slog.Default()).
	Logger *slog.Logger
	// Now is the peer's clock (default time.Now). Tests skew it.
	Now func() time.Time
}

// DefaultConfig returns the defaults for a peer storing in dataDir.
func DefaultConfig(dataDir string) Config {
	host, _ := os.Hostname()
	return Config{
		Name:      host,
		DataDir:   dataDir,
		APIAddr:   ":7070",
		SyslogTCP: ":5514",
		SyslogUDP: ":5514",
		Index:     index.DefaultConfig(""),
		Syslog:    syslog.DefaultConfig(),
	}
}

var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

func (c *Config) validate() error {
	if c.Name == "" {
		c.Name, _ = os.Hostname()
	}
	if !validName.MatchString(c.Name) {
		return fmt.Errorf("peer name %q is not valid: use 1-63 letters, digits, '.', '_' or '-'", c.Name)
	}
	if c.DataDir == "" {
		return fmt.Errorf("a data directory is required (--data-dir)")
	}
	if c.APIAddr == "" {
		return fmt.Errorf("an API address is required (--api-addr)")
	}
	for what, addr := range map[string]string{"api": c.APIAddr, "syslog tcp": c.SyslogTCP, "syslog udp": c.SyslogUDP, "syslog tls": c.SyslogTLS} {
		if addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return fmt.Errorf("%s address %q is not host:port: %v", what, addr, err)
		}
	}
	if c.Replicas == 0 {
		c.Replicas = 3
	}
	if c.Replicas < 1 {
		return fmt.Errorf("replicas %d must be at least 1", c.Replicas)
	}
	if c.MaxHintsBytes == 0 {
		c.MaxHintsBytes = 1 << 30
	}
	if c.ReplicationBatchRecords == 0 {
		c.ReplicationBatchRecords = 4096
	}
	if c.ReplicationCacheBytes == 0 {
		c.ReplicationCacheBytes = 32 << 20
	}
	if c.ReplicationRetryMax == 0 {
		c.ReplicationRetryMax = 5 * time.Second
	}
	if c.AntiEntropyInterval == 0 {
		c.AntiEntropyInterval = 30 * time.Second
	}
	if c.FailedReassignAfter == 0 {
		c.FailedReassignAfter = time.Hour
	}
	if c.RetireAfter == 0 {
		c.RetireAfter = 10 * time.Second
	}
	if c.MaxClockSkew == 0 {
		c.MaxClockSkew = 5 * time.Second
	}
	if c.MaxClockSkew < 0 {
		return fmt.Errorf("max clock skew %v must be positive", c.MaxClockSkew)
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.GossipAddr != "" {
		if _, _, err := net.SplitHostPort(c.GossipAddr); err != nil {
			return fmt.Errorf("gossip address %q is not host:port: %v", c.GossipAddr, err)
		}
	}
	if c.SyslogTLS != "" && c.TLS == (tlsutil.Files{}) {
		return fmt.Errorf("syslog over TLS (--syslog-tls) serves this peer's certificate: set --tls-cert, --tls-key and --tls-ca")
	}
	if c.SyslogTLSCA != "" && c.SyslogTLS == "" {
		return fmt.Errorf("--syslog-tls-ca is set but --syslog-tls is not: there is no TLS syslog listener to use it")
	}
	if c.TokenFile != "" && c.TLS == (tlsutil.Files{}) {
		return fmt.Errorf("API tokens need TLS (--tls-cert, --tls-key, --tls-ca): over plain HTTP they could be read off the network, and peers prove who they are by certificate")
	}
	if c.LeaveDrainTimeout == 0 {
		c.LeaveDrainTimeout = 30 * time.Second
	}
	if c.APIHeaderTimeout == 0 {
		c.APIHeaderTimeout = 10 * time.Second
	}
	if c.APIIdleTimeout == 0 {
		c.APIIdleTimeout = 30 * time.Second
	}
	if c.APIMaxConns == 0 {
		c.APIMaxConns = 4096
	}
	if c.APIMaxConnsPerHost == 0 {
		c.APIMaxConnsPerHost = 512
	}
	if c.ScrubInterval == 0 {
		c.ScrubInterval = 24 * time.Hour
	}
	if c.IdempotencyTTL == 0 {
		c.IdempotencyTTL = defaultIdempotencyTTL
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 64 << 20
	}
	if c.QueryTimeout == 0 {
		c.QueryTimeout = 5 * time.Minute
	}
	if c.MaxQueries == 0 {
		c.MaxQueries = 64
	}
	if c.MaxQueriesPerClient == 0 {
		c.MaxQueriesPerClient = 16
	}
	if c.MaxBatchRecords == 0 {
		c.MaxBatchRecords = 100000
	}
	if c.MaxLineBytes == 0 {
		c.MaxLineBytes = 1 << 20
	}
	if c.QueryWorkers == 0 {
		c.QueryWorkers = 2
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	c.Index.Dir = filepath.Join(c.DataDir, "store")
	c.Index.KeepJournal = c.GossipAddr != "" // replication cursors read it
	c.Index.Now = c.Now
	c.Index.Logger = c.Logger
	return nil
}
