package chaos

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/logmesh/logmesh/peer"
	"github.com/logmesh/logmesh/testutil"
	"github.com/logmesh/logmesh/testutil/faultnet"
)

// InProcess is the first level: peers in the test process, on loopback,
// through the fault network. A kill closes a peer without leaving; a pause
// isolates it (goroutines cannot be frozen in process).
type InProcess struct {
	c        *testutil.Cluster
	net      *faultnet.Network
	names    []string
	syslog   map[string]string
	interval time.Duration
	paused   map[string]bool
	clocks   map[string]*atomic.Int64 // offset of each peer's clock
}

// NewInProcess starts n peers with anti-entropy every interval.
func NewInProcess(t testing.TB, n int, seed uint64, interval time.Duration, o Options, tweak func(i int, c *peer.Config)) *InProcess {
	ip := &InProcess{net: faultnet.New(seed), syslog: map[string]string{}, interval: interval, paused: map[string]bool{},
		clocks: map[string]*atomic.Int64{}}
	t.Cleanup(ip.net.Close)
	ip.c = testutil.NewClusterOn(t, ip.net, n, func(i int, c *peer.Config) {
		addr := testutil.FreeAddr(t)
		c.SyslogTCP, c.SyslogUDP = addr, addr
		ip.syslog[c.Name] = addr
		c.AntiEntropyInterval = interval
		c.DisableReplication = o.DisableReplication
		c.DisableAntiEntropy = o.DisableAntiEntropy
		if o.FailedReassignAfter > 0 {
			c.FailedReassignAfter = o.FailedReassignAfter
		}
		if o.MaintenanceInterval > 0 {
			c.Index.MaintenanceInterval = o.MaintenanceInterval
		}
		if i == n-1 && o.LastMaxHintsBytes > 0 {
			c.MaxHintsBytes = o.LastMaxHintsBytes
		}
		off := new(atomic.Int64)
		if i == 0 {
			off.Store(int64(o.Skew))
		}
		ip.clocks[c.Name] = off
		c.Now = func() time.Time { return time.Now().Add(time.Duration(off.Load())) }
		if tweak != nil {
			tweak(i, c)
		}
		ip.names = append(ip.names, c.Name)
	})
	// not WaitAlive: with anti-entropy off, peers that joined never prove
	// themselves complete (the checker's own tests run so); queries are
	// full anyway while the first peer, complete from the start, answers
	ip.c.WaitMembers(30 * time.Second)
	return ip
}

func (p *InProcess) index(name string) int { return slices.Index(p.names, name) }

// Names lists the peers.
func (p *InProcess) Names() []string { return p.names }

// API returns a peer's API address.
func (p *InProcess) API(name string) string {
	if pe := p.c.Peer(p.index(name)); pe != nil {
		return pe.APIAddr()
	}
	return "127.0.0.1:1" // stopped: nothing answers
}

// Syslog returns a peer's syslog address.
func (p *InProcess) Syslog(name string) string { return p.syslog[name] }

// Replicas is the replication factor.
func (p *InProcess) Replicas() int { return p.c.Config(0).Replicas }

// AEInterval is the anti-entropy interval.
func (p *InProcess) AEInterval() time.Duration { return p.interval }

// Partition cuts links between groups.
func (p *InProcess) Partition(groups ...[]string) error { p.net.Partition(groups...); return nil }

// Loss drops packets from → to.
func (p *InProcess) Loss(from, to string, prob float64) error { p.net.Loss(from, to, prob); return nil }

// Slow delays gossip and adds latency to the data plane from → to.
func (p *InProcess) Slow(from, to string, d time.Duration) error {
	p.net.Delay(from, to, d/4)
	return p.net.Toxic(from, to, "latency", fmt.Sprintf(`{"latency":%d,"jitter":%d}`, d.Milliseconds(), d.Milliseconds()/2))
}

// Heal removes network faults (a paused peer stays isolated until resumed).
func (p *InProcess) Heal() error {
	p.net.Heal()
	for name := range p.paused {
		p.isolate(name)
	}
	return nil
}

func (p *InProcess) isolate(name string) {
	var rest []string
	for _, n := range p.names {
		if n != name {
			rest = append(rest, n)
		}
	}
	p.net.Partition([]string{name}, rest)
}

// CutAPI refuses the data plane from → to; gossip goes on.
func (p *InProcess) CutAPI(from, to string) error { p.net.CutAPI(from, to); return nil }

// Leave makes a peer leave gracefully, then closes it.
func (p *InProcess) Leave(name string) error {
	i := p.index(name)
	if pe := p.c.Peer(i); pe != nil {
		err := pe.Leave()
		p.c.Stop(i)
		if err != nil && !errors.Is(err, peer.ErrLeaveIncomplete) {
			return err
		}
	}
	return nil
}

// Wipe closes a peer, deletes its data directory and starts it again.
func (p *InProcess) Wipe(name string) error {
	i := p.index(name)
	p.c.Stop(i)
	if err := os.RemoveAll(p.c.Config(i).DataDir); err != nil {
		return err
	}
	p.c.Start(i)
	return nil
}

// SetClock shifts a peer's clock.
func (p *InProcess) SetClock(name string, offset time.Duration) error {
	p.clocks[name].Store(int64(offset))
	return nil
}

// Kill closes a peer without leaving.
func (p *InProcess) Kill(name string) error { p.c.Stop(p.index(name)); return nil }

// Start restarts a peer with its data.
func (p *InProcess) Start(name string) error { p.c.Start(p.index(name)); return nil }

// Pause isolates a peer.
func (p *InProcess) Pause(name string) error { p.paused[name] = true; p.isolate(name); return nil }

// Resume ends a pause.
func (p *InProcess) Resume(name string) error {
	if p.paused[name] {
		delete(p.paused, name)
		p.net.Heal()
		for n := range p.paused {
			p.isolate(n)
		}
	}
	return nil
}

// Running reports whether a peer is started.
func (p *InProcess) Running(name string) bool { return p.c.Peer(p.index(name)) != nil }

// OwnProcesses is false: the peers share the test process.
func (p *InProcess) OwnProcesses() bool { return false }

// Close stops every peer.
func (p *InProcess) Close() { p.c.Close() }
