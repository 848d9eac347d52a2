package peer

import (
	"errors"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/logmesh/logmesh/netlimit"
)

// apiConnCaps returns the caps of API connections: the configured ones,
// the total kept under a quarter of the descriptor limit so the store,
// gossip and syslog always have descriptors left.
func apiConnCaps(total, perHost int) (int, int) {
	if q := descriptorQuarter(); q > 0 && q < total {
		// one host keeps the share of the total it was given
		perHost = min(perHost, max(1, int(int64(q)*int64(perHost)/int64(total))))
		total = q
	}
	return total, min(perHost, total)
}

// descriptorQuarter is a quarter of the process's descriptor limit (0:
// unknown). The API and the syslog listeners each keep under it, leaving
// half for the store's files, gossip and peer connections.
func descriptorQuarter() int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur > 0 {
		return int(min(lim.Cur/4, 1<<30))
	}
	return 0
}

// idleDeadlines ends a request whose client stops sending its body or stops
// reading the answer for longer than idle: the connection's read and write
// deadlines move forward with every read and write.
func idleDeadlines(idle time.Duration, next http.Handler) http.Handler {
	if idle <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = &idleBody{ReadCloser: r.Body, d: deadline{set: rc.SetReadDeadline, idle: idle}}
		}
		next.ServeHTTP(&idleWriter{ResponseWriter: w, d: deadline{set: rc.SetWriteDeadline, idle: idle}}, r)
	})
}

// deadline moves a connection deadline to now+idle once less than half of
// idle is left (not on every call: each move is a timer update).
type deadline struct {
	set   func(time.Time) error
	idle  time.Duration
	until time.Time
}

func (d *deadline) touch() {
	now := time.Now()
	if d.until.Sub(now) < d.idle/2 {
		d.until = now.Add(d.idle)
		_ = d.set(d.until) // not supported (HTTP/2 stream): the server's own timeouts apply
	}
}

type idleBody struct {
	io.ReadCloser
	d    deadline
	done bool
}

func (b *idleBody) Read(p []byte) (int, error) {
	if b.done {
		return b.ReadCloser.Read(p)
	}
	b.d.touch()
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) {
		// the body is read: from here net/http reads the connection in the
		// background to notice the client leaving, and a deadline set now
		// would cancel the request (a long answer) when it passed. (After
		// a timeout the passed deadline stays: the connection is done.)
		b.done = true
		_ = b.d.set(time.Time{})
	}
	return n, err
}

type idleWriter struct {
	http.ResponseWriter
	d deadline
}

func (w *idleWriter) Write(p []byte) (int, error) {
	w.d.touch()
	return w.ResponseWriter.Write(p)
}

func (w *idleWriter) Flush() {
	w.d.touch()
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *idleWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// listenAPI opens the API's TCP listener under the connection caps.
func (p *Peer) listenAPI() (net.Listener, error) {
	ln, err := net.Listen("tcp", p.cfg.APIAddr)
	if err != nil {
		return nil, err
	}
	total, perHost := apiConnCaps(p.cfg.APIMaxConns, p.cfg.APIMaxConnsPerHost)
	p.apiLimit = netlimit.Wrap(ln, total, perHost)
	return p.apiLimit, nil
}
