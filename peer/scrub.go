package peer

import (
	"context"
	"math/rand/v2"
	"time"
)

// scrubPace spaces the records a scrub reads: about 50,000 a second.
const scrubPace = 20 * time.Microsecond

// scrubLoop scrubs the store every ScrubInterval (jittered) until ctx ends;
// when the digests had drifted from the store, anti-entropy runs at once.
func (p *Peer) scrubLoop(ctx context.Context) {
	for {
		d := p.cfg.ScrubInterval
		d = d*9/10 + time.Duration(rand.Int64N(int64(d)/5+1))
		select {
		case <-ctx.Done():
			return
		case <-time.After(d):
		}
		res, err := p.db.Scrub(ctx, scrubPace)
		if err != nil {
			if ctx.Err() == nil {
				p.log.Error("scrub failed", "err", err)
			}
			continue
		}
		level := p.log.Info
		if res.Buckets > 0 || len(res.Undecodable) > 0 {
			level = p.log.Error
		}
		level("scrub done", "windows", res.Windows, "records", res.Records, "skipped_windows", res.Skipped,
			"differing_buckets", res.Buckets, "damaged_records", len(res.Undecodable), "took", res.Took.Round(time.Second))
		if (res.Buckets > 0 || len(res.Undecodable) > 0) && p.repair != nil {
			p.repair.Soon() // the next round would do; this is sooner
		}
	}
}
