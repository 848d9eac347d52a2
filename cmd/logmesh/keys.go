package main

import (
	"errors"
	"fmt"
	"sort"

	"github.com/urfave/cli/v2"

	"github.com/logmesh/logmesh/api"
)

// keysCommand rotates the gossip encryption key without downtime:
// install the new key everywhere, use it, then remove the old one.
func keysCommand() *cli.Command {
	flags := []cli.Flag{addrFlag, tokenFlag, tlsCAFlag, tlsServerNameFlag}
	op := func(name, usage string) *cli.Command {
		return &cli.Command{
			Name: name, Usage: usage, ArgsUsage: "KEY", Flags: flags,
			Action: func(c *cli.Context) error {
				if c.NArg() != 1 {
					return errors.New("want one KEY (base64, as logmesh keygen prints)")
				}
				cl, err := newClient(c)
				if err != nil {
					return err
				}
				ks, err := cl.KeyOp(c.Context, name, c.Args().First())
				if err != nil {
					return err
				}
				printKeys(c, ks)
				return nil
			},
		}
	}
	return &cli.Command{
		Name:  "keys",
		Usage: "rotate the gossip encryption key: install the new one, use it, remove the old one",
		Subcommands: []*cli.Command{
			{
				Name: "list", Usage: "show every member's keys and the one each encrypts with", Flags: flags,
				Action: func(c *cli.Context) error {
					cl, err := newClient(c)
					if err != nil {
						return err
					}
					ks, err := cl.Keys(c.Context)
					if err != nil {
						return err
					}
					printKeys(c, ks)
					return nil
				},
			},
			op("install", "add a key to every member's keyring (it decrypts at once, encrypts once used)"),
			op("use", "make an installed key the one every member encrypts with"),
			op("remove", "remove a key from every keyring; refused while a member is failed or still uses it"),
		},
	}
}

func printKeys(c *cli.Context, ks api.KeyStatus) {
	w := c.App.Writer
	keys := make([]string, 0, len(ks.Keys))
	for k := range ks.Keys {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Fprintf(w, "%d of %d members answered\n", ks.Answered, ks.Members)
	for _, k := range keys {
		primary := ""
		if n := ks.Primary[k]; n > 0 {
			primary = fmt.Sprintf(", primary on %d", n)
		}
		fmt.Fprintf(w, "  %s  on %d%s\n", k, ks.Keys[k], primary)
	}
	for _, f := range ks.Failed {
		fmt.Fprintf(w, "  member %s is failed: it cannot confirm key changes\n", f)
	}
	for m, e := range ks.Errors {
		fmt.Fprintf(w, "  %s: %s\n", m, e)
	}
}
