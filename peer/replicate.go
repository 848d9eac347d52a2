package peer

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/logmesh/logmesh/api"
	"github.com/logmesh/logmesh/index"
	"github.com/logmesh/logmesh/record"
	"github.com/logmesh/logmesh/wire"
)

// Replication pushes the records this peer received to the other replicas
// of their partitions.
//
// There is no separate hint queue: the store's journal (the append-ordered
// log of every commit) is the queue, and each target peer has a durable
// cursor into it. A target's goroutine reads journal entries after its
// cursor, picks the locally received records that the target owns, pushes
// them in one binary batch and advances the cursor once the target has made
// them durable. The cursor survives restarts of either side and outages of
// any length; nothing is dropped after a time window. Records this peer does
// not own itself (hints) are deleted once every owner's cursor has passed
// them. When the backlog outgrows MaxHintsBytes, the peer with the largest
// backlog is skipped (its cursor jumps to the head) and anti-entropy repairs
// it instead; hints it never received are then kept until anti-entropy hands
// them over.
type replication struct {
	p      *Peer
	log    *slog.Logger
	client *http.Client

	mu struct {
		sync.Mutex
		targets map[string]*target
		// progress is closed and replaced whenever a cursor advances.
		progress chan struct{}
	}
	hintScan atomic.Uint64 // journal entries up to here were examined for hints
	tail     uint64        // journal entries up to here are counted in backlogs (manager goroutine only)
	counted  atomic.Uint64 // tail, for other goroutines
	skips    atomic.Uint64
	hintsDel atomic.Uint64
}

// target is one peer this one pushes to.
type target struct {
	name   string
	cancel context.CancelFunc
	done   chan struct{}

	mu struct {
		sync.Mutex
		// cursor: every journal entry up to it is handled for this target.
		cursor uint64
		// skippedBelow: entries up to it may not have reached the target
		// (it became a target after them, or its backlog overflowed).
		skippedBelow uint64
		lastErr      string
		lastErrAt    time.Time
		// marks count the records of journal entries meant for this
		// target: cum is the running total up to seq. The backlog is the
		// total minus the count up to the cursor, exactly.
		marks []mark
		total int64
	}
	dropped   atomic.Uint64 // times its backlog was dropped for MaxHintsBytes
	delivered atomic.Uint64
	lag       lagStats
}

type mark struct {
	seq uint64
	cum int64
}

func (t *target) state() (cursor, skippedBelow uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.mu.cursor, t.mu.skippedBelow
}

// count records n records for the target in journal entry seq.
func (t *target) count(seq uint64, n int) {
	if n == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.mu.total += int64(n)
	t.mu.marks = append(t.mu.marks, mark{seq, t.mu.total})
}

// backlog returns the records waiting for the target, and forgets marks the
// cursor has passed.
func (t *target) backlog() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	i := sort.Search(len(t.mu.marks), func(i int) bool { return t.mu.marks[i].seq > t.mu.cursor })
	var done int64
	if i > 0 {
		done = t.mu.marks[i-1].cum
	}
	if i > 1 { // keep one mark below the cursor as the base
		t.mu.marks = append(t.mu.marks[:0], t.mu.marks[i-1:]...)
	}
	return t.mu.total - done
}

func newReplication(p *Peer) *replication {
	r := &replication{p: p, log: p.log.With("subsystem", "replication")}
	tr := &http.Transport{MaxIdleConnsPerHost: 4, IdleConnTimeout: 90 * time.Second}
	if p.cfg.DialContext != nil {
		tr.DialContext = p.cfg.DialContext
	} else {
		tr.DialContext = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	if p.sec.tls != nil {
		tr.DialTLSContext = p.dialPeerTLS(tr.DialContext)
	}
	r.client = &http.Client{Timeout: 2 * time.Minute, Transport: tr}
	r.mu.targets = map[string]*target{}
	r.mu.progress = make(chan struct{})
	return r
}

const (
	metaCursor   = "cursor/"
	metaHintScan = "hintscan"
)

func encodeCursor(cursor, skipped uint64) []byte {
	return binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, cursor), skipped)
}

