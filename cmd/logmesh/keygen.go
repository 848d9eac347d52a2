package main

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"

	"github.com/urfave/cli/v2"
)

func keygenCommand() *cli.Command {
	return &cli.Command{
		Name:  "keygen",
		Usage: "print a new random gossip encryption key for --encrypt",
		Action: func(c *cli.Context) error {
			key := make([]byte, 32)
			if _, err := rand.Read(key); err != nil {
				return fmt.Errorf("cannot read random bytes: %w", err)
			}
			fmt.Println(base64.StdEncoding.EncodeToString(key))
			return nil
		},
	}
}
