package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/logmesh/logmesh/gossip"
	"github.com/logmesh/logmesh/index"
	"github.com/logmesh/logmesh/peer"
	"github.com/logmesh/logmesh/syslog"
	"github.com/logmesh/logmesh/tlsutil"
)

func agentFlags() []cli.Flag {
	host, _ := os.Hostname()
	return []cli.Flag{
		&cli.StringFlag{Name: "config", EnvVars: env("CONFIG"), TakesFile: true,
			Usage: "TOML file whose keys are these flags' names, e.g. replicas = 3 (example: deploy/logmesh.toml); command-line flags and LOGMESH_* variables override it"},
		&cli.BoolFlag{Name: "print-config", Usage: "print the effective settings (flags, environment and --config merged) as a config file and exit"},
		&cli.StringFlag{Name: "name", Value: host, EnvVars: env("NAME"), Usage: "peer name, unique in the cluster and stable across restarts"},
		&cli.StringFlag{Name: "data-dir", Value: "./logmesh-data", EnvVars: env("DATA_DIR"), Usage: "directory for the store"},
		&cli.StringFlag{Name: "api-addr", Value: ":7070", EnvVars: env("API_ADDR"), Usage: "HTTP API listen address"},
		&cli.StringFlag{Name: "syslog-tcp", Value: ":5514", EnvVars: env("SYSLOG_TCP"), Usage: "syslog TCP listen address (RFC 6587 framing), empty to disable"},
		&cli.StringFlag{Name: "syslog-udp", Value: ":5514", EnvVars: env("SYSLOG_UDP"), Usage: "syslog UDP listen address, empty to disable"},
		&cli.StringFlag{Name: "syslog-tls", EnvVars: env("SYSLOG_TLS"), Usage: "syslog over TLS (RFC 5425, octet-counted) listen address, e.g. :6514; serves --tls-cert; empty to disable"},
		&cli.StringFlag{Name: "syslog-tls-client-auth", Value: "none", EnvVars: env("SYSLOG_TLS_CLIENT_AUTH"), Usage: "none: any TLS client may send; verify: clients must present a certificate signed by --syslog-tls-ca"},
		&cli.StringFlag{Name: "syslog-tls-ca", EnvVars: env("SYSLOG_TLS_CA"), TakesFile: true, Usage: "CA certificate (PEM) that signs syslog clients' certificates (default: --tls-ca); reread when it changes"},
		&cli.StringSliceFlag{Name: "syslog-allow", EnvVars: env("SYSLOG_ALLOW"), Usage: "source networks that may send syslog (CIDR or address, repeatable or comma-separated), e.g. 10.0.0.0/8; empty: everyone"},
		&cli.StringFlag{Name: "gossip-addr", Value: "", EnvVars: env("GOSSIP_ADDR"), Usage: "gossip listen address (UDP and TCP), e.g. :7946; empty runs the peer alone"},
		&cli.StringFlag{Name: "advertise", EnvVars: env("ADVERTISE"), Usage: "gossip address other peers reach this one at (default: --gossip-addr)"},
		&cli.StringFlag{Name: "api-advertise", EnvVars: env("API_ADVERTISE"), Usage: "API address other peers reach this one at (default: the advertised host with the API port)"},
		&cli.StringSliceFlag{Name: "join", EnvVars: env("JOIN"), Usage: "gossip addresses of peers to join (host:port, repeatable or comma-separated); retried until one answers"},
		&cli.StringFlag{Name: "encrypt", EnvVars: env("ENCRYPT"), Usage: "gossip encryption key, base64 of 16, 24 or 32 bytes (logmesh keygen)"},
		&cli.StringFlag{Name: "encrypt-file", EnvVars: env("ENCRYPT_FILE"), Usage: "read the gossip encryption key from this file (logmesh keygen --out FILE) instead of --encrypt"},
		&cli.BoolFlag{Name: "insecure-gossip", EnvVars: env("INSECURE_GOSSIP"), Usage: "gossip unencrypted on a non-loopback address: anyone who reaches the gossip port can join and be given logs; only on a network where nothing but the peers can reach it (without it and --encrypt, such a peer refuses to start)"},
		&cli.StringFlag{Name: "cluster-label", EnvVars: env("CLUSTER_LABEL"), Usage: "gossip label every peer of the cluster shares: peers with another label are ignored, so two clusters never merge (changing it needs every peer restarted)"},
		&cli.StringFlag{Name: "tls-cert", EnvVars: env("TLS_CERT"), Usage: "this peer's certificate (PEM), naming the peer (--name); with --tls-key and --tls-ca the API is TLS 1.3 and peers use mutual TLS (logmesh certs makes them); reread when it changes"},
		&cli.StringFlag{Name: "tls-key", EnvVars: env("TLS_KEY"), Usage: "the private key of --tls-cert (PEM)"},
		&cli.StringFlag{Name: "tls-ca", EnvVars: env("TLS_CA"), Usage: "the cluster's CA certificate (PEM): peers trust only certificates it signed"},
		&cli.StringFlag{Name: "api-token-file", EnvVars: env("API_TOKEN_FILE"), Usage: "bearer tokens for the API, one a line: TOKEN (every scope) or TOKEN ingest,query,admin; needs TLS; reread when it changes"},
		&cli.IntFlag{Name: "replicas", Value: 3, EnvVars: env("REPLICAS"), Usage: "copies of every record (fewer peers than this: every peer holds everything)"},
		&cli.StringFlag{Name: "max-hints-bytes", Value: "1GiB", EnvVars: env("MAX_HINTS_BYTES"), Usage: "bound on data waiting for delivery to other peers; past it anti-entropy repairs them instead"},
		&cli.DurationFlag{Name: "anti-entropy-interval", Value: 30 * time.Second, EnvVars: env("ANTI_ENTROPY_INTERVAL"), Usage: "how often replicas compare their Merkle trees (jittered)"},
		&cli.StringFlag{Name: "repair-rate", Value: "0", EnvVars: env("REPAIR_RATE"), Usage: "bytes per second of records sent for repair and hand-over (0: no limit), e.g. 50MB"},
		&cli.DurationFlag{Name: "failed-reassign-after", Value: time.Hour, EnvVars: env("FAILED_REASSIGN_AFTER"), Usage: "a peer failed for this long loses its partitions to other peers until it returns"},
		&cli.DurationFlag{Name: "retire-after", Value: 10 * time.Second, EnvVars: env("RETIRE_AFTER"), Usage: "keep a copy this peer handed on (a hint delivered to every owner, a partition handed over) this long before deleting it, so a query whose parts start on the peers at slightly different times finds the record on one of them (0: at once)"},
		&cli.DurationFlag{Name: "max-clock-skew", Value: 5 * time.Second, EnvVars: env("MAX_CLOCK_SKEW"), Usage: "a peer whose clock is further than this from the cluster's (the median of every peer's) says so loudly, mints IDs and runs retention on the cluster's time, and proves nothing"},
		&cli.IntFlag{Name: "api-max-conns", Value: 4096, EnvVars: env("API_MAX_CONNS"), Usage: "open API connections at most (never more than a quarter of the descriptor limit); past it new ones wait"},
		&cli.IntFlag{Name: "api-max-conns-per-host", Value: 512, EnvVars: env("API_MAX_CONNS_PER_HOST"), Usage: "open API connections of one remote address at most; past it its new ones are closed"},
		&cli.DurationFlag{Name: "query-timeout", Value: 5 * time.Minute, EnvVars: env("QUERY_TIMEOUT"), Usage: "end a query that runs longer; its answer ends with an error saying it is incomplete (0: never)"},
		&cli.IntFlag{Name: "max-queries", Value: 64, EnvVars: env("MAX_QUERIES"), Usage: "queries running at once; past it a query is refused with 429 (0: no cap)"},
		&cli.IntFlag{Name: "max-queries-per-client", Value: 16, EnvVars: env("MAX_QUERIES_PER_CLIENT"), Usage: "queries running at once from one client address; past it 429 (0: no cap)"},
		&cli.IntFlag{Name: "query-workers", Value: 2, EnvVars: env("QUERY_WORKERS"), Usage: "goroutines one query reads and filters with (at least 1)"},
		&cli.IntFlag{Name: "max-batch-records", Value: 100000, EnvVars: env("MAX_BATCH_RECORDS"), Usage: "records one HTTP write may carry; a larger batch is refused whole (413) before it is stored, so tiny lines cannot blow up memory"},
		&cli.DurationFlag{Name: "api-idle-timeout", Value: 30 * time.Second, EnvVars: env("API_IDLE_TIMEOUT"), Usage: "end a request whose client sends none of its body, or reads none of the answer, for this long"},
		&cli.DurationFlag{Name: "leave-drain-timeout", Value: 30 * time.Second, EnvVars: env("LEAVE_DRAIN_TIMEOUT"), Usage: "on SIGTERM, how long to deliver what only this peer holds before leaving; if it cannot, it stops without leaving (it delivers them when started again)"},
		&cli.DurationFlag{Name: "scrub-interval", Value: 24 * time.Hour, EnvVars: env("SCRUB_INTERVAL"), Usage: "how often the whole store is read to check every record and re-derive the digests anti-entropy compares (0: never)"},
		&cli.DurationFlag{Name: "seal-after", Value: 0, EnvVars: env("SEAL_AFTER"), Usage: "experimental: how long after a minute slice ends its records are sealed into compressed blocks of up to 1024 records per partition and minute (0: never; records that arrive later in a slice already sealed wait for the end of the hour window); until compactions merge the deletions of the loose records with them, a sealed window takes more disk, not less"},
		&cli.DurationFlag{Name: "drop-moved-every", Value: 5 * time.Minute, EnvVars: env("DROP_MOVED_EVERY"), Usage: "with --seal-after: the least time between two drops of the loose records of slices sealed since (each drop holds every write for seconds; until it, those records stay on disk beside their blocks; 0: at every maintenance, once a minute)"},
		&cli.StringFlag{Name: "seal-capture", Value: "64MiB", EnvVars: env("SEAL_CAPTURE"), Usage: `with --seal-after: the records the sealer keeps in memory, as they are stored, so that it moves each minute slice into blocks without reading it back; past this, blocks are cut early and smaller ("off": every slice is read back)`},
		&cli.DurationFlag{Name: "idempotency-ttl", Value: 24 * time.Hour, EnvVars: env("IDEMPOTENCY_TTL"), Usage: "how long a batch's Idempotency-Key is remembered: a retry with the same key stores nothing twice"},
		&cli.DurationFlag{Name: "clock-offset", Hidden: true, EnvVars: env("CLOCK_OFFSET"), Usage: "shift this peer's clock (fault tests: clock skew)"},
		&cli.StringFlag{Name: "clock-offset-file", Hidden: true, Usage: "shift this peer's clock by the duration in this file, reread every 100ms (fault tests: clock steps)"},
		&cli.DurationFlag{Name: "maintenance-interval", Hidden: true, Usage: "run retention and journal pruning this often (fault tests; default 1m)"},
		&cli.BoolFlag{Name: "disable-replication", Hidden: true, Usage: "push nothing: anti-entropy alone must restore replicas (fault tests)"},
		&cli.BoolFlag{Name: "disable-anti-entropy", Hidden: true, Usage: "run no anti-entropy rounds (fault tests)"},
		&cli.IntFlag{Name: "test-drop-push-every", Hidden: true, Usage: "acknowledge but drop every n-th pushed batch: a broken peer for checker tests"},
		&cli.BoolFlag{Name: "test-timings", Hidden: true, EnvVars: env("TEST_TIMINGS"), Usage: "aggressive failure detection for tests (probe 200ms)"},
		&cli.StringFlag{Name: "retention", Value: "7d", EnvVars: env("RETENTION"), Usage: "how long records are kept (whole 1h windows expire together)"},
		&cli.StringFlag{Name: "fsync", Value: "always", EnvVars: env("FSYNC"),
			Usage: `"always": every group commit is synced before it is acknowledged (survives power loss); an interval such as 100ms: acknowledged once written, synced every interval (a power failure can lose the last interval)`},
		&cli.StringFlag{Name: "max-message-bytes", Value: "64KiB", EnvVars: env("MAX_MESSAGE_BYTES"), Usage: "longer syslog messages are truncated and flagged"},
		&cli.IntFlag{Name: "max-connections", Value: 4096, EnvVars: env("MAX_CONNECTIONS"), Usage: "syslog TCP and TLS connections held at once; more are refused"},
		&cli.IntFlag{Name: "max-connections-per-source", Value: 0, EnvVars: env("MAX_CONNECTIONS_PER_SOURCE"), Usage: "syslog TCP and TLS connections held at once from one address (0: a quarter of --max-connections)"},
		&cli.DurationFlag{Name: "idle-timeout", Value: 0, EnvVars: env("IDLE_TIMEOUT"), Usage: "close a syslog connection that sends nothing for this long (0: the default, 10m)"},
		&cli.DurationFlag{Name: "frame-timeout", Value: 0, EnvVars: env("FRAME_TIMEOUT"), Usage: "a syslog message that has begun must arrive within this (0: the default, 30s)"},
		&cli.StringFlag{Name: "cache-size", Value: "32MiB", EnvVars: env("CACHE_SIZE"), Usage: "block cache of the store"},
		&cli.StringFlag{Name: "table-compression", Value: "zstd", EnvVars: env("TABLE_COMPRESSION"), Usage: "experimental: how Badger compresses its table blocks, zstd or none; with --seal-after the tree holds loose records the sealer drops within minutes, and its blocks are compressed by the sealer (docs/architecture.md)"},
		&cli.StringFlag{Name: "value-threshold", Value: "0", EnvVars: env("VALUE_THRESHOLD"), Usage: "experimental: values from this size go to Badger's value log instead of its LSM tree (0: keep records in the tree); 64B takes record bodies out of the compactions, but the value log is not compressed and queries read it at random (docs/architecture.md)"},
		&cli.StringFlag{Name: "memtable-size", Value: "16MiB", EnvVars: env("MEMTABLE_SIZE"), Usage: "size of one store memtable (--memtables of them are held in memory)"},
		&cli.StringFlag{Name: "memory-limit", Value: "auto", EnvVars: env("MEMORY_LIMIT"), Usage: `soft memory limit of the Go runtime, like GOMEMLIMIT; "auto": what the store settings need (224MiB with the defaults), or a quarter above the live heap when more is live, up to 4 times that, unless GOMEMLIMIT is set; "off": none`},
		&cli.StringFlag{Name: "max-mapped-memory", Value: "48MiB", EnvVars: env("MAX_MAPPED_MEMORY"), Usage: `file-backed memory (store tables mapped by Badger) resident above which the tables are paged out; "off": let the kernel decide`},
		&cli.StringFlag{Name: "base-table-size", Value: "1MiB", EnvVars: env("BASE_TABLE_SIZE"), Usage: "size of store tables below level 0 (compactions hold a dozen in memory)"},
		&cli.IntFlag{Name: "l0-tables", Value: 16, EnvVars: env("L0_TABLES"), Usage: "level-0 store tables that accumulate before a compaction (writes stall at twice as many)"},
		&cli.IntFlag{Name: "memtables", Value: 2, EnvVars: env("MEMTABLES"), Usage: "store memtables held in memory"},
		&cli.StringFlag{Name: "min-free-disk", Value: "auto", EnvVars: env("MIN_FREE_DISK"), Usage: `below this much free space on the data directory's filesystem writes are refused (HTTP 507, syslog held) until space returns; "auto": 4 × memtables × memtable size, at least 32MiB; "off" disables the check`},
		&cli.BoolFlag{Name: "pprof", EnvVars: env("PPROF"), Usage: "serve Go's profiler at /debug/pprof on the API address"},
		&cli.StringFlag{Name: "log-level", Value: "info", EnvVars: env("LOG_LEVEL"), Usage: "debug, info, warn or error"},
		&cli.StringFlag{Name: "log-format", Value: "text", EnvVars: env("LOG_FORMAT"), Usage: "text or json"},
	}
}

