package syslog

import (
	"crypto/tls"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// raiseFDLimit raises the soft limit on open files to the hard limit and
// returns it.
func raiseFDLimit(t *testing.T) uint64 {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skipf("cannot read the file limit: %v", err)
	}
	if lim.Cur < lim.Max {
		old := lim.Cur
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			lim.Cur = old
		} else {
			t.Cleanup(func() {
				syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: old, Max: lim.Max})
			})
		}
	}
	return lim.Cur
}

// dialFrom connects to addr from the loopback address src.
func dialFrom(src, addr string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 10 * time.Second}
	return d.Dial("tcp", addr)
}

// TestHostileFloods holds thousands of idle connections from two sources,
// trickles bytes on others and stalls TLS handshakes, then checks that the
// caps hold, the deadlines fire and a clean sender from another source is
// served promptly throughout.
func TestHostileFloods(t *testing.T) {
	limit := raiseFDLimit(t)
	want := 1200
	if soak() {
		want = 8000
	}
	// Every connection costs two descriptors in this process (both ends);
	// keep 256 for the rest.
	const extra, slow, stalled = 50, 20, 20
	capN := min(want, int(limit-256)/2-3*extra-slow-stalled-16)
	if capN < 300 {
		t.Skipf("file limit %d is too low for a flood", limit)
	}
	pki := newTestPKI(t)
	cfg := pki.tlsConfig(t, ClientAuthNone)
	cfg.Logger = nil
	cfg.MaxConnections = capN
	cfg.MaxConnectionsPerSource = capN / 3
	cfg.IdleTimeout = 4 * time.Second
	cfg.FrameTimeout = time.Second
	cfg.HandshakeTimeout = 500 * time.Millisecond
	if soak() {
		cfg.IdleTimeout = 30 * time.Second
	}
	sink := newCountingSink()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	heapBefore := ms.HeapInuse + ms.StackInuse
	s := startServer(t, cfg, sink)
	addr, tlsAddr := s.TCPAddr().String(), s.TLSAddr().String()

	// The cap must hold at every moment.
	var maxOpen atomic.Int64
	stop := make(chan struct{})
	var bg sync.WaitGroup
	bg.Go(func() {
		for {
			st := s.Stats()
			maxOpen.Store(max(maxOpen.Load(), st.TCP.ConnectionsOpen+st.TLS.ConnectionsOpen))
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	})
	defer func() { close(stop); bg.Wait() }()

	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	hold := func(src, addr string, n int) {
		for range n {
			c, err := dialFrom(src, addr)
			if err != nil {
				t.Fatalf("dial %d from %s: %v", len(conns), src, err)
			}
			conns = append(conns, c)
		}
	}

	// Phase 1: two sources each open more idle connections than one
	// source may hold.
	start := time.Now()
	perSrc := cfg.MaxConnectionsPerSource
	hold("127.0.0.1", addr, perSrc+extra)
	hold("127.0.0.3", addr, perSrc+extra)
	waitFor(t, "the per-source cap to refuse the extra connections", func() bool {
		st := s.Stats().TCP
		return st.ConnectionsRejected >= 2*extra && st.ConnectionsOpen == int64(2*perSrc)
	})
	floodTime := time.Since(start)
	runtime.GC()
	runtime.ReadMemStats(&ms)
	inUse := ms.HeapInuse + ms.StackInuse // goroutine stacks are not heap
	perIdle := float64(inUse-min(heapBefore, inUse)) / float64(2*perSrc)

	// Slowloris: a byte every 100ms; and TLS clients that never finish
	// their handshake.
	for range slow {
		c, err := dialFrom("127.0.0.4", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		bg.Go(func() {
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				if _, err := c.Write([]byte{"<13>slowloris "[i%14]}); err != nil {
					return
				}
			}
		})
	}
	hold("127.0.0.5", tlsAddr, stalled)

	// A clean sender from another source is served while all that goes on.
	cleanStart := time.Now()
	c, err := dialFrom("127.0.0.2", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	write(t, c, cleanLine(0, 0)+"\n")
	waitFor(t, "the clean line", func() bool { return sink.stored(0, 1) })
	cleanLatency := time.Since(cleanStart)
	// And a TLS one.
	raw, err := dialFrom("127.0.0.7", tlsAddr)
	if err != nil {
		t.Fatal(err)
	}
	tc := tls.Client(raw, &tls.Config{RootCAs: pki.pool(), ServerName: "syslog-server"})
	defer tc.Close()
	if err := tc.Handshake(); err != nil {
		t.Fatalf("a clean TLS client during the flood: %v", err)
	}
	write(t, tc, octet(cleanLine(1, 0)))
	waitFor(t, "the clean TLS line", func() bool { return sink.stored(1, 1) })

	// The deadlines fire.
	waitFor(t, "slowloris frame timeouts", func() bool { return s.Stats().TCP.FrameTimeouts >= slow })
	waitFor(t, "stalled handshake timeouts", func() bool { return s.Stats().TLS.HandshakeFailures["timeout"] >= stalled })

	// Phase 2: a third source fills what is left; the global cap refuses
	// the rest.
	rejected := s.Stats().TCP.ConnectionsRejected
	open := func() int64 { st := s.Stats(); return st.TCP.ConnectionsOpen + st.TLS.ConnectionsOpen }
	hold("127.0.0.6", addr, capN-int(open())+extra)
	waitFor(t, "the global cap to refuse connections", func() bool {
		return s.Stats().TCP.ConnectionsRejected >= rejected+extra
	})
	if m := maxOpen.Load(); m > int64(capN) {
		t.Errorf("%d connections open at once, cap %d", m, capN)
	}
	held := open()

	// Idle connections time out and free their slots.
	idleDeadline := time.Now().Add(cfg.IdleTimeout + 10*time.Second)
	for s.Stats().TCP.IdleTimeouts < uint64(2*perSrc) {
		if time.Now().After(idleDeadline) {
			t.Fatalf("idle connections not closed within IdleTimeout: %+v", s.Stats().TCP)
		}
		time.Sleep(10 * time.Millisecond)
	}
	st := s.Stats()
	t.Logf("floods: cap %d (per source %d, file limit %d); %d idle connections held in %v, %.1f KiB of heap and stacks each (both ends); "+
		"%d held at the peak; clean line stored %v after connecting; tcp %+v; tls %+v",
		capN, perSrc, limit, 2*perSrc, floodTime.Round(time.Millisecond), perIdle/1024, held,
		cleanLatency.Round(time.Millisecond), st.TCP, st.TLS)
	// An idle connection holds a goroutine (8 KiB stack) and its socket on
	// the server, a socket on the client: no 32 KiB read buffer.
	if perIdle > 24<<10 {
		t.Errorf("%.0f bytes per idle connection: a read buffer is allocated before the first byte", perIdle)
	}
}
