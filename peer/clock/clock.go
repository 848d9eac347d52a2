// Package clock measures how far this peer's clock is from every other
// peer's and from the cluster's, so that nothing that depends on wall time
// (retention, proofs of convergence, the time in new record IDs) follows
// one peer's clock that the others disagree with.
//
// Offsets are measured the way NTP does: a call to another peer is stamped
// with this peer's clock when it leaves and when its answer arrives, and the
// answer carries the other peer's clock (header X-Logmesh-Clock); the other
// clock read at the midpoint of the round trip gives the offset, within half
// the round trip. The sample with the shortest round trip of the last few
// seconds is kept per peer.
//
// The cluster's time is the median of every clock with a fresh sample, this
// one included (the lower median for an even count: the earlier time, so
// that retention never runs ahead). A peer whose clock is more than MaxSkew
// from the cluster's is skewed: it says so loudly, mints IDs and applies
// retention from the cluster's time, and makes no proofs of convergence.
package clock

import (
	"slices"
	"strconv"
	"sync"
	"time"
)

// Header carries the sender's clock, in Unix milliseconds, on every
// data-plane request and answer.
const Header = "X-Logmesh-Clock"

// Config configures a Tracker.
type Config struct {
	// Now is this peer's clock (default time.Now). Its readings should carry
	// Go's monotonic clock, which round trips and ages are measured with.
	Now func() time.Time
	// MaxSkew is how far this peer's clock may be from the cluster's before
	// it is skewed (default 5s).
	MaxSkew time.Duration
	// Fresh is how long a sample counts (default 60s).
	Fresh time.Duration
	// Offset is the cluster offset measured before a restart (see
	// Tracker.Persistable): used until the first fresh sample.
	Offset time.Duration
}

// Tracker holds the measured offsets. It is safe for concurrent use.
type Tracker struct {
	cfg Config
	mu  struct {
		sync.Mutex
		samples map[string]sample
		// anchor is the cluster time at a monotonic instant, from the last
		// fresh samples: after they age out, cluster time runs on from it by
		// the monotonic clock, which no wall-clock step moves.
		anchorMono    time.Time
		anchorCluster time.Time
		anchored      bool
	}
}

type sample struct {
	offset time.Duration // peer clock minus this clock
	rtt    time.Duration
	at     time.Time // this clock when taken (monotonic)
}

// New returns a tracker.
func New(cfg Config) *Tracker {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxSkew <= 0 {
		cfg.MaxSkew = 5 * time.Second
	}
	if cfg.Fresh <= 0 {
		cfg.Fresh = time.Minute
	}
	t := &Tracker{cfg: cfg}
	t.mu.samples = map[string]sample{}
	return t
}

// SetOffset sets the cluster offset measured before a restart (see
// Config.Offset).
func (t *Tracker) SetOffset(d time.Duration) {
	t.mu.Lock()
	t.cfg.Offset = d
	t.mu.Unlock()
}

// MaxSkew returns the configured bound.
func (t *Tracker) MaxSkew() time.Duration { return t.cfg.MaxSkew }

// Stamp returns this clock as the Header value.
func (t *Tracker) Stamp() string { return strconv.FormatInt(t.cfg.Now().UnixMilli(), 10) }

// ObserveHeader takes a sample from an answer of peer's whose request left
// at sent and whose answer arrived at recv (both read from Config.Now).
func (t *Tracker) ObserveHeader(peer string, sent, recv time.Time, value string) {
	ms, err := strconv.ParseInt(value, 10, 64)
	if err != nil || ms <= 0 || peer == "" {
		return
	}
	t.Observe(peer, sent, recv, time.UnixMilli(ms))
}

// Observe takes a sample: peer's clock read peerClock between sent and recv.
func (t *Tracker) Observe(peer string, sent, recv time.Time, peerClock time.Time) {
	rtt := recv.Sub(sent)
	if rtt < 0 || rtt > 2*time.Second {
		return // too uncertain to say anything
	}
	mid := sent.Round(0).Add(rtt / 2)
	s := sample{offset: peerClock.Sub(mid), rtt: rtt, at: recv}
	t.mu.Lock()
	defer t.mu.Unlock()
	old, ok := t.mu.samples[peer]
	// keep the most precise sample of the last few seconds
	if !ok || recv.Sub(old.at) > 5*time.Second || s.rtt <= old.rtt {
		t.mu.samples[peer] = s
	}
}

