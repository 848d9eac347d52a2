package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/logmesh/logmesh/gossip"
	"github.com/urfave/cli/v2"
)

func keygenCommand() *cli.Command {
	return &cli.Command{
		Name:  "keygen",
		Usage: "print a new random gossip encryption key for --encrypt",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "out", Usage: "write the key to this file (mode 0600) for --encrypt-file instead of printing it; a file that already holds a key is kept as it is"},
		},
		Action: func(c *cli.Context) error {
			out := c.String("out")
			if out == "" {
				key, err := newKey()
				if err != nil {
					return err
				}
				fmt.Println(key)
				return nil
			}
			if _, err := readKeyFile(out); err == nil {
				fmt.Fprintf(c.App.ErrWriter, "%s already holds a key: kept\n", out)
				return nil
			} else if !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			return writeKeyFile(out)
		},
	}
}

func newKey() (string, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return "", fmt.Errorf("cannot read random bytes: %w", err)
	}
	return base64.StdEncoding.EncodeToString(key), nil
}

// readKeyFile reads a gossip key written by `logmesh keygen --out`.
func readKeyFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("gossip key file: %w", err)
	}
	key, err := gossip.ParseKey(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("gossip key file %s: %w", path, err)
	}
	return key, nil
}

// demoKey returns the key in path, writing a new one there first if there
// is none.
func demoKey(path string) ([]byte, error) {
	if key, err := readKeyFile(path); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("gossip key file: %w", err)
	}
	if err := writeKeyFile(path); err != nil {
		return nil, err
	}
	return readKeyFile(path)
}

// writeKeyFile writes a new key to path, which must not exist (mode 0600).
func writeKeyFile(path string) error {
	key, err := newKey()
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("cannot create the key file: %w", err)
	}
	if _, err := fmt.Fprintln(f, key); err != nil {
		f.Close()
		return fmt.Errorf("cannot write the key file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("cannot write the key file: %w", err)
	}
	return f.Close()
}
