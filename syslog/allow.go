package syslog

import (
	"fmt"
	"net/netip"
	"strings"
)

// ParseAllowList parses the entries of an allow-list: each entry is one or
// more comma-separated CIDR prefixes ("10.0.0.0/8", "2001:db8::/32") or single
// addresses ("192.0.2.7", which means /32, or /128 for IPv6). Spaces around
// an item are ignored. Host bits below the prefix length are cleared
// ("10.1.2.3/8" is 10.0.0.0/8). An IPv4-mapped IPv6 prefix
// ("::ffff:10.0.0.0/104") becomes the IPv4 prefix it maps, because the
// server compares sources in their IPv4 form. The error names the bad item.
// No entries means an empty list, which allows everyone.
func ParseAllowList(entries []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, e := range entries {
		for item := range strings.SplitSeq(e, ",") {
			p, err := parseAllowItem(strings.TrimSpace(item))
			if err != nil {
				return nil, fmt.Errorf("syslog: allow-list entry %q: %w", item, err)
			}
			out = append(out, p)
		}
	}
	return out, nil
}

func parseAllowItem(s string) (netip.Prefix, error) {
	if s == "" {
		return netip.Prefix{}, fmt.Errorf("empty (a stray comma?)")
	}
	var p netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		if p, err = netip.ParsePrefix(s); err != nil {
			return p, fmt.Errorf("not a CIDR prefix such as 10.0.0.0/8: %w", err)
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return p, fmt.Errorf("not an IP address or CIDR prefix: %w", err)
		}
		if a.Zone() != "" {
			return p, fmt.Errorf("an address with a zone (%%%s) cannot be matched", a.Zone())
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if a := p.Addr(); a.Is4In6() {
		if p.Bits() < 96 {
			return p, fmt.Errorf("an IPv4-mapped prefix needs at least /96")
		}
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

// allowList decides which sources may send. The zero value allows everyone.
type allowList []netip.Prefix

// allows reports whether addr may send: the list is empty or a prefix holds
// addr (in its IPv4 form when it is IPv4-mapped).
func (l allowList) allows(addr netip.Addr) bool {
	if len(l) == 0 {
		return true
	}
	addr = addr.Unmap().WithZone("")
	for _, p := range l {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}
