// Package netlimit caps the connections a listener holds open: in total
// (past it, Accept waits and new connections queue in the kernel, holding
// no descriptor here) and per remote host (past it, a host's new
// connections are closed at once), so that one client cannot take every
// descriptor of the process and the others still get in.
//
// A connection the server marks idle (an HTTP keep-alive between requests,
// see SetIdle) does not keep a new one out: at either cap the connection
// idle longest (of that host, or of any host for the total) is closed to
// make room, as the server's idle timeout would have closed it later. A
// client that makes a new connection per request and leaves the old ones
// open must not lock itself, or the hosts behind its NAT, out.
package netlimit

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Listener is a net.Listener with connection caps.
type Listener struct {
	net.Listener
	slots     chan struct{}
	perHost   int
	done      chan struct{}
	once      sync.Once
	refused   atomic.Uint64
	reclaimed atomic.Uint64

	mu    sync.Mutex
	hosts map[string]int
	conns map[string]*conn // by remote address
}

// Wrap caps ln at total open connections and perHost per remote host
// (0: no cap of that kind).
func Wrap(ln net.Listener, total, perHost int) *Listener {
	l := &Listener{Listener: ln, perHost: perHost, done: make(chan struct{}), hosts: map[string]int{}, conns: map[string]*conn{}}
	if total > 0 {
		l.slots = make(chan struct{}, total)
	}
	return l
}

// Accept waits for a free slot, then for a connection from a host under
// its cap.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		if l.slots != nil {
			select {
			case l.slots <- struct{}{}:
			default:
				if err := l.waitSlot(); err != nil {
					return nil, err
				}
			}
		}
		c, err := l.Listener.Accept()
		if err != nil {
			l.release()
			return nil, err
		}
		host := hostOf(c.RemoteAddr())
		if l.perHost > 0 && l.count(host) >= l.perHost {
			if v := l.oldestIdle(host); v != nil {
				l.reclaimed.Add(1)
				v.Close()
			}
		}
		l.mu.Lock()
		if l.perHost > 0 && l.hosts[host] >= l.perHost {
			l.mu.Unlock()
			// counted before the close: whoever sees the refusal sees the count
			l.refused.Add(1)
			c.Close()
			l.release()
			continue
		}
		l.hosts[host]++
		lc := &conn{Conn: c, l: l, host: host, key: c.RemoteAddr().String()}
		l.conns[lc.key] = lc
		l.mu.Unlock()
		return lc, nil
	}
}

// waitSlot takes a slot once one is free, closing the connection idle
// longest whenever there is one (a busy connection may go idle while
// Accept waits).
func (l *Listener) waitSlot() error {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		if v := l.oldestIdle(""); v != nil {
			l.reclaimed.Add(1)
			v.Close() // frees its slot
		}
		select {
		case l.slots <- struct{}{}:
			return nil
		case <-l.done:
			return net.ErrClosed
		case <-t.C:
		}
	}
}

// SetIdle marks the connection from remote as idle (between requests,
// reclaimable) or busy. Unknown addresses are ignored.
func (l *Listener) SetIdle(remote net.Addr, idle bool) {
	if remote == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if c := l.conns[remote.String()]; c != nil {
		c.idleSince = time.Time{}
		if idle {
			c.idleSince = time.Now()
		}
	}
}

// oldestIdle takes the connection idle longest, of host ("" any host), out
// of the idle set so that no one else reclaims it; the caller closes it.
func (l *Listener) oldestIdle(host string) *conn {
	l.mu.Lock()
	defer l.mu.Unlock()
	var v *conn
	for _, c := range l.conns {
		if c.idleSince.IsZero() || (host != "" && c.host != host) {
			continue
		}
		if v == nil || c.idleSince.Before(v.idleSince) {
			v = c
		}
	}
	if v != nil {
		v.idleSince = time.Time{}
	}
	return v
}

func (l *Listener) count(host string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.hosts[host]
}

// Close closes the listener and wakes an Accept waiting for a slot.
func (l *Listener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// Open returns the connections open now.
func (l *Listener) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, c := range l.hosts {
		n += c
	}
	return n
}

// Refused counts connections closed because their host was at its cap.
func (l *Listener) Refused() uint64 { return l.refused.Load() }

// Reclaimed counts idle connections closed to make room for a new one.
func (l *Listener) Reclaimed() uint64 { return l.reclaimed.Load() }

func (l *Listener) release() {
	if l.slots != nil {
		<-l.slots
	}
}

func (l *Listener) done1(c *conn) {
	l.mu.Lock()
	host := c.host
	if l.hosts[host]--; l.hosts[host] <= 0 {
		delete(l.hosts, host)
	}
	if l.conns[c.key] == c {
		delete(l.conns, c.key)
	}
	l.mu.Unlock()
	l.release()
}

type conn struct {
	net.Conn
	l         *Listener
	host, key string
	once      sync.Once
	idleSince time.Time // zero: busy; guarded by l.mu
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.done1(c) })
	return err
}

func hostOf(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	h, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return h
}
