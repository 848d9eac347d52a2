package deploy_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/logmesh/logmesh/client"
	"github.com/logmesh/logmesh/query"
	"github.com/logmesh/logmesh/record"
	"github.com/logmesh/logmesh/testutil"
)

// TestRsyslogForwarding runs deploy/rsyslog/logmesh.conf, as shipped but for
// its target and retry interval, in a private rsyslogd in front of a real
// agent. Messages arrive with their host, app and severity in RFC 5424; the
// ones sent while the agent is dead (SIGKILL) wait in rsyslog's queue and are
// delivered once the agent is back on the same data directory and ports.
func TestRsyslogForwarding(t *testing.T) {
	bin, err := exec.LookPath("rsyslogd")
	if err != nil {
		t.Skip("rsyslogd is not installed (apt-get install rsyslog): deploy/rsyslog/logmesh.conf is not tested")
	}
	agent := testutil.NewProcess(t, "rs1", "--fsync", "50ms", "--memtable-size", "4MiB", "--cache-size", "4MiB")
	agent.Start()
	rs := startRsyslog(t, bin, agent.SyslogAddr)
	cl, err := client.New(agent.APIAddr)
	if err != nil {
		t.Fatal(err)
	}

	up := testLines("up")
	rs.send(t, up)
	waitForLines(t, cl, up, "tcp")

	agent.Kill()
	down := testLines("down")
	rs.send(t, down)
	// rsyslog has tried the dead agent and holds every message in its queue
	rs.waitQueued(t, len(down))
	agent.Start()
	waitForLines(t, cl, append(up, down...), "tcp")
}

// line is one message sent to rsyslog and what logmesh must store of it.
type line struct {
	sent                     string
	host, app, severity, msg string
}

// testLines returns RFC 5424 and RFC 3164 messages, unique to phase, all
// from host web-1.
func testLines(phase string) []line {
	var out []line
	for i := 1; i <= 3; i++ {
		msg := fmt.Sprintf("%s %d checkout failed", phase, i)
		out = append(out, line{
			sent: fmt.Sprintf("<11>1 2024-05-01T10:00:00.123Z web-1 shop 42 - - %s", msg),
			host: "web-1", app: "shop", severity: "err", msg: msg,
		})
		msg = fmt.Sprintf("%s %d GET /health 200", phase, i)
		out = append(out, line{
			sent: fmt.Sprintf("<30>May  1 10:00:01 web-1 nginx[7]: %s", msg),
			host: "web-1", app: "nginx", severity: "info", msg: msg,
		})
	}
	return out
}

// waitForLines polls the agent until every line is stored with its fields,
// received over transport. rsyslog delivers at least once, so a line may be
// there twice: that is logged, not failed.
func waitForLines(t *testing.T, cl *client.Client, want []line, transport string) {
	t.Helper()
	var missing, twice []string
	testutil.WaitFor(t, 30*time.Second, fmt.Sprintf("%d forwarded messages in logmesh", len(want)), func() bool {
		got := queryHost(t, cl, "web-1")
		missing, twice = missing[:0], twice[:0]
		for _, w := range want {
			recs := got[w.msg]
			if len(recs) == 0 {
				missing = append(missing, w.msg)
			}
			if len(recs) > 1 {
				twice = append(twice, w.msg)
			}
			for _, r := range recs {
				checkRecord(t, w, r, transport)
			}
		}
		return len(missing) == 0
	}, func() string { return "missing: " + strings.Join(missing, ", ") })
	if len(twice) > 0 {
		t.Logf("stored more than once (rsyslog resent them): %s", strings.Join(twice, ", "))
	}
}

// queryHost returns the agent's records from host, by message.
func queryHost(t *testing.T, cl *client.Client, host string) map[string][]record.JSON {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got := map[string][]record.JSON{}
	_, err := cl.Query(ctx, query.Query{Host: host}, func(j *record.JSON) error {
		// rsyslog keeps the space after "TAG:" of an RFC 3164 message as
		// the first character of MSG, and sends it on
		msg := strings.TrimPrefix(j.Message, " ")
		got[msg] = append(got[msg], *j)
		return nil
	})
	if err != nil {
		t.Logf("query: %v", err)
	}
	return got
}

func checkRecord(t *testing.T, w line, r record.JSON, transport string) {
	t.Helper()
	if r.Host != w.host || r.App != w.app || r.Severity != w.severity || r.Transport != transport || r.Format != "rfc5424" || r.Malformed != "" {
		t.Fatalf("%q (sent as %q) stored as host=%q app=%q severity=%q transport=%q format=%q malformed=%q raw=%q;\nwant host=%q app=%q severity=%q transport=%s format=rfc5424",
			w.msg, w.sent, r.Host, r.App, r.Severity, r.Transport, r.Format, r.Malformed, r.Raw, w.host, w.app, w.severity, transport)
	}
}

// rsyslogd is a private rsyslogd: its own config, work directory (queue
// files) and pid file in a temporary directory; nothing system-wide.
type rsyslogd struct {
	dir   string
	input string // imtcp address the test sends to
	done  chan struct{}
}