// run owns the targets: it follows membership, keeps the journal floor,
// counts backlogs, enforces MaxHintsBytes and deletes delivered hints.
func (r *replication) run(ctx context.Context) {
	db := r.p.db
	if v, err := db.GetMeta(metaHintScan); err == nil && len(v) == 8 {
		r.hintScan.Store(binary.BigEndian.Uint64(v))
	} else {
		r.hintScan.Store(db.Applied())
	}
	saved := r.loadCursors()
	r.tail = db.Applied()
	for _, c := range saved {
		r.tail = min(r.tail, c[0]) // count the backlog of every saved cursor
	}
	r.counted.Store(r.tail)
	watch, stopWatch := r.p.cluster.watch()
	defer stopWatch()
	changes, stopChanges := db.Changes()
	defer stopChanges()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	r.syncTargets(ctx, saved)
	r.countBacklog()
	r.updateFloor()
	for {
		select {
		case <-ctx.Done():
			r.stopAll()
			return
		case <-watch:
			r.syncTargets(ctx, saved)
		case <-changes:
			r.countBacklog()
		case <-tick.C:
			r.enforceLimit()
			r.deleteHints(ctx)
			r.updateFloor()
		}
	}
}

// loadCursors reads the persisted cursors.
func (r *replication) loadCursors() map[string][2]uint64 {
	out := map[string][2]uint64{}
	names, err := r.p.db.MetaKeys(metaCursor)
	if err != nil {
		r.log.Error("cannot read replication cursors", "err", err)
		return out
	}
	for _, key := range names {
		v, err := r.p.db.GetMeta(key)
		if err != nil || len(v) != 16 {
			continue
		}
		out[key[len(metaCursor):]] = [2]uint64{binary.BigEndian.Uint64(v), binary.BigEndian.Uint64(v[8:])}
	}
	return out
}

