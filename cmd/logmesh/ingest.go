package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/logmesh/logmesh/api"
	"github.com/logmesh/logmesh/client"
)

func ingestCommand() *cli.Command {
	return &cli.Command{
		Name:      "ingest",
		Usage:     "send files of log lines to a peer",
		ArgsUsage: "FILE... (- for standard input)",
		Flags: []cli.Flag{
			addrFlag, tokenFlag, tlsCAFlag, tlsServerNameFlag,
			&cli.StringFlag{Name: "format", Value: "auto", Usage: "text (syslog or plain lines), json (NDJSON records), or auto (json for .json/.ndjson files)"},
			&cli.IntFlag{Name: "batch", Value: 1000, Usage: "lines per request"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print only the summary"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return errors.New("name at least one file to ingest (or - for standard input)")
			}
			cl, err := newClient(c)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			in := &ingester{cl: cl, batch: max(1, c.Int("batch")), quiet: c.Bool("quiet"), start: time.Now(),
				run: fmt.Sprintf("ingest-%x", rand.Uint64())}
			for _, name := range c.Args().Slice() {
				format := c.String("format")
				if format == "auto" {
					format = "text"
					if ext := strings.ToLower(filepath.Ext(name)); ext == ".json" || ext == ".ndjson" || ext == ".jsonl" {
						format = "json"
					}
				}
				if format != "text" && format != "json" {
					return fmt.Errorf("--format %q: want text, json or auto", format)
				}
				if err := in.file(ctx, name, format); err != nil {
					in.summary()
					return err
				}
			}
			in.summary()
			return nil
		},
	}
}

type ingester struct {
	cl       *client.Client
	batch    int
	quiet    bool
	start    time.Time
	lines    int64
	accepted int64
	bytes    int64
	files    int
	// run names this run's batches (run-N) in their idempotency keys, so
	// a retried batch is stored once.
	run     string
	batches int
}

// send posts one batch, retrying what may be transient (no answer, 503,
// 504, 507) with the same idempotency key, so nothing is stored twice.
func (in *ingester) send(ctx context.Context, body []byte, ctype, key string) (api.IngestResponse, error) {
	backoff := 500 * time.Millisecond
	for attempt := 1; ; attempt++ {
		resp, err := in.cl.IngestOnce(ctx, body, ctype, nil, key)
		var se *client.StatusError
		transient := err != nil && (!errors.As(err, &se) || se.Code == http.StatusServiceUnavailable ||
			se.Code == http.StatusGatewayTimeout || se.Code == http.StatusInsufficientStorage)
		if !transient || attempt == 5 || ctx.Err() != nil {
			return resp, err
		}
		select {
		case <-ctx.Done():
			return resp, ctx.Err()
		case <-time.After(backoff):
		}
		backoff *= 2
	}
}

func (in *ingester) file(ctx context.Context, name, format string) error {
	var r io.Reader
	var size int64 = -1
	if name == "-" {
		r = os.Stdin
	} else {
		f, err := os.Open(name)
		if err != nil {
			return fmt.Errorf("cannot open %s: %w", name, err)
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil {
			size = st.Size()
		}
		r = f
	}
	in.files++
	bar := in.progress(name, size)
	ctype := "text/plain"
	if format == "json" {
		ctype = "application/x-ndjson"
	}
	br := bufio.NewReaderSize(r, 256<<10)
	var buf bytes.Buffer
	n := 0
	send := func() error {
		if n == 0 {
			return nil
		}
		in.batches++
		resp, err := in.send(ctx, buf.Bytes(), ctype, fmt.Sprintf("%s-%d", in.run, in.batches))
		if err != nil {
			return fmt.Errorf("%s: batch ending at line %d was refused: %w", name, in.lines, err)
		}
		in.accepted += int64(resp.Accepted)
		_ = bar.Add(buf.Len())
		buf.Reset()
		n = 0
		return nil
	}
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			if line[len(line)-1] != '\n' {
				line = append(line, '\n')
			}
			buf.Write(line)
			in.lines++
			in.bytes += int64(len(line))
			if n++; n >= in.batch {
				if err := send(); err != nil {
					return err
				}
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("cannot read %s: %w", name, err)
		}
	}
	if err := send(); err != nil {
		return err
	}
	_ = bar.Finish()
	return nil
}

// progress shows a bar with rate and ETA on a terminal and plain lines elsewhere.
func (in *ingester) progress(name string, size int64) *progressbar.ProgressBar {
	if in.quiet {
		return progressbar.DefaultSilent(size)
	}
	if term.IsTerminal(int(os.Stderr.Fd())) {
		return progressbar.NewOptions64(size,
			progressbar.OptionSetDescription(filepath.Base(name)),
			progressbar.OptionSetWriter(os.Stderr),
			progressbar.OptionShowBytes(true),
			progressbar.OptionShowCount(),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(os.Stderr) }),
		)
	}
	return progressbar.NewOptions64(size,
		progressbar.OptionSetDescription(name),
		progressbar.OptionSetWriter(&plainProgress{name: name, size: size, start: time.Now()}),
		progressbar.OptionThrottle(5*time.Second),
		progressbar.OptionShowBytes(true),
	)
}

// plainProgress replaces the bar with a line every few seconds when stderr
// is not a terminal (logs, CI).
type plainProgress struct {
	name  string
	size  int64
	start time.Time
	last  time.Time
}

func (p *plainProgress) Write(b []byte) (int, error) {
	if time.Since(p.last) < 5*time.Second {
		return len(b), nil
	}
	p.last = time.Now()
	fmt.Fprintf(os.Stderr, "ingest: %s: %s elapsed\n", p.name, time.Since(p.start).Round(time.Second))
	return len(b), nil
}

func (in *ingester) summary() {
	el := time.Since(in.start)
	rate := float64(in.lines) / max(el.Seconds(), 1e-9)
	fmt.Fprintf(os.Stderr, "ingest: %d lines (%.1f MB) from %d file(s) in %s, %.0f lines/s; %d stored\n",
		in.lines, float64(in.bytes)/1e6, in.files, el.Round(time.Millisecond), rate, in.accepted)
}
