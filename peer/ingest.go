package peer

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/logmesh/logmesh/index"
	"github.com/logmesh/logmesh/record"
)

type sinkFunc func(ctx context.Context, recs []*record.Record) error

func (f sinkFunc) Ingest(ctx context.Context, recs []*record.Record) error { return f(ctx, recs) }

type ingestStats struct {
	encodedRecords     atomic.Uint64
	encodedBytes       atomic.Uint64
	replicatedIn       atomic.Uint64
	replicatedDup      atomic.Uint64
	pushesIn           atomic.Uint64
	httpAccepted       atomic.Uint64
	httpBytes          atomic.Uint64
	httpRejectedBatch  atomic.Uint64
	httpRejectedLines  atomic.Uint64
	httpMalformedLines atomic.Uint64
	partialAnswers     atomic.Uint64
	queryTimeouts      atomic.Uint64
}

// Ingest assigns IDs to records that have just arrived, stores them and
// returns once they are durable. It is the syslog listeners' sink.
//
// While the store's disk is nearly full it does not fail: it waits until
// space returns (or ctx ends) and stores the batch then. That is the
// backpressure a full disk needs: a TCP sender is not read meanwhile and
// queues on its side (rsyslog and syslog-ng buffer to their own disk), and
// the UDP queue fills and counts its drops, instead of the listener closing
// connections and dropping every batch that arrived.
func (p *Peer) Ingest(ctx context.Context, recs []*record.Record) error {
	for {
		_, err := p.ingest(ctx, recs)
		if !errors.Is(err, index.ErrNoSpace) {
			return err
		}
		// refused whole (nothing stored): hold the sender until space returns
		p.log.Debug("syslog batch waits for disk space", "records", len(recs))
		if werr := p.db.WaitWritable(ctx); werr != nil {
			return err
		}
	}
}

// ingestBuf holds the scratch space of one ingest call; it is reused once
// the store no longer references it.
type ingestBuf struct {
	ids     []record.ID
	buf     []byte
	offs    []int
	entries []index.Entry
}

var ingestBufs = sync.Pool{New: func() any { return new(ingestBuf) }}

func (p *Peer) ingest(ctx context.Context, recs []*record.Record) (index.WriteResult, error) {
	return p.ingestWith(ctx, recs, ingestOptions{origin: index.OriginLocal})
}

// ingestOptions say how a batch is stored.
type ingestOptions struct {
	// origin: OriginLocal; OriginRemote keeps the records out of the
	// journal's push list (an admin write that only anti-entropy spreads);
	// OriginLocalRetry writes them under ids, skipping those stored.
	origin index.Origin
	// ids, when set, are the records' IDs (a retry); otherwise they are minted.
	ids []record.ID
	// metaName and metaValue are stored with the first record (an
	// idempotency key), kept for metaTTL.
	metaName  string
	metaValue func(ids []record.ID) []byte
	metaTTL   time.Duration
}

// ingestWith stores new records.
func (p *Peer) ingestWith(ctx context.Context, recs []*record.Record, o ingestOptions) (index.WriteResult, error) {
	if len(recs) == 0 {
		return index.WriteResult{}, nil
	}
	b := ingestBufs.Get().(*ingestBuf)
	b.ids = slices.Grow(b.ids[:0], len(recs))[:len(recs)]
	if o.ids != nil {
		copy(b.ids, o.ids)
	} else {
		p.gen.Fill(b.ids)
	}
	size := 0
	for _, r := range recs {
		size += r.EncodedSizeHint() + len(p.cfg.Name)
	}
	b.buf = slices.Grow(b.buf[:0], size)
	b.offs = append(b.offs[:0], 0)
	for i, r := range recs {
		r.ID = b.ids[i]
		r.Peer = p.cfg.Name
		b.buf = r.AppendEncode(b.buf)
		b.offs = append(b.offs, len(b.buf))
	}
	p.stats.encodedRecords.Add(uint64(len(recs)))
	p.stats.encodedBytes.Add(uint64(len(b.buf)))
	b.entries = b.entries[:0]
	for i := range recs {
		b.entries = append(b.entries, index.Entry{ID: b.ids[i], Data: b.buf[b.offs[i]:b.offs[i+1]:b.offs[i+1]]})
	}
	var done func(uint64)
	if p.repl != nil {
		// undelivered from the moment its IDs exist (see replicate.BeginLocal)
		done = p.repl.BeginLocal(b.ids[0].Time())
	}
	var res index.WriteResult
	var err error
	if o.metaName != "" {
		res, err = p.db.WriteMeta(ctx, b.entries, o.origin, o.metaName, o.metaValue(b.ids), o.metaTTL)
	} else {
		res, err = p.db.Write(ctx, b.entries, o.origin)
	}
	if done != nil {
		if err != nil && res.Seq == 0 {
			res.Seq = p.db.Applied() + 1 // some of it may have landed: counted after what is applied now
		}
		done(res.Seq)
	}
	switch {
	case ctx.Err() != nil || cap(b.buf) > 8<<20:
		// the store may still hold the entries: leave the buffers to the GC
	case err == nil && p.recent != nil && o.origin == index.OriginLocal:
		p.recent.add(b) // replication pushes them from memory
	default:
		ingestBufs.Put(b)
	}
	return res, err
}
