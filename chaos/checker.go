package chaos

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/logmesh/logmesh/api"
	"github.com/logmesh/logmesh/client"
	"github.com/logmesh/logmesh/placement"
	"github.com/logmesh/logmesh/query"
	"github.com/logmesh/logmesh/record"
)

// Report is the checker's verdict on one run, with Jepsen set-full's
// categories.
type Report struct {
	Scenario string
	Seed     uint64
	Schedule Schedule

	Attempted, Acknowledged, Indeterminate, Failed int
	// Lost: acknowledged, absent from every answer.
	Lost []string
	// LostPerReplica: acknowledged, absent from a replica that owns it once
	// anti-entropy had two intervals after the heal.
	LostPerReplica []string
	// Unexpected: records of this run that no write attempted.
	Unexpected []string
	// Duplicated: the same ID twice in one answer.
	Duplicated []string
	// Recovered: indeterminate writes that landed.
	Recovered int
	// NeverRead: attempted writes never seen (indeterminate or failed ones).
	NeverRead int

	LatencyP50, LatencyP99 time.Duration
	// Convergence: from the heal until every replica of every partition
	// held the same records (Converged false: not within the deadline).
	Convergence time.Duration
	Converged   bool
	// Detection: from a kill until every other peer saw the peer failed.
	Detection time.Duration
	// FalseFailed counts peers seen failed or suspect while nothing was wrong.
	FalseFailed int
	// Undelivered is the replication backlog left at the end.
	Undelivered int64
	// Resources lists peers whose goroutines, FDs or RSS did not come back
	// within 20% of their warm-up level.
	Resources []string

	// The continuous checker's answers while writes ran: FullButMissing
	// lists answers marked full that lacked a record acknowledged before
	// the query began (a broken promise); Full and Partial count answers,
	// QueryErrors queries that got none.
	FullButMissing                           []string
	FullAnswers, PartialAnswers, QueryErrors int
}

// Failures lists the pass criteria the run broke.
func (r *Report) Failures() []string {
	var out []string
	check := func(bad bool, f string, a ...any) {
		if bad {
			out = append(out, fmt.Sprintf(f, a...))
		}
	}
	check(len(r.Lost) > 0, "lost %d acknowledged records, e.g. %v", len(r.Lost), first(r.Lost))
	check(len(r.LostPerReplica) > 0, "lost-per-replica %d, e.g. %v", len(r.LostPerReplica), first(r.LostPerReplica))
	check(len(r.Unexpected) > 0, "unexpected %d, e.g. %v", len(r.Unexpected), first(r.Unexpected))
	check(len(r.Duplicated) > 0, "duplicated %d, e.g. %v", len(r.Duplicated), first(r.Duplicated))
	check(len(r.FullButMissing) > 0, "%d answers marked full lacked acknowledged records, e.g. %v", len(r.FullButMissing), first(r.FullButMissing))
	check(!r.Converged, "replicas did not converge within two anti-entropy intervals of the heal (and slack)")
	check(r.Undelivered > 0, "replication backlog not empty: %d bytes", r.Undelivered)
	check(r.Acknowledged == 0, "no write was acknowledged: the run proves nothing")
	check(len(r.Resources) > 0, "resources did not come back: %v", r.Resources)
	return out
}

func first(xs []string) []string { return xs[:min(3, len(xs))] }

// Summary is a one-paragraph account of the report.
func (r *Report) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s seed %d: %d attempted, %d acknowledged, %d indeterminate, %d failed; lost %d, lost-per-replica %d, unexpected %d, duplicated %d, recovered %d, never-read %d; ",
		r.Scenario, r.Seed, r.Attempted, r.Acknowledged, r.Indeterminate, r.Failed, len(r.Lost), len(r.LostPerReplica),
		len(r.Unexpected), len(r.Duplicated), r.Recovered, r.NeverRead)
	fmt.Fprintf(&b, "ack latency p50 %v p99 %v; ", r.LatencyP50.Round(time.Millisecond), r.LatencyP99.Round(time.Millisecond))
	if r.Converged {
		fmt.Fprintf(&b, "converged %v after the heal", r.Convergence.Round(10*time.Millisecond))
	} else {
		b.WriteString("NOT converged")
	}
	if r.Detection > 0 {
		fmt.Fprintf(&b, "; kill detected by every peer in %v", r.Detection.Round(10*time.Millisecond))
	}
	fmt.Fprintf(&b, "; false failed at rest %d", r.FalseFailed)
	fmt.Fprintf(&b, "; while writing: %d full answers (%d lacking acknowledged records), %d partial, %d query errors",
		r.FullAnswers, len(r.FullButMissing), r.PartialAnswers, r.QueryErrors)
	return b.String()
}

// read is what the checker saw.
type read struct {
	// byTag maps a record's tag to the IDs found for it (in any answer).
	byTag map[string]map[record.ID]bool
	// local holds each peer's own store (local=true reads).
	local map[string]map[record.ID]bool
	dup   []string
	extra []string
}

// newClient returns the client of a peer's API address, one per address, so
// that polling reuses connections instead of leaving idle ones behind on the
// peers (which the resource check would count against them).
func newClient(t Target, name string) (*client.Client, error) {
	addr := t.API(name)
	if c, ok := clients.Load(addr); ok {
		return c.(*client.Client), nil
	}
	c, err := client.New(addr)
	if err != nil {
		return nil, err
	}
	actual, _ := clients.LoadOrStore(addr, c)
	return actual.(*client.Client), nil
}

