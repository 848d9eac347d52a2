package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/logmesh/logmesh/client"
	"github.com/logmesh/logmesh/peer"
	"github.com/logmesh/logmesh/sample"
)

func demoCommand() *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "run a local 3-peer cluster with embedded defaults and feed it sample logs (Ctrl-C stops it and leaves nothing running)",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "peers", Value: 3, Usage: "number of peers"},
			&cli.IntFlag{Name: "api-port", Value: 7070, Usage: "API port of the first peer (the others count up)"},
			&cli.IntFlag{Name: "syslog-port", Value: 5514, Usage: "syslog TCP and UDP port of the first peer (the others count up)"},
			&cli.IntFlag{Name: "gossip-port", Value: 7946, Usage: "gossip port of the first peer (the others count up)"},
			&cli.StringFlag{Name: "data-dir", Usage: "keep the data here (default: a temporary directory removed on exit)"},
			&cli.IntFlag{Name: "rate", Value: 20, Usage: "sample lines per second fed to each peer after the first burst"},
			&cli.StringFlag{Name: "log-level", Value: "warn", Usage: "the peers' log level"},
		},
		Action: runDemo,
	}
}

func runDemo(c *cli.Context) error {
	logger, err := newLogger(c.String("log-level"), "text")
	if err != nil {
		return err
	}
	dir := c.String("data-dir")
	if dir == "" {
		if dir, err = os.MkdirTemp("", "logmesh-demo-"); err != nil {
			return fmt.Errorf("cannot create a temporary data directory: %w", err)
		}
		defer os.RemoveAll(dir)
	}
	n := c.Int("peers")
	if n < 1 || n > 20 {
		return fmt.Errorf("--peers %d: want 1 to 20", n)
	}
	addr := func(base, i int) string { return fmt.Sprintf("127.0.0.1:%d", base+i) }
	var peers []*peer.Peer
	defer func() {
		for i := len(peers) - 1; i >= 0; i-- {
			peers[i].Close()
		}
	}()
	// the demo's gossip is encrypted too, with a key kept next to its data
	key, err := demoKey(filepath.Join(dir, "gossip.key"))
	if err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("peer-%d", i+1)
		cfg := peer.DefaultConfig(filepath.Join(dir, name))
		cfg.Name = name
		cfg.APIAddr = addr(c.Int("api-port"), i)
		cfg.SyslogTCP, cfg.SyslogUDP = addr(c.Int("syslog-port"), i), addr(c.Int("syslog-port"), i)
		if n > 1 {
			cfg.GossipAddr, cfg.EncryptKey = addr(c.Int("gossip-port"), i), key
			if i > 0 {
				cfg.Seeds = []string{addr(c.Int("gossip-port"), 0)}
			}
		}
		cfg.Index.FsyncInterval = 100 * time.Millisecond
		cfg.Index.MemTableBytes, cfg.Index.BlockCacheBytes, cfg.Index.IndexCacheBytes = 8<<20, 8<<20, 4<<20
		cfg.Logger = logger.With("peer", name)
		p, err := peer.New(cfg)
		if err != nil {
			return err
		}
		if err := p.Start(); err != nil {
			return fmt.Errorf("%w (is another logmesh running? choose other ports with --api-port, --syslog-port, --gossip-port)", err)
		}
		peers = append(peers, p)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := waitMembers(ctx, peers); err != nil {
		return err
	}
	var feeds []*feeder
	total := 0
	for i, p := range peers {
		f := &feeder{api: p.APIAddr(), tcp: p.SyslogTCPAddr(), udp: p.SyslogUDPAddr(), gen: sample.New(uint64(time.Now().UnixNano()) + uint64(i))}
		k, err := f.burst(ctx)
		if err != nil {
			return fmt.Errorf("cannot feed sample logs: %w", err)
		}
		total += k
		feeds = append(feeds, f)
	}
	bin := "go run ./cmd/logmesh"
	if exe, err := os.Executable(); err == nil && !strings.Contains(exe, "go-build") {
		bin = exe
	}
	var apis []string
	for _, p := range peers {
		apis = append(apis, "http://"+p.APIAddr())
	}
	fmt.Printf(`
logmesh demo: a %d-peer cluster is running and took %d sample lines (syslog over TCP in both framings,
UDP, and HTTP JSON); every record is replicated to 3 peers (all of them, with 3 peers).

  peers (API)   %s
  dashboard     %s/   (Prometheus metrics at /metrics on every peer)
  syslog        tcp and udp %s (and the next ports for the other peers)
  data          %s

Any peer answers for the whole cluster. Try, in another terminal:
  %s members --addr %s
  %s status  --addr %s
  %s query   --addr %s --since -5m --severity err
  %s query   --addr %s --contains "timed out" --limit 5
  %s tail    --addr %s -f
  logger -n 127.0.0.1 -P %s --tcp --octet-count "hello from logger"

It keeps feeding %d lines/s to each peer. Ctrl-C stops every peer.
`, n, total, strings.Join(apis, " "), apis[0], peers[0].SyslogTCPAddr(), dir,
		bin, peers[0].APIAddr(), bin, peers[0].APIAddr(), bin, peers[n-1].APIAddr(), bin, peers[0].APIAddr(), bin, peers[0].APIAddr(),
		portOf(peers[0].SyslogTCPAddr()), c.Int("rate"))
	var wg sync.WaitGroup
	for _, f := range feeds {
		wg.Add(1)
		go func(f *feeder) {
			defer wg.Done()
			f.trickle(ctx, c.Int("rate"), logger)
		}(f)
	}
	wg.Wait()
	fmt.Println("\nstopping")
	return nil
}

