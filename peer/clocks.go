package peer

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/logmesh/logmesh/peer/clock"
)

// clockPath answers clock probes: an empty answer whose header carries the
// clock (every answer of the API does).
const clockPath = "/internal/v1/clock"

const metaClockOffset = "clockoffset"

// clockLoop probes every usable member's clock every few seconds, and says
// loudly, every half minute, while this clock is skewed.
func (p *Peer) clockLoop(ctx context.Context) {
	var lastLoud time.Time
	for {
		v := p.cluster.view()
		var wg sync.WaitGroup
		for _, name := range v.Targets() {
			if !v.Usable(name) {
				continue
			}
			wg.Add(1)
			go func(name string) {
				defer wg.Done()
				cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				defer cancel()
				if resp, err := p.link.Do(cctx, name, http.MethodGet, clockPath, nil, nil); err == nil {
					resp.Body.Close()
				}
			}(name)
		}
		wg.Wait()
		if p.clock.Skewed() && time.Since(lastLoud) > 30*time.Second {
			lastLoud = time.Now()
			off, n := p.clock.ClusterOffset()
			p.log.Error("this peer's clock disagrees with the cluster's: IDs and retention follow the cluster's time and this peer proves nothing until it is fixed (check NTP)",
				"skew", (-off).Round(time.Millisecond), "max_clock_skew", p.clock.MaxSkew(), "clocks_compared", n)
			p.saveClockOffset()
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(2*time.Second + time.Duration(rand.Int64N(int64(time.Second)))):
		}
	}
}

// loadClockOffset applies the cluster offset measured before a restart
// until the first fresh sample.
func (p *Peer) loadClockOffset() {
	if v, err := p.db.GetMeta(metaClockOffset); err == nil && len(v) == 8 {
		p.clock.SetOffset(time.Duration(int64(binary.BigEndian.Uint64(v))))
	}
}

func (p *Peer) saveClockOffset() {
	if p.cfg.GossipAddr == "" || !p.clock.Measured() {
		return
	}
	off := p.clock.Persistable()
	_ = p.db.SetMeta(metaClockOffset, binary.BigEndian.AppendUint64(nil, uint64(int64(off))))
}

// stampClock puts this peer's clock on every answer.
func (p *Peer) stampClock(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(clock.Header, p.clock.Stamp())
		next.ServeHTTP(w, r)
	})
}
