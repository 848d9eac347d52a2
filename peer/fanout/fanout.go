package fanout

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/logmesh/logmesh/gossip"
	"github.com/logmesh/logmesh/peer/link"
	"github.com/logmesh/logmesh/peer/view"
	"github.com/logmesh/logmesh/query"
	"github.com/logmesh/logmesh/record"
	"github.com/logmesh/logmesh/wire"
)

// Coverage headers of query answers. A trailer of the same name overrides
// the header when a peer failed while the answer was streaming.
const (
	HeaderCoverage = "X-Logmesh-Coverage" // "full" or "partial"
	HeaderMissing  = "X-Logmesh-Missing"  // partitions no complete owner answered for, comma-separated
	HeaderUnread   = "X-Logmesh-Unread"   // peers not read that may hold records not yet on their owners: name@RFC3339[,…]
)

// Config configures a Fanout.
type Config struct {
	Self string
	View func() *view.View
	Link *link.Client
	// SelfComplete and SelfCutoff describe this peer (fresher than its tags).
	SelfComplete func(record.Partition) bool
	SelfCutoff   func() record.Window
	// Local opens this peer's part of an answer.
	Local func(ctx context.Context, q query.Query, req Request) Source
	// OpenTimeout bounds how long a peer may take to start answering
	// (default 5s); one that does not is replaced or counted unread.
	OpenTimeout time.Duration
	Logger      *slog.Logger
	Now         func() time.Time

	// duplicate makes answers repeat every record (see WithDuplicates).
	duplicate bool
}

// WithDuplicates returns cfg with a deliberately broken merge that repeats
// every record, for the checker's own tests.
func WithDuplicates(cfg Config) Config {
	cfg.duplicate = true
	return cfg
}

// Fanout answers queries from the cluster.
type Fanout struct{ cfg Config }

