package clock

import (
	"testing"
	"time"
)

// fake is a clock the test moves; its readings carry no monotonic part,
// so Sub works on wall time.
type fake struct{ t time.Time }

func (f *fake) now() time.Time              { return f.t }
func (f *fake) add(d time.Duration)         { f.t = f.t.Add(d) }
func newFake() *fake                        { return &fake{t: time.Unix(1_800_000_000, 0)} }
func at(f *fake, d time.Duration) time.Time { return f.t.Add(d) }

func TestObserveReadsTheOffsetAtTheMidpoint(t *testing.T) {
	f := newFake()
	tr := New(Config{Now: f.now})
	sent := f.now()
	f.add(100 * time.Millisecond)
	// the peer read its clock 3 s ahead of ours at our midpoint (+50 ms)
	tr.Observe("p2", sent, f.now(), sent.Add(50*time.Millisecond+3*time.Second))
	offs := tr.Offsets()
	if len(offs) != 1 || offs[0].Offset != 3*time.Second || offs[0].RTT != 100*time.Millisecond {
		t.Fatalf("offsets %+v, want p2 +3s with rtt 100ms", offs)
	}
	// a less precise sample does not replace a fresh precise one
	sent = f.now()
	f.add(800 * time.Millisecond)
	tr.Observe("p2", sent, f.now(), sent.Add(400*time.Millisecond+10*time.Second))
	if o := tr.Offsets()[0].Offset; o != 3*time.Second {
		t.Fatalf("offset %v after a worse sample, want the precise 3s", o)
	}
	// nor is a round trip over 2 s a sample at all
	sent = f.now()
	f.add(3 * time.Second)
	tr.Observe("p3", sent, f.now(), sent)
	if len(tr.Offsets()) != 1 {
		t.Fatal("a sample with a 3 s round trip was kept")
	}
}

func TestClusterOffsetIsTheLowerMedian(t *testing.T) {
	f := func(offsets []time.Duration, want time.Duration, n int) {
		t.Helper()
		c := newFake()
		tr := New(Config{Now: c.now})
		for i, o := range offsets {
			tr.Observe(string(rune('a'+i)), c.now(), c.now(), c.now().Add(o))
		}
		got, gotN := tr.ClusterOffset()
		if got != want || gotN != n {
			t.Fatalf("offsets %v: cluster offset %v of %d clocks, want %v of %d", offsets, got, gotN, want, n)
		}
	}
	f(nil, 0, 1)
	f([]time.Duration{time.Hour}, 0, 2)           // two clocks: the earlier
	f([]time.Duration{-time.Hour}, -time.Hour, 2) // this one is ahead
	f([]time.Duration{time.Hour, time.Hour}, time.Hour, 3)
	f([]time.Duration{-5 * time.Second, time.Hour, 2 * time.Hour}, 0, 4) // [-5s 0 1h 2h]: the lower of the middle two
}

func TestSkewDecidesMintingAndProofs(t *testing.T) {
	c := newFake()
	tr := New(Config{Now: c.now, MaxSkew: 5 * time.Second})
	for _, p := range []string{"b", "c"} { // both others 1 h ahead: this clock is 1 h behind
		tr.Observe(p, c.now(), c.now(), c.now().Add(time.Hour))
	}
	if !tr.Skewed() || tr.Skew() != -time.Hour {
		t.Fatalf("skewed %v, skew %v; want an hour behind", tr.Skewed(), tr.Skew())
	}
	if got := tr.MintNow(); !got.Equal(at(c, time.Hour)) {
		t.Fatalf("mints at %v, want the cluster's time %v", got, at(c, time.Hour))
	}
	if tr.PeerSkewed("b") {
		t.Fatal("b agrees with the cluster and is called skewed")
	}
	if tr.Persistable() != time.Hour {
		t.Fatalf("persistable offset %v", tr.Persistable())
	}
	// within the bound: this clock is used as it is
	tr2 := New(Config{Now: c.now, MaxSkew: 5 * time.Second})
	tr2.Observe("b", c.now(), c.now(), c.now().Add(2*time.Second))
	tr2.Observe("c", c.now(), c.now(), c.now().Add(3*time.Second))
	if tr2.Skewed() || !tr2.MintNow().Equal(c.now()) {
		t.Fatal("a clock 2 s from the cluster's was treated as skewed")
	}
}

func TestSamplesAgeOutAndTheClusterTimeRunsOn(t *testing.T) {
	c := newFake()
	tr := New(Config{Now: c.now, Fresh: time.Minute})
	if tr.Measured() {
		t.Fatal("measured before any sample")
	}
	tr.SetOffset(30 * time.Second) // measured before a restart
	if off, n := tr.ClusterOffset(); off != 30*time.Second || n != 1 {
		t.Fatalf("before any sample: %v of %d, want the persisted 30s", off, n)
	}
	tr.Observe("b", c.now(), c.now(), c.now().Add(time.Hour))
	tr.Observe("c", c.now(), c.now(), c.now().Add(time.Hour))
	if !tr.Measured() {
		t.Fatal("not measured after two samples")
	}
	c.add(2 * time.Minute) // the samples are stale now
	if len(tr.Offsets()) != 0 {
		t.Fatal("stale samples still listed")
	}
	if off, _ := tr.ClusterOffset(); off != time.Hour {
		t.Fatalf("after the samples aged out the cluster offset is %v, want it run on from the last (1h)", off)
	}
	tr.Forget("b")
	if !tr.Measured() {
		t.Fatal("forgetting a peer forgot that the cluster's time was measured")
	}
}
