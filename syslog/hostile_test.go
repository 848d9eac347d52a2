package syslog

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/logmesh/logmesh/record"
)

// Hostile-input tests. Each runs in seconds under -short; LOGMESH_SOAK=1
// runs the long variants (LOGMESH_SOAK_DURATION, default 60s, bounds the
// storm) and logs their figures.

func soak() bool { return os.Getenv("LOGMESH_SOAK") == "1" }

func soakDuration() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("LOGMESH_SOAK_DURATION")); err == nil && d > 0 {
		return d
	}
	return 60 * time.Second
}

// cleanLine is line i of clean sender id, without framing.
func cleanLine(id, i int) string {
	return fmt.Sprintf("<14>1 2025-01-01T00:00:00.000Z host clean - - - clean%d-%09d keep every byte of me", id, i)
}

// countingSink checks clean senders' records against cleanLine as they are
// stored and only counts the others, so the test's own memory stays flat:
// each clean sender uses one connection, whose records arrive in order, so
// a next-expected line number per sender finds every loss, duplicate and
// reordering.
type countingSink struct {
	mu    sync.Mutex
	next  [2]int   // the clean line expected next, by sender; guarded by mu
	bad   []string // clean records lost, repeated or changed; guarded by mu
	other atomic.Uint64
}

func newCountingSink() *countingSink { return &countingSink{} }

func (s *countingSink) Ingest(ctx context.Context, recs []*record.Record) error {
	for _, r := range recs {
		id, i, ok := cleanTag(r.Raw)
		if !ok {
			s.other.Add(1)
			continue
		}
		s.mu.Lock()
		if i != s.next[id] && len(s.bad) < 10 {
			s.bad = append(s.bad, fmt.Sprintf("sender %d: line %d stored after line %d", id, i, s.next[id]-1))
		}
		s.next[id] = i + 1
		if want := cleanLine(id, i); (string(r.Raw) != want || r.Reason != record.ReasonNone) && len(s.bad) < 10 {
			s.bad = append(s.bad, fmt.Sprintf("%q (%v), want %q", r.Raw, r.Reason, want))
		}
		s.mu.Unlock()
	}
	return nil
}

// cleanTag finds "clean<id>-<n>" in the message part of a clean line.
func cleanTag(raw []byte) (id, n int, ok bool) {
	const prefix = "<14>1 2025-01-01T00:00:00.000Z host clean - - - clean"
	if !bytes.HasPrefix(raw, []byte(prefix)) || len(raw) < len(prefix)+12 {
		return 0, 0, false
	}
	rest := raw[len(prefix):]
	id = int(rest[0] - '0')
	if id < 0 || id > 1 || rest[1] != '-' {
		return 0, 0, false
	}
	n, err := strconv.Atoi(string(rest[2:11]))
	return id, n, err == nil
}

// stored reports whether sender id's lines 0..n-1, and no more, arrived.
func (s *countingSink) stored(id, n int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.next[id] == n
}

// corpusItem is one hostile input, sent on a connection of its own: data,
// repeated, with the write side closed after it (or not, to leave the frame
// to a timeout).
type corpusItem struct {
	name   string
	data   []byte
	repeat int
}

func item(name, data string) corpusItem { return corpusItem{name, []byte(data), 1} }

