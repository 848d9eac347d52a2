package bench

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/logmesh/logmesh/index"
	"github.com/logmesh/logmesh/query"
	"github.com/logmesh/logmesh/record"
	"github.com/logmesh/logmesh/sample"
)

// QueryResult compares one query on logmesh's store with raw iteration of a
// bare Badger holding the same encoded records.
type QueryResult struct {
	Name      string
	Matches   int
	Logmesh   time.Duration
	Raw       time.Duration
	RawCount  int
	Workers   int
	Selective string
}

// Speedup is raw time / logmesh time (above 1: logmesh is faster).
func (r QueryResult) Speedup() float64 { return r.Raw.Seconds() / r.Logmesh.Seconds() }

const rareWord = "zebracorn"

// buildQueryData writes n records received over span into a logmesh store and
// a bare Badger; 1% of them contain rareWord.
func buildQueryData(ctx context.Context, dir string, n int, span time.Duration) (*index.DB, *index.Baseline, time.Time, error) {
	cfg := index.DefaultConfig(dir + "/logmesh")
	cfg.FsyncInterval = time.Second
	cfg.Logger = quietLogger()
	db, err := index.Open(cfg)
	if err != nil {
		return nil, nil, time.Time{}, err
	}
	raw, err := index.OpenBaseline(index.DefaultConfig(dir + "/raw"))
	if err != nil {
		db.Close()
		return nil, nil, time.Time{}, err
	}
	g := sample.New(42)
	end := time.Now().Truncate(time.Hour)
	start := end.Add(-span)
	step := span / time.Duration(n)
	const batch = 4096
	ids := make([]record.ID, 0, batch)
	vals := make([][]byte, 0, batch)
	entries := make([]index.Entry, 0, batch)
	for i := 0; i < n; i++ {
		at := start.Add(time.Duration(i) * step)
		line := g.RFC5424(at)
		if i%100 == 7 {
			line = strings.Replace(line, " - - ", " - - "+rareWord+" ", 1) + " " + rareWord
		}
		id := record.NewGenerator(func() time.Time { return at }).Next()
		r := &record.Record{ID: id, Format: record.FormatRFC5424, Transport: record.TransportTCP, Flags: record.FlagHasPRI,
			Raw: []byte(line), Message: line[strings.LastIndex(line, " - ")+1:], Hostname: "web-01.eu1.example.net",
			Source: "10.0.0.1:514", Peer: "bench"}
		data := r.AppendEncode(nil)
		ids, vals = append(ids, id), append(vals, data)
		entries = append(entries, index.Entry{ID: id, Data: data})
		if len(ids) == batch || i == n-1 {
			if _, err := db.Write(ctx, entries, index.OriginLocal); err != nil {
				return nil, nil, time.Time{}, err
			}
			if _, err := raw.Write(ids, vals); err != nil {
				return nil, nil, time.Time{}, err
			}
			ids, vals, entries = ids[:0], vals[:0], entries[:0]
		}
	}
	return db, raw, end, nil
}

func runQuery(ctx context.Context, db *index.DB, params url.Values, workers int) (int, time.Duration, error) {
	q, err := query.Parse(params, time.Now())
	if err != nil {
		return 0, 0, err
	}
	from, to := q.Range()
	opts := index.ScanOptions{FromMillis: from, ToMillis: to, Reverse: !q.Ascending, Match: q.Matcher(), Workers: workers}
	n := 0
	start := time.Now()
	err = db.Scan(ctx, opts, func(record.ID, []byte) error { n++; return nil })
	return n, time.Since(start), err
}

// queryBench compares a rare-word query and a one-hour range query.
func queryBench(ctx context.Context, db *index.DB, raw *index.Baseline, end time.Time, workers int) ([]QueryResult, error) {
	var out []QueryResult
	// warm both stores' caches equally: one pass each
	if _, err := raw.CountContains([]byte(rareWord)); err != nil {
		return nil, err
	}
	if _, _, err := runQuery(ctx, db, url.Values{"contains": {rareWord}, "limit": {"0"}}, workers); err != nil {
		return nil, err
	}
	// best runs each query three times, logmesh's and raw iteration's in
	// turn, and keeps each one's fastest run: the stores' compactions are
	// still running after the load, and taking turns gives both the same
	// share of that interference.
	type timed func() (int, time.Duration, error)
	best := func(lm, rw timed) (n, rn int, d, rd time.Duration, err error) {
		d, rd = time.Duration(1<<63-1), time.Duration(1<<63-1)
		for range 3 {
			c, t, err := lm()
			if err != nil {
				return 0, 0, 0, 0, err
			}
			n, d = c, min(d, t)
			if c, t, err = rw(); err != nil {
				return 0, 0, 0, 0, err
			}
			rn, rd = c, min(rd, t)
		}
		return n, rn, d, rd, nil
	}
	n, rn, d, rd, err := best(func() (int, time.Duration, error) {
		return runQuery(ctx, db, url.Values{"contains": {rareWord}, "limit": {"0"}}, workers)
	}, func() (int, time.Duration, error) {
		s := time.Now()
		c, err := raw.CountContains([]byte(rareWord))
		return c, time.Since(s), err
	})
	if err != nil {
		return nil, err
	}
	out = append(out, QueryResult{Name: "word in 1% of records", Matches: n, Logmesh: d, Raw: rd, RawCount: rn, Workers: workers})

	from, to := end.Add(-5*time.Hour), end.Add(-4*time.Hour)
	params := url.Values{"since": {from.Format(time.RFC3339Nano)}, "until": {to.Add(-time.Millisecond).Format(time.RFC3339Nano)}, "limit": {"0"}, "order": {"asc"}}
	n, rn, d, rd, err = best(func() (int, time.Duration, error) { return runQuery(ctx, db, params, 1) },
		func() (int, time.Duration, error) {
			s := time.Now()
			c, err := raw.CountRange(from.UnixMilli(), to.UnixMilli()-1)
			return c, time.Since(s), err
		})
	if err != nil {
		return nil, err
	}
	out = append(out, QueryResult{Name: "one-hour time range", Matches: n, Logmesh: d, Raw: rd, RawCount: rn, Workers: 1})
	for _, r := range out {
		if r.Matches != r.RawCount {
			return out, fmt.Errorf("%s: logmesh found %d records, raw iteration %d", r.Name, r.Matches, r.RawCount)
		}
	}
	return out, nil
}