// Forget drops a peer's samples (it left).
func (t *Tracker) Forget(peer string) {
	t.mu.Lock()
	delete(t.mu.samples, peer)
	t.mu.Unlock()
}

// PeerOffset is one peer's measured offset.
type PeerOffset struct {
	Peer string
	// Offset is the peer's clock minus this one's; RTT bounds its error (±RTT/2).
	Offset, RTT time.Duration
	// Age is how old the sample is.
	Age time.Duration
}

// Offsets returns the fresh samples, by peer name.
func (t *Tracker) Offsets() []PeerOffset {
	now := t.cfg.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []PeerOffset
	for name, s := range t.mu.samples {
		if age := now.Sub(s.at); age <= t.cfg.Fresh {
			out = append(out, PeerOffset{Peer: name, Offset: s.offset, RTT: s.rtt, Age: age})
		}
	}
	slices.SortFunc(out, func(a, b PeerOffset) int {
		if a.Peer < b.Peer {
			return -1
		}
		if a.Peer > b.Peer {
			return 1
		}
		return 0
	})
	return out
}

// ClusterOffset returns the cluster's time minus this clock, and the number
// of clocks (this one included) it is the median of. With no fresh sample
// it is the offset measured before a restart and n is 1.
func (t *Tracker) ClusterOffset() (time.Duration, int) {
	now := t.cfg.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.clusterOffsetLocked(now)
}

func (t *Tracker) clusterOffsetLocked(now time.Time) (time.Duration, int) {
	offs := []time.Duration{0}
	for _, s := range t.mu.samples {
		if now.Sub(s.at) <= t.cfg.Fresh {
			offs = append(offs, s.offset)
		}
	}
	if len(offs) == 1 {
		if t.mu.anchored {
			// run on from the last cluster time by the monotonic clock
			return t.mu.anchorCluster.Add(now.Sub(t.mu.anchorMono)).Sub(now.Round(0)), 1
		}
		return t.cfg.Offset, 1 // under mu: SetOffset writes it
	}
	slices.Sort(offs)
	off := offs[(len(offs)-1)/2]
	t.mu.anchorMono, t.mu.anchorCluster, t.mu.anchored = now, now.Round(0).Add(off), true
	return off, len(offs)
}

// Measured reports whether this process has ever had a fresh sample: until
// then the cluster's time is only what was measured before a restart.
func (t *Tracker) Measured() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mu.anchored {
		return true
	}
	_, n := t.clusterOffsetLocked(t.cfg.Now())
	return n > 1
}

// Skew returns this clock minus the cluster's.
func (t *Tracker) Skew() time.Duration {
	off, _ := t.ClusterOffset()
	return -off
}

// Skewed reports whether this clock is more than MaxSkew from the cluster's.
func (t *Tracker) Skewed() bool { return abs(t.Skew()) > t.cfg.MaxSkew }

// PeerSkewed reports whether peer's clock is more than MaxSkew from the
// cluster's (false when it has no fresh sample).
func (t *Tracker) PeerSkewed(peer string) bool {
	now := t.cfg.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.mu.samples[peer]
	if !ok || now.Sub(s.at) > t.cfg.Fresh {
		return false
	}
	off, _ := t.clusterOffsetLocked(now)
	return abs(s.offset-off) > t.cfg.MaxSkew
}

// ClusterNow returns the cluster's time.
func (t *Tracker) ClusterNow() time.Time {
	now := t.cfg.Now()
	off, _ := t.ClusterOffset()
	return now.Round(0).Add(off)
}

// MintNow is the time new record IDs carry: this clock while it agrees with
// the cluster's, the cluster's when it does not.
func (t *Tracker) MintNow() time.Time {
	now := t.cfg.Now()
	off, _ := t.ClusterOffset()
	if abs(off) > t.cfg.MaxSkew {
		return now.Round(0).Add(off)
	}
	return now
}

// Persistable returns the cluster offset worth keeping across a restart:
// the measured one while this clock is skewed, else zero.
func (t *Tracker) Persistable() time.Duration {
	off, n := t.ClusterOffset()
	if n > 1 && abs(off) > t.cfg.MaxSkew {
		return off
	}
	if n > 1 {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.cfg.Offset
}

func abs(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
