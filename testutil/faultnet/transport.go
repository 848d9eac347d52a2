package faultnet

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"
)

// Transport returns a memberlist transport for peer name bound to addr
// (host:port) that obeys the network's rules for gossip.
func (n *Network) Transport(name, addr string) (memberlist.NodeAwareTransport, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return nil, err
	}
	inner, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{BindAddrs: []string{host}, BindPort: port})
	if err != nil {
		return nil, fmt.Errorf("faultnet: transport for %s: %w", name, err)
	}
	return &transport{NetTransport: inner, net: n, self: name}, nil
}

// transport wraps memberlist's network transport; packets and streams that
// a rule forbids are dropped on the sending side.
type transport struct {
	*memberlist.NetTransport
	net  *Network
	self string
}

var _ memberlist.NodeAwareTransport = (*transport)(nil)

func (t *transport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

func (t *transport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	_, drop, delay := t.net.state(t.self, a.Addr)
	if drop {
		return time.Now(), nil // lost on the way: the sender cannot tell
	}
	if delay > 0 {
		buf := append([]byte(nil), b...)
		time.AfterFunc(delay, func() { _, _ = t.NetTransport.WriteToAddress(buf, a) })
		return time.Now(), nil
	}
	return t.NetTransport.WriteToAddress(b, a)
}

func (t *transport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

func (t *transport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	if cut, _, _ := t.net.state(t.self, a.Addr); cut {
		// a black hole, not a refusal: the dial times out like on a real partition
		time.Sleep(min(timeout, 500*time.Millisecond))
		return nil, fmt.Errorf("dial %s: i/o timeout (%w)", a.Addr, ErrCut)
	}
	c, err := t.NetTransport.DialAddressTimeout(a, timeout)
	if err != nil {
		return nil, err
	}
	return t.net.track(t.self, a.Addr, c), nil
}