// waitMembers waits until every peer sees all the others alive.
func waitMembers(ctx context.Context, peers []*peer.Peer) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok := true
		for _, p := range peers {
			alive := 0
			for _, m := range p.Members() {
				if m.Status == "alive" {
					alive++
				}
			}
			ok = ok && alive == len(peers)
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the peers did not find each other within 30s")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func portOf(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return port
}

// feeder sends sample logs to a peer over every transport.
type feeder struct {
	api, tcp, udp string
	gen           *sample.Generator
}

// burst sends a first batch over each transport and returns how many lines it sent.
func (f *feeder) burst(ctx context.Context) (int, error) {
	now := time.Now()
	conn, err := net.Dial("tcp", f.tcp)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	var b bytes.Buffer
	for i := 0; i < 400; i++ {
		if i%2 == 0 {
			b.WriteString(sample.OctetCounted(f.gen.RFC5424(now)))
		} else {
			b.WriteString(f.gen.RFC3164(now) + "\n")
		}
	}
	if _, err := conn.Write(b.Bytes()); err != nil {
		return 0, err
	}
	udp, err := net.Dial("udp", f.udp)
	if err != nil {
		return 0, err
	}
	defer udp.Close()
	for i := 0; i < 100; i++ {
		if _, err := udp.Write([]byte(f.gen.RFC5424(now))); err != nil {
			return 0, err
		}
	}
	cl, err := client.New(f.api)
	if err != nil {
		return 0, err
	}
	b.Reset()
	for i := 0; i < 500; i++ {
		b.WriteString(f.gen.JSON(now) + "\n")
	}
	if _, err := cl.Ingest(ctx, b.Bytes(), "application/x-ndjson", nil); err != nil {
		return 0, err
	}
	return 1000, nil
}

// trickle sends rate lines per second over HTTP until ctx ends.
func (f *feeder) trickle(ctx context.Context, rate int, log *slog.Logger) {
	if rate <= 0 {
		<-ctx.Done()
		return
	}
	cl, err := client.New(f.api)
	if err != nil {
		return
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var b bytes.Buffer
		for i := 0; i < rate; i++ {
			b.WriteString(f.gen.RFC5424(time.Now()) + "\n")
		}
		if _, err := cl.Ingest(ctx, b.Bytes(), "text/plain", nil); err != nil && ctx.Err() == nil {
			log.Warn("demo feed failed", "err", err)
		}
	}
}
