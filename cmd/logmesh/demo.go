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
		Usage: "run a local peer with embedded defaults and feed it sample logs (Ctrl-C stops it and leaves nothing running)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "api-addr", Value: "127.0.0.1:7070", Usage: "HTTP API listen address"},
			&cli.StringFlag{Name: "syslog-addr", Value: "127.0.0.1:5514", Usage: "syslog TCP and UDP listen address"},
			&cli.StringFlag{Name: "data-dir", Usage: "keep the data here (default: a temporary directory removed on exit)"},
			&cli.IntFlag{Name: "rate", Value: 20, Usage: "sample lines per second fed after the first burst"},
			&cli.StringFlag{Name: "log-level", Value: "warn", Usage: "the peer's log level"},
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
	cfg := peer.DefaultConfig(filepath.Join(dir, "peer-1"))
	cfg.Name = "peer-1"
	cfg.APIAddr = c.String("api-addr")
	cfg.SyslogTCP, cfg.SyslogUDP = c.String("syslog-addr"), c.String("syslog-addr")
	cfg.Index.FsyncInterval = 100 * time.Millisecond
	cfg.Index.MemTableBytes, cfg.Index.BlockCacheBytes = 8<<20, 8<<20
	cfg.Logger = logger
	p, err := peer.New(cfg)
	if err != nil {
		return err
	}
	if err := p.Start(); err != nil {
		return fmt.Errorf("%w (is another logmesh running? choose other ports with --api-addr and --syslog-addr)", err)
	}
	defer p.Close()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	feed := &feeder{api: p.APIAddr(), tcp: p.SyslogTCPAddr(), udp: p.SyslogUDPAddr(), gen: sample.New(uint64(time.Now().UnixNano()))}
	n, err := feed.burst(ctx)
	if err != nil {
		return fmt.Errorf("cannot feed sample logs: %w", err)
	}
	bin := "go run ./cmd/logmesh"
	if exe, err := os.Executable(); err == nil && !strings.Contains(exe, "go-build") {
		bin = exe
	}
	fmt.Printf(`
logmesh demo is running: peer-1 took %d sample lines (syslog over TCP in both framings, UDP, and HTTP JSON).

  API and queries   http://%s          (GET /v1/logs, /v1/status, /healthz)
  syslog            tcp and udp %s     (point rsyslog or logger at it)
  data              %s

Try, in another terminal:
  %s query --addr %s --since -5m --severity err
  %s query --addr %s --contains "timed out" --limit 5
  %s tail  --addr %s -f
  %s status --addr %s
  logger -n 127.0.0.1 -P %s --tcp --octet-count "hello from logger"

It keeps feeding %d lines/s. Ctrl-C stops it.
`, n, p.APIAddr(), p.SyslogTCPAddr(), dir, bin, p.APIAddr(), bin, p.APIAddr(), bin, p.APIAddr(), bin, p.APIAddr(),
		portOf(p.SyslogTCPAddr()), c.Int("rate"))
	feed.trickle(ctx, c.Int("rate"), logger)
	fmt.Println("\nstopping")
	return nil
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
