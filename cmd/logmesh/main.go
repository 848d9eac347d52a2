// Command logmesh is the logmesh peer (agent) and its command-line client.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/logmesh/logmesh/peer"
)

func main() {
	app := &cli.App{
		Name:    "logmesh",
		Usage:   "a leaderless peer-to-peer log store",
		Version: peer.Version,
		Commands: []*cli.Command{
			agentCommand(),
			demoCommand(),
			queryCommand(),
			tailCommand(),
			ingestCommand(),
			statusCommand(),
			membersCommand(),
			keygenCommand(),
			repairCommand(),
			versionCommand(),
			benchCommand(),
		},
		ExitErrHandler: func(*cli.Context, error) {}, // errors are printed once, below
	}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "logmesh:", userMessage(err))
		var ec cli.ExitCoder
		if errors.As(err, &ec) && ec.ExitCode() != 0 {
			os.Exit(ec.ExitCode())
		}
		os.Exit(1)
	}
}

// userMessage turns an error into one sentence for a user.
func userMessage(err error) string {
	msg := err.Error()
	if msg == "" {
		return "failed"
	}
	return msg
}