// newAgentCommand builds the agent command around run, which starts the peer
// and blocks until it stops; tests pass a stand-in.
func newAgentCommand(run func(peer.Config) error) *cli.Command {
	return &cli.Command{
		Name:  "agent",
		Usage: "run a peer: take syslog and HTTP logs, store them, answer queries",
		Flags: agentFlags(),
		Action: func(c *cli.Context) error {
			file, err := applyConfigFile(c)
			if err != nil {
				return err
			}
			cfg, err := agentConfig(c)
			if err != nil {
				return file.explain(err)
			}
			if c.Bool("print-config") {
				return printConfig(c.App.Writer, c)
			}
			if budget, ok := autoMemoryBudget(c.String("memory-limit"), cfg.Index.MemoryBudget()); ok {
				ctx, stop := context.WithCancel(context.Background())
				var following sync.WaitGroup
				following.Go(func() { newLimitFollower(budget).run(ctx) })
				defer following.Wait()
				defer stop()
			}
			return run(cfg)
		},
	}
}

// agentConfig reads the merged flags into a peer configuration.
func agentConfig(c *cli.Context) (peer.Config, error) {
	logger, err := newLogger(c.String("log-level"), c.String("log-format"))
	if err != nil {
		return peer.Config{}, err
	}
	return peerConfig(c, logger)
}

