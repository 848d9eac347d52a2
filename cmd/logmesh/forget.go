package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"
)

func forgetCommand() *cli.Command {
	return &cli.Command{
		Name:      "forget",
		Usage:     "give up on a failed or departed peer: queries stop saying they may miss records it never pushed, and those records are lost",
		ArgsUsage: "PEER",
		Flags:     []cli.Flag{addrFlag, tokenFlag, tlsCAFlag, tlsServerNameFlag},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("name the peer to forget: logmesh forget PEER")
			}
			cl, err := newClient(c)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			res, err := cl.Forget(ctx, c.Args().First())
			if err != nil {
				return err
			}
			fmt.Printf("forgot %s (told %s)\n", res.Peer, strings.Join(res.Told, ", "))
			for _, e := range res.Errors {
				fmt.Fprintf(os.Stderr, "could not tell %s\n", e)
			}
			return nil
		},
	}
}