var clients sync.Map // API address → *client.Client

// readAll queries every peer for the run's records, answering for the
// cluster and from its own store.
func readAll(ctx context.Context, t Target, w *workload) (*read, error) {
	rd := &read{byTag: map[string]map[record.ID]bool{}, local: map[string]map[record.ID]bool{}}
	prefix := w.tagPrefix()
	for _, name := range t.Names() {
		cl, err := newClient(t, name)
		if err != nil {
			return nil, err
		}
		for _, local := range []bool{false, true} {
			q := query.Query{Contains: prefix, Limit: 0, Local: local}
			seen := map[record.ID]bool{}
			if local {
				rd.local[name] = seen
			}
			cov, err := cl.Query(ctx, q, func(j *record.JSON) error {
				id, err := record.ParseID(j.ID)
				if err != nil {
					return err
				}
				if seen[id] {
					rd.dup = append(rd.dup, fmt.Sprintf("%s at %s", id, name))
				}
				seen[id] = true
				tag := strings.TrimPrefix(j.Message, prefix)
				if i := strings.Index(j.Message, prefix); i >= 0 {
					tag = j.Message[i+len(prefix):]
				}
				if rd.byTag[tag] == nil {
					rd.byTag[tag] = map[record.ID]bool{}
				}
				rd.byTag[tag][id] = true
				return nil
			})
			if err != nil {
				return nil, fmt.Errorf("read at %s (local=%v): %w", name, local, err)
			}
			if !local && cov.Partial() {
				return nil, fmt.Errorf("read at %s after the heal is partial: missing %q, unread %q, reason %q", name, cov.Missing, cov.Unread, cov.Reason)
			}
		}
	}
	w.hist.mu.Lock()
	for tag := range rd.byTag {
		if w.hist.writes[tag] == nil {
			rd.extra = append(rd.extra, tag)
		}
	}
	w.hist.mu.Unlock()
	return rd, nil
}

// owners computes the placement the peers use, from the membership.
func owners(t Target) *placement.Table {
	return placement.Compute(t.Names(), t.Replicas())
}

// replicasAgree reports whether every owner of every record seen holds it.
func replicasAgree(t Target, rd *read) bool {
	table := owners(t)
	for _, ids := range rd.byTag {
		for id := range ids {
			for _, o := range table.Replicas(id.Partition()) {
				if !rd.local[o][id] {
					return false
				}
			}
		}
	}
	return true
}

// judge fills the report from the history and the final read.
func judge(r *Report, t Target, w *workload, rd *read) {
	w.hist.mu.Lock()
	defer w.hist.mu.Unlock()
	table := owners(t)
	var lats []time.Duration
	for tag, x := range w.hist.writes {
		r.Attempted++
		found := len(rd.byTag[tag]) > 0
		switch x.Outcome {
		case outcomeOK:
			r.Acknowledged++
			lats = append(lats, x.Latency)
			if !found {
				r.Lost = append(r.Lost, tag)
				continue
			}
			for _, o := range table.Replicas(x.ID.Partition()) {
				if !rd.local[o][x.ID] {
					r.LostPerReplica = append(r.LostPerReplica, fmt.Sprintf("%s on %s", tag, o))
				}
			}
		case outcomeInfo:
			r.Indeterminate++
			if found {
				r.Recovered++
			} else {
				r.NeverRead++
			}
		case outcomeFail:
			r.Failed++
			if !found {
				r.NeverRead++
			}
		}
	}
	r.Unexpected = rd.extra
	r.Duplicated = rd.dup
	sort.Strings(r.Lost)
	sort.Strings(r.LostPerReplica)
	if len(lats) > 0 {
		slices.Sort(lats)
		r.LatencyP50, r.LatencyP99 = lats[len(lats)/2], lats[min(len(lats)-1, len(lats)*99/100)]
	}
}

// askRunning asks every running peer through its client, with timeout per
// call, and keeps the answers of those that gave one.
func askRunning[T any](ctx context.Context, t Target, timeout time.Duration, ask func(context.Context, *client.Client) (T, error)) map[string]T {
	out := map[string]T{}
	for _, name := range t.Names() {
		if !t.Running(name) {
			continue
		}
		cl, err := newClient(t, name)
		if err != nil {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, timeout)
		v, err := ask(cctx, cl)
		cancel()
		if err == nil {
			out[name] = v
		}
	}
	return out
}

// statuses reads every running peer's status.
func statuses(ctx context.Context, t Target) map[string]api.Status {
	return askRunning(ctx, t, 3*time.Second, func(ctx context.Context, cl *client.Client) (api.Status, error) {
		return cl.Status(ctx)
	})
}

// membersSeen returns, per peer, how it sees every member.
func membersSeen(ctx context.Context, t Target) map[string]map[string]string {
	return askRunning(ctx, t, 2*time.Second, func(ctx context.Context, cl *client.Client) (map[string]string, error) {
		ms, err := cl.Members(ctx)
		seen := map[string]string{}
		for _, m := range ms {
			seen[m.Name] = m.Status
		}
		return seen, err
	})
}