// New returns a Fanout.
func New(cfg Config) *Fanout {
	if cfg.OpenTimeout <= 0 {
		cfg.OpenTimeout = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Fanout{cfg: cfg}
}

// Unread is a peer that was not read and may hold records, received after
// Since, that are not yet on their owners.
type Unread struct {
	Peer  string
	Since time.Time // zero: anything
}

// Coverage says how much of the cluster's data an answer covers.
type Coverage struct {
	Missing []record.Partition
	Unread  []Unread
	// Failed is set when a peer failed while the answer streamed.
	Failed error
}

// Full reports whether nothing may be missing.
func (c *Coverage) Full() bool { return len(c.Missing) == 0 && len(c.Unread) == 0 && c.Failed == nil }

// Header sets the coverage headers (or trailers) on h.
func (c *Coverage) Header(h http.Header) {
	if c.Full() {
		h.Set(HeaderCoverage, "full")
		return
	}
	h.Set(HeaderCoverage, "partial")
	if len(c.Missing) > 0 {
		s := make([]string, len(c.Missing))
		for i, p := range c.Missing {
			s[i] = fmt.Sprint(p)
		}
		h.Set(HeaderMissing, strings.Join(s, ","))
	}
	if len(c.Unread) > 0 {
		h.Set(HeaderUnread, FormatUnread(c.Unread))
	}
}

// FormatUnread is the HeaderUnread value.
func FormatUnread(us []Unread) string {
	s := make([]string, len(us))
	for i, u := range us {
		since := "-"
		if !u.Since.IsZero() {
			since = u.Since.UTC().Format(time.RFC3339Nano)
		}
		s[i] = u.Peer + "@" + since
	}
	return strings.Join(s, ",")
}

// Answer is an opened query: its sources and its coverage so far.
type Answer struct {
	Sources  []Named
	Coverage Coverage
	query    query.Query
	dup      bool
}

// Open asks every peer for its part of q and returns once every answer has
// started (or failed): a peer that fails now is replaced by another complete
// owner of its partitions where one exists.
func (f *Fanout) Open(ctx context.Context, q query.Query) *Answer {
	v := f.cfg.View()
	el := Eligibility{SelfComplete: f.cfg.SelfComplete}
	if f.cfg.SelfCutoff != nil {
		el.SelfCutoff = f.cfg.SelfCutoff()
	}
	from, to := q.Range()
	el.From = record.WindowOf(from)
	// records up to the end of the range matter; without one, any record
	// (not "until now": now is a clock, and records carry other peers')
	until := time.Unix(1<<40, 0)
	if to > 0 {
		until = time.UnixMilli(to)
	}
	failed := map[string]bool{}
	var pl Plan
	var sources []Named
	for attempt := 0; attempt < 3; attempt++ {
		for _, s := range sources {
			s.Close()
		}
		sources = sources[:0]
		pl = MakePlan(v, failed, el)
		var mu sync.Mutex
		var wg sync.WaitGroup
		var failedNow []string // merged into failed once every goroutine is done
		for name := range v.Members {
			if failed[name] || !v.Readable(name) {
				continue
			}
			req := RequestFor(v, &pl, name)
			if req.Empty() {
				continue
			}
			if name == v.Self {
				s := f.cfg.Local(ctx, q, req)
				mu.Lock()
				sources = append(sources, Named{name, s})
				mu.Unlock()
				continue
			}
			wg.Add(1)
			go func(name string, req Request) {
				defer wg.Done()
				s, err := f.remote(ctx, name, q, req)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					f.cfg.Logger.Warn("query: peer did not answer", "peer", name, "err", err)
					failedNow = append(failedNow, name)
					return
				}
				sources = append(sources, Named{name, s})
			}(name, req)
		}
		wg.Wait()
		retry := false
		for _, name := range failedNow {
			failed[name] = true
			retry = retry || pl.Assigned[name] != nil
		}
		if !retry {
			break
		}
	}
	if f.cfg.Logger.Enabled(ctx, slog.LevelDebug) {
		// which peer each partition was read from, for replaying a wrong answer
		args := []any{"view_gen", v.Gen, "missing", len(pl.Missing)}
		for _, name := range slices.Sorted(maps.Keys(pl.Assigned)) {
			args = append(args, name, pl.Assigned[name].String())
		}
		f.cfg.Logger.Debug("query plan", args...)
	}
	a := &Answer{Sources: sources, query: q, dup: f.cfg.duplicate}
	a.Coverage.Missing = pl.Missing
	for p, o := range pl.Owner { // assigned to a peer that failed in the last attempt
		if o != "" && failed[o] {
			a.Coverage.Missing = append(a.Coverage.Missing, record.Partition(p))
		}
	}
	slices.Sort(a.Coverage.Missing)
	read := map[string]bool{}
	for _, s := range sources {
		read[s.Name] = true
	}
	for name, m := range v.Members {
		if name == v.Self || read[name] {
			continue
		}
		if m.Status == gossip.StatusLeft && v.Info[name].DeliveredAll {
			continue
		}
		if v.Unique(name, until) {
			a.Coverage.Unread = append(a.Coverage.Unread, Unread{Peer: name, Since: v.Info[name].Delivered})
		}
	}
	for name, in := range v.Departed { // forgotten by gossip, not by this peer
		if _, member := v.Members[name]; !member && v.Unique(name, until) {
			a.Coverage.Unread = append(a.Coverage.Unread, Unread{Peer: name, Since: in.Delivered})
		}
	}
	sort.Slice(a.Coverage.Unread, func(i, j int) bool { return a.Coverage.Unread[i].Peer < a.Coverage.Unread[j].Peer })
	return a
}

// Stream merges the answer into fn. A peer that fails while streaming ends
// the answer early and marks it partial (Coverage.Failed); the error
// returned is fn's or the context's.
func (a *Answer) Stream(fn func(record.ID, []byte) error) error {
	emit := fn
	if a.dup {
		emit = func(id record.ID, data []byte) error {
			if err := fn(id, data); err != nil {
				return err
			}
			return fn(id, data)
		}
	}
	err := Merge(a.Sources, !a.query.Ascending, a.query.Limit, emit)
	var se *SourceError
	if errors.As(err, &se) {
		a.Coverage.Failed = err
		return nil
	}
	return err
}

