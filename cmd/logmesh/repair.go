package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"
)

func repairCommand() *cli.Command {
	return &cli.Command{
		Name:  "repair",
		Usage: "run anti-entropy between the addressed peer and every co-replica now, and hand over what it holds but no longer owns",
		Flags: []cli.Flag{addrFlag, tokenFlag, tlsCAFlag, tlsServerNameFlag},
		Action: func(c *cli.Context) error {
			cl, err := newClient(c)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			res, err := cl.Repair(ctx)
			if err != nil {
				return err
			}
			fmt.Printf("repair: %d round(s) in %.1fs: %d records sent, %d received\n", res.Rounds, res.Seconds, res.Sent, res.Received)
			return nil
		},
	}
}