// syncTargets starts a goroutine for every peer that now owns partitions and
// stops those of peers that no longer do (they left).
func (r *replication) syncTargets(ctx context.Context, saved map[string][2]uint64) {
	v := r.p.cluster.view()
	want := map[string]bool{}
	for _, name := range v.targets() {
		want[name] = true
	}
	head := r.p.db.Applied()
	r.mu.Lock()
	var gone []*target
	for name, t := range r.mu.targets {
		if !want[name] {
			gone = append(gone, t)
			delete(r.mu.targets, name)
		}
	}
	r.mu.Unlock()
	for _, t := range gone { // stopped outside the lock: a target takes it to report progress
		t.cancel()
		<-t.done
		delete(saved, t.name)
		if err := r.p.db.SetMeta(metaCursor+t.name, nil); err != nil {
			r.log.Warn("cannot forget replication cursor", "target", t.name, "err", err)
		}
		r.log.Info("stopped replicating to peer no longer in the placement", "target", t.name)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for name := range want {
		if _, ok := r.mu.targets[name]; ok {
			continue
		}
		t := &target{name: name, done: make(chan struct{})}
		if c, ok := saved[name]; ok {
			t.mu.cursor, t.mu.skippedBelow = c[0], c[1]
			delete(saved, name)
		} else {
			// Records before this point were not meant for it when they arrived;
			// anti-entropy gives it what it now owns.
			t.mu.cursor, t.mu.skippedBelow = head, head
			r.persist(t)
		}
		tctx, cancel := context.WithCancel(ctx)
		t.cancel = cancel
		r.mu.targets[name] = t
		from := t.mu.cursor // read before the target's goroutine may move it
		go r.runTarget(tctx, t)
		r.log.Info("replicating to peer", "target", name, "from_journal_seq", from)
	}
}

func (r *replication) stopAll() {
	for _, t := range r.targetsSnapshot() {
		t.cancel()
		<-t.done
	}
}

func (r *replication) targetsSnapshot() map[string]*target {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps(r.mu.targets)
}

func maps(m map[string]*target) map[string]*target {
	out := make(map[string]*target, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (r *replication) persist(t *target) {
	c, s := t.state()
	if err := r.p.db.SetMeta(metaCursor+t.name, encodeCursor(c, s)); err != nil {
		r.log.Warn("cannot save replication cursor", "target", t.name, "err", err)
	}
}

// advanced wakes writers waiting for replicas.
func (r *replication) advanced() {
	r.mu.Lock()
	close(r.mu.progress)
	r.mu.progress = make(chan struct{})
	r.mu.Unlock()
}

func (r *replication) progress() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mu.progress
}

// runTarget pushes to one peer until ctx ends.
func (r *replication) runTarget(ctx context.Context, t *target) {
	defer close(t.done)
	db := r.p.db
	changes, stopChanges := db.Changes()
	defer stopChanges()
	watch, stopWatch := r.p.cluster.watch()
	defer stopWatch()
	backoff := time.Duration(0)
	wait := func(d time.Duration) bool {
		var timer <-chan time.Time
		if d > 0 {
			tm := time.NewTimer(d)
			defer tm.Stop()
			timer = tm.C
		}
		select {
		case <-ctx.Done():
			return false
		case <-changes:
		case <-watch:
		case <-timer:
		}
		return true
	}
	for ctx.Err() == nil {
		v := r.p.cluster.view()
		cursor, _ := t.state()
		if r.p.cfg.DisableReplication && cursor < db.Applied() {
			// delivery is off: leave everything to anti-entropy, as when a
			// backlog overflows
			head := db.Applied()
			t.mu.Lock()
			t.mu.cursor, t.mu.skippedBelow = head, head
			t.mu.Unlock()
			r.persist(t)
			if !wait(time.Second) { // not once per commit while ingestion runs
				return
			}
			continue
		}
		if !v.usable(t.name) || cursor >= db.Applied() {
			if !wait(time.Second) {
				return
			}
			continue
		}
		if backoff > 0 && !wait(backoff) {
			return
		}
		err := r.pushNext(ctx, t, v, cursor)
		if err == nil {
			backoff = 0
			continue
		}
		if ctx.Err() != nil {
			return
		}
		backoff = min(max(2*backoff, 100*time.Millisecond), r.p.cfg.ReplicationRetryMax)
		t.mu.Lock()
		first := t.mu.lastErr == ""
		t.mu.lastErr, t.mu.lastErrAt = err.Error(), time.Now()
		t.mu.Unlock()
		if first {
			r.log.Warn("cannot push records; retrying", "target", t.name, "err", err, "retry_in", backoff)
		}
	}
}

// pushNext pushes the records of the next journal entries after cursor that
// the target owns, and advances the cursor past them once they are durable.
func (r *replication) pushNext(ctx context.Context, t *target, v *view, cursor uint64) error {
	entries, err := r.p.db.ReadJournal(cursor+1, 256)
	if err != nil {
		return err
	}
	if len(entries) == 0 {
		// pruned: nothing after the cursor exists any more
		r.advance(t, r.p.db.Applied(), nil)
		return nil
	}
	var ids []record.ID
	last := cursor
	for _, e := range entries {
		if len(ids) > 0 && len(ids)+e.Local > r.p.cfg.ReplicationBatchRecords {
			break
		}
		if e.Op == index.OpAdd {
			for _, id := range e.IDs[:e.Local] {
				if v.table.Owns(t.name, id.Partition()) {
					ids = append(ids, id)
				}
			}
		}
		last = e.Seq
	}
	if len(ids) > 0 {
		if err := r.push(ctx, v.apiAddr(t.name), ids); err != nil {
			return err
		}
	}
	r.advance(t, last, ids)
	return nil
}

func (r *replication) advance(t *target, to uint64, ids []record.ID) {
	t.mu.Lock()
	if to > t.mu.cursor {
		t.mu.cursor = to
	}
	hadErr := t.mu.lastErr != ""
	t.mu.lastErr = ""
	t.mu.Unlock()
	if hadErr {
		r.log.Info("pushing records again", "target", t.name)
	}
	if len(ids) > 0 {
		t.delivered.Add(uint64(len(ids)))
		now := time.Now()
		for _, id := range ids {
			t.lag.add(now.Sub(id.Time()))
		}
	}
	r.persist(t)
	r.advanced()
}

// push sends records to a peer's replication endpoint and returns once it
// has made them durable.
func (r *replication) push(ctx context.Context, addr string, ids []record.ID) error {
	if addr == "" {
		return errors.New("peer has published no API address")
	}
	var body bytes.Buffer
	w, err := wire.NewWriter(&body)
	if err != nil {
		return err
	}
	misses := ids
	if r.p.recent != nil {
		if misses, err = r.p.recent.appendTo(ids, w.Record); err != nil {
			return err
		}
	}
	if err := r.p.db.GetMany(misses, w.Record); err != nil {
		return err
	}
	if err := w.End(""); err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.p.scheme()+addr+"/internal/v1/replicate", &body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", wire.ContentType)
	req.Header.Set(headerFrom, r.p.cfg.Name)
	req.Header.Set(headerProto, protoVersion)
	resp, err := r.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("peer answered %d: %s", resp.StatusCode, bytes.TrimSpace(msg))
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return nil
}

// countBacklog counts, for every target, the records of journal entries
// after the tail that it owns and has not received yet.
func (r *replication) countBacklog() {
	db := r.p.db
	head := db.Applied()
	v := r.p.cluster.view()
	targets := r.targetsSnapshot()
	for r.tail < head {
		entries, err := db.ReadJournal(r.tail+1, 512)
		if err != nil || len(entries) == 0 {
			r.tail = head
			return
		}
		for _, e := range entries {
			if e.Op != index.OpAdd {
				continue
			}
			for name, t := range targets {
				n := 0
				for _, id := range e.IDs[:e.Local] {
					if v.table.Owns(name, id.Partition()) {
						n++
					}
				}
				t.count(e.Seq, n)
			}
		}
		r.tail = entries[len(entries)-1].Seq
		r.counted.Store(r.tail)
	}
}

// recordBytes estimates the stored size of one undelivered record.
func (r *replication) recordBytes() int64 {
	if n, b := r.p.stats.encodedRecords.Load(), r.p.stats.encodedBytes.Load(); n > 0 {
		return int64(b / n)
	}
	return 256
}

// enforceLimit skips the targets with the largest backlogs while the
// undelivered data exceeds MaxHintsBytes.
func (r *replication) enforceLimit() {
	targets := r.targetsSnapshot()
	per := r.recordBytes()
	var total int64
	backlogs := map[*target]int64{}
	for _, t := range targets {
		backlogs[t] = t.backlog()
		total += backlogs[t] * per
	}
	for total > r.p.cfg.MaxHintsBytes {
		var worst *target
		for _, t := range targets {
			if worst == nil || backlogs[t] > backlogs[worst] {
				worst = t
			}
		}
		if worst == nil || backlogs[worst] == 0 {
			return
		}
		head := r.p.db.Applied()
		n := backlogs[worst]
		backlogs[worst] = 0
		total -= n * per
		worst.mu.Lock()
		worst.mu.cursor, worst.mu.skippedBelow = max(worst.mu.cursor, head), max(worst.mu.skippedBelow, head)
		worst.mu.Unlock()
		r.persist(worst)
		r.skips.Add(1)
		worst.dropped.Add(1)
		r.log.Warn("undelivered data reached --max-hints-bytes: stopped queueing for the peer with the largest backlog; anti-entropy will repair it",
			"target", worst.name, "records_skipped", n, "max_hints_bytes", r.p.cfg.MaxHintsBytes)
	}
}

// updateFloor tells the store which journal entries replication still needs.
func (r *replication) updateFloor() {
	floor := r.hintScan.Load() + 1
	for _, t := range r.targetsSnapshot() {
		c, _ := t.state()
		floor = min(floor, c+1)
	}
	floor = min(floor, r.tail+1)
	r.p.db.SetJournalFloor(floor)
}

// deleteHints deletes records this peer does not own once every owner has them.
func (r *replication) deleteHints(ctx context.Context) {
	db := r.p.db
	v := r.p.cluster.view()
	targets := r.targetsSnapshot()
	upTo := db.Applied()
	for _, t := range targets {
		c, _ := t.state()
		upTo = min(upTo, c)
	}
	from := r.hintScan.Load()
	for from < upTo && ctx.Err() == nil {
		entries, err := db.ReadJournal(from+1, 256)
		if err != nil || len(entries) == 0 {
			break
		}
		var gone []record.ID
		last := from
		for _, e := range entries {
			if e.Seq > upTo {
				break
			}
			last = e.Seq
			if e.Op != index.OpAdd {
				continue
			}
			for _, id := range e.IDs[:e.Local] {
				p := id.Partition()
				if v.table.Owns(v.self, p) || !deliveredToAll(v.owners(p), targets, e.Seq) {
					continue
				}
				gone = append(gone, id)
			}
		}
		if len(gone) > 0 {
			if _, err := db.Delete(ctx, gone); err != nil {
				r.log.Warn("cannot delete delivered hints", "err", err)
				return
			}
			r.hintsDel.Add(uint64(len(gone)))
		}
		from = last
		r.hintScan.Store(from)
		if err := db.SetMeta(metaHintScan, binary.BigEndian.AppendUint64(nil, from)); err != nil {
			r.log.Warn("cannot save hint position", "err", err)
		}
	}
}

func deliveredToAll(owners []string, targets map[string]*target, seq uint64) bool {
	if len(owners) == 0 {
		return false
	}
	for _, o := range owners {
		t := targets[o]
		if t == nil {
			return false
		}
		c, skipped := t.state()
		if c < seq || seq <= skipped {
			return false
		}
	}
	return true
}

// copies returns, for a write applied at seq holding records of parts, how
// many owners of each partition hold it durably (this peer counts when it
// owns the partition), how many owners each has, and the owners not yet
// confirmed.
func (r *replication) copies(parts []record.Partition, seq uint64) (have, owners []int, missing []string) {
	v := r.p.cluster.view()
	targets := r.targetsSnapshot()
	miss := map[string]bool{}
	for _, p := range parts {
		n := 0
		for _, o := range v.owners(p) {
			if o == v.self {
				n++
				continue
			}
			if t := targets[o]; t != nil {
				if c, skipped := t.state(); c >= seq && seq > skipped {
					n++
					continue
				}
			}
			miss[o] = true
		}
		have = append(have, n)
		owners = append(owners, len(v.owners(p)))
	}
	for m := range miss {
		missing = append(missing, m)
	}
	sort.Strings(missing)
	return have, owners, missing
}

func (r *replication) status() []api.TargetStatus {
	head := r.p.db.Applied()
	per := r.recordBytes()
	var out []api.TargetStatus
	for _, t := range r.targetsSnapshot() {
		c, _ := t.state()
		p50, p99, mx := t.lag.quantiles()
		b := t.backlog()
		t.mu.Lock()
		s := api.TargetStatus{Peer: t.name, UndeliveredCount: b, UndeliveredBytes: b * per,
			Delivered: t.delivered.Load(), Cursor: c, Head: head, Skipped: t.dropped.Load() > 0,
			LagP50Seconds: p50.Seconds(), LagP99Seconds: p99.Seconds(), LagMaxSeconds: mx.Seconds(), LastError: t.mu.lastErr}
		if !t.mu.lastErrAt.IsZero() && t.mu.lastErr != "" {
			s.LastErrorAt = t.mu.lastErrAt.UTC().Format(time.RFC3339)
		}
		t.mu.Unlock()
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Peer < out[j].Peer })
	return out
}

// lagStats keeps recent replication lags (receive time to durable on the target).
type lagStats struct {
	mu   sync.Mutex
	ring [4096]time.Duration
	n    int
	max  time.Duration
}

func (l *lagStats) add(d time.Duration) {
	l.mu.Lock()
	l.ring[l.n%len(l.ring)] = d
	l.n++
	l.max = max(l.max, d)
	l.mu.Unlock()
}

func (l *lagStats) quantiles() (p50, p99, mx time.Duration) {
	l.mu.Lock()
	n := min(l.n, len(l.ring))
	s := slices.Clone(l.ring[:n])
	mx = l.max
	l.mu.Unlock()
	if n == 0 {
		return 0, 0, 0
	}
	slices.Sort(s)
	return s[n*50/100], s[min(n-1, n*99/100)], mx
}

// replicateResponse is the answer to a push.
type replicateResponse struct {
	Written    int `json:"written"`
	Duplicates int `json:"duplicates"`
	Expired    int `json:"expired"`
}

const (
	headerFrom  = "X-Logmesh-From"
	headerProto = "X-Logmesh-Proto"
)

// handleReplicate stores a pushed batch and answers once it is durable.
func (p *Peer) handleReplicate(w http.ResponseWriter, req *http.Request) {
	if req.Header.Get(headerProto) != protoVersion {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("protocol version %q is not %s", req.Header.Get(headerProto), protoVersion))
		return
	}
	rd, err := wire.NewReader(http.MaxBytesReader(w, req.Body, 1<<30))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	var resp replicateResponse
	var entries []index.Entry
	flush := func() error {
		if len(entries) == 0 {
			return nil
		}
		res, err := p.db.Write(req.Context(), entries, index.OriginRemote)
		resp.Written += res.Written
		resp.Duplicates += res.Duplicates
		resp.Expired += res.Expired
		entries = entries[:0]
		return err
	}
	for {
		f, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			writeError(w, http.StatusBadRequest, "bad replication stream: "+err.Error())
			return
		}
		if f.Kind != wire.KindRecord {
			continue
		}
		var v record.View
		if err := v.Reset(f.Data); err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("record %s does not decode: %v", f.ID, err))
			return
		}
		entries = append(entries, index.Entry{ID: f.ID, Data: bytes.Clone(f.Data)})
		if len(entries) >= 4096 {
			if err := flush(); err != nil {
				writeError(w, http.StatusServiceUnavailable, "cannot store: "+err.Error())
				return
			}
		}
	}
	if n := p.cfg.TestDropPushEvery; n > 0 && p.stats.pushesIn.Add(1)%uint64(n) == 0 {
		entries = entries[:0] // the deliberately broken peer: acknowledge, store nothing
	}
	if err := flush(); err != nil {
		writeError(w, http.StatusServiceUnavailable, "cannot store: "+err.Error())
		return
	}
	p.stats.replicatedIn.Add(uint64(resp.Written))
	p.stats.replicatedDup.Add(uint64(resp.Duplicates))
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}

