package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/logmesh/logmesh/record"
)

// printer writes records for a person (aligned, coloured on a terminal) or as NDJSON.
type printer struct {
	w     io.Writer
	json  bool
	color bool
	enc   *json.Encoder
}

func newPrinter(w io.Writer, output string) (*printer, error) {
	p := &printer{w: w}
	switch output {
	case "json":
		p.json = true
		p.enc = json.NewEncoder(w)
	case "text", "":
		if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) && os.Getenv("NO_COLOR") == "" {
			p.color = true
		}
	default:
		return nil, fmt.Errorf("--output %q: want text or json", output)
	}
	return p, nil
}

const (
	ansiReset  = "\x1b[0m"
	ansiDim    = "\x1b[2m"
	ansiRed    = "\x1b[31m"
	ansiYellow = "\x1b[33m"
	ansiCyan   = "\x1b[36m"
	ansiGreen  = "\x1b[32m"
	ansiBold   = "\x1b[1m"
)

func (p *printer) paint(code, s string) string {
	if !p.color || s == "" {
		return s
	}
	return code + s + ansiReset
}

func sevColor(sev string) string {
	switch sev {
	case "emerg", "alert", "crit", "err":
		return ansiRed + ansiBold
	case "warning":
		return ansiYellow
	case "debug":
		return ansiDim
	}
	return ""
}

// print writes one record: event time, host, app[procid], severity, message.
func (p *printer) print(j *record.JSON) error {
	if p.json {
		return p.enc.Encode(j)
	}
	ts := j.Time
	if t, err := time.Parse(time.RFC3339Nano, j.Time); err == nil {
		ts = t.UTC().Format("2006-01-02T15:04:05.000Z")
	}
	app := j.App
	if j.ProcID != "" {
		app += "[" + j.ProcID + "]"
	}
	msg := j.Message
	if msg == "" && j.Raw != "" {
		msg = j.Raw
	}
	msg = strings.NewReplacer("\n", `\n`, "\r", `\r`).Replace(msg)
	var flags string
	if j.Malformed != "" {
		flags = " " + p.paint(ansiYellow, "["+j.Malformed+"]")
	}
	if len(j.Fields) > 0 {
		keys := make([]string, 0, len(j.Fields))
		for k := range j.Fields {
			keys = append(keys, k)
		}
		sortStrings(keys)
		var b strings.Builder
		for _, k := range keys {
			fmt.Fprintf(&b, " %s=%s", k, j.Fields[k])
		}
		flags += p.paint(ansiDim, b.String())
	}
	_, err := fmt.Fprintf(p.w, "%s %s %s %s %s%s\n",
		p.paint(ansiDim, ts),
		p.paint(ansiCyan, pad(orDash(j.Host), 24)),
		p.paint(ansiGreen, pad(orDash(app), 18)),
		p.paint(sevColor(j.Severity), pad(j.Severity, 7)),
		msg, flags)
	return err
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func pad(s string, n int) string {
	if len(s) >= n {
		return s
	}
	return s + strings.Repeat(" ", n-len(s))
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}
