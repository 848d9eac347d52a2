package chaos

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/logmesh/logmesh/client"
	"github.com/logmesh/logmesh/record"
	"github.com/logmesh/logmesh/sample"
)

// Transport of a write.
const (
	viaHTTP1      = "http-w1"
	viaHTTPQuorum = "http-quorum"
	viaTCP        = "syslog-tcp"
	viaUDP        = "syslog-udp"
)

// Outcome of a write, as Jepsen names them: ok (acknowledged), fail (surely
// not done: refused before anything was stored) and info (indeterminate:
// maybe done). Syslog writes are never acknowledged: info at best.
const (
	outcomeOK   = "ok"
	outcomeFail = "fail"
	outcomeInfo = "info"
)

// write is one attempted record.
type write struct {
	Tag     string
	Peer    string
	Via     string
	Outcome string
	ID      record.ID // from the acknowledgement, HTTP only
	Latency time.Duration
}

// history collects the writes of a run.
type history struct {
	mu     sync.Mutex
	writes map[string]*write
}

func (h *history) add(ws ...*write) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, w := range ws {
		h.writes[w.Tag] = w
	}
}

// settle records the outcome of writes (under the lock: the continuous
// checker reads outcomes while writes go on).
func (h *history) settle(ws []*write, outcome string, lat time.Duration, ids []record.ID) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, x := range ws {
		x.Outcome, x.Latency = outcome, lat
		if i < len(ids) {
			x.ID = ids[i]
		}
	}
}

// acknowledged returns the tags of the writes acknowledged so far.
func (h *history) acknowledged() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for tag, w := range h.writes {
		if w.Outcome == outcomeOK {
			out = append(out, tag)
		}
	}
	return out
}

// receivers counts tags by the peer and transport they were written
// through ("p2/http 120, p3/syslog-tcp 14"): where records an answer lacked
// came in says which peer's copies or backlog it missed.
// partitions names the record ID and partition of the writes among tags
// that were acknowledged with one (HTTP), for reading an agent's
// "query plan" debug line against them.
func (h *history) partitions(tags []string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var parts []string
	for _, tag := range tags {
		if w := h.writes[tag]; w != nil && w.ID != (record.ID{}) {
			parts = append(parts, fmt.Sprintf("%s=%s partition %d", tag, w.ID, w.ID.Partition()))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

func (h *history) receivers(tags []string) string {
	h.mu.Lock()
	n := map[string]int{}
	for _, tag := range tags {
		if w := h.writes[tag]; w != nil {
			n[w.Peer+"/"+w.Via]++
		}
	}
	h.mu.Unlock()
	keys := slices.Sorted(maps.Keys(n))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, n[k])
	}
	return strings.Join(parts, ", ")
}

// workload writes batches of unique records through every peer and every
// transport until stopped.
type workload struct {
	target  Target
	run     string
	hist    *history
	writers int
	batch   int
	pace    time.Duration
	// noWrites names peers that take no client writes.
	noWrites []string
}

func (w *workload) tagPrefix() string { return "chk " + w.run + " " }

func (w *workload) start(ctx context.Context, seed uint64) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i := 0; i < w.writers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			w.writer(ctx, i, rand.New(rand.NewPCG(seed, uint64(i))))
		}(i)
	}
	return func() { cancel(); wg.Wait() }
}

func (w *workload) writer(ctx context.Context, id int, rng *rand.Rand) {
	var names []string
	for _, n := range w.target.Names() {
		if !slices.Contains(w.noWrites, n) {
			names = append(names, n)
		}
	}
	gen := sample.New(uint64(id))
	tcp := map[string]net.Conn{}
	defer func() {
		for _, c := range tcp {
			c.Close()
		}
	}()
	for n := 0; ctx.Err() == nil; n++ {
		peer := names[rng.IntN(len(names))]
		var via string
		switch r := rng.IntN(10); {
		case r < 4:
			via = viaHTTP1
		case r < 7:
			via = viaHTTPQuorum
		case r < 9:
			via = viaTCP
		default:
			via = viaUDP
		}
		ws := make([]*write, w.batch)
		for k := range ws {
			ws[k] = &write{Tag: fmt.Sprintf("w%d-%d-%d", id, n, k), Peer: peer, Via: via, Outcome: outcomeInfo}
		}
		w.hist.add(ws...)
		if w.target.Running(peer) {
			switch via {
			case viaHTTP1, viaHTTPQuorum:
				w.httpWrite(ctx, peer, via, ws, gen)
			case viaTCP:
				w.tcpWrite(peer, ws, gen, tcp)
			case viaUDP:
				w.udpWrite(peer, ws, gen)
			}
		} else {
			w.hist.settle(ws, outcomeFail, 0, nil) // refused: the peer is down
		}
		select {
		case <-ctx.Done():
		case <-time.After(w.pace):
		}
	}
}

func (w *workload) line(x *write, gen *sample.Generator) string {
	e := gen.Event(time.Now())
	return fmt.Sprintf("<%d>1 %s %s %s %d - - %s%s", e.Facility*8+e.Severity, time.Now().UTC().Format(time.RFC3339Nano),
		e.Host, e.App, e.ProcID, w.tagPrefix(), x.Tag)
}

func (w *workload) httpWrite(ctx context.Context, peer, via string, ws []*write, gen *sample.Generator) {
	var b strings.Builder
	for _, x := range ws {
		fmt.Fprintf(&b, "{\"message\":%q}\n", w.tagPrefix()+x.Tag)
	}
	cl, err := newClient(w.target, peer)
	if err != nil {
		return
	}
	params := url.Values{"ids": {"true"}, "timeout": {"3s"}}
	if via == viaHTTPQuorum {
		params.Set("w", "quorum")
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	start := time.Now()
	resp, err := cl.Ingest(rctx, []byte(b.String()), "application/x-ndjson", params)
	lat := time.Since(start)
	if err != nil {
		// a refusal before the peer stored anything is a fail; anything
		// else (timeouts, 504 for an unmet quorum, a dying peer) is info
		if se, ok := err.(*client.StatusError); ok && se.Code == 400 {
			w.hist.settle(ws, outcomeFail, 0, nil)
		}
		return
	}
	w.hist.settle(ws, outcomeOK, lat, resp.IDs)
}

func (w *workload) tcpWrite(peer string, ws []*write, gen *sample.Generator, conns map[string]net.Conn) {
	c := conns[peer]
	if c == nil {
		var err error
		if c, err = net.DialTimeout("tcp", w.target.Syslog(peer), time.Second); err != nil {
			return
		}
		conns[peer] = c
	}
	var b strings.Builder
	for _, x := range ws {
		b.WriteString(sample.OctetCounted(w.line(x, gen)))
	}
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte(b.String())); err != nil {
		c.Close()
		delete(conns, peer)
	}
}

func (w *workload) udpWrite(peer string, ws []*write, gen *sample.Generator) {
	c, err := net.Dial("udp", w.target.Syslog(peer))
	if err != nil {
		return
	}
	defer c.Close()
	for _, x := range ws {
		_, _ = c.Write([]byte(w.line(x, gen)))
	}
}
