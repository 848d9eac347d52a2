package antientropy

import (
	"context"
	"time"

	"github.com/logmesh/logmesh/record"
)

// DefaultMaxMessageBytes bounds the records carried by one message; a repair
// larger than that takes several rounds.
const DefaultMaxMessageBytes = 8 << 20

// Responder answers the requests of peers that initiate rounds with this one.
type Responder struct {
	store    Store
	trees    *trees
	limit    *Limiter
	maxBytes int
	stats    *Stats
	// onEqual, when set, is told which partitions proved equal with a peer.
	onEqual func(Proof)
	vouches func(record.Partition) bool
}

// Proof reports partitions whose records were proven the same on both
// sides of a round, at the same retention cutoff, at time At.
type Proof struct {
	Peer  string
	At    time.Time
	Parts []record.Partition
	// Vouched[i]: the peer held Parts[i] complete when it sent its root.
	Vouched []bool
}

// Peer is both ends of reconciliation over one store: it initiates rounds
// (Sync) and answers them (the Responder methods).
type Peer struct {
	Responder
}

// Config configures a Peer.
type Config struct {
	Store Store
	// Limiter bounds the record bytes sent per second (nil: no limit).
	Limiter *Limiter
	// MaxMessageBytes bounds the records of one message (default 8 MiB).
	MaxMessageBytes int
	// OnEqual is told which partitions proved equal with a peer, and when
	// (the start of the round): the proof of convergence operators see,
	// and how a peer that is being filled learns it is complete. Nothing is
	// proven between peers whose retention cutoffs differ: a peer that
	// dropped windows the other still keeps is not equal to it.
	OnEqual func(Proof)
	// Vouches reports whether this side holds partition p complete (nil:
	// never); it travels with the roots.
	Vouches func(p record.Partition) bool
}

// New returns a Peer over a store.
func New(cfg Config) *Peer {
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = DefaultMaxMessageBytes
	}
	return &Peer{Responder{store: cfg.Store, trees: newTrees(cfg.Store), limit: cfg.Limiter,
		maxBytes: cfg.MaxMessageBytes, stats: &Stats{}, onEqual: cfg.OnEqual, vouches: cfg.Vouches}}
}

// Stats returns the counters of this peer's rounds, both sides.
func (r *Responder) Stats() *Stats { return r.stats }

// Roots answers the first step of a round: the window roots of every
// partition whose root differs from the initiator's.
func (r *Responder) Roots(ctx context.Context, from string, req *RootsRequest) (*RootsReply, error) {
	at := time.Now()
	own := r.store.Cutoff()
	cutoff := max(req.Cutoff, own)
	r.trees.forget(cutoff)
	reply := &RootsReply{Cutoff: own, Full: req.Full}
	var equal []record.Partition
	var vouched []bool
	for _, pr := range req.Roots {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if r.vouches != nil && r.vouches(pr.P) {
			reply.Vouch.Add(pr.P)
		}
		ws := r.trees.windowRoots(pr.P, cutoff)
		if partitionRoot(ws) == pr.Root {
			equal = append(equal, pr.P)
			vouched = append(vouched, req.Vouch.Has(pr.P))
			continue
		}
		if !req.Full {
			for i := range ws {
				ws[i].Root = Short(ws[i].Root)
			}
		}
		reply.Differ = append(reply.Differ, PartWindows{P: pr.P, Windows: ws})
	}
	if r.onEqual != nil && len(equal) > 0 && req.Own == own {
		r.onEqual(Proof{Peer: from, At: at, Parts: equal, Vouched: vouched})
	}
	return reply, nil
}

// Buckets answers the second step: it compares the initiator's bucket
// digests with its own and resolves what it can.
func (r *Responder) Buckets(ctx context.Context, from string, req *BucketsRequest) (*BucketsReply, error) {
	cutoff := max(req.Cutoff, r.store.Cutoff())
	reply := &BucketsReply{}
	out := batch{store: r.store, limit: r.limit, budget: r.maxBytes}
	for _, wd := range req.Windows {
		if wd.W < cutoff {
			continue
		}
		mine, _ := r.store.WindowDigests(wd.W, wd.P)
		first, _ := wd.P.Buckets()
		for i := range mine {
			my, theirs := mine[i], wd.Digests[i]
			if !req.Full {
				my = shortDigest(my)
			}
			if my == theirs {
				continue
			}
			r.stats.DifferingLeaves.Add(1)
			reply.Differing++
			if my.Count > theirs.Count {
				reply.Expected += int(my.Count - theirs.Count)
			} else {
				reply.Expected += int(theirs.Count - my.Count)
			}
			ref := BucketRef{W: wd.W, B: first + record.Bucket(i)}
			if err := r.resolve(ctx, ref, my, theirs, req.Pull, req.Full, reply, &out); err != nil {
				return nil, err
			}
		}
	}
	reply.Records = out.recs
	reply.More = reply.More || out.full
	r.sent(out)
	return reply, nil
}

func (r *Responder) resolve(ctx context.Context, ref BucketRef, my, theirs record.Digest, pull, full bool, reply *BucketsReply, out *batch) error {
	switch {
	case my.IsZero():
		reply.SendAll = append(reply.SendAll, ref)
		return nil
	case theirs.IsZero():
		if !pull {
			return nil
		}
		ids, err := bucketIDs(r.store, ref)
		if err != nil {
			return err
		}
		_, err = out.add(ctx, ids)
		return err
	case my.Minus(theirs).Count == 1:
		id, ok, err := findOne(r.store, ref, my.Minus(theirs), full)
		if err != nil {
			return err
		}
		if ok {
			if pull {
				_, err = out.add(ctx, []record.ID{id})
			}
			return err
		}
	case theirs.Minus(my).Count == 1:
		reply.SendOne = append(reply.SendOne, OneRef{Ref: ref, Diff: theirs.Minus(my)})
		return nil
	}
	ids, err := bucketIDs(r.store, ref)
	if err != nil {
		return err
	}
	reply.IDLists = append(reply.IDLists, BucketIDs{Ref: ref, IDs: ids})
	return nil
}

// Exchange answers the last step: it stores the records pushed to it and
// returns the records and ID lists asked for.
func (r *Responder) Exchange(ctx context.Context, from string, req *ExchangeRequest) (*ExchangeReply, error) {
	if len(req.Records) > 0 {
		if err := r.store.Put(ctx, req.Records); err != nil {
			return nil, err
		}
		r.received(req.Records)
	}
	reply := &ExchangeReply{}
	out := batch{store: r.store, limit: r.limit, budget: r.maxBytes}
	if _, err := out.add(ctx, req.Want); err != nil {
		return nil, err
	}
	for _, ref := range req.NeedIDs {
		ids, err := bucketIDs(r.store, ref)
		if err != nil {
			return nil, err
		}
		reply.IDLists = append(reply.IDLists, BucketIDs{Ref: ref, IDs: ids})
	}
	reply.Records, reply.More = out.recs, out.full
	r.sent(out)
	return reply, nil
}

func (r *Responder) sent(b batch) {
	r.stats.RecordsSent.Add(uint64(len(b.recs)))
	r.stats.BytesSent.Add(uint64(b.bytes))
}

func (r *Responder) received(recs []Rec) {
	n := 0
	for _, rec := range recs {
		n += len(rec.Data)
	}
	r.stats.RecordsReceived.Add(uint64(len(recs)))
	r.stats.BytesReceived.Add(uint64(n))
}
