// Package sample generates realistic, reproducible log lines: RFC 5424 and
// RFC 3164 syslog and JSON records with the variety of a small fleet (hosts,
// services, severities, request IDs). The demo, the benchmarks and the tests
// feed peers with it.
package sample

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// Generator produces log lines. It is not safe for concurrent use.
type Generator struct {
	rng *rand.Rand
}

// New returns a generator; the same seed gives the same lines.
func New(seed uint64) *Generator {
	return &Generator{rng: rand.New(rand.NewPCG(seed, 0x10_6e54))}
}

var (
	hosts = []string{"web-01", "web-02", "web-03", "api-01", "api-02", "db-01", "db-02", "cache-01",
		"worker-01", "worker-02", "worker-03", "lb-01", "mail-01", "auth-01", "search-01", "batch-01"}
	apps = []struct {
		name     string
		facility int
		messages []string
	}{
		{"nginx", 16, []string{
			`%s - - "GET /api/v1/orders/%d HTTP/1.1" 200 %d "-" "Mozilla/5.0"`,
			`%s - - "POST /api/v1/cart HTTP/1.1" 201 %d "-" "okhttp/4.9.3" rt=0.%03d`,
			`upstream timed out (110: Connection timed out) while reading response header from upstream, client: %s, request id %d`,
		}},
		{"sshd", 4, []string{
			"Accepted publickey for deploy from %s port %d ssh2: ED25519 SHA256:%x",
			"Failed password for invalid user admin from %s port %d ssh2",
			"Connection closed by authenticating user root %s port %d [preauth]",
		}},
		{"postgres", 16, []string{
			"LOG:  duration: %d.%03d ms  statement: SELECT * FROM orders WHERE customer_id = %d",
			"ERROR:  deadlock detected; process %d waits for ShareLock on transaction %d",
			"LOG:  checkpoint complete: wrote %d buffers (%d.%d%%)",
		}},
		{"kernel", 0, []string{
			"TCP: request_sock_TCP: Possible SYN flooding on port %d. Sending cookies.",
			"EXT4-fs (sda1): mounted filesystem with ordered data mode. Opts: (null). Quota mode: none. %d",
			"Out of memory: Killed process %d (java) total-vm:%dkB, anon-rss:%dkB",
		}},
		{"checkout", 16, []string{
			"order %d placed by customer %d total=%d.%02d EUR",
			"payment provider returned error code %d for order %d, retrying in %dms",
			"cart %d abandoned after %d seconds",
		}},
		{"cron", 9, []string{
			"(root) CMD (/usr/local/bin/backup.sh --incremental --target s3://backups/%d)",
			"(deploy) CMD (cd /srv/app && ./bin/rake jobs:work queue=%d)",
		}},
	}
	msgids = []string{"-", "-", "access", "audit", "txn", "ID47"}
	sevs   = []int{6, 6, 6, 6, 6, 5, 5, 4, 4, 3, 7, 7, 2}
)

func (g *Generator) ip() string {
	return fmt.Sprintf("10.%d.%d.%d", g.rng.IntN(4), g.rng.IntN(256), 1+g.rng.IntN(254))
}

// fill replaces each %-verb of format with a plausible value.
func (g *Generator) fill(format string) string {
	var args []any
	for i := 0; i < len(format)-1; i++ {
		if format[i] != '%' {
			continue
		}
		switch format[i+1] {
		case 's':
			args = append(args, g.ip())
		case 'd':
			args = append(args, g.rng.IntN(100000))
		case 'x':
			args = append(args, g.rng.Uint64())
		case '0':
			args = append(args, g.rng.IntN(1000))
			i += 3
		case '%':
			i++
		}
	}
	return fmt.Sprintf(format, args...)
}

// Fields describes one generated event.
type Fields struct {
	Time     time.Time
	Host     string
	App      string
	ProcID   int
	Facility int
	Severity int
	Message  string
}

// procsPerApp is how many processes of one service run on one host. A
// process ID belongs to a (host, service) pair, as on a real fleet, where a
// service's PID changes only when it restarts: a store that keeps a stream
// per host, service and PID (VictoriaLogs's syslog default) sees some
// hundreds of streams, not one per line.
const procsPerApp = 4

// procID is the PID of process k of service a on host h.
func procID(h, a, k int) int { return 100 + (h*7919+a*104729+k*1299709)%30000 }

// Event returns a random event at time t.
func (g *Generator) Event(t time.Time) Fields {
	ai := g.rng.IntN(len(apps))
	a := apps[ai]
	hi := g.rng.IntN(len(hosts))
	return Fields{
		Time: t, Host: hosts[hi], App: a.name, ProcID: procID(hi, ai, g.rng.IntN(procsPerApp)),
		Facility: a.facility, Severity: sevs[g.rng.IntN(len(sevs))],
		Message: g.fill(a.messages[g.rng.IntN(len(a.messages))]),
	}
}

// RFC5424 returns an RFC 5424 line (without a line ending) of an event at t.
func (g *Generator) RFC5424(t time.Time) string {
	e := g.Event(t)
	sd := "-"
	if g.rng.IntN(3) != 0 {
		sd = fmt.Sprintf(`[meta@32473 region="eu-west-%d" request_id="%016x"]`, 1+g.rng.IntN(3), g.rng.Uint64())
	}
	msgid := msgids[g.rng.IntN(len(msgids))]
	return fmt.Sprintf("<%d>1 %s %s.%s %s %d %s %s %s", e.Facility*8+e.Severity,
		t.UTC().Format("2006-01-02T15:04:05.000000Z07:00"), e.Host, domain, e.App, e.ProcID, msgid, sd, e.Message)
}

// RFC3164 returns a BSD syslog line of an event at t.
func (g *Generator) RFC3164(t time.Time) string {
	e := g.Event(t)
	return fmt.Sprintf("<%d>%s %s %s[%d]: %s", e.Facility*8+e.Severity, t.Format(time.Stamp), e.Host, e.App, e.ProcID, e.Message)
}

const domain = "eu1.example.net"

var sevNames = []string{"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"}

// JSON returns an NDJSON record of an event at t, with enrichment fields.
func (g *Generator) JSON(t time.Time) string {
	e := g.Event(t)
	obj := map[string]any{
		"time": t.UTC().Format(time.RFC3339Nano), "host": e.Host, "app": e.App, "procid": fmt.Sprint(e.ProcID),
		"severity": sevNames[e.Severity], "message": e.Message,
		"service": e.App, "env": []string{"prod", "staging"}[g.rng.IntN(2)],
		"trace_id": fmt.Sprintf("%016x%016x", g.rng.Uint64(), g.rng.Uint64()),
	}
	b, _ := json.Marshal(obj)
	return string(b)
}

// OctetCounted frames a message for RFC 6587 octet-counting TCP.
func OctetCounted(msg string) string { return fmt.Sprintf("%d %s", len(msg), msg) }

// Lines returns n RFC 5424 lines joined by newlines (a ~200-byte line on average).
func (g *Generator) Lines(n int, t time.Time) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteString(g.RFC5424(t))
		b.WriteByte('\n')
	}
	return b.String()
}
