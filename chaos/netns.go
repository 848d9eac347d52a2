package chaos

import (
	"bytes"
	crand "crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/logmesh/logmesh/testutil"
)

// Ports every peer uses inside its own network namespace or container.
const (
	hostAPIPort    = 7070
	hostGossipPort = 7946
	hostSyslogPort = 5514
)

// NeedRoot skips t unless it runs as root with the tools of the second level
// (ip from iproute2, nft from nftables).
func NeedRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: network-namespace fault tests need root (CI runs them as root)")
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("skipped: %s not found (apt-get install iproute2 nftables)", tool)
		}
	}
}

// run runs a command, feeding it stdin, and returns its error with its output.
func run(stdin string, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

// Netns is the second level: every peer is a real logmesh process in a
// network namespace of its own, with its own address on a bridge, and
// faults are nftables rules inside the namespaces (or signals to the
// processes). The test process reaches the peers through a veth of its own
// on the bridge. Needs root.
type Netns struct {
	t        testing.TB
	id       string
	subnet   string // e.g. 10.213.7
	names    []string
	procs    map[string]*testutil.Process
	ips      map[string]string
	fw       *firewall
	interval time.Duration
	clocks   map[string]string // the file each peer's clock offset is read from
	down     sync.Once
}

// NewNetns creates n namespaces and starts a peer in each, with anti-entropy
// every interval and extra agent flags.
func NewNetns(t testing.TB, n int, interval time.Duration, o Options, extra ...string) *Netns {
	t.Helper()
	NeedRoot(t)
	nt := &Netns{t: t, id: fmt.Sprintf("%04x", rand.IntN(1<<16)), procs: map[string]*testutil.Process{},
		ips: map[string]string{}, interval: interval, clocks: map[string]string{}}
	t.Cleanup(nt.teardown)
	if err := nt.setup(n); err != nil {
		t.Fatalf("network namespaces: %v", err)
	}
	nt.fw = newFirewall(func(host, input string) error {
		return run(input, "ip", "netns", "exec", nt.ns(host), "nft", "-f", "-")
	}, func(h string) string { return nt.ips[h] })

	seed := net.JoinHostPort(nt.ips[nt.names[0]], fmt.Sprint(hostGossipPort))
	key := gossipKey(t) // gossip off loopback needs one (or --insecure-gossip)
	for i, name := range nt.names {
		ip := nt.ips[name]
		args := []string{"--gossip-addr", net.JoinHostPort(ip, fmt.Sprint(hostGossipPort)), "--test-timings", "--encrypt", key,
			"--fsync", "50ms", "--memtable-size", "4MiB", "--cache-size", "4MiB",
			"--anti-entropy-interval", interval.String(), "--join", seed}
		nt.clocks[name] = filepath.Join(t.TempDir(), "clock")
		if err := writeClock(nt.clocks[name], o.skewOf(i)); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--clock-offset-file", nt.clocks[name])
		args = append(args, o.flags(i, n)...)
		args = append(args, extra...)
		p := testutil.NewProcessAt(t, name, []string{"ip", "netns", "exec", nt.ns(name)},
			net.JoinHostPort(ip, fmt.Sprint(hostAPIPort)), net.JoinHostPort(ip, fmt.Sprint(hostSyslogPort)), args...)
		nt.procs[name] = p
		p.Start()
	}
	waitAllAlive(t, nt, 60*time.Second)
	return nt
}

// flags are the agent flags that carry the options to peer i of n (the
// clock offset goes in the peer's clock file).
func (o Options) flags(i, n int) []string {
	var f []string
	if o.DisableReplication {
		f = append(f, "--disable-replication")
	}
	if o.DisableAntiEntropy {
		f = append(f, "--disable-anti-entropy")
	}
	if o.FailedReassignAfter > 0 {
		f = append(f, "--failed-reassign-after", o.FailedReassignAfter.String())
	}
	if o.MaintenanceInterval > 0 {
		f = append(f, "--maintenance-interval", o.MaintenanceInterval.String())
	}
	if i == n-1 && o.LastMaxHintsBytes > 0 {
		f = append(f, "--max-hints-bytes", fmt.Sprint(o.LastMaxHintsBytes))
	}
	return f
}

// skewOf is peer i's clock offset at start.
func (o Options) skewOf(i int) time.Duration {
	if i == 0 {
		return o.Skew
	}
	return 0
}

// writeClock writes a clock offset file (see the agent's --clock-offset-file).
func writeClock(path string, d time.Duration) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(d.String()+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func (nt *Netns) ns(name string) string { return "lm" + nt.id + name }
func (nt *Netns) sw() string            { return "lm" + nt.id + "sw" }
func (nt *Netns) hostLink() string      { return "lm" + nt.id + "h" }

// setup makes the switch namespace with its bridge, the test's own link to
// it, and one namespace per peer.
func (nt *Netns) setup(n int) error {
	used, _ := exec.Command("ip", "-4", "addr").Output()
	for tries := 0; ; tries++ {
		nt.subnet = fmt.Sprintf("10.213.%d", rand.IntN(250)+1)
		if !bytes.Contains(used, []byte(nt.subnet+".")) {
			break
		}
		if tries > 50 {
			return errors.New("no free 10.213.x.0/24 subnet")
		}
	}
	sw := nt.sw()
	steps := [][]string{
		{"netns", "add", sw},
		{"-n", sw, "link", "add", "br0", "type", "bridge"},
		{"-n", sw, "link", "set", "br0", "up"},
		{"link", "add", nt.hostLink(), "type", "veth", "peer", "name", "uplink", "netns", sw},
		{"-n", sw, "link", "set", "uplink", "master", "br0", "up"},
		{"addr", "add", nt.subnet + ".1/24", "dev", nt.hostLink()},
		{"link", "set", nt.hostLink(), "up"},
	}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("p%d", i+1)
		nt.names = append(nt.names, name)
		nt.ips[name] = fmt.Sprintf("%s.%d", nt.subnet, 10+i)
		ns := nt.ns(name)
		steps = append(steps,
			[]string{"netns", "add", ns},
			[]string{"-n", ns, "link", "set", "lo", "up"},
			[]string{"-n", sw, "link", "add", name, "type", "veth", "peer", "name", "eth0", "netns", ns},
			[]string{"-n", sw, "link", "set", name, "master", "br0", "up"},
			[]string{"-n", ns, "addr", "add", nt.ips[name] + "/24", "dev", "eth0"},
			[]string{"-n", ns, "link", "set", "eth0", "up"})
	}
	for _, s := range steps {
		if err := run("", "ip", s...); err != nil {
			return err
		}
	}
	return nil
}

// teardown kills the peers and removes the namespaces, once (Close and the
// test's cleanup both call it).
func (nt *Netns) teardown() {
	nt.down.Do(func() {
		for _, p := range nt.procs {
			p.Kill()
		}
		for _, name := range nt.names {
			_ = run("", "ip", "netns", "del", nt.ns(name))
		}
		_ = run("", "ip", "netns", "del", nt.sw())
		_ = run("", "ip", "link", "del", nt.hostLink())
	})
}

// Names lists the peers.
func (nt *Netns) Names() []string { return nt.names }

// API returns a peer's API address.
func (nt *Netns) API(name string) string { return nt.procs[name].APIAddr }

// Syslog returns a peer's syslog address.
func (nt *Netns) Syslog(name string) string { return nt.procs[name].SyslogAddr }

// Replicas is the replication factor (the agent's default).
func (nt *Netns) Replicas() int { return 3 }

// AEInterval is the anti-entropy interval.
func (nt *Netns) AEInterval() time.Duration { return nt.interval }

// Partition cuts links between groups with nftables.
func (nt *Netns) Partition(groups ...[]string) error { return nt.fw.Partition(groups...) }

// Loss drops packets from → to.
func (nt *Netns) Loss(from, to string, p float64) error { return nt.fw.Loss(from, to, p) }

// Slow caps the bandwidth from → to (see firewall) and loses 5% of it.
func (nt *Netns) Slow(from, to string, _ time.Duration) error {
	if err := nt.fw.Slow(from, to, slowKBs); err != nil {
		return err
	}
	return nt.fw.Loss(from, to, 0.05)
}

// slowKBs is the bandwidth of a slow link where there is no netem.
const slowKBs = 256

// Heal removes every rule.
func (nt *Netns) Heal() error { return nt.fw.Heal(nt.names) }

// CutAPI drops TCP from → to's API port (nftables in both namespaces).
func (nt *Netns) CutAPI(from, to string) error { return nt.fw.CutAPI(from, to) }

// Leave sends SIGTERM and waits for the agent to leave and exit.
func (nt *Netns) Leave(name string) error {
	if !nt.procs[name].StopWithin(90 * time.Second) {
		return fmt.Errorf("%s did not exit within 90s of SIGTERM", name)
	}
	return nil
}

// Wipe kills a peer, deletes its data directory and starts it again.
func (nt *Netns) Wipe(name string) error {
	p := nt.procs[name]
	p.Kill()
	if err := os.RemoveAll(p.DataDir()); err != nil {
		return err
	}
	p.Start()
	return nil
}

// SetClock rewrites a peer's clock file; the agent reads it within 100ms.
func (nt *Netns) SetClock(name string, offset time.Duration) error {
	return writeClock(nt.clocks[name], offset)
}

// Kill sends SIGKILL.
func (nt *Netns) Kill(name string) error { nt.procs[name].Kill(); return nil }

// Start restarts a peer with its data.
func (nt *Netns) Start(name string) error { nt.procs[name].Start(); return nil }

// Pause sends SIGSTOP.
func (nt *Netns) Pause(name string) error { nt.procs[name].Signal(syscall.SIGSTOP); return nil }

// Resume sends SIGCONT.
func (nt *Netns) Resume(name string) error { nt.procs[name].Signal(syscall.SIGCONT); return nil }

// Running reports whether the peer's process runs.
func (nt *Netns) Running(name string) bool { return nt.procs[name].Running() }

// OwnProcesses is true.
func (nt *Netns) OwnProcesses() bool { return true }

// Close stops the peers and removes the namespaces.
func (nt *Netns) Close() { nt.teardown() }

// gossipKey returns a new random gossip key (base64) for one cluster.
func gossipKey(t testing.TB) string {
	t.Helper()
	key := make([]byte, 32)
	if _, err := crand.Read(key); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(key)
}
