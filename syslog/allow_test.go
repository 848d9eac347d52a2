package syslog

import (
	"net"
	"net/netip"
	"strings"
	"testing"
)

func TestParseAllowList(t *testing.T) {
	f := func(in []string, want, wantErr string) {
		t.Helper()
		got, err := ParseAllowList(in)
		switch {
		case wantErr != "":
			if err == nil || !strings.Contains(err.Error(), wantErr) {
				t.Errorf("ParseAllowList(%q) error %v, want one containing %q", in, err, wantErr)
			}
		case err != nil:
			t.Errorf("ParseAllowList(%q): %v", in, err)
		default:
			var s []string
			for _, p := range got {
				s = append(s, p.String())
			}
			if strings.Join(s, " ") != want {
				t.Errorf("ParseAllowList(%q) = %v, want %s", in, s, want)
			}
		}
	}
	f(nil, "", "")
	f([]string{"10.0.0.0/8"}, "10.0.0.0/8", "")
	f([]string{"10.0.0.0/8, 192.0.2.7", "2001:db8::/32"}, "10.0.0.0/8 192.0.2.7/32 2001:db8::/32", "")
	f([]string{"10.1.2.3/8"}, "10.0.0.0/8", "")            // host bits cleared
	f([]string{"::1"}, "::1/128", "")                      // one address
	f([]string{"::ffff:10.0.0.0/104"}, "10.0.0.0/8", "")   // IPv4-mapped: IPv4
	f([]string{"::ffff:192.0.2.7"}, "192.0.2.7/32", "")    // likewise
	f([]string{"0.0.0.0/0", "::/0"}, "0.0.0.0/0 ::/0", "") // everyone, spelled out
	f([]string{"10.0.0.0/8,bogus"}, "", `"bogus"`)         // names the bad item
	f([]string{"10.0.0.0/33"}, "", `"10.0.0.0/33"`)        // bits out of range
	f([]string{"10.0.0.0/8,"}, "", "empty")                // stray comma
	f([]string{""}, "", "empty")                           // an empty repeat
	f([]string{"fe80::1%eth0"}, "", "zone")                // zones cannot match
	f([]string{"::ffff:0.0.0.0/80"}, "", "at least /96")   // mapped but wider than IPv4
	f([]string{"example.com"}, "", `"example.com"`)        // no names
	f([]string{"10.0.0.0/8/8"}, "", `"10.0.0.0/8/8"`)      // garbage after a prefix
	f([]string{" 10.0.0.1 ,\t10.0.0.2"}, "10.0.0.1/32 10.0.0.2/32", "")
}

func TestAllowListAllows(t *testing.T) {
	l, err := ParseAllowList([]string{"10.0.0.0/8", "2001:db8::/32"})
	if err != nil {
		t.Fatal(err)
	}
	f := func(addr string, want bool) {
		t.Helper()
		if got := allowList(l).allows(netip.MustParseAddr(addr)); got != want {
			t.Errorf("allows(%s) = %v, want %v", addr, got, want)
		}
	}
	f("10.1.2.3", true)
	f("::ffff:10.1.2.3", true) // an IPv4 client of a dual-stack listener
	f("11.0.0.1", false)
	f("2001:db8::1", true)
	f("2001:db8::1%eth0", true)
	f("2001:db9::1", false)
	f("::1", false)
	if !allowList(nil).allows(netip.MustParseAddr("192.0.2.1")) || !allowList(nil).allows(netip.Addr{}) {
		t.Error("an empty list must allow everyone")
	}
}

