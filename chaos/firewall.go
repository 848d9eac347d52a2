package chaos

import (
	"fmt"
	"slices"
	"strings"
	"sync"
)

// firewall keeps the network faults of hosts with their own network stacks
// (network namespaces, containers) as nftables rules in each host: a cut
// link drops every packet between two addresses, TCP and UDP alike, in both
// hosts; loss drops a share of the packets arriving from one address; a slow
// link caps the bandwidth from one address (this kernel has no netem, so
// there is no added latency at these levels; see docs/testing.md).
//
// Each host's rules live in one table that is replaced atomically
// (`nft -f`), so healing removes exactly what was added and nothing else of
// the host's own ruleset is touched.
type firewall struct {
	// exec runs `nft -f -` with the given input in host's network namespace.
	exec func(host, input string) error
	// addr maps a host to its IPv4 address.
	addr func(host string) string

	mu   sync.Mutex
	cut  map[[2]string]bool    // unordered pair (sorted)
	api  map[[2]string]bool    // from → to: TCP to to's API port only
	loss map[[2]string]float64 // from → to
	slow map[[2]string]int     // from → to, kbytes/s
}

func newFirewall(exec func(host, input string) error, addr func(string) string) *firewall {
	return &firewall{exec: exec, addr: addr, cut: map[[2]string]bool{}, api: map[[2]string]bool{},
		loss: map[[2]string]float64{}, slow: map[[2]string]int{}}
}

const nftTable = "logmesh_chaos"

// render returns the nft script that makes host's table what the faults say.
func (f *firewall) render(host string) string {
	var in, out []string
	var pairs [][2]string
	for p := range f.cut {
		pairs = append(pairs, p)
	}
	slices.SortFunc(pairs, func(a, b [2]string) int { return strings.Compare(a[0]+a[1], b[0]+b[1]) })
	for _, p := range pairs {
		other := ""
		switch host {
		case p[0]:
			other = p[1]
		case p[1]:
			other = p[0]
		default:
			continue
		}
		in = append(in, fmt.Sprintf("ip saddr %s drop", f.addr(other)))
		out = append(out, fmt.Sprintf("ip daddr %s drop", f.addr(other)))
	}
	var extra []string
	for p := range f.api {
		switch host {
		case p[0]:
			out = append(out, fmt.Sprintf("ip daddr %s tcp dport %d drop", f.addr(p[1]), hostAPIPort))
		case p[1]:
			extra = append(extra, fmt.Sprintf("ip saddr %s tcp dport %d drop", f.addr(p[0]), hostAPIPort))
		}
	}
	for p, prob := range f.loss {
		if p[1] == host {
			extra = append(extra, fmt.Sprintf("ip saddr %s numgen random mod 100 < %d drop", f.addr(p[0]), int(prob*100)))
		}
	}
	for p, kbs := range f.slow {
		if p[1] == host {
			extra = append(extra, fmt.Sprintf("ip saddr %s limit rate over %d kbytes/second drop", f.addr(p[0]), kbs))
		}
	}
	slices.Sort(extra) // the same state gives the same script
	in = append(in, extra...)
	var b strings.Builder
	// creating the table first makes the delete valid when it is absent
	fmt.Fprintf(&b, "table inet %s\ndelete table inet %s\ntable inet %s {\n", nftTable, nftTable, nftTable)
	fmt.Fprintf(&b, "  chain in {\n    type filter hook input priority -10; policy accept;\n")
	for _, r := range in {
		fmt.Fprintf(&b, "    %s\n", r)
	}
	fmt.Fprintf(&b, "  }\n  chain out {\n    type filter hook output priority -10; policy accept;\n")
	for _, r := range out {
		fmt.Fprintf(&b, "    %s\n", r)
	}
	b.WriteString("  }\n}\n")
	return b.String()
}

// apply installs the rules of the given hosts.
func (f *firewall) apply(hosts ...string) error {
	for _, h := range hosts {
		if err := f.exec(h, f.render(h)); err != nil {
			return fmt.Errorf("firewall of %s: %w", h, err)
		}
	}
	return nil
}

func pair(a, b string) [2]string {
	if a > b {
		a, b = b, a
	}
	return [2]string{a, b}
}

// Partition cuts every link between different groups.
func (f *firewall) Partition(groups ...[]string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var touched []string
	for i, g := range groups {
		for _, h := range groups[i+1:] {
			for _, a := range g {
				for _, b := range h {
					f.cut[pair(a, b)] = true
				}
			}
		}
		touched = append(touched, g...)
	}
	return f.apply(touched...)
}

// CutAPI drops TCP from → to's API port, in both hosts; gossip is untouched.
func (f *firewall) CutAPI(from, to string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.api[[2]string{from, to}] = true
	return f.apply(from, to)
}

// Loss drops a share p of the packets from → to.
func (f *firewall) Loss(from, to string, p float64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.loss[[2]string{from, to}] = p
	return f.apply(to)
}

// Slow caps the bandwidth from → to at kbs kbytes/s.
func (f *firewall) Slow(from, to string, kbs int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.slow[[2]string{from, to}] = kbs
	return f.apply(to)
}

// Heal removes every fault from the given hosts.
func (f *firewall) Heal(hosts []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.cut)
	clear(f.api)
	clear(f.loss)
	clear(f.slow)
	return f.apply(hosts...)
}

// Reapply installs a host's rules again (a restarted container has a new
// network namespace).
func (f *firewall) Reapply(host string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.apply(host)
}