// hostileCorpus holds the framing and parser edge cases of the field notes.
func hostileCorpus() []corpusItem {
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 8<<10)
	for i := range random {
		random[i] = byte(rng.UintN(256))
	}
	line := func(n int) corpusItem { // n bytes of one line without LF, sent in 64 KiB writes
		chunk := bytes.Repeat([]byte("A"), 64<<10)
		copy(chunk, "<13>Oct 11 22:14:15 host app: ")
		return corpusItem{fmt.Sprintf("%d MiB line without LF", n>>20), chunk, n / len(chunk)}
	}
	return []corpusItem{
		item("missing PRI", "no pri at all\nOct 11 22:14:15 host app: still no pri\n"),
		item("PRI 192", "<192>Oct 11 22:14:15 host app: x\n"),
		item("PRI 999", "<999>1 2003-10-11T22:14:15Z h a - - - x\n"),
		item("PRI empty and zeros", "<>x\n<0013>x\n<013>1 - - - - - - ok\n"),
		item("count above data", "99999 <13>Oct 11 22:14:15 host app: short"),
		item("20-digit count", "12345678901234567890 <13>x\n"),
		item("leading zero count", "05 <13>hello\n0 \n00000000000000000000000000 <13>x\n"),
		item("no SP after count", "12<34>x\n"),
		item("negative count", "-5 <13>x\n"),
		item("count over the limit", "20000 <13>"+strings.Repeat("z", 19996)),
		item("NUL frames", "4\x00  \n<13>a\x00b\n\x00\x00\x00\n\x00"),
		item("invalid UTF-8 after BOM", "<14>1 2003-10-11T22:14:15Z h a - - - \xEF\xBB\xBF\xff\xfe\xc3\x28\n"),
		item("bad SD escapes", `<14>1 2003-10-11T22:14:15Z h a - - [x@1 a="\q\"] m`+"\n"+
			`<14>1 2003-10-11T22:14:15Z h a - - [x@1 a="b" unterminated`+"\n"+`<14>1 2003-10-11T22:14:15Z h a - - [x@1 a="]"][x@1] dup`+"\n"),
		item("CR LF and embedded CR", "<13>Oct 11 22:14:15 host app: a\r\r\n\r\n"),
		item("empty lines", "\n\n\n\n"),
		item("leap second", "<14>1 2016-12-31T23:59:60Z h a - - - leap\n"),
		{"random bytes", random, 4},
		line(1 << 20),
		line(64 << 20),
	}
}

