package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/logmesh/logmesh/index"
	"github.com/logmesh/logmesh/record"
	"github.com/logmesh/logmesh/sample"
)

// IngestResult is one end-to-end ingestion run.
type IngestResult struct {
	Conns    int
	Messages int
	Bytes    int64
	Elapsed  time.Duration
}

// MsgPerSec is the ingestion rate.
func (r IngestResult) MsgPerSec() float64 { return float64(r.Messages) / r.Elapsed.Seconds() }

// MBPerSec is the ingestion rate in megabytes of syslog lines per second.
func (r IngestResult) MBPerSec() float64 { return float64(r.Bytes) / 1e6 / r.Elapsed.Seconds() }

// payloads generates n RFC 5424 lines split over conns octet-counted streams.
func payloads(n, conns int, seed uint64) (streams [][]byte, lines [][]byte, total int64) {
	g := sample.New(seed)
	now := time.Now()
	streams = make([][]byte, conns)
	lines = make([][]byte, 0, n)
	for i := 0; i < n; i++ {
		l := g.RFC5424(now)
		lines = append(lines, []byte(l))
		streams[i%conns] = append(streams[i%conns], sample.OctetCounted(l)...)
		total += int64(len(l))
	}
	return streams, lines, total
}

// ingestTCP sends the streams over parallel TCP connections and waits until
// the agent stores want records in all.
func ingestTCP(ctx context.Context, a *agent, streams [][]byte, n int, want uint64) (time.Duration, error) {
	start := time.Now()
	if err := sendTCP(a.syslog, streams); err != nil {
		return 0, err
	}
	if err := a.waitRecords(ctx, want, 10*time.Minute); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// sendTCP writes each stream over a TCP connection of its own to addr, all
// at once, and returns when every stream is written.
func sendTCP(addr string, streams [][]byte) error {
	var wg sync.WaitGroup
	errs := make(chan error, len(streams))
	for _, s := range streams {
		wg.Add(1)
		go func(s []byte) {
			defer wg.Done()
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				errs <- err
				return
			}
			defer conn.Close()
			w := bufio.NewWriterSize(conn, 256<<10)
			if _, err := w.Write(s); err != nil {
				errs <- err
				return
			}
			if err := w.Flush(); err != nil {
				errs <- err
			}
		}(s)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return fmt.Errorf("send: %w", err)
	}
	return nil
}

// baselineWrite writes the same lines into a bare Badger with one WriteBatch,
// under time-ordered keys (layout false) or under the keys logmesh gives
// records (layout true, values encoded as logmesh encodes them).
func baselineWrite(dir string, lines [][]byte, layout bool) (time.Duration, error) {
	cfg := index.DefaultConfig(dir)
	b, err := index.OpenBaseline(cfg)
	if err != nil {
		return 0, err
	}
	defer b.Close()
	ids := make([]record.ID, len(lines))
	record.NewGenerator(nil).Fill(ids)
	if !layout {
		return b.Write(ids, lines)
	}
	return b.WriteLayout(ids, encodeLines(lines))
}

// durableWrite writes the encoded records into a bare Badger with
// SyncWrites, under logmesh's keys, in transactions of txn records one after
// the other (the setting of the second reference figure), and
// returns how long it took: what making each commit durable costs Badger
// itself on this disk.
func durableWrite(dir string, values [][]byte, txn int) (time.Duration, error) {
	b, err := index.OpenDurableBaseline(index.DefaultConfig(dir))
	if err != nil {
		return 0, err
	}
	ids := make([]record.ID, len(values))
	record.NewGenerator(nil).Fill(ids)
	start := time.Now()
	for i := 0; i < len(values); i += txn {
		end := min(i+txn, len(values))
		if err := b.Commit(ids[i:end], values[i:end]); err != nil {
			b.Close()
			return 0, err
		}
	}
	el := time.Since(start)
	return el, b.Close()
}

// encodeLines encodes the lines as the records logmesh would store for them.
func encodeLines(lines [][]byte) [][]byte {
	values := make([][]byte, len(lines))
	for i, l := range lines {
		r := &record.Record{Raw: l, Format: record.FormatRFC5424, Transport: record.TransportTCP,
			Source: "127.0.0.1:40000", Peer: "bench", Message: string(l[min(len(l), 60):])}
		values[i] = r.AppendEncode(nil)
	}
	return values
}

// storeWrite writes the encoded records through logmesh's store alone (no
// syslog, no peer), from writers goroutines in batches of batch records,
// with the agent's default store settings and the given fsync interval, and
// returns how long it took until every write was acknowledged.
func storeWrite(dir string, values [][]byte, writers, batch int, fsync time.Duration) (time.Duration, error) {
	cfg := index.DefaultConfig(dir)
	cfg.FsyncInterval = fsync
	cfg.Logger = quietLogger()
	db, err := index.Open(cfg)
	if err != nil {
		return 0, err
	}
	gen := record.NewGenerator(nil)
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	per := (len(values) + writers - 1) / writers
	for w := 0; w < writers; w++ {
		mine := values[min(w*per, len(values)):min((w+1)*per, len(values))]
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids := make([]record.ID, batch)
			entries := make([]index.Entry, 0, batch)
			for len(mine) > 0 {
				k := min(batch, len(mine))
				gen.Fill(ids[:k])
				entries = entries[:0]
				for i := range k {
					entries = append(entries, index.Entry{ID: ids[i], Data: mine[i]})
				}
				if _, err := db.Write(context.Background(), entries, index.OriginLocal); err != nil {
					errs <- err
					return
				}
				mine = mine[k:]
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	close(errs)
	err = errors.Join(<-errs, db.Close())
	if err != nil {
		return 0, fmt.Errorf("store write: %w", err)
	}
	return el, nil
}
