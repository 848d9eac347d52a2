package netlimit

import (
	"net"
	"testing"
	"time"
)

func dialFrom(t *testing.T, local, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 2 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// accepted returns the connections the listener hands out.
func serve(l *Listener) chan net.Conn {
	out := make(chan net.Conn, 100)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(out)
				return
			}
			out <- c
		}
	}()
	return out
}

func TestAHostPastItsCapIsClosedAndOthersGetIn(t *testing.T) {
	l, addr := listen(t, 0, 3)
	defer l.Close()
	got := serve(l)
	for i := 0; i < 3; i++ {
		defer dialFrom(t, "127.0.0.1", addr).Close()
		<-got
	}
	extra := dialFrom(t, "127.0.0.1", addr)
	defer extra.Close()
	_ = extra.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := extra.Read(make([]byte, 1)); err == nil {
		t.Fatal("the fourth connection of a host at its cap was not closed")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the fourth connection of a host at its cap is still open")
	}
	other := dialFrom(t, "127.0.0.2", addr)
	defer other.Close()
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("another host was kept out")
	}
	if l.Refused() != 1 || l.Open() != 4 {
		t.Fatalf("refused %d open %d, want 1 and 4", l.Refused(), l.Open())
	}
}

func TestTotalCapWaitsForASlot(t *testing.T) {
	l, addr := listen(t, 2, 0)
	got := serve(l)
	a, b := dialFrom(t, "127.0.0.1", addr), dialFrom(t, "127.0.0.2", addr)
	defer b.Close()
	c1, c2 := <-got, <-got
	third := dialFrom(t, "127.0.0.3", addr)
	defer third.Close()
	select {
	case <-got:
		t.Fatal("a third connection was accepted past a cap of 2")
	case <-time.After(100 * time.Millisecond):
	}
	a.Close()
	for _, c := range []net.Conn{c1, c2} {
		if c.RemoteAddr().String() == a.LocalAddr().String() {
			c.Close()
		}
	}
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("the third connection was not accepted once a slot was free")
	}
	l.Close()
	for range got {
	}
}

// TestAnIdleConnectionMakesRoomAtTheHostCap: a host at its cap whose
// connections include an idle one gets its new connection in, and the
// connection idle longest is closed; with none idle, the new one is refused.
func TestAnIdleConnectionMakesRoomAtTheHostCap(t *testing.T) {
	l, addr := listen(t, 0, 2)
	defer l.Close()
	got := serve(l)
	a, b := dialFrom(t, "127.0.0.1", addr), dialFrom(t, "127.0.0.1", addr)
	defer a.Close()
	defer b.Close()
	sa, sb := <-got, <-got
	if sa.RemoteAddr().String() != a.LocalAddr().String() {
		sa, sb = sb, sa
	}
	l.SetIdle(sa.RemoteAddr(), true)
	l.SetIdle(sb.RemoteAddr(), true)
	l.SetIdle(sa.RemoteAddr(), false) // busy again: not reclaimable
	third := dialFrom(t, "127.0.0.1", addr)
	defer third.Close()
	select {
	case c := <-got:
		defer c.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("a host at its cap with an idle connection was refused a new one")
	}
	if !closedFrom(b) {
		t.Fatal("the idle connection was not closed to make room")
	}
	if closedFrom(a) {
		t.Fatal("a busy connection was closed to make room")
	}
	fourth := dialFrom(t, "127.0.0.1", addr)
	defer fourth.Close()
	if !closedFrom(fourth) {
		t.Fatal("with no idle connection a host past its cap got in")
	}
	if l.Reclaimed() != 1 || l.Refused() != 1 || l.Open() != 2 {
		t.Fatalf("reclaimed %d refused %d open %d, want 1, 1 and 2", l.Reclaimed(), l.Refused(), l.Open())
	}
}

// TestAnIdleConnectionMakesRoomAtTheTotalCap: Accept waiting for a slot
// takes one from a connection that goes idle while it waits.
func TestAnIdleConnectionMakesRoomAtTheTotalCap(t *testing.T) {
	l, addr := listen(t, 2, 0)
	got := serve(l)
	a, b := dialFrom(t, "127.0.0.1", addr), dialFrom(t, "127.0.0.2", addr)
	defer a.Close()
	defer b.Close()
	sa := <-got
	<-got
	third := dialFrom(t, "127.0.0.3", addr)
	defer third.Close()
	select {
	case <-got:
		t.Fatal("a third connection was accepted past a cap of 2 with none idle")
	case <-time.After(300 * time.Millisecond):
	}
	l.SetIdle(sa.RemoteAddr(), true)
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("the third connection waited although a connection went idle")
	}
	if l.Reclaimed() != 1 {
		t.Fatalf("reclaimed %d, want 1", l.Reclaimed())
	}
	l.Close()
	for range got {
	}
}

// closedFrom reports whether the listener side closed c (read ends within 2s).
func closedFrom(c net.Conn) bool {
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err := c.Read(make([]byte, 1))
	ne, ok := err.(net.Error)
	return err != nil && !(ok && ne.Timeout())
}

// listen wraps a new loopback listener with the caps; it returns the
// listener and its address.
func listen(t *testing.T, total, perHost int) (*Listener, string) {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return Wrap(raw, total, perHost), raw.Addr().String()
}
