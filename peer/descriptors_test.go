package peer_test

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/logmesh/logmesh/testutil"
)

// TestDescriptorFloodOnALowLimit: an agent under a descriptor limit of 512
// (prlimit) takes a thousand API connections from one host and two
// thousand syslog TCP connections. Its listeners keep under a quarter of
// the limit each, so the store still opens its files: the agent stays up,
// a well-behaved client is answered, and its writes are stored. Before,
// 20,000 connections took every descriptor and Badger's next memtable
// could not be opened (the process died on its assert).
func TestDescriptorFloodOnALowLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real process")
	}
	if _, err := exec.LookPath("prlimit"); err != nil {
		t.Skip("skipped: prlimit (util-linux) not found")
	}
	p := testutil.NewProcessAt(t, "p1", []string{"prlimit", "--nofile=512:512", "--"}, testutil.FreeAddr(t), testutil.FreeAddr(t))
	p.Start()
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < 1000; i++ {
		if c, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.3")}, Timeout: time.Second}).Dial("tcp", p.APIAddr); err == nil {
			conns = append(conns, c)
		}
	}
	for i := 0; i < 2000; i++ {
		if c, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(fmt.Sprintf("127.0.1.%d", 1+i%200))}, Timeout: time.Second}).Dial("tcp", p.SyslogAddr); err == nil {
			conns = append(conns, c)
		}
	}
	good := goodClient(t, p.APIAddr)
	var slowest time.Duration
	for i := 0; i < 20; i++ {
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := good.Ingest(ctx, []byte(strings.Repeat(`{"message":"good"}`+"\n", 100)), "application/x-ndjson", nil)
		cancel()
		if err != nil {
			t.Fatalf("a well-behaved write during the flood: %v", err)
		}
		slowest = max(slowest, time.Since(start))
	}
	// a well-behaved syslog sender from its own address gets in too
	sl, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.2.1")}, Timeout: time.Second}).Dial("tcp", p.SyslogAddr)
	if err == nil {
		for i := 0; i < 50; i++ {
			fmt.Fprintf(sl, "<13>1 2026-12-03T10:00:00Z host app - - - good syslog %d\n", i)
		}
		sl.Close()
	}
	st := procStatus(t, good, "p1")
	if !p.Running() || st.Records < 2000 {
		t.Fatalf("after the flood: running %v, %d records stored, want the 2000 acknowledged", p.Running(), st.Records)
	}
	if slowest > time.Second {
		t.Fatalf("a well-behaved write waited %v during the flood", slowest)
	}
	t.Logf("under a limit of 512 descriptors: %d flood connections opened, API connections open %d (refused %d), slowest write %v, syslog sender connected: %v",
		len(conns), st.APIConnections, st.APIConnectionsRefused, slowest.Round(time.Millisecond), err == nil)
}