// Close releases every source.
func (a *Answer) Close() {
	for _, s := range a.Sources {
		s.Close()
	}
}

// EncodeRequest puts req into a query's URL parameters.
func EncodeRequest(params url.Values, req Request) {
	params.Set("partitions", req.Parts.String())
	owners := make([]string, 0, len(req.Recent))
	for o := range req.Recent {
		owners = append(owners, o)
	}
	sort.Strings(owners)
	for _, o := range owners {
		params.Add("recent", o+":"+req.Recent[o].String())
	}
	if req.IDsOnly {
		params.Set("ids_only", "true")
	}
}

// DecodeRequest reads what EncodeRequest wrote (nil when the query is not
// a fan-out part) and removes it from params.
func DecodeRequest(params url.Values) (*Request, error) {
	ps, rs, ids := params.Get("partitions"), params["recent"], params.Get("ids_only")
	params.Del("partitions")
	params.Del("recent")
	params.Del("ids_only")
	if ps == "" && len(rs) == 0 && ids == "" {
		return nil, nil
	}
	req := &Request{}
	if ids != "" {
		v, err := strconv.ParseBool(ids)
		if err != nil {
			return nil, fmt.Errorf("ids_only=%q: %w", ids, err)
		}
		req.IDsOnly = v
	}
	if ps != "" {
		m, err := view.ParseMask(ps)
		if err != nil {
			return nil, fmt.Errorf("partitions: %w", err)
		}
		req.Parts = *m
	}
	for _, r := range rs {
		o, ms, ok := strings.Cut(r, ":")
		if !ok || o == "" {
			return nil, fmt.Errorf("recent=%q: want OWNER:MASK", r)
		}
		m, err := view.ParseMask(ms)
		if err != nil {
			return nil, fmt.Errorf("recent: %w", err)
		}
		if req.Recent == nil {
			req.Recent = map[string]*view.Mask{}
		}
		req.Recent[o] = m
	}
	return req, nil
}

// remote asks a peer for its part of the answer.
func (f *Fanout) remote(ctx context.Context, name string, q query.Query, req Request) (Source, error) {
	lq := q
	lq.Local = true
	params := lq.Values()
	req.IDsOnly = q.Count
	EncodeRequest(params, req)
	ctx, cancel := context.WithCancel(ctx)
	timer := time.AfterFunc(f.cfg.OpenTimeout, cancel)
	resp, err := f.cfg.Link.Do(ctx, name, http.MethodGet, "/v1/logs?"+params.Encode(), nil,
		http.Header{"Accept": {wire.ContentType}})
	if !timer.Stop() && err == nil {
		resp.Body.Close()
		err = fmt.Errorf("%s did not start answering within %v", name, f.cfg.OpenTimeout)
	}
	if err != nil {
		cancel()
		return nil, err
	}
	rd, err := wire.NewReader(resp.Body)
	if err != nil {
		resp.Body.Close()
		cancel()
		return nil, err
	}
	return &remote{name: name, body: resp.Body, rd: rd, cancel: cancel}, nil
}

type remote struct {
	name   string
	body   io.ReadCloser
	rd     *wire.Reader
	cancel context.CancelFunc
}

func (s *remote) Next() (record.ID, []byte, error) {
	f, err := s.rd.Next() // a stream cut before its trailer is wire.ErrIncomplete
	if err == io.EOF {
		return record.ID{}, nil, io.EOF
	}
	if err != nil {
		return record.ID{}, nil, fmt.Errorf("peer %s: %w", s.name, err)
	}
	switch f.Kind {
	case wire.KindRecord:
		return f.ID, f.Data, nil
	case wire.KindError:
		return record.ID{}, nil, fmt.Errorf("peer %s: %s", s.name, f.Data)
	}
	return record.ID{}, nil, io.EOF
}

func (s *remote) Close() {
	s.cancel()
	s.body.Close()
}
