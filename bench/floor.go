package bench

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/logmesh/logmesh/index"
	"github.com/logmesh/logmesh/record"
	"github.com/logmesh/logmesh/syslog"
)

// floorSink stores what logmesh's syslog listener hands it straight into a
// bare Badger under logmesh's keys: IDs and encoding as a peer gives them,
// then one Badger transaction per batch, and nothing else (no journal,
// digests, duplicate check, replication or sync).
type floorSink struct {
	base   *index.Baseline
	gen    *record.Generator
	stored atomic.Int64
}

func (f *floorSink) Ingest(_ context.Context, recs []*record.Record) error {
	ids := make([]record.ID, len(recs))
	f.gen.Fill(ids)
	values := make([][]byte, len(recs))
	for i, r := range recs {
		r.ID, r.Peer = ids[i], "floor"
		values[i] = r.AppendEncode(nil)
	}
	if err := f.base.Commit(ids, values); err != nil {
		return err
	}
	f.stored.Add(int64(len(recs)))
	return nil
}

// floorIngest sends the streams over TCP to logmesh's syslog listener,
// running in this process, whose records go to a floorSink in dir, and
// returns how long it took until all n were stored. It is the most a peer
// could ingest with logmesh's syslog path and storage layout if its store
// cost nothing beyond Badger itself: the ceiling of the end-to-end figure.
func floorIngest(ctx context.Context, dir string, streams [][]byte, n int) (time.Duration, error) {
	cfg := index.DefaultConfig(dir)
	base, err := index.OpenBaseline(cfg)
	if err != nil {
		return 0, err
	}
	sink := &floorSink{base: base, gen: record.NewGenerator(nil)}
	srv, err := syslog.New(syslog.Config{TCPAddr: "127.0.0.1:0", Logger: quietLogger()}, sink)
	if err != nil {
		base.Close()
		return 0, err
	}
	if err := srv.Start(ctx); err != nil {
		base.Close()
		return 0, err
	}
	el, err := func() (time.Duration, error) {
		start := time.Now()
		if err := sendTCP(srv.TCPAddr().String(), streams); err != nil {
			return 0, err
		}
		deadline := time.Now().Add(10 * time.Minute)
		for sink.stored.Load() < int64(n) {
			if time.Now().After(deadline) {
				return 0, fmt.Errorf("floor: %d of %d records stored after 10m", sink.stored.Load(), n)
			}
			if err := ctx.Err(); err != nil {
				return 0, err
			}
			time.Sleep(5 * time.Millisecond)
		}
		return time.Since(start), nil
	}()
	return el, errors.Join(err, srv.Close(), base.Close())
}
