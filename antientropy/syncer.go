package antientropy

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/logmesh/logmesh/record"
)

// Transport carries a round's requests to a peer's Responder.
type Transport interface {
	Roots(ctx context.Context, peer string, req *RootsRequest) (*RootsReply, error)
	Buckets(ctx context.Context, peer string, req *BucketsRequest) (*BucketsReply, error)
	Exchange(ctx context.Context, peer string, req *ExchangeRequest) (*ExchangeReply, error)
}

// Result reports one round.
type Result struct {
	Peer    string
	Started time.Time
	Took    time.Duration
	// Equal lists the partitions whose roots matched at the start of the round.
	Equal []record.Partition
	// DifferingPartitions, DifferingWindows and DifferingBuckets count what
	// the descent found different.
	DifferingPartitions, DifferingWindows, DifferingBuckets int
	// Sent and Received count the records moved each way, SentBytes and
	// ReceivedBytes their encoded bytes.
	Sent, Received           int
	SentBytes, ReceivedBytes int
	// More reports that the round stopped at a message size limit or left
	// a difference unresolved: run another.
	More bool
}

// Sync runs one round with peer over the given partitions. With pull, the
// records only the peer holds are fetched too; without it (handing a
// partition over) only this side's records are pushed.
func (s *Peer) Sync(ctx context.Context, tr Transport, peer string, parts []record.Partition, pull bool) (Result, error) {
	res, differ, err := s.round(ctx, tr, peer, parts, pull, false)
	if err != nil || len(differ) == 0 || (res.DifferingWindows > 0 && res.DifferingBuckets > 0) {
		return res, err
	}
	// Roots differ, yet no window or bucket does at 64 bits: compare those
	// partitions in full (a shortened collision, or data that changed
	// between the steps).
	full, _, err := s.round(ctx, tr, peer, differ, pull, true)
	res.Sent, res.Received = res.Sent+full.Sent, res.Received+full.Received
	res.SentBytes, res.ReceivedBytes = res.SentBytes+full.SentBytes, res.ReceivedBytes+full.ReceivedBytes
	res.DifferingWindows += full.DifferingWindows
	res.DifferingBuckets += full.DifferingBuckets
	res.More = res.More || full.More
	res.Took = time.Since(res.Started)
	return res, err
}

// round runs the steps of one round and returns the partitions whose roots differed.
func (s *Peer) round(ctx context.Context, tr Transport, peer string, parts []record.Partition, pull, full bool) (res Result, differing []record.Partition, err error) {
	res = Result{Peer: peer, Started: time.Now()}
	s.stats.Rounds.Add(1)
	prog := s.stats.begin(peer)
	defer func() {
		s.stats.end(peer)
		res.Took = time.Since(res.Started)
		s.stats.RoundNanos.Add(uint64(res.Took))
		if err != nil {
			s.stats.RoundErrors.Add(1)
		}
	}()
	own := s.store.Cutoff()
	cutoff := own
	s.trees.forget(cutoff)
	var mine map[record.Partition][]WindowRoot
	var req *RootsRequest
	var rr *RootsReply
	for try := 0; try < 2; try++ {
		mine = map[record.Partition][]WindowRoot{}
		req = &RootsRequest{Cutoff: cutoff, Full: full, Own: own}
		for _, p := range parts {
			ws := s.trees.windowRoots(p, cutoff)
			mine[p] = ws
			req.Roots = append(req.Roots, PartRoot{P: p, Root: partitionRoot(ws)})
			if s.vouches != nil && s.vouches(p) {
				req.Vouch.Add(p)
			}
		}
		if rr, err = tr.Roots(ctx, peer, req); err != nil {
			return res, nil, fmt.Errorf("roots: %w", err)
		}
		if rr.Cutoff <= cutoff {
			break
		}
		// the peer keeps fewer windows: compare what both keep, with the
		// roots computed over the same windows on both sides
		cutoff = rr.Cutoff
	}
	cutoff = max(cutoff, rr.Cutoff)
	sameCutoff := rr.Cutoff == own
	differ := map[record.Partition]bool{}
	breq := &BucketsRequest{Cutoff: cutoff, Pull: pull, Full: full}
	for _, pw := range rr.Differ {
		differ[pw.P] = true
		differing = append(differing, pw.P)
		res.DifferingPartitions++
		for _, w := range differingWindows(mine[pw.P], pw.Windows, cutoff, full) {
			ds, _ := s.store.WindowDigests(w, pw.P)
			breq.Windows = append(breq.Windows, WindowDigests{W: w, P: pw.P, Digests: ds})
		}
	}
	var vouched []bool
	for _, p := range parts {
		if !differ[p] {
			res.Equal = append(res.Equal, p)
			vouched = append(vouched, rr.Vouch.Has(p))
		}
	}
	if s.onEqual != nil && len(res.Equal) > 0 && sameCutoff {
		s.onEqual(Proof{Peer: peer, At: res.Started, Parts: res.Equal, Vouched: vouched})
	}
	res.DifferingWindows = len(breq.Windows)
	if len(breq.Windows) == 0 {
		return res, differing, nil
	}
	br, err := tr.Buckets(ctx, peer, breq)
	if err != nil {
		return res, differing, fmt.Errorf("buckets: %w", err)
	}
	res.DifferingBuckets = br.Differing
	s.stats.DifferingLeaves.Add(uint64(br.Differing))
	s.stats.update(prog, func(p *Progress) { p.Expected = br.Expected })
	res.More = br.More
	if err := s.receive(ctx, br.Records, &res, prog); err != nil {
		return res, differing, err
	}
	// what the peer asked for, and what the ID lists show each side lacks
	out := batch{store: s.store, limit: s.limit, budget: s.maxBytes}
	ex := &ExchangeRequest{}
	for _, o := range br.SendOne {
		id, ok, err := findOne(s.store, o.Ref, o.Diff, full)
		if err != nil {
			return res, differing, err
		}
		if !ok {
			ex.NeedIDs = append(ex.NeedIDs, o.Ref) // more than one record differs after all
			continue
		}
		if _, err := out.add(ctx, []record.ID{id}); err != nil {
			return res, differing, err
		}
	}
	for _, ref := range br.SendAll {
		ids, err := bucketIDs(s.store, ref)
		if err != nil {
			return res, differing, err
		}
		if _, err := out.add(ctx, ids); err != nil {
			return res, differing, err
		}
	}
	if err := s.compare(ctx, br.IDLists, pull, &out, ex); err != nil {
		return res, differing, err
	}
	for round := 0; round < 2; round++ {
		ex.Records = out.recs
		res.More = res.More || out.full
		er, err := tr.Exchange(ctx, peer, ex)
		if err != nil {
			return res, differing, fmt.Errorf("exchange: %w", err)
		}
		s.pushed(out, &res, prog)
		if err := s.receive(ctx, er.Records, &res, prog); err != nil {
			return res, differing, err
		}
		res.More = res.More || er.More
		if len(er.IDLists) == 0 {
			break
		}
		out = batch{store: s.store, limit: s.limit, budget: s.maxBytes}
		ex = &ExchangeRequest{}
		if err := s.compare(ctx, er.IDLists, pull, &out, ex); err != nil {
			return res, differing, err
		}
		if len(out.recs) == 0 && len(ex.Want) == 0 {
			break
		}
	}
	return res, differing, nil
}

