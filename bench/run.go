package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	"github.com/logmesh/logmesh/index"
)

// Config says what to measure.
type Config struct {
	// Binary is the logmesh executable to run as the agent under test.
	Binary string
	// Dir is where the run makes its work directory (see WorkDir; default
	// the system's temporary directory), which is removed afterwards
	// unless Keep.
	Dir  string
	Keep bool
	// Messages is the number of syslog lines per ingestion run (default 1M);
	// the 4-connection agent takes two runs, ending with 2×Messages records.
	Messages int
	// QueryRecords is the size of the query data set (default 2M over 24h).
	QueryRecords int
	// Out receives the report.
	Out io.Writer
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// Run measures single-peer ingestion, disk use, memory and queries.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Messages == 0 {
		cfg.Messages = 1_000_000
	}
	if cfg.QueryRecords == 0 {
		cfg.QueryRecords = 2_000_000
	}
	if cfg.Out == nil {
		cfg.Out = os.Stdout
	}
	dir, cleanup, err := WorkDir(cfg.Dir, cfg.Keep)
	if err != nil {
		return err
	}
	defer cleanup()
	cfg.Dir = dir
	out := cfg.Out
	if cfg.Keep {
		fmt.Fprintf(out, "work directory (kept): %s\n", dir)
	}
	fmt.Fprintf(out, "logmesh bench: %d cores, GOMAXPROCS %d, %s\n\n", runtime.NumCPU(), runtime.GOMAXPROCS(0), time.Now().UTC().Format(time.RFC3339))

	// baselines: the same records straight into a bare Badger (same engine
	// settings), under logmesh's keys and encoding — the target's reference —
	// and, for comparison, as raw lines under time-ordered keys
	streams1, lines, bytes := payloads(cfg.Messages, 1, 1)
	// The bare-Badger figure moves by half from one run to the next (it ends
	// when the last memtable is handed over, so where Badger's compactions
	// happen to stand decides it): the median of three is the baseline.
	var bases []time.Duration
	for range 3 {
		base, err := baselineWrite(filepath.Join(cfg.Dir, "baseline"), lines, true)
		if err != nil {
			return fmt.Errorf("baseline: %w", err)
		}
		os.RemoveAll(filepath.Join(cfg.Dir, "baseline"))
		bases = append(bases, base)
	}
	slices.Sort(bases)
	baseRate := float64(len(lines)) / bases[1].Seconds()
	fmt.Fprintf(out, "baseline   bare Badger WriteBatch, %d records (lines avg %d B) under logmesh's keys: %.0f writes/s (median of 3: %.0f, %.0f, %.0f)\n",
		len(lines), bytes/int64(len(lines)), baseRate,
		float64(len(lines))/bases[2].Seconds(), baseRate, float64(len(lines))/bases[0].Seconds())
	tbase, err := baselineWrite(filepath.Join(cfg.Dir, "baseline"), lines, false)
	if err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	os.RemoveAll(filepath.Join(cfg.Dir, "baseline"))
	tRate := float64(len(lines)) / tbase.Seconds()
	fmt.Fprintf(out, "baseline   bare Badger WriteBatch, the raw lines under time-ordered keys: %.0f writes/s\n", tRate)

	// The same encoded records into a bare Badger that syncs every commit
	// (SyncWrites, 1000-record transactions): the price of durability on
	// this disk before logmesh does anything.
	values := encodeLines(lines)
	durDir := filepath.Join(cfg.Dir, "baseline-durable")
	del, err := durableWrite(durDir, values, 1000)
	if err != nil {
		return fmt.Errorf("durable baseline: %w", err)
	}
	os.RemoveAll(durDir)
	dRate := float64(len(lines)) / del.Seconds()
	fmt.Fprintf(out, "baseline   bare Badger, SyncWrites, 1000-record transactions, logmesh's keys: %.0f writes/s  = %.2f × baseline\n", dRate, dRate/baseRate)

	// logmesh's store alone, fed the same encoded records from 4 writers: the
	// share of the gap that is the store's (journal, digests, group commit,
	// syncs), apart from syslog and the peer.
	storeDir := filepath.Join(cfg.Dir, "store-only")
	sel, err := storeWrite(storeDir, values, 4, 1000, 100*time.Millisecond)
	if err != nil {
		return err
	}
	os.RemoveAll(storeDir)
	sRate := float64(len(lines)) / sel.Seconds()
	fmt.Fprintf(out, "store      index.DB.Write alone, 4 writers × 1000 records, fsync 100ms: %.0f writes/s  = %.2f × baseline\n", sRate, sRate/baseRate)

	// The ceiling of the end-to-end figure: logmesh's syslog listener, with
	// the IDs and encoding a peer gives, into the bare Badger under logmesh's
	// keys, one transaction per batch and nothing else. What logmesh's store
	// adds (journal, digests, dedup, syncs) and the peer's work come on top.
	streams4, _, bytes4 := payloads(cfg.Messages, 4, 4)
	var floors []time.Duration
	for range 3 {
		floorDir := filepath.Join(cfg.Dir, "floor")
		el, err := floorIngest(ctx, floorDir, streams4, cfg.Messages)
		if err != nil {
			return fmt.Errorf("floor: %w", err)
		}
		os.RemoveAll(floorDir)
		floors = append(floors, el)
	}
	fRates := ratesOf(cfg.Messages, floors)
	fmt.Fprintf(out, "floor      syslog TCP, 4 conns, into bare Badger under logmesh's keys (no store layer, no sync): %.0f msg/s  = %.2f × baseline (median of %s)\n",
		median(fRates), median(fRates)/baseRate, joinRates(fRates))

	// Each connection count gets a fresh agent, so both start, like the
	// baseline, from an empty store.
	var a *agent
	defer func() {
		if a != nil {
			a.kill()
		}
	}()
	for _, conns := range []int{1, 4} {
		streams := streams1
		if conns != 1 {
			streams, bytes = streams4, bytes4
		}
		// The 4-connection figure, the target's, is the median of three runs,
		// each into a fresh agent: on this shared machine one run moves by a
		// fifth. The last run's agent goes on to the second batch.
		runs := 1
		if conns == 4 {
			runs = 3
		}
		var els []time.Duration
		for i := range runs {
			dir := filepath.Join(cfg.Dir, fmt.Sprintf("agent-%d", conns))
			if err := os.RemoveAll(dir); err != nil {
				return err
			}
			if a, err = startAgent(ctx, cfg.Binary, dir, "--fsync", "100ms"); err != nil {
				return err
			}
			el, err := ingestTCP(ctx, a, streams, cfg.Messages, uint64(cfg.Messages))
			if err != nil {
				return fmt.Errorf("ingest with %d connection(s): %w", conns, err)
			}
			els = append(els, el)
			if i < runs-1 {
				if err := a.stop(); err != nil {
					return fmt.Errorf("stop agent: %w", err)
				}
				a = nil
			}
		}
		r := IngestResult{Conns: conns, Messages: cfg.Messages, Bytes: bytes, Elapsed: median(els)}
		runsNote := ""
		if runs > 1 {
			runsNote = " (median of " + joinRates(ratesOf(cfg.Messages, els)) + ")"
		}
		fmt.Fprintf(out, "ingest     syslog TCP, %d conn(s), --fsync 100ms: %.0f msg/s, %.1f MB/s  = %.2f × baseline (%.2f × time-ordered)%s\n",
			conns, r.MsgPerSec(), r.MBPerSec(), r.MsgPerSec()/baseRate, r.MsgPerSec()/tRate, runsNote)
		if conns == 1 {
			if err := a.stop(); err != nil {
				return fmt.Errorf("stop agent: %w", err)
			}
			a = nil
			continue
		}
		// a second batch on top of the first: the rate once the store holds data
		streams, _, _ = payloads(cfg.Messages, conns, 99)
		el, err := ingestTCP(ctx, a, streams, cfg.Messages, uint64(2*cfg.Messages))
		if err != nil {
			return fmt.Errorf("second ingest with %d connection(s): %w", conns, err)
		}
		fmt.Fprintf(out, "ingest     the next %d lines into the same agent (%d conns): %.0f msg/s  = %.2f × baseline\n",
			cfg.Messages, conns, float64(cfg.Messages)/el.Seconds(), float64(cfg.Messages)/el.Seconds()/baseRate)
	}
	streams1 = nil
	rss, err := peakRSS(a.cmd.Process.Pid)
	if err != nil {
		return err
	}
	total := uint64(2 * cfg.Messages)
	anon, file := a.peakMem()
	fmt.Fprintf(out, "memory     agent peak RSS after %d records: %.0f MB (target < 300 MB): anonymous (heap) peak %.0f MB, mapped files peak %.0f MB (defaults: --memory-limit auto = %d MiB, --max-mapped-memory 48MiB)\n",
		total, float64(rss)/(1<<20), float64(anon)/(1<<20), float64(file)/(1<<20), index.DefaultConfig("").MemoryBudget()>>20)
	if err := a.stop(); err != nil {
		return fmt.Errorf("stop agent: %w", err)
	}
	a = nil
	perRec, err := compactedBytes(filepath.Join(cfg.Dir, "agent-4", "data", "store"), total)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "disk       after compaction: %.1f bytes/record (target <= 80)\n", perRec)

	fmt.Fprintf(out, "\nquery data set: %d records over 24h, 1%% contain %q\n", cfg.QueryRecords, rareWord)
	db, raw, end, err := buildQueryData(ctx, filepath.Join(cfg.Dir, "query"), cfg.QueryRecords, 24*time.Hour)
	if err != nil {
		return err
	}
	defer db.Close()
	defer raw.Close()
	qs, err := queryBench(ctx, db, raw, end, runtime.GOMAXPROCS(0))
	for _, q := range qs {
		fmt.Fprintf(out, "query      %-22s %6d matches: logmesh %7.1f ms (%d worker(s)), raw iteration %7.1f ms  = %.2f × faster\n",
			q.Name, q.Matches, ms(q.Logmesh), q.Workers, ms(q.Raw), q.Speedup())
	}
	return err
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// compactedBytes opens a stopped agent's store, compacts it and returns disk bytes per record.
func compactedBytes(dir string, records uint64) (float64, error) {
	cfg := index.DefaultConfig(dir)
	cfg.Logger = quietLogger()
	db, err := index.Open(cfg)
	if err != nil {
		return 0, err
	}
	if err := db.Compact(); err != nil {
		db.Close()
		return 0, err
	}
	if err := db.Close(); err != nil {
		return 0, err
	}
	return float64(dirBytes(dir)) / float64(records), nil
}
