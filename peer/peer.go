package peer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/logmesh/logmesh/api"
	"github.com/logmesh/logmesh/index"
	"github.com/logmesh/logmesh/record"
	"github.com/logmesh/logmesh/syslog"
	"github.com/logmesh/logmesh/tlsutil"
)

// Peer is one logmesh node.
type Peer struct {
	cfg     Config
	log     *slog.Logger
	gen     *record.Generator
	db      *index.DB
	syslog  *syslog.Server
	api     *http.Server
	apiLn   net.Listener
	cluster *cluster
	metrics *metrics
	repl    *replication
	recent  *recentCache // nil outside a cluster
	repair  *repairer
	started time.Time
	stats   ingestStats
	sec     security
	leaving atomic.Bool // Leave has begun: no more writes
	// selfFill holds the partitions this peer owns and is still being
	// filled with (see fill.go); nil until first computed.
	selfFill atomic.Pointer[[record.NumPartitions]bool]

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
}

// New validates cfg and prepares a peer; it opens nothing and starts nothing.
func New(cfg Config) (*Peer, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	p := &Peer{
		cfg: cfg,
		log: cfg.Logger.With("component", "peer", "node", cfg.Name),
		gen: record.NewGenerator(cfg.Now),
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	if err := p.loadSecurity(); err != nil {
		return nil, err
	}
	p.cluster = newCluster(p)
	p.repl = newReplication(p)
	p.metrics = newMetrics(p)
	if cfg.GossipAddr != "" {
		p.recent = newRecentCache(cfg.ReplicationCacheBytes)
	}
	return p, nil
}

// Start opens the store and starts the listeners. On error everything
// started so far is stopped again.
func (p *Peer) Start() (err error) {
	defer func() {
		if err != nil {
			p.Close()
		}
	}()
	p.started = p.cfg.Now()
	if p.db, err = index.Open(p.cfg.Index); err != nil {
		return err
	}
	if p.apiLn, err = net.Listen("tcp", p.cfg.APIAddr); err != nil {
		return fmt.Errorf("cannot listen for the API on %s: %w", p.cfg.APIAddr, err)
	}
	if p.sec.tls != nil {
		p.apiLn = tls.NewListener(p.apiLn, p.sec.tls.ServerConfig())
	} else if p.cfg.GossipAddr != "" {
		p.log.Warn("no --tls-cert: the API and the traffic between peers are plaintext and unauthenticated; use only on a trusted network")
	}
	if p.cfg.TokenFile != "" {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.reloadTokens(p.ctx)
		}()
	}
	if err = p.cluster.start(p.ctx, &p.wg, p.apiLn.Addr().String()); err != nil {
		return err
	}
	if p.cfg.GossipAddr != "" {
		p.repair = newRepairer(p)
		p.wg.Add(2)
		go func() {
			defer p.wg.Done()
			p.repl.run(p.ctx)
		}()
		go func() {
			defer p.wg.Done()
			p.repair.run(p.ctx)
		}()
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.fillLoop(p.ctx)
		}()
	}
	p.api = p.newAPIServer()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		if err := p.api.Serve(p.apiLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.log.Error("API server stopped", "err", err)
		}
	}()
	if p.cfg.SyslogTCP != "" || p.cfg.SyslogUDP != "" || p.cfg.SyslogTLS != "" {
		sc := p.cfg.Syslog
		sc.TCPAddr, sc.UDPAddr, sc.TLSAddr = p.cfg.SyslogTCP, p.cfg.SyslogUDP, p.cfg.SyslogTLS
		sc.PeerName = p.cfg.Name
		sc.Logger = p.cfg.Logger
		if sc.TLSAddr != "" {
			if sc.TLS, err = p.syslogTLS(); err != nil {
				return err
			}
		}
		if p.syslog, err = syslog.New(sc, sinkFunc(p.Ingest)); err != nil {
			return err
		}
		if err = p.syslog.Start(p.ctx); err != nil {
			return err
		}
	}
	p.log.Info("peer started", "api", p.APIAddr(), "syslog_tcp", p.SyslogTCPAddr(), "syslog_udp", p.SyslogUDPAddr(),
		"syslog_tls", p.SyslogTLSAddr(), "data_dir", p.cfg.DataDir)
	return nil
}