// FuzzParseAllowList checks that whatever parses is canonical (its String
// parses back to itself) and matches like a naive bit-by-bit comparison.
func FuzzParseAllowList(f *testing.F) {
	for _, s := range []string{"10.0.0.0/8", "10.1.2.3/8,::1", "::ffff:10.0.0.0/104", "fe80::1%eth0", "", ",",
		"0.0.0.0/0", "::/0", "1.2.3.4/32 , 5.6.7.8", "::ffff:1.2.3.4/128", "10.0.0.0/-1", "1.2.3.4/08"} {
		f.Add(s, "10.1.2.3")
	}
	f.Fuzz(func(t *testing.T, entry, probe string) {
		l, err := ParseAllowList([]string{entry})
		if err != nil {
			if !strings.Contains(err.Error(), "syslog: allow-list entry") {
				t.Fatalf("error %q does not name the entry", err)
			}
			return
		}
		if len(l) == 0 {
			t.Fatal("a parsed entry gave no prefix")
		}
		for _, p := range l {
			if !p.IsValid() || p != p.Masked() || p.Addr().Is4In6() || p.Addr().Zone() != "" {
				t.Fatalf("prefix %v is not canonical", p)
			}
			again, err := ParseAllowList([]string{p.String()})
			if err != nil || len(again) != 1 || again[0] != p {
				t.Fatalf("%v does not parse back: %v %v", p, again, err)
			}
		}
		a, err := netip.ParseAddr(probe)
		if err != nil {
			return
		}
		if got, want := allowList(l).allows(a), naiveAllows(l, a); got != want {
			t.Fatalf("allows(%v) = %v with %v, naive %v", a, got, l, want)
		}
	})
}

// naiveAllows compares the leading bits of 16-byte forms one by one.
func naiveAllows(l []netip.Prefix, a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range l {
		if p.Addr().Is4() != a.Is4() {
			continue
		}
		pb, ab := p.Addr().AsSlice(), a.AsSlice()
		ok := true
		for i := 0; i < p.Bits(); i++ {
			if pb[i/8]>>(7-i%8)&1 != ab[i/8]>>(7-i%8)&1 {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func TestAllowListRefusesTCPAndUDP(t *testing.T) {
	sink := &fakeSink{}
	cfg := testConfig(t)
	cfg.Allow = []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}
	s := startServer(t, cfg, sink)

	// From 127.0.0.1: closed at accept, dropped.
	c := dialTCP(t, s)
	c.Write([]byte("<13>Oct 11 22:14:15 host app: refused\n"))
	waitClosed(t, c)
	u := dialUDP(t, s)
	write(t, u, "<13>Oct 11 22:14:15 host app: dropped")
	waitFor(t, "refusals counted", func() bool {
		st := s.Stats()
		return st.TCP.NotAllowed == 1 && st.UDP.NotAllowed == 1
	})

	// From 127.0.0.2: stored.
	local := &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}
	d := net.Dialer{LocalAddr: local}
	c2, err := d.Dial("tcp", s.TCPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	write(t, c2, "<13>Oct 11 22:14:15 host app: allowed tcp\n")
	u2, err := net.DialUDP("udp", &net.UDPAddr{IP: local.IP}, s.UDPAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer u2.Close()
	write(t, u2, "<13>Oct 11 22:14:15 host app: allowed udp")
	recs := sink.waitRecords(t, 2)
	for _, r := range recs {
		if !strings.HasPrefix(r.Message, "allowed") {
			t.Errorf("stored %q", r.Message)
		}
	}
	if st := s.Stats(); st.TCP.ConnectionsAccepted != 1 || st.TCP.NotAllowed != 1 || st.UDP.NotAllowed != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestMaxConnectionsPerSource(t *testing.T) {
	sink := &fakeSink{}
	cfg := testConfig(t)
	cfg.MaxConnections, cfg.MaxConnectionsPerSource = 4, 2
	s := startServer(t, cfg, sink)
	c1, c2 := dialTCP(t, s), dialTCP(t, s)
	write(t, c1, "<13>Oct 11 22:14:15 host app: one\n")
	write(t, c2, "<13>Oct 11 22:14:15 host app: two\n")
	sink.waitRecords(t, 2)
	c3 := dialTCP(t, s) // a third from 127.0.0.1
	waitClosed(t, c3)

	// Another source still gets in.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.3")}}
	c4, err := d.Dial("tcp", s.TCPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c4.Close()
	write(t, c4, "<13>Oct 11 22:14:15 host app: other source\n")
	sink.waitRecords(t, 3)
	if st := s.Stats().TCP; st.ConnectionsRejected != 1 || st.ConnectionsOpen != 3 {
		t.Errorf("stats %+v", st)
	}
	c1.Close()
	waitFor(t, "the slot of c1", func() bool { return s.Stats().TCP.ConnectionsOpen == 2 })
	c5 := dialTCP(t, s)
	write(t, c5, "<13>Oct 11 22:14:15 host app: five\n")
	sink.waitRecords(t, 4)
}