// runPeer starts a peer and runs it until SIGINT or SIGTERM.
// A disk too full to open the store is waited out, not a crash or an exit:
// the peer answers on its API address that it is waiting, and starts once
// space is freed.
func runPeer(cfg peer.Config) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var p *peer.Peer
	for {
		var err error
		if p, err = peer.New(cfg); err != nil {
			return err
		}
		if err := p.WaitForDiskSpace(ctx); err != nil {
			if ctx.Err() != nil {
				cfg.Logger.Info("signal received while waiting for disk space: stopping")
				return nil
			}
			return err
		}
		err = p.Start()
		if err == nil {
			break
		}
		if !errors.Is(err, index.ErrNoSpace) {
			return err
		}
		// the space went again between the measurement and the open
		cfg.Logger.Warn("the store could not open for want of disk space: waiting again", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(2 * time.Second):
		}
	}
	watchCtx, stopWatch := context.WithCancel(ctx)
	var watching sync.WaitGroup
	watching.Go(func() { newGCWatcher(cfg.Logger).run(watchCtx) })
	defer watching.Wait()
	defer stopWatch()
	<-ctx.Done()
	cfg.Logger.Info("signal received: leaving the cluster and stopping")
	if err := p.Leave(); errors.Is(err, peer.ErrLeaveIncomplete) {
		// it did not leave: exit non-zero, so that a supervisor starts it
		// again and it delivers what only it holds
		return errors.Join(err, p.Close())
	} else if err != nil {
		cfg.Logger.Warn("cannot leave gracefully", "err", err)
	}
	return p.Close()
}