// compare works out, from the peer's ID lists, which records to push (added
// to out) and which to ask for (ex.Want).
func (s *Peer) compare(ctx context.Context, lists []BucketIDs, pull bool, out *batch, ex *ExchangeRequest) error {
	for _, l := range lists {
		mine, err := bucketIDs(s.store, l.Ref)
		if err != nil {
			return err
		}
		theirs := append([]record.ID(nil), l.IDs...)
		sortIDs(theirs)
		if _, err := out.add(ctx, minus(mine, theirs)); err != nil {
			return err
		}
		if pull {
			ex.Want = append(ex.Want, minus(theirs, mine)...)
		}
	}
	return nil
}

func (s *Peer) receive(ctx context.Context, recs []Rec, res *Result, prog *Progress) error {
	if len(recs) == 0 {
		return nil
	}
	if err := s.store.Put(ctx, recs); err != nil {
		return fmt.Errorf("store repaired records: %w", err)
	}
	n := 0
	for _, r := range recs {
		n += len(r.Data)
	}
	res.Received += len(recs)
	res.ReceivedBytes += n
	s.received(recs)
	s.stats.update(prog, func(p *Progress) { p.Done += len(recs) })
	return nil
}

func (s *Peer) pushed(b batch, res *Result, prog *Progress) {
	res.Sent += len(b.recs)
	res.SentBytes += b.bytes
	s.sent(b)
	s.stats.update(prog, func(p *Progress) { p.Done += len(b.recs) })
}

// differingWindows returns the windows at or after cutoff whose roots differ
// (a window one side lacks differs).
func differingWindows(mine, theirs []WindowRoot, cutoff record.Window, full bool) []record.Window {
	m := map[record.Window]Root{}
	for _, w := range mine {
		m[w.W] = w.Root
		if !full {
			m[w.W] = Short(w.Root)
		}
	}
	var out []record.Window
	seen := map[record.Window]bool{}
	for _, w := range theirs {
		seen[w.W] = true
		if w.W >= cutoff && m[w.W] != w.Root {
			out = append(out, w.W)
		}
	}
	for _, w := range mine {
		if !seen[w.W] && w.W >= cutoff {
			out = append(out, w.W)
		}
	}
	return out
}

func sortIDs(ids []record.ID) { slices.SortFunc(ids, record.Compare) }
