package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/logmesh/logmesh/query"
	"github.com/logmesh/logmesh/record"
)

// continuous is the checker that runs while writes and faults go on: it
// queries a random running peer for the run's records, again and again,
// and every answer marked "full" must hold every record whose write was
// acknowledged before that query began. Partial answers promise nothing.
type continuous struct {
	mu                    sync.Mutex
	missing               []string
	full, partial, errors int
}

// watchAnswers runs the continuous checker until the returned function is
// called; that function stores what it saw in r.
func watchAnswers(ctx context.Context, t Target, w *workload, seed uint64, r *Report) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	c := &continuous{}
	rng := rand.New(rand.NewPCG(seed, 0xc0c0))
	done := make(chan struct{})
	go func() {
		defer close(done)
		for sleep(ctx, 300*time.Millisecond) {
			var running []string
			for _, n := range t.Names() {
				if t.Running(n) {
					running = append(running, n)
				}
			}
			if len(running) == 0 {
				continue
			}
			c.check(ctx, t, w, running[rng.IntN(len(running))])
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			<-done
			c.mu.Lock()
			defer c.mu.Unlock()
			r.FullButMissing, r.FullAnswers, r.PartialAnswers, r.QueryErrors = c.missing, c.full, c.partial, c.errors
		})
	}
}

func (c *continuous) check(ctx context.Context, t Target, w *workload, peer string) {
	cl, err := newClient(t, peer)
	if err != nil {
		return
	}
	acked := w.hist.acknowledged() // before the query begins
	began := time.Now()
	prefix := w.tagPrefix()
	seen := map[string]bool{}
	qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cov, err := cl.Query(qctx, query.Query{Contains: prefix, Limit: 0}, func(j *record.JSON) error {
		if i := strings.Index(j.Message, prefix); i >= 0 {
			seen[j.Message[i+len(prefix):]] = true
		}
		return nil
	})
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case ctx.Err() != nil:
	case err != nil:
		c.errors++
	case cov.State == "full":
		c.full++
		var lacking []string
		for _, tag := range acked {
			if !seen[tag] {
				lacking = append(lacking, tag)
			}
		}
		if len(lacking) > 0 {
			c.missing = append(c.missing, fmt.Sprintf("%s at %s (answered in %s): %d of %d acknowledged records missing (written to %s), e.g. %v%s",
				peer, began.Format("15:04:05.000"), time.Since(began).Round(time.Millisecond), len(lacking), len(acked),
				w.hist.receivers(lacking), first(lacking), w.hist.partitions(first(lacking))))
		}
	default:
		c.partial++
	}
}
