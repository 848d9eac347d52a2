package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/logmesh/logmesh/tlsutil"
)

// certsCommand makes a private CA and peer certificates, for clusters
// without a PKI of their own (any CA works: the agent only needs PEM files).
func certsCommand() *cli.Command {
	dir := &cli.StringFlag{Name: "dir", Value: "./logmesh-tls", Usage: "directory of ca.crt, ca.key and the certificates"}
	return &cli.Command{
		Name:  "certs",
		Usage: "make a private CA and peer certificates for --tls-cert/--tls-key/--tls-ca",
		Subcommands: []*cli.Command{
			{
				Name:  "ca",
				Usage: "make the cluster's CA (ca.crt for every peer, ca.key kept offline)",
				Flags: []cli.Flag{dir, &cli.DurationFlag{Name: "valid", Value: 10 * 365 * 24 * time.Hour, Usage: "validity"}},
				Action: func(c *cli.Context) error {
					d := c.String("dir")
					if _, err := os.Stat(filepath.Join(d, "ca.key")); err == nil {
						return fmt.Errorf("%s already holds a CA: remove it first to make a new one (peers would stop trusting each other)", d)
					}
					if err := os.MkdirAll(d, 0o700); err != nil {
						return err
					}
					ca, err := tlsutil.NewCA("logmesh cluster CA", c.Duration("valid"))
					if err != nil {
						return err
					}
					if err := ca.WriteCA(d); err != nil {
						return fmt.Errorf("write the CA: %w", err)
					}
					fmt.Fprintf(c.App.Writer, "CA written to %s (ca.crt to every peer; keep ca.key offline)\n", d)
					return nil
				},
			},
			{
				Name:      "issue",
				Usage:     "issue a certificate for a peer (its name is the certificate's identity) or a client",
				ArgsUsage: "NAME",
				Flags: []cli.Flag{dir,
					&cli.StringSliceFlag{Name: "host", Usage: "extra DNS names and IP addresses clients reach the peer by (repeatable)"},
					&cli.DurationFlag{Name: "valid", Value: 365 * 24 * time.Hour, Usage: "validity"},
					&cli.BoolFlag{Name: "client", Usage: "a client certificate (client authentication only): it authenticates a user or tool and never passes as a peer, whatever NAME it carries"}},
				Action: func(c *cli.Context) error {
					name := c.Args().First()
					if name == "" || c.NArg() > 1 {
						return errors.New("want one NAME: the peer's --name")
					}
					d := c.String("dir")
					ca, err := tlsutil.LoadCA(filepath.Join(d, "ca.crt"), filepath.Join(d, "ca.key"))
					if err != nil {
						return fmt.Errorf("load the CA (logmesh certs ca makes one): %w", err)
					}
					issue := func() (tlsutil.Files, error) {
						return ca.IssueFiles(d, name, c.StringSlice("host"), c.Duration("valid"))
					}
					if c.Bool("client") {
						if len(c.StringSlice("host")) > 0 {
							return errors.New("--host names a peer's addresses: a --client certificate has none")
						}
						issue = func() (tlsutil.Files, error) { return ca.IssueClientFiles(d, name, c.Duration("valid")) }
					}
					f, err := issue()
					if err != nil {
						return err
					}
					fmt.Fprintf(c.App.Writer, "--tls-cert %s --tls-key %s --tls-ca %s\n", f.Cert, f.Key, f.CA)
					return nil
				},
			},
		},
	}
}