// syslogTLS returns the certificate source of the syslog TLS listener: the
// peer's own identity (reloaded when its files change), with the client CA
// of SyslogTLSCA when one is set. The syslog package sets the version floor
// and the client-certificate policy.
func (p *Peer) syslogTLS() (*tls.Config, error) {
	id := p.sec.tls
	if p.cfg.SyslogTLSCA != "" {
		files := p.cfg.TLS
		files.CA = p.cfg.SyslogTLSCA
		var err error
		if id, err = tlsutil.Load(files, p.log); err != nil {
			return nil, fmt.Errorf("syslog TLS client CA: %w", err)
		}
	}
	return id.ServerConfig(), nil
}

// Close stops the listeners, then the store. It is idempotent and blocks
// until every goroutine of the peer has exited.
func (p *Peer) Close() error {
	p.closeOnce.Do(func() {
		var errs []error
		if p.syslog != nil {
			errs = append(errs, p.syslog.Close())
		}
		if p.api != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := p.api.Shutdown(ctx); err != nil {
				p.api.Close()
			}
			cancel()
		} else if p.apiLn != nil {
			p.apiLn.Close()
		}
		p.cancel()
		errs = append(errs, p.cluster.close())
		p.wg.Wait()
		if p.db != nil {
			errs = append(errs, p.db.Close())
		}
		p.closeErr = errors.Join(errs...)
		p.log.Info("peer stopped")
	})
	return p.closeErr
}

// Leave announces to the cluster that this peer leaves for good (others see
// it `left`, not `failed`, and stop placing data on it). Close must follow.
//
// Records this peer took in and has not pushed yet exist nowhere else, and
// once it has left no anti-entropy round will find them. So it first stops
// taking writes (syslog listeners close, HTTP writes answer 503) and waits,
// up to LeaveDrainTimeout, until every live peer has what it owns.
func (p *Peer) Leave() error {
	if p.cluster.g == nil {
		return nil
	}
	p.leaving.Store(true)
	if p.syslog != nil {
		if err := p.syslog.Close(); err != nil {
			p.log.Warn("closing syslog listeners before leaving", "err", err)
		}
	}
	ctx, cancel := context.WithTimeout(p.ctx, p.cfg.LeaveDrainTimeout)
	defer cancel()
	if n, err := p.repl.drain(ctx); err != nil {
		p.log.Error("leaving with records not yet pushed: they stay in this peer's data directory; start it again (it will push them) or copy them out",
			"undelivered_records", n, "waited", p.cfg.LeaveDrainTimeout)
	} else if n > 0 {
		p.log.Info("pushed every record before leaving", "records", n)
	}
	return p.cluster.leave()
}

// GossipAddr returns the address other peers reach this one's gossip at, or "".
func (p *Peer) GossipAddr() string {
	if p.cluster.g == nil {
		return ""
	}
	return p.cluster.g.Addr()
}

// Name returns the peer's name.
func (p *Peer) Name() string { return p.cfg.Name }

// APIAddr returns the address the API listens on.
func (p *Peer) APIAddr() string {
	if p.apiLn == nil {
		return ""
	}
	return p.apiLn.Addr().String()
}

// SyslogTCPAddr returns the syslog TCP listen address, or "".
func (p *Peer) SyslogTCPAddr() string {
	if p.syslog == nil || p.syslog.TCPAddr() == nil {
		return ""
	}
	return p.syslog.TCPAddr().String()
}

// SyslogTLSAddr returns the syslog TLS listen address, or "".
func (p *Peer) SyslogTLSAddr() string {
	if p.syslog == nil || p.syslog.TLSAddr() == nil {
		return ""
	}
	return p.syslog.TLSAddr().String()
}

// SyslogUDPAddr returns the syslog UDP listen address, or "".
func (p *Peer) SyslogUDPAddr() string {
	if p.syslog == nil || p.syslog.UDPAddr() == nil {
		return ""
	}
	return p.syslog.UDPAddr().String()
}

// DB returns the peer's store (for tests and tools in this module).
func (p *Peer) DB() *index.DB { return p.db }

// Members returns the peer's view of the cluster (just itself outside one).
func (p *Peer) Members() []api.Member {
	var out []api.Member
	for _, m := range p.cluster.members() {
		out = append(out, api.Member{Name: m.Name, Address: m.Addr, Status: string(m.Status), Tags: m.Tags})
	}
	return out
}

// Owners returns the peers that replicate partition pt in this peer's view.
func (p *Peer) Owners(pt record.Partition) []string {
	return append([]string(nil), p.cluster.view().owners(pt)...)
}

// Digest summarises every record this peer stores: two peers holding the
// same records have the same digest.
func (p *Peer) Digest() record.Digest { return p.db.Digest() }