func peerConfig(c *cli.Context, logger *slog.Logger) (peer.Config, error) {
	cfg := peer.DefaultConfig(c.String("data-dir"))
	cfg.Name = c.String("name")
	cfg.APIAddr = c.String("api-addr")
	cfg.SyslogTCP = c.String("syslog-tcp")
	cfg.SyslogUDP = c.String("syslog-udp")
	cfg.SyslogTLS = c.String("syslog-tls")
	cfg.SyslogTLSCA = c.String("syslog-tls-ca")
	auth, err := syslog.ParseClientAuth(c.String("syslog-tls-client-auth"))
	if err != nil {
		return cfg, flagErr("syslog-tls-client-auth", err)
	}
	cfg.Syslog.TLSClientAuth = auth
	if cfg.Syslog.Allow, err = syslog.ParseAllowList(c.StringSlice("syslog-allow")); err != nil {
		return cfg, flagErr("syslog-allow", err)
	}
	cfg.Logger = logger
	cfg.Pprof = c.Bool("pprof")
	cfg.GossipAddr, cfg.Advertise, cfg.APIAdvertise = c.String("gossip-addr"), c.String("advertise"), c.String("api-advertise")
	for _, j := range c.StringSlice("join") {
		for _, s := range strings.Split(j, ",") {
			if s = strings.TrimSpace(s); s != "" {
				cfg.Seeds = append(cfg.Seeds, s)
			}
		}
	}
	if len(cfg.Seeds) > 0 && cfg.GossipAddr == "" {
		cfg.GossipAddr = ":7946"
	}
	if k := c.String("encrypt"); k != "" {
		if c.String("encrypt-file") != "" {
			return cfg, flagErr("encrypt-file", fmt.Errorf("give the key with --encrypt or --encrypt-file, not both"))
		}
		key, err := gossip.ParseKey(k)
		if err != nil {
			return cfg, flagErr("encrypt", err)
		}
		cfg.EncryptKey = key
	} else if f := c.String("encrypt-file"); f != "" {
		key, err := readKeyFile(f)
		if err != nil {
			return cfg, flagErr("encrypt-file", err)
		}
		cfg.EncryptKey = key
	}
	cfg.TLS = tlsutil.Files{Cert: c.String("tls-cert"), Key: c.String("tls-key"), CA: c.String("tls-ca")}
	if set := cfg.TLS != (tlsutil.Files{}); set && (cfg.TLS.Cert == "" || cfg.TLS.Key == "" || cfg.TLS.CA == "") {
		return cfg, flagErr("tls-cert", fmt.Errorf("--tls-cert, --tls-key and --tls-ca go together"))
	}
	cfg.TokenFile = c.String("api-token-file")
	cfg.ClusterLabel = c.String("cluster-label")
	cfg.InsecureGossip = c.Bool("insecure-gossip")
	cfg.Replicas = c.Int("replicas")
	cfg.AntiEntropyInterval = c.Duration("anti-entropy-interval")
	cfg.FailedReassignAfter = c.Duration("failed-reassign-after")
	if cfg.RetireAfter = c.Duration("retire-after"); cfg.RetireAfter == 0 {
		cfg.RetireAfter = -1 // at once
	}
	cfg.MaxClockSkew = c.Duration("max-clock-skew")
	cfg.LeaveDrainTimeout = c.Duration("leave-drain-timeout")
	cfg.APIMaxConns, cfg.APIMaxConnsPerHost = c.Int("api-max-conns"), c.Int("api-max-conns-per-host")
	cfg.APIIdleTimeout = c.Duration("api-idle-timeout")
	cfg.MaxBatchRecords = c.Int("max-batch-records")
	cfg.QueryTimeout = orNever(c.Duration("query-timeout"))
	cfg.MaxQueries, cfg.MaxQueriesPerClient = orNone(c.Int("max-queries")), orNone(c.Int("max-queries-per-client"))
	if cfg.QueryWorkers = c.Int("query-workers"); cfg.QueryWorkers < 1 {
		return cfg, flagErr("query-workers", fmt.Errorf("%d: at least 1", cfg.QueryWorkers))
	}
	cfg.ScrubInterval = c.Duration("scrub-interval")
	cfg.Index.SealAfter = c.Duration("seal-after")
	if cfg.Index.DropMovedEvery = c.Duration("drop-moved-every"); cfg.Index.DropMovedEvery <= 0 {
		cfg.Index.DropMovedEvery = -1 // at every maintenance
	}
	if cfg.Index.SealCaptureBytes, err = sizeOrOff(c.String("seal-capture"), false, "64MiB"); err != nil {
		return cfg, flagErr("seal-capture", err)
	}
	if cfg.ScrubInterval == 0 {
		cfg.ScrubInterval = -1 // 0 on the command line: never
	}
	cfg.IdempotencyTTL = c.Duration("idempotency-ttl")
	if c.Bool("test-timings") {
		cfg.Gossip.TestTimings()
	}
	if off := c.Duration("clock-offset"); off != 0 {
		cfg.Now = func() time.Time { return time.Now().Add(off) }
	}
	if f := c.String("clock-offset-file"); f != "" {
		cfg.Now = fileClock(c.Context, f, c.Duration("clock-offset"), logger)
	}
	if d := c.Duration("maintenance-interval"); d > 0 {
		cfg.Index.MaintenanceInterval = d
	}
	cfg.DisableReplication = c.Bool("disable-replication")
	cfg.DisableAntiEntropy = c.Bool("disable-anti-entropy")
	cfg.TestDropPushEvery = c.Int("test-drop-push-every")
	if cfg.RepairRate, err = parseBytes(c.String("repair-rate")); err != nil {
		return cfg, flagErr("repair-rate", err)
	}
	if cfg.MaxHintsBytes, err = parseBytes(c.String("max-hints-bytes")); err != nil {
		return cfg, flagErr("max-hints-bytes", err)
	}
	if cfg.Index.Retention, err = parseDuration(c.String("retention")); err != nil {
		return cfg, flagErr("retention", err)
	}
	if cfg.Index.FsyncInterval, err = parseFsync(c.String("fsync")); err != nil {
		return cfg, flagErr("fsync", err)
	}
	n, err := parseBytes(c.String("max-message-bytes"))
	if err != nil {
		return cfg, flagErr("max-message-bytes", err)
	}
	cfg.Syslog.MaxMessageBytes = int(n)
	cfg.Syslog.MaxConnections = c.Int("max-connections")
	cfg.Syslog.MaxConnectionsPerSource = c.Int("max-connections-per-source")
	if d := c.Duration("idle-timeout"); d > 0 {
		cfg.Syslog.IdleTimeout = d
	}
	if d := c.Duration("frame-timeout"); d > 0 {
		cfg.Syslog.FrameTimeout = d
	}
	if cfg.Index.BlockCacheBytes, err = parseBytes(c.String("cache-size")); err != nil {
		return cfg, flagErr("cache-size", err)
	}
	switch tc := c.String("table-compression"); tc {
	case "zstd":
	case "none":
		cfg.Index.UncompressedTables = true
	default:
		return cfg, flagErr("table-compression", fmt.Errorf("%q is neither zstd nor none", tc))
	}
	if cfg.Index.ValueThreshold, err = parseBytes(c.String("value-threshold")); err != nil {
		return cfg, flagErr("value-threshold", err)
	}
	if cfg.Index.MemTableBytes, err = parseBytes(c.String("memtable-size")); err != nil {
		return cfg, flagErr("memtable-size", err)
	}
	if cfg.Index.BaseTableBytes, err = parseBytes(c.String("base-table-size")); err != nil {
		return cfg, flagErr("base-table-size", err)
	}
	cfg.Index.NumMemTables = c.Int("memtables")
	if cfg.Index.MinFreeDiskBytes, err = sizeOrOff(c.String("min-free-disk"), true, "512MiB"); err != nil {
		return cfg, flagErr("min-free-disk", err)
	}
	cfg.Index.L0Tables = c.Int("l0-tables")
	if cfg.Index.MaxMappedBytes, err = sizeOrOff(c.String("max-mapped-memory"), false, "64MiB"); err != nil {
		return cfg, flagErr("max-mapped-memory", err)
	}
	limit, err := memoryLimit(c.String("memory-limit"), cfg.Index)
	if err != nil {
		return cfg, flagErr("memory-limit", err)
	}
	if limit > 0 {
		debug.SetMemoryLimit(limit)
	}
	return cfg, nil
}

