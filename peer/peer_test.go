package peer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/logmesh/logmesh/api"
	"github.com/logmesh/logmesh/client"
	"github.com/logmesh/logmesh/peer"
	"github.com/logmesh/logmesh/query"
	"github.com/logmesh/logmesh/record"
	"github.com/logmesh/logmesh/testutil"
)

func startPeer(t *testing.T, dir string, opts ...func(*peer.Config)) *peer.Peer {
	t.Helper()
	cfg := peer.DefaultConfig(dir)
	cfg.Name = "p1"
	cfg.APIAddr, cfg.SyslogTCP, cfg.SyslogUDP = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.Index.MemTableBytes, cfg.Index.BlockCacheBytes, cfg.Index.IndexCacheBytes = 4<<20, 4<<20, 2<<20
	cfg.Index.FsyncInterval = 20 * time.Millisecond
	cfg.Logger = slog.New(slog.DiscardHandler)
	for _, o := range opts {
		o(&cfg)
	}
	p, err := peer.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func cli(t *testing.T, p *peer.Peer) *client.Client {
	t.Helper()
	c, err := client.New(p.APIAddr())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func queryAll(t *testing.T, c *client.Client, params string) []record.JSON {
	t.Helper()
	v, err := url.ParseQuery(params)
	if err != nil {
		t.Fatal(err)
	}
	if !v.Has("limit") {
		v.Set("limit", "0")
	}
	q, err := query.Parse(v, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var out []record.JSON
	if _, err := c.Query(context.Background(), q, func(j *record.JSON) error { out = append(out, *j); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func byMessage(js []record.JSON) map[string]record.JSON {
	m := map[string]record.JSON{}
	for _, j := range js {
		m[j.Message] = j
	}
	return m
}

// sendAll sends the same kinds of lines over every transport and returns how many records they make.
func sendAll(t *testing.T, p *peer.Peer) int {
	t.Helper()
	conn, err := net.Dial("tcp", p.SyslogTCPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	m1 := `<165>1 2026-11-25T10:00:00.123456Z web-1.example.net nginx 42 ID47 [req@32473 id="7"] tcp octet one`
	m2 := `<11>Nov 25 10:00:01 db-1 postgres[99]: tcp newline two`
	m3 := `<14>1 2026-11-25T10:00:02Z web-2 app - - - tcp octet three`
	stream := fmt.Sprintf("%d %s%s\n%d %s", len(m1), m1, m2, len(m3), m3)
	if _, err := conn.Write([]byte(stream)); err != nil {
		t.Fatal(err)
	}
	udp, err := net.Dial("udp", p.SyslogUDPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	if _, err := udp.Write([]byte(`<131>1 2026-11-25T10:00:03Z cache-1 redis 7 - - udp four`)); err != nil {
		t.Fatal(err)
	}
	c := cli(t, p)
	body := `{"time":"2026-11-25T10:00:04Z","host":"web-3","app":"shop","severity":"warning","message":"http json five","env":"prod","trace_id":"t-5"}
{"host":"web-3","app":"shop","severity":"info","message":"http json six","env":"dev"}
`
	if _, err := c.Ingest(context.Background(), []byte(body), "application/x-ndjson", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Ingest(context.Background(), []byte("<13>Nov 25 10:00:05 lb-1 haproxy[1]: http text seven\nnot syslog at all: eight\n"), "text/plain", nil); err != nil {
		t.Fatal(err)
	}
	return 8
}

func TestRoundTripEveryTransportAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	p := startPeer(t, dir)
	n := sendAll(t, p)
	c := cli(t, p)
	testutil.WaitFor(t, 10*time.Second, "all records stored", func() bool { return len(queryAll(t, c, "")) == n })

	check := func(c *client.Client) {
		t.Helper()
		all := queryAll(t, c, "order=asc")
		got := byMessage(all)
		one := got["tcp octet one"]
		if one.Host != "web-1.example.net" || one.App != "nginx" || one.ProcID != "42" || one.MsgID != "ID47" ||
			one.SD != `[req@32473 id="7"]` || one.Facility != "local4" || one.Severity != "notice" ||
			one.Time != "2026-11-25T10:00:00.123456Z" || one.Transport != "tcp" || one.Format != "rfc5424" ||
			one.Peer != "p1" || one.Malformed != "" || !strings.HasPrefix(one.Source, "127.0.0.1:") {
			t.Fatalf("octet-counted RFC 5424 record came back wrong: %+v", one)
		}
		if !strings.HasPrefix(one.Raw, "<165>1 2026") {
			t.Fatalf("raw bytes not kept: %q", one.Raw)
		}
		two := got["tcp newline two"]
		if two.Host != "db-1" || two.App != "postgres" || two.ProcID != "99" || two.Severity != "err" || two.Format != "rfc3164" {
			t.Fatalf("newline-framed RFC 3164 record came back wrong: %+v", two)
		}
		if got["udp four"].Transport != "udp" || got["udp four"].Severity != "err" || got["udp four"].Facility != "local0" {
			t.Fatalf("UDP record came back wrong: %+v", got["udp four"])
		}
		five := got["http json five"]
		if five.Transport != "http" || five.Format != "json" || five.Fields["env"] != "prod" || five.Fields["trace_id"] != "t-5" ||
			five.Time != "2026-11-25T10:00:04Z" || five.Severity != "warning" {
			t.Fatalf("JSON record came back wrong: %+v", five)
		}
		if six := got["http json six"]; !six.NoEventTime || six.Time != six.Received {
			t.Fatalf("a record without a time must take its receive time: %+v", six)
		}
		if seven := got["http text seven"]; seven.App != "haproxy" || seven.Transport != "http" {
			t.Fatalf("text/plain syslog line came back wrong: %+v", seven)
		}
		var eight *record.JSON
		for i := range all {
			if strings.Contains(all[i].Raw, "eight") {
				eight = &all[i]
			}
		}
		if eight == nil || eight.Malformed != "no_pri" || eight.Raw != "not syslog at all: eight" {
			t.Fatalf("a line that is not syslog must be kept raw and flagged: %+v", eight)
		}
		for i := 1; i < len(all); i++ {
			if all[i-1].ID >= all[i].ID {
				t.Fatal("order=asc is not ascending by ID")
			}
		}
		desc := queryAll(t, c, "")
		if len(desc) != len(all) || desc[0].ID != all[len(all)-1].ID {
			t.Fatal("default order is not newest first")
		}
		// filters
		for params, want := range map[string][]string{
			"host=web-3":                   {"http json five", "http json six"},
			"app=postgres":                 {"tcp newline two"},
			"severity=err":                 {"tcp newline two", "udp four"},
			"contains=json":                {"http json five", "http json six"},
			"regex=^tcp (octet|newline) t": {"tcp newline two", "tcp octet three"},
			"field.env=prod":               {"http json five"},
			"host=web-3&severity=warning":  {"http json five"},
		} {
			res := byMessage(queryAll(t, c, params))
			if len(res) != len(want) {
				t.Fatalf("%s: got %d records, want %v", params, len(res), want)
			}
			for _, m := range want {
				if _, ok := res[m]; !ok {
					t.Fatalf("%s: %q missing", params, m)
				}
			}
		}
		if lim := queryAll(t, c, "limit=3"); len(lim) != 3 || lim[0].ID != desc[0].ID {
			t.Fatalf("limit=3 returned %d records", len(lim))
		}
	}
	check(c)
	p.Close()
	p2 := startPeer(t, dir)
	check(cli(t, p2))
}

func TestBadBatchIsRefusedWholeAndNamesTheLine(t *testing.T) {
	p := startPeer(t, t.TempDir())
	c := cli(t, p)
	body := "{\"message\":\"ok 1\"}\n{\"message\":\"ok 2\"}\n{\"message\": broken}\n{\"message\":\"ok 4\"}\n"
	_, err := c.Ingest(context.Background(), []byte(body), "application/x-ndjson", nil)
	var se *client.StatusError
	if !asStatus(err, &se) || se.Code != http.StatusBadRequest || !strings.Contains(se.Message, "line 3") {
		t.Fatalf("bad batch answered %v, want 400 naming line 3", err)
	}
	if got := queryAll(t, c, ""); len(got) != 0 {
		t.Fatalf("%d records of a refused batch were stored", len(got))
	}
	if s, _ := c.Status(context.Background()); s.Ingest.HTTP.RejectedBatches != 1 {
		t.Fatalf("refused batch not counted: %+v", s.Ingest.HTTP)
	}
}

func TestOversizedBodyIsRefused(t *testing.T) {
	dir := t.TempDir()
	cfg := peer.DefaultConfig(dir)
	cfg.Name, cfg.APIAddr, cfg.SyslogTCP, cfg.SyslogUDP = "p1", "127.0.0.1:0", "", ""
	cfg.MaxBodyBytes = 1000
	cfg.Index.MemTableBytes, cfg.Index.BlockCacheBytes = 4<<20, 4<<20
	cfg.Logger = slog.New(slog.DiscardHandler)
	p, err := peer.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c := cli(t, p)
	_, err = c.Ingest(context.Background(), bytes.Repeat([]byte("{\"message\":\"x\"}\n"), 200), "application/x-ndjson", nil)
	var se *client.StatusError
	if !asStatus(err, &se) || se.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized body answered %v, want 413", err)
	}
}

func TestIngestReturnsIDsAndStatusCounts(t *testing.T) {
	p := startPeer(t, t.TempDir())
	c := cli(t, p)
	resp, err := c.Ingest(context.Background(), []byte("{\"message\":\"a\"}\n{\"message\":\"b\"}\n"), "application/x-ndjson", url.Values{"ids": {"true"}})
	if err != nil || resp.Accepted != 2 || len(resp.IDs) != 2 {
		t.Fatalf("ingest = %+v, %v", resp, err)
	}
	got := queryAll(t, c, "order=asc")
	if len(got) != 2 || got[0].ID != resp.IDs[0].String() || got[1].ID != resp.IDs[1].String() {
		t.Fatalf("returned IDs %v do not match stored records %+v", resp.IDs, got)
	}
	res, err := http.Get("http://" + p.APIAddr() + "/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var st api.Status
	if err := json.NewDecoder(res.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if st.Node != "p1" || st.Records != 2 || st.Ingest.HTTP.Accepted != 2 || st.DiskBytes <= 0 {
		t.Fatalf("status = %+v", st)
	}
	if r, err := http.Get("http://" + p.APIAddr() + "/v1/logs?hots=x"); err != nil || r.StatusCode != 400 {
		t.Fatalf("unknown query parameter answered %v %v, want 400", r.StatusCode, err)
	}
}

func asStatus(err error, se **client.StatusError) bool {
	if err == nil {
		return false
	}
	e, ok := err.(*client.StatusError)
	if ok {
		*se = e
	}
	return ok
}

func mustQuery(t *testing.T, params string) query.Query {
	t.Helper()
	v, err := url.ParseQuery(params)
	if err != nil {
		t.Fatal(err)
	}
	q, err := query.Parse(v, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
