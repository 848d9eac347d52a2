package peer

import (
	"context"
	"net"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/logmesh/logmesh/peer/link"
	"github.com/logmesh/logmesh/tlsutil"
)

// queryLimiter caps the queries running at once, in all and per client
// host, so that one client (or a script gone wrong) cannot take every
// core and the memory of every merge. Members' calls (fan-out parts) are
// not counted: they belong to a query a peer already admitted.
type queryLimiter struct {
	total, perHost int
	refused        atomic.Uint64

	mu    sync.Mutex
	n     int
	hosts map[string]int
}

func newQueryLimiter(total, perHost int) *queryLimiter {
	return &queryLimiter{total: total, perHost: perHost, hosts: map[string]int{}}
}

// acquire admits a query of host, or reports that a cap is reached.
func (l *queryLimiter) acquire(host string) (release func(), ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if (l.total > 0 && l.n >= l.total) || (l.perHost > 0 && l.hosts[host] >= l.perHost) {
		l.refused.Add(1)
		return nil, false
	}
	l.n++
	l.hosts[host]++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			l.n--
			if l.hosts[host]--; l.hosts[host] <= 0 {
				delete(l.hosts, host)
			}
			l.mu.Unlock()
		})
	}, true
}

// running is the number of queries admitted and not yet released.
func (l *queryLimiter) running() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

type memberCallKey struct{}

// withMemberCall marks the request as a member's call (the guard knows).
func withMemberCall(r *http.Request) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), memberCallKey{}, true))
}

func isMemberCall(r *http.Request) bool {
	v, _ := r.Context().Value(memberCallKey{}).(bool)
	return v
}

// memberCaller reports whether r comes from another member: by its peer
// certificate (TLS), by its signature (gossip key: a holder of the key), or, with neither, by
// naming a member whose advertised API host is the address it calls from
// (which anyone on that host could claim: there is no secret to check).
func (p *Peer) memberCaller(r *http.Request) bool {
	if p.sec.tls != nil {
		name := tlsutil.PeerName(r.TLS)
		return name != "" && name != p.cfg.Name && p.cluster.isMember(name)
	}
	from := r.Header.Get(link.HeaderFrom)
	if from == "" || from == p.cfg.Name {
		return false
	}
	if keys := p.dataPlaneKeys(); len(keys) > 0 {
		// the key proves it: membership is not asked for, since whoever
		// holds the key can join, and a peer that has just joined is not
		// in every view yet
		return link.Verify(r, keys)
	}
	if !p.cluster.isMember(from) {
		return false
	}
	apiHost, _, err := net.SplitHostPort(p.cluster.view().APIAddr(from))
	return err == nil && apiHost == remoteHost(r)
}

func remoteHost(r *http.Request) string {
	h, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return h
}
