package main

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/urfave/cli/v2"
)

// printConfig writes the effective value of every flag a config file may
// set, in flag order, as a config file that --config reads back unchanged.
func printConfig(w io.Writer, c *cli.Context) error {
	var buf bytes.Buffer
	for _, f := range c.Command.Flags {
		if !fileKey(f) {
			continue
		}
		name := f.Names()[0]
		line, err := toml.Marshal(map[string]any{name: currentValue(c, f)})
		if err != nil {
			return fmt.Errorf("cannot print --%s: %w", name, err)
		}
		buf.Write(line)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// currentValue is flag f's value after flags, environment and file are
// merged, as the TOML type a config file gives it.
func currentValue(c *cli.Context, f cli.Flag) any {
	name := f.Names()[0]
	switch f.(type) {
	case *cli.StringFlag:
		return c.String(name)
	case *cli.StringSliceFlag:
		return append([]string{}, c.StringSlice(name)...) // never nil: an empty list prints as []
	case *cli.IntFlag:
		return c.Int(name)
	case *cli.BoolFlag:
		return c.Bool(name)
	case *cli.DurationFlag:
		return formatDuration(c.Duration(name))
	}
	panic(fmt.Sprintf("BUG: --%s is a %T, which a config file cannot hold", name, f))
}

// formatDuration writes d without zero minutes and seconds: "1h", not "1h0m0s".
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
