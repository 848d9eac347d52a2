package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/logmesh/logmesh/client"
)

func env(name string) []string { return []string{"LOGMESH_" + name} }

// flagError is a bad value of one flag. It keeps the flag's name so that a
// value that came from the config file can be reported as the file's key.
type flagError struct {
	flag string
	err  error
}

func flagErr(flag string, err error) error { return &flagError{flag: flag, err: err} }

func (e *flagError) Error() string { return "--" + e.flag + ": " + e.err.Error() }
func (e *flagError) Unwrap() error { return e.err }

// addrFlag is the peer address of client commands.
var addrFlag = &cli.StringFlag{
	Name: "addr", Aliases: []string{"a"}, Value: "127.0.0.1:7070", EnvVars: env("ADDR"),
	Usage: "API address of any peer (host:port or URL)",
}

// Client commands reach a peer secured with TLS and tokens through these.
var (
	tokenFlag = &cli.StringFlag{Name: "token", EnvVars: env("TOKEN"),
		Usage: "bearer token for a peer started with --api-token-file (prefer the LOGMESH_TOKEN environment variable: flags show in ps)"}
	tlsCAFlag = &cli.StringFlag{Name: "tls-ca", EnvVars: env("TLS_CA"),
		Usage: "CA certificate (PEM) to verify a peer's TLS certificate; implies https"}
	tlsServerNameFlag = &cli.StringFlag{Name: "tls-server-name", EnvVars: env("TLS_SERVER_NAME"),
		Usage: "name the peer's certificate must carry (default: the host of --addr; peers' certificates name the peer)"}
)

func newClient(c *cli.Context) (*client.Client, error) {
	addr := c.String("addr")
	cl, err := client.New(addr)
	if err != nil {
		return nil, err
	}
	cl.Token = c.String("token")
	if ca := c.String("tls-ca"); ca != "" || strings.HasPrefix(addr, "https://") {
		cfg := &tls.Config{MinVersion: tls.VersionTLS13, ServerName: c.String("tls-server-name")}
		if ca != "" {
			pem, err := os.ReadFile(ca)
			if err != nil {
				return nil, flagErr("tls-ca", err)
			}
			cfg.RootCAs = x509.NewCertPool()
			if !cfg.RootCAs.AppendCertsFromPEM(pem) {
				return nil, flagErr("tls-ca", fmt.Errorf("%s holds no PEM certificate", ca))
			}
		}
		cl.WithTLS(cfg)
	}
	return cl, nil
}

// parseDuration accepts Go durations plus a "d" (day) unit: "7d", "36h", "1d12h".
func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	var days time.Duration
	if i := strings.IndexByte(s, 'd'); i > 0 {
		var n int
		if _, err := fmt.Sscanf(s[:i], "%d", &n); err != nil || fmt.Sprint(n) != s[:i] {
			return 0, fmt.Errorf("%q is not a duration (like 90m, 36h or 7d)", s)
		}
		days = time.Duration(n) * 24 * time.Hour
		s = s[i+1:]
		if s == "" {
			return days, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (like 90m, 36h or 7d)", s)
	}
	return days + d, nil
}

// parseFsync reads --fsync: "always" or an interval.
func parseFsync(s string) (time.Duration, error) {
	if s == "always" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q is not \"always\" or an interval such as 100ms", s)
	}
	return d, nil
}

// parseBytes reads sizes like 64KiB, 8MiB, 1GiB or a plain number of bytes.
func parseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1}}
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			var n int64
			num := strings.TrimSpace(strings.TrimSuffix(s, u.suffix))
			if _, err := fmt.Sscanf(num, "%d", &n); err != nil || fmt.Sprint(n) != num || n < 0 {
				break
			}
			return n * u.mult, nil
		}
	}
	var n int64
	if _, err := fmt.Sscanf(s, "%d", &n); err != nil || fmt.Sprint(n) != s || n < 0 {
		return 0, fmt.Errorf("%q is not a size (like 65536, 64KiB or 8MiB)", s)
	}
	return n, nil
}