// startRsyslog renders the example config for target and starts rsyslogd
// with it, behind an imtcp input of its own.
func startRsyslog(t *testing.T, bin, target string) *rsyslogd {
	t.Helper()
	host, port, err := net.SplitHostPort(target)
	if err != nil {
		t.Fatal(err)
	}
	action := substitute(t, "logmesh.conf", readExample(t, "logmesh.conf"),
		`target="127.0.0.1"`, fmt.Sprintf("target=%q", host),
		`port="5514"`, fmt.Sprintf("port=%q", port),
		// retry every second rather than every ten, to keep the test short
		`action.resumeInterval="10"`, `action.resumeInterval="1"`)
	return runRsyslog(t, bin, "", action)
}

// readExample returns the example config deploy/rsyslog/name.
func readExample(t *testing.T, name string) string {
	t.Helper()
	example, err := os.ReadFile(filepath.Join("rsyslog", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(example)
}

// runRsyslog starts rsyslogd with globals (statements that rsyslog takes
// only at the top level, such as global()) and action, the rendered
// example, as the ruleset of an imtcp input of its own.
func runRsyslog(t *testing.T, bin, globals, action string) *rsyslogd {
	t.Helper()
	rs := &rsyslogd{dir: t.TempDir(), input: testutil.FreeAddr(t), done: make(chan struct{})}
	_, inPort, _ := net.SplitHostPort(rs.input)
	// The example forwards the messages of the ruleset it is put in; here
	// that is a ruleset of the test's input alone. rsyslog's own messages
	// go to the default ruleset, which has no action (they also go to
	// stderr, the log), instead of to the host's syslog socket.
	conf := fmt.Sprintf(`global(workDirectory=%q processInternalMessages="on")
%s
module(load="imtcp")
module(load="impstats" interval="1" log.file=%q log.syslog="off" format="json")
ruleset(name="logmesh-test") {
%s
}
input(type="imtcp" address="127.0.0.1" port=%q ruleset="logmesh-test")
`, rs.dir, globals, rs.statsPath(), action, inPort)
	confPath := filepath.Join(rs.dir, "rsyslog.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(rs.logPath())
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-n", "-f", confPath, "-i", filepath.Join(rs.dir, "rsyslogd.pid"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("rsyslogd: %v", err)
	}
	go func() { cmd.Wait(); logf.Close(); close(rs.done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-rs.done
		if t.Failed() {
			t.Logf("---- last lines of rsyslogd's log\n%s", tail(rs.logPath(), 40))
			testutil.KeepLog(t, rs.logPath(), "rsyslogd.log")
			testutil.KeepLog(t, confPath, "rsyslog.conf")
		}
	})
	testutil.WaitFor(t, 15*time.Second, "rsyslogd listening on "+rs.input, func() bool {
		select {
		case <-rs.done:
			t.Fatalf("rsyslogd exited during start:\n%s", tail(rs.logPath(), 40))
		default:
		}
		c, err := net.DialTimeout("tcp", rs.input, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	return rs
}

// substitute replaces each old string of the example name, s, by its new
// one, and fails unless each occurs exactly once: the example and this test
// must stay in step.
func substitute(t *testing.T, name, s string, oldNew ...string) string {
	t.Helper()
	for i := 0; i < len(oldNew); i += 2 {
		if n := strings.Count(s, oldNew[i]); n != 1 {
			t.Fatalf("deploy/rsyslog/%s has %s %d times, want once", name, oldNew[i], n)
		}
		s = strings.Replace(s, oldNew[i], oldNew[i+1], 1)
	}
	return s
}

func (rs *rsyslogd) logPath() string   { return filepath.Join(rs.dir, "rsyslogd.log") }
func (rs *rsyslogd) statsPath() string { return filepath.Join(rs.dir, "impstats.log") }

// send writes lines to rsyslog's input, newline-framed, on one connection.
func (rs *rsyslogd) send(t *testing.T, lines []line) {
	t.Helper()
	c, err := net.DialTimeout("tcp", rs.input, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l.sent + "\n")
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		t.Fatal(err)
	}
}

// waitQueued waits until the example's action queue ("logmesh queue", from
// action name "logmesh") holds at least n messages, as impstats reports it
// every second.
func (rs *rsyslogd) waitQueued(t *testing.T, n int) {
	t.Helper()
	size := -1
	testutil.WaitFor(t, 15*time.Second, fmt.Sprintf("rsyslog holding %d messages for the dead agent", n), func() bool {
		size = rs.queueSize("logmesh queue")
		return size >= n
	}, func() string { return fmt.Sprintf("queue size %d", size) })
}

// queueSize returns the latest size impstats reported for queue name, or -1.
func (rs *rsyslogd) queueSize(name string) int {
	f, err := os.Open(rs.statsPath())
	if err != nil {
		return -1
	}
	defer f.Close()
	size := -1
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "Wed Nov 25 21:27:17 2026: { "name": "logmesh queue", ... "size": 5, ... }"
		l := sc.Text()
		i := strings.IndexByte(l, '{')
		if i < 0 {
			continue
		}
		var st struct {
			Name string `json:"name"`
			Size int    `json:"size"`
		}
		if json.Unmarshal([]byte(l[i:]), &st) == nil && st.Name == name {
			size = st.Size
		}
	}
	return size
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