// oldestUndelivered returns the receive time of the oldest record this peer
// received that a target chosen by include has not confirmed yet (zero when
// none waits). The marks of the counted backlog point at the first journal
// entry holding one, so this reads one entry per target, plus the entries
// committed since the backlog was last counted.
func (r *replication) oldestUndelivered(include func(target string) bool) time.Time {
	db := r.p.db
	v := r.p.cluster.view()
	var oldest time.Time
	for _, t := range r.targetsSnapshot() {
		if !include(t.name) {
			continue
		}
		counted := r.counted.Load() // before the marks: they cover every entry up to it
		t.mu.Lock()
		cursor := t.mu.cursor
		from := max(cursor, counted) + 1
		if i := sort.Search(len(t.mu.marks), func(i int) bool { return t.mu.marks[i].seq > cursor }); i < len(t.mu.marks) {
			from = t.mu.marks[i].seq
		}
		t.mu.Unlock()
		for seq, found := from, false; !found && seq <= db.Applied(); {
			entries, err := db.ReadJournal(seq, 64)
			if err != nil || len(entries) == 0 {
				break
			}
			for _, e := range entries {
				if e.Op != index.OpAdd || e.Seq <= cursor {
					continue
				}
				for _, id := range e.IDs[:e.Local] {
					if v.table.Owns(t.name, id.Partition()) && (oldest.IsZero() || id.Time().Before(oldest)) {
						oldest, found = id.Time(), true
					}
				}
				if found {
					break
				}
			}
			seq = entries[len(entries)-1].Seq + 1
		}
	}
	return oldest
}

// drain waits until every usable target's cursor has reached the journal's
// current head, returning how many records were waiting at the start (or
// still are, with ctx's error, when it gives up).
func (r *replication) drain(ctx context.Context) (int64, error) {
	head := r.p.db.Applied()
	waiting := func() int64 {
		v := r.p.cluster.view()
		var n int64
		for _, t := range r.targetsSnapshot() {
			if !v.usable(t.name) {
				continue
			}
			if c, _ := t.state(); c < head {
				n += max(t.backlog(), 1)
			}
		}
		return n
	}
	first := waiting()
	for {
		progress := r.progress() // before the check: no advance is missed
		n := waiting()
		if n == 0 {
			return first, nil
		}
		select {
		case <-ctx.Done():
			return n, ctx.Err()
		case <-progress:
		case <-time.After(500 * time.Millisecond): // targets joining or failing change the answer too
		}
	}
}
