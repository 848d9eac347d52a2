package peer

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/logmesh/logmesh/index"
	"github.com/logmesh/logmesh/syslog"
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

	// Index configures the store; its Dir is DataDir/store.
	Index index.Config
	// Syslog holds the syslog limits (maximum message size, connections,
	// timeouts); its addresses come from SyslogTCP and SyslogUDP.
	Syslog syslog.Config

	// MaxBodyBytes bounds one HTTP request body (default 64 MiB).
	MaxBodyBytes int64
	// MaxLineBytes bounds one line of an HTTP ingest body (default 1 MiB).
	MaxLineBytes int
	// QueryWorkers is how many cores a filtering query may use (default 2).
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
	for what, addr := range map[string]string{"api": c.APIAddr, "syslog tcp": c.SyslogTCP, "syslog udp": c.SyslogUDP} {
		if addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return fmt.Errorf("%s address %q is not host:port: %v", what, addr, err)
		}
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 64 << 20
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
	c.Index.Now = c.Now
	c.Index.Logger = c.Logger
	return nil
}