// sizeOrOff parses a size flag that also takes "off" (-1) and, where auto
// is set, "auto" or nothing (0: the default the store works out).
func sizeOrOff(v string, auto bool, example string) (int64, error) {
	switch {
	case v == "off":
		return -1, nil
	case auto && (v == "auto" || v == ""):
		return 0, nil
	}
	if n, err := parseBytes(v); err == nil && n > 0 {
		return n, nil
	}
	if auto {
		return 0, fmt.Errorf("%q is not auto, off or a size like %s", v, example)
	}
	return 0, fmt.Errorf("%q is not off or a size like %s", v, example)
}

// memoryLimit is the soft memory limit --memory-limit asks for: 0 for none
// (or to leave GOMEMLIMIT, which the runtime applied itself, in force).
//
// Without a limit the Go runtime lets the heap grow to twice what was live
// at the last collection, and the store's live memory comes in bursts
// (memtables, tables built by flushes and compactions), so a peer with
// 200 MiB live would be seen at 400 MiB. The limit makes the collector run
// sooner instead; it is soft, so a peer that needs more gets more (at up to
// half its CPU spent collecting) rather than failing. Under "auto" the
// agent then moves the limit after the live heap (memlimit.go); this is
// where it starts.
func memoryLimit(v string, store index.Config) (int64, error) {
	switch v {
	case "auto", "":
		if os.Getenv("GOMEMLIMIT") != "" {
			return 0, nil
		}
		return store.MemoryBudget(), nil
	case "off", "0":
		return 0, nil
	}
	n, err := parseBytes(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not auto, off or a size like 512MiB", v)
	}
	return n, nil
}

func newLogger(level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, flagErr("log-level", fmt.Errorf("%q is not debug, info, warn or error", level))
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, flagErr("log-format", fmt.Errorf("%q is not text or json", format))
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the version",
		Action: func(c *cli.Context) error {
			fmt.Println("logmesh", peer.Version)
			return nil
		},
	}
}

// orNever and orNone turn a 0 given on the command line ("no limit") into
// the -1 the peer's configuration reads that way (its 0 is "the default").
func orNever(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

func orNone(n int) int {
	if n == 0 {
		return -1
	}
	return n
}
