package replicate

import (
	"context"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/logmesh/logmesh/api"
	"github.com/logmesh/logmesh/peer/view"
)

// Debts returns the outstanding debts by target.
func (r *Replicator) Debts() map[string]Debt {
	out := map[string]Debt{}
	for name, t := range r.targetsSnapshot() {
		if d := t.debt(); !d.Empty() {
			out[name] = d
		}
	}
	return out
}

// Settle clears the partitions parts of target's debt, if the debt is
// still at gen (it was not extended since the rounds that settled it began).
func (r *Replicator) Settle(target string, parts *view.Mask, gen uint64) bool {
	r.mu.Lock()
	t := r.mu.targets[target]
	r.mu.Unlock()
	if t == nil || !t.settle(parts, gen) {
		return false
	}
	r.persist(t)
	r.advanced()
	r.log.Info("debt settled by anti-entropy", "target", target, "partitions", parts.Count())
	return true
}

// Drain waits until every usable target's cursor has reached the journal's
// current head and no usable target is owed anything, returning how many
// records (and debts) were waiting at the start, or still are when ctx ends.
func (r *Replicator) Drain(ctx context.Context) (int64, error) {
	head := r.db.Applied()
	waiting := func() int64 {
		v := r.cfg.View()
		var n int64
		for _, t := range r.targetsSnapshot() {
			if !v.Usable(t.name) {
				continue
			}
			if t.cursor() < head {
				n += max(t.backlog(), 1)
			}
			if d := t.debt(); !d.Empty() {
				n += int64(d.Parts.Count())
			}
		}
		return n
	}
	first := waiting()
	for {
		progress := r.Progress() // before the check: no advance is missed
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

// Stats are the replication counters.
type Stats struct {
	Skips, HintsDeleted                 uint64
	PushedInWritten, PushedInDuplicates uint64
	PushedInExpired                     uint64
}

// Stats returns the counters.
func (r *Replicator) Stats() Stats {
	return Stats{Skips: r.skips.Load(), HintsDeleted: r.hintsDel.Load(), PushedInWritten: r.in.written.Load(),
		PushedInDuplicates: r.in.duplicates.Load(), PushedInExpired: r.in.expired.Load()}
}

// Status describes every target.
func (r *Replicator) Status() []api.TargetStatus {
	head := r.db.Applied()
	per := r.cfg.RecordBytes()
	now := r.cfg.Now()
	v := r.cfg.View()
	var out []api.TargetStatus
	for _, t := range r.targetsSnapshot() {
		p50, p99, mx := t.lag.quantiles()
		b := t.backlog()
		oldest := r.oldestBacklog(t, v)
		t.mu.Lock()
		s := api.TargetStatus{Peer: t.name, UndeliveredCount: b, UndeliveredBytes: b * per,
			Delivered: t.delivered.Load(), Cursor: t.mu.cursor, Head: head, Skipped: t.dropped.Load() > 0,
			DebtPartitions: t.mu.debt.Parts.Count(), Refused: t.refusedN.Load(),
			LagP50Seconds: p50.Seconds(), LagP99Seconds: p99.Seconds(), LagMaxSeconds: mx.Seconds(), LastError: t.mu.lastErr}
		if !t.mu.lastErrAt.IsZero() && t.mu.lastErr != "" {
			s.LastErrorAt = t.mu.lastErrAt.UTC().Format(time.RFC3339)
		}
		if !t.mu.debt.Empty() {
			s.DebtSince = t.mu.debt.At.UTC().Format(time.RFC3339)
		}
		t.mu.Unlock()
		if !oldest.IsZero() {
			s.OldestUndelivered = now.Sub(oldest).Seconds()
		}
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

// Owe records that every other owner of parts may lack what this peer holds
// of them (records stored here by an admin write that pushes nothing).
func (r *Replicator) Owe(parts *view.Mask) {
	v := r.cfg.View()
	head := r.db.Applied()
	for name, t := range r.targetsSnapshot() {
		m := new(view.Mask)
		for _, p := range parts.Partitions() {
			if v.Owns(name, p) {
				m[p] = true
			}
		}
		if !m.Empty() {
			t.addDebt(m, head, r.cfg.Now())
			r.persist(t)
		}
	}
	r.advanced()
}
