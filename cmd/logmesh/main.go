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
	if err := newApp(runPeer).Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "logmesh:", userMessage(err))
		var ec cli.ExitCoder
		if errors.As(err, &ec) && ec.ExitCode() != 0 {
			os.Exit(ec.ExitCode())
		}
		os.Exit(1)
	}
}

// newApp builds the command-line app; runPeer runs the agent's peer until
// it stops (tests pass a stand-in that starts nothing).
func newApp(runPeer func(peer.Config) error) *cli.App {
	return &cli.App{
		Name:    "logmesh",
		Usage:   "a leaderless peer-to-peer log store",
		Version: peer.Version,
		Commands: []*cli.Command{
			newAgentCommand(runPeer),
			demoCommand(),
			queryCommand(),
			tailCommand(),
			ingestCommand(),
			statusCommand(),
			membersCommand(),
			keygenCommand(),
			certsCommand(),
			keysCommand(),
			repairCommand(),
			forgetCommand(),
			versionCommand(),
			benchCommand(),
		},
		ExitErrHandler: func(*cli.Context, error) {}, // main prints errors once
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