func TestHostileMalformedStorm(t *testing.T) {
	const maxMsg, maxConns = 16 << 10, 16
	cfg := testConfig(t)
	cfg.Logger = nil // thousands of warnings would swamp the output
	cfg.MaxMessageBytes = maxMsg
	cfg.MaxConnections, cfg.MaxConnectionsPerSource = maxConns, maxConns
	cfg.MaxBatch = 64
	cfg.FrameTimeout = 30 * time.Second // a 64 MiB line must get through under -race
	sink := newCountingSink()

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	baseline := ms.HeapInuse
	var peak atomic.Uint64
	stopSampling := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stopSampling:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	})

	s := startServer(t, cfg, sink)
	addr := s.TCPAddr().String()
	corpus := hostileCorpus()
	rounds, until := 3, time.Time{}
	if soak() {
		rounds, until = 1<<30, time.Now().Add(soakDuration())
	}

	// Two clean senders: newline framing and octet counting, each on one
	// connection for the whole storm.
	var stormDone atomic.Bool
	sent := [2]int{}
	var senders sync.WaitGroup
	for id := range 2 {
		senders.Go(func() {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			var buf bytes.Buffer
			minLines := 2000
			for i := 0; i < minLines || (soak() && !stormDone.Load()); i++ {
				if id == 0 {
					buf.WriteString(cleanLine(id, i) + "\n")
				} else {
					buf.WriteString(octet(cleanLine(id, i)))
				}
				if buf.Len() > 4<<10 {
					if _, err := c.Write(buf.Bytes()); err != nil {
						t.Errorf("clean sender %d: %v", id, err)
						return
					}
					buf.Reset()
				}
				sent[id] = i + 1
			}
			if _, err := c.Write(buf.Bytes()); err != nil {
				t.Errorf("clean sender %d: %v", id, err)
			}
		})
	}

	// Eight hostile connections at a time, replaying the corpus.
	var items, refused atomic.Uint64
	var storm sync.WaitGroup
	for w := range 8 {
		storm.Go(func() {
			for r := 0; r < rounds && (until.IsZero() || time.Now().Before(until)); r++ {
				for i := w; i < len(corpus); i += 8 {
					if !sendItem(t, addr, corpus[i]) {
						refused.Add(1)
					}
					items.Add(1)
				}
			}
		})
	}
	// UDP: empty and jumbo datagrams, and the small corpus items.
	storm.Go(func() {
		u, err := net.Dial("udp", s.UDPAddr().String())
		if err != nil {
			t.Error(err)
			return
		}
		defer u.Close()
		jumbo := bytes.Repeat([]byte("J"), 65507)
		copy(jumbo, "<13>Oct 11 22:14:15 host app: ")
		for r := 0; r < rounds*20 && (until.IsZero() || time.Now().Before(until)); r++ {
			u.Write(nil)
			u.Write(jumbo)
			for _, it := range corpus {
				if len(it.data) < 8<<10 {
					u.Write(it.data)
				}
			}
			time.Sleep(time.Millisecond) // not a synchronisation: paces the sender below the kernel buffer
		}
	})
	start := time.Now()
	storm.Wait()
	stormDone.Store(true)
	senders.Wait()
	stormTime := time.Since(start)

	for id := range 2 {
		waitFor(t, fmt.Sprintf("clean sender %d's %d lines", id, sent[id]), func() bool { return sink.stored(id, sent[id]) })
	}
	close(stopSampling)
	sampler.Wait()
	sink.mu.Lock()
	if len(sink.bad) > 0 {
		t.Errorf("%d clean records differ from what was sent, first: %s", len(sink.bad), sink.bad[0])
	}
	sink.mu.Unlock()

	st := s.Stats()
	for _, reason := range []string{"no_pri", "bad_pri", "truncated", "framing", "empty", "bad_header"} {
		if st.TCP.Malformed[reason] == 0 {
			t.Errorf("no TCP message counted as %s: %v", reason, st.TCP.Malformed)
		}
	}
	if st.TCP.FramingErrors == 0 || st.TCP.DiscardedBytes < 64<<20 || st.UDP.Malformed["empty"] == 0 || st.UDP.Truncated == 0 {
		t.Errorf("stats %+v", st)
	}

	// Memory. Live per connection: the 32 KiB read buffer, the frame buffer
	// (at most maxMsg+1) and the raw bytes of two batches (the one being
	// parsed and the one being stored), each at most a read buffer of small
	// frames plus one frame: 96 KiB + 3 × maxMsg. UDP: the 64 KiB read
	// buffer and a queue of 4 × MaxBatch records of at most maxMsg.
	// HeapInuse also holds garbage until the next GC, which starts when the
	// whole heap, the baseline included, has doubled since the last one
	// (GOGC=100), and not below 4 MiB: hence 2 × live + baseline + 4 MiB.
	// With maxMsg 16 KiB that is about 17 MiB over the baseline; the 64
	// MiB line alone would break it if it were buffered.
	perConn := uint64(96<<10 + 3*maxMsg)
	live := maxConns*perConn + 64<<10 + 4*uint64(cfg.MaxBatch)*maxMsg
	bound := 2*live + baseline + 4<<20
	grew := peak.Load() - min(baseline, peak.Load())
	t.Logf("storm: %d hostile items (%d refused at connect) in %v; clean lines stored %d+%d of %d+%d; "+
		"heap in use peak %.1f MiB over a baseline of %.1f MiB (bound %.1f MiB); tcp %+v; udp %+v",
		items.Load(), refused.Load(), stormTime.Round(time.Millisecond), sink.next[0], sink.next[1], sent[0], sent[1],
		float64(grew)/(1<<20), float64(baseline)/(1<<20), float64(bound)/(1<<20), st.TCP, st.UDP)
	if grew > bound {
		t.Errorf("heap grew by %d bytes, bound %d", grew, bound)
	}
}

// sendItem sends one corpus item on a new connection, half-closes it and
// drains it until the server closes it; false if the server refused it.
func sendItem(t *testing.T, addr string, it corpusItem) bool {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Errorf("%s: %v", it.name, err)
		return false
	}
	defer c.Close()
	for range it.repeat {
		if _, err := c.Write(it.data); err != nil {
			return false // refused (cap) or closed for broken framing
		}
	}
	c.(*net.TCPConn).CloseWrite()
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.Copy(io.Discard, c); err != nil && !isReset(err) {
		t.Errorf("%s: the server did not close the connection: %v", it.name, err)
	}
	return true
}

func isReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "reset") || strings.Contains(err.Error(), "broken pipe"))
}
