package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/logmesh/logmesh/api"
	"github.com/logmesh/logmesh/sample"
)

// SustainedConfig configures RunSustained.
type SustainedConfig struct {
	// Binary is the logmesh executable under test.
	Binary string
	// Dir is the work directory (made by the caller).
	Dir string
	// Lines is the number of syslog lines (default 8M); Conns the TCP
	// connections they are sent over (default 4).
	Lines, Conns int
	// Fsync is the agent's --fsync (default 100ms).
	Fsync string
	// VictoriaLogs, when set, is a victoria-logs binary that takes the same
	// input in the same run, after logmesh.
	VictoriaLogs string
	// AlignToMinute starts sending just after a minute begins: a store that
	// seals minute slices (--seal-after) can seal a slice only once its
	// minute has ended, so how much a run seals inside its measured time
	// depends on where the minute boundaries fall in it, and runs compared
	// should see them at the same places.
	AlignToMinute bool
}

// untilNextMinute is how long from now until one second after the next
// minute begins.
func untilNextMinute(now time.Time) time.Duration {
	return now.Truncate(time.Minute).Add(time.Minute + time.Second).Sub(now)
}

// SustainedResult is one store's figures.
type SustainedResult struct {
	System  string
	Lines   int
	Elapsed time.Duration // first byte sent → every line queryable
	// FirstM and LastM are the rates (lines/s) of the first and the last
	// million lines stored.
	FirstM, LastM float64
	CPU           time.Duration // the store's user+system time over the run
	PeakRSS       int64
	// PeakAnon and PeakFile are the highest anonymous (heap) and
	// file-backed (mapped files) resident memory sampled every 200 ms: the
	// two parts of PeakRSS have different causes and different knobs.
	PeakAnon, PeakFile int64
	DiskPerLine        float64 // after the store's own compaction or merge
	WordMatches        int
	WordQuery          time.Duration
	// Settled is how long the store's own work went on after the word
	// query (compaction, merges), until its CPU stayed under idleShare of
	// a core for idleQuiet, or settleLimit; WordQuerySettled is the same
	// query run then. The first query competes with that work, this one
	// does not: the two apart say how much of a slow query is the store's
	// format and how much its backlog.
	Settled          time.Duration
	SettledIdle      bool // false: still busy at settleLimit
	WordQuerySettled time.Duration
	// GCCycles is how many times the store's Go collector ran over the
	// run (-1 when the store does not say): a collector that runs tens of
	// times a second is short of memory (its --memory-limit).
	GCCycles int64
	// Sealed is how many records the store had moved into blocks when
	// every line was queryable (-1 when it does not say): the sealer's
	// work done inside the measured time rather than after it, so runs
	// that seal more are not compared as if they did the same work.
	Sealed int64
}

// Rate is lines per second until queryable.
func (r SustainedResult) Rate() float64 { return float64(r.Lines) / r.Elapsed.Seconds() }

// CPUPerLine is the store's CPU time per line.
func (r SustainedResult) CPUPerLine() time.Duration { return r.CPU / time.Duration(r.Lines) }

// sustainedWord is in one line of a hundred.
const sustainedWord = rareWord

// store is a log store under the sustained benchmark.
type store interface {
	syslogAddr() string
	pid() int
	// stored is how many lines the store holds queryable (or, for a store
	// that buffers before it makes them queryable, has taken in).
	stored(ctx context.Context) (uint64, error)
	// settle makes everything queryable and returns the count a query gives.
	settle(ctx context.Context) (uint64, error)
	wordQuery(ctx context.Context) (int, error)
	// diskPerLine stops the store, compacts or merges it, and measures.
	diskPerLine(ctx context.Context, lines int) (float64, error)
	// gcCycles is the store's count of Go collections so far, or -1.
	gcCycles(ctx context.Context) int64
	// sealed is how many records the store moved into blocks so far, or -1.
	sealed(ctx context.Context) int64
	kill()
}

// withDefaults fills in the lines, connections and fsync left unset.
func (cfg SustainedConfig) withDefaults() SustainedConfig {
	if cfg.Lines == 0 {
		cfg.Lines = 8_000_000
	}
	if cfg.Conns == 0 {
		cfg.Conns = 4
	}
	if cfg.Fsync == "" {
		cfg.Fsync = "100ms"
	}
	return cfg
}

// RunSustained sends cfg.Lines generated RFC 5424 lines (~200 B, 1% holding
// one rare word) to a logmesh agent, and to VictoriaLogs when given one,
// measuring each the same way, and prints the figures and their ratios.
func RunSustained(ctx context.Context, cfg SustainedConfig, out func(format string, args ...any)) ([]SustainedResult, error) {
	cfg = cfg.withDefaults()
	out("sustained ingestion: %d lines over %d syslog TCP connections, --fsync %s\n", cfg.Lines, cfg.Conns, cfg.Fsync)
	var results []SustainedResult
	r, err := sustainedLogmesh(ctx, "logmesh", Variant{Binary: cfg.Binary}, filepath.Join(cfg.Dir, "logmesh"), cfg, out)
	if err != nil {
		return nil, err
	}
	results = append(results, r)
	if cfg.VictoriaLogs != "" {
		v, err := startVictoriaLogs(ctx, cfg.VictoriaLogs, filepath.Join(cfg.Dir, "victorialogs"))
		if err != nil {
			return results, err
		}
		r, err := sustained(ctx, "VictoriaLogs", v, cfg, out)
		v.kill()
		if err != nil {
			return results, err
		}
		results = append(results, r)
	}
	printSustained(results, out)
	if len(results) == 2 {
		l, v := results[0], results[1]
		out("\nlogmesh / VictoriaLogs: ingestion %.2f×, CPU per line %.2f× (the cost), peak RSS %.2f×, disk per line %.2f×, word query %.2f× (the time), settled %.2f×\n",
			l.Rate()/v.Rate(), float64(l.CPUPerLine())/float64(v.CPUPerLine()), float64(l.PeakRSS)/float64(v.PeakRSS),
			l.DiskPerLine/v.DiskPerLine, l.WordQuery.Seconds()/v.WordQuery.Seconds(), l.WordQuerySettled.Seconds()/v.WordQuerySettled.Seconds())
	}
	return results, nil
}

// sustainedLogmesh runs an agent of v in dir through the benchmark, and
// stops it.
func sustainedLogmesh(ctx context.Context, system string, v Variant, dir string, cfg SustainedConfig, out func(string, ...any)) (SustainedResult, error) {
	// no --query-timeout: a slow query is measured whole, not cut short
	a, err := startAgent(ctx, v.Binary, dir, append([]string{"--fsync", cfg.Fsync, "--query-timeout", "0"}, v.Flags...)...)
	if err != nil {
		return SustainedResult{}, err
	}
	defer a.kill()
	return sustained(ctx, system, &logmeshStore{a}, cfg, out)
}

// printSustained prints a table of results, a row each.
func printSustained(results []SustainedResult, out func(string, ...any)) {
	out("\n%-13s %10s %12s %9s %12s %10s %8s %10s %14s %13s %10s\n", "", "lines/s", "last/first M", "CPU µs/l", "peak RSS MB", "disk B/l", "sealed", "word hits", "word query s", "idle after s", "settled s")
	for _, r := range results {
		flat := "n/a" // under 2 M lines
		if r.FirstM > 0 {
			flat = fmt.Sprintf("%.2f", r.LastM/r.FirstM)
		}
		idle := fmt.Sprintf("%.1f", r.Settled.Seconds())
		if !r.SettledIdle {
			idle = ">" + idle
		}
		sealed := "n/a"
		if r.Sealed >= 0 {
			sealed = fmt.Sprintf("%.0f%%", 100*float64(r.Sealed)/float64(r.Lines))
		}
		out("%-13s %10.0f %12s %9.1f %12d %10.1f %8s %10d %14.2f %13s %10.2f\n", r.System, r.Rate(), flat,
			float64(r.CPUPerLine().Nanoseconds())/1000, r.PeakRSS>>20, r.DiskPerLine, sealed, r.WordMatches, r.WordQuery.Seconds(), idle, r.WordQuerySettled.Seconds())
	}
}

// sustained runs one store through the benchmark.
func sustained(ctx context.Context, system string, s store, cfg SustainedConfig, out func(string, ...any)) (SustainedResult, error) {
	res := SustainedResult{System: system, Lines: cfg.Lines}
	if cfg.AlignToMinute {
		wait := untilNextMinute(time.Now())
		out("%s: waiting %v for the next minute to begin (runs see the minute boundaries at the same places)\n", system, wait.Round(time.Second))
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return res, ctx.Err()
		}
	}
	gc0 := s.gcCycles(ctx)
	cpu0, err := processCPU(s.pid())
	if err != nil {
		return res, err
	}
	// the store's count every 200 ms: when it passed each million
	type point struct {
		at time.Time
		n  uint64
	}
	var points []point
	var peakAnon, peakFile int64
	var mu sync.Mutex
	sctx, stopSampling := context.WithCancel(ctx)
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-sctx.Done():
				return
			case <-t.C:
			}
			anon, file, rerr := rss(s.pid())
			n, err := s.stored(sctx)
			mu.Lock()
			if rerr == nil {
				peakAnon, peakFile = max(peakAnon, anon), max(peakFile, file)
			}
			if err == nil {
				points = append(points, point{time.Now(), n})
			}
			mu.Unlock()
		}
	}()
	start := time.Now()
	mu.Lock()
	points = append(points, point{start, 0})
	mu.Unlock()
	if err := sendGenerated(ctx, s.syslogAddr(), cfg.Lines, cfg.Conns); err != nil {
		stopSampling()
		return res, err
	}
	sent := time.Since(start)
	deadline := time.Now().Add(30 * time.Minute)
	for {
		n, err := s.stored(ctx)
		if err == nil && n >= uint64(cfg.Lines) {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			stopSampling()
			return res, fmt.Errorf("%s holds %d of %d lines after 30 min (%v)", system, n, cfg.Lines, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	stored := time.Since(start)
	n, err := s.settle(ctx)
	res.Elapsed = time.Since(start)
	stopSampling()
	<-sampled
	if anon, file, err := rss(s.pid()); err == nil { // a run shorter than a sample still has one
		peakAnon, peakFile = max(peakAnon, anon), max(peakFile, file)
	}
	res.PeakAnon, res.PeakFile = peakAnon, peakFile
	if err != nil {
		return res, err
	}
	if n != uint64(cfg.Lines) {
		return res, fmt.Errorf("%s: a count query gives %d of %d lines", system, n, cfg.Lines)
	}
	cpu1, err := processCPU(s.pid())
	if err != nil {
		return res, err
	}
	res.CPU = cpu1 - cpu0
	res.Sealed = s.sealed(ctx)
	res.GCCycles = -1
	if gc1 := s.gcCycles(ctx); gc0 >= 0 && gc1 >= gc0 {
		res.GCCycles = gc1 - gc0
	}
	if res.PeakRSS, err = peakRSS(s.pid()); err != nil {
		return res, err
	}
	// the rate of the first and the last million from the samples
	crossing := func(target uint64) time.Time {
		for i := 1; i < len(points); i++ {
			a, b := points[i-1], points[i]
			if b.n >= target && b.n > a.n {
				f := float64(target-min(target, a.n)) / float64(b.n-a.n)
				return a.at.Add(time.Duration(f * float64(b.at.Sub(a.at))))
			}
		}
		return points[len(points)-1].at
	}
	const m = 1_000_000
	if cfg.Lines >= 2*m {
		res.FirstM = m / crossing(m).Sub(start).Seconds()
		end := uint64(cfg.Lines)
		res.LastM = m / crossing(end).Sub(crossing(end-m)).Seconds()
	}
	qs := time.Now()
	if res.WordMatches, err = s.wordQuery(ctx); err != nil {
		return res, err
	}
	res.WordQuery = time.Since(qs)
	if want := (cfg.Lines + 99) / 100; res.WordMatches != want {
		return res, fmt.Errorf("%s: the word query returned %d lines, want %d", system, res.WordMatches, want)
	}
	gc := "not reported"
	if res.GCCycles >= 0 {
		gc = fmt.Sprintf("%d (%.1f/s)", res.GCCycles, float64(res.GCCycles)/res.Elapsed.Seconds())
	}
	// said before the disk is measured: compacting a large store (and
	// collecting its value log) can take longer than the ingestion
	sealed := ""
	if res.Sealed >= 0 {
		sealed = fmt.Sprintf(", sealed into blocks by then %d (%.0f%%)", res.Sealed, 100*float64(res.Sealed)/float64(cfg.Lines))
	}
	out("%s: sent in %v, stored after %v, queryable (a count query answers all) after %v (%.0f lines/s; first million %.0f/s, last %.0f/s), CPU %v, peak RSS %d MB (sampled: anonymous %d MB, file-backed %d MB), Go collections %s%s, word query %v; waiting for it to go idle...\n",
		system, sent.Round(time.Millisecond), stored.Round(time.Millisecond), res.Elapsed.Round(time.Millisecond), res.Rate(), res.FirstM, res.LastM,
		res.CPU.Round(time.Millisecond), res.PeakRSS>>20, res.PeakAnon>>20, res.PeakFile>>20, gc, sealed, res.WordQuery.Round(time.Millisecond))
	if res.Settled, res.SettledIdle, err = waitIdle(ctx, s.pid(), settleLimit); err != nil {
		return res, err
	}
	qs = time.Now()
	again, err := s.wordQuery(ctx)
	if err != nil {
		return res, err
	}
	res.WordQuerySettled = time.Since(qs)
	if again != res.WordMatches {
		return res, fmt.Errorf("%s: the word query returned %d lines once settled, %d before", system, again, res.WordMatches)
	}
	busy := ""
	if !res.SettledIdle {
		busy = " (still busy: gave up waiting)"
	}
	out("%s: idle %v after the word query%s; the word query again: %v; compacting to measure the disk...\n", system, res.Settled.Round(time.Millisecond), busy, res.WordQuerySettled.Round(time.Millisecond))
	ds := time.Now()
	if res.DiskPerLine, err = s.diskPerLine(ctx, cfg.Lines); err != nil {
		return res, err
	}
	out("%s: %.1f B/line on disk after compaction (%v)\n", system, res.DiskPerLine, time.Since(ds).Round(time.Millisecond))
	return res, nil
}

// sendGenerated sends n generated octet-counted RFC 5424 lines over conns
// TCP connections to addr, generating them as it goes (30 M lines do not
// fit in memory ahead); one line in a hundred holds sustainedWord.
func sendGenerated(ctx context.Context, addr string, n, conns int) error {
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for c := 0; c < conns; c++ {
		share := n / conns
		if c < n%conns {
			share++
		}
		wg.Add(1)
		go func(c, share int) {
			defer wg.Done()
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				errs <- err
				return
			}
			defer conn.Close()
			g := sample.New(uint64(c) + 1)
			w := bufio.NewWriterSize(conn, 256<<10)
			now := time.Now()
			for i := 0; i < share; i++ {
				if i%4096 == 0 {
					if ctx.Err() != nil {
						errs <- ctx.Err()
						return
					}
					now = time.Now()
				}
				l := g.RFC5424(now)
				if (i*conns+c)%100 == 0 {
					l += " " + sustainedWord
				}
				if _, err := w.WriteString(strconv.Itoa(len(l)) + " " + l); err != nil {
					errs <- err
					return
				}
			}
			if err := w.Flush(); err != nil {
				errs <- err
			}
		}(c, share)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return fmt.Errorf("send: %w", err)
	}
	return nil
}

// logmeshStore is a logmesh agent under the benchmark.
type logmeshStore struct{ a *agent }

func (s *logmeshStore) syslogAddr() string { return s.a.syslog }
func (s *logmeshStore) pid() int           { return s.a.cmd.Process.Pid }
func (s *logmeshStore) kill()              { s.a.kill() }

func (s *logmeshStore) stored(ctx context.Context) (uint64, error) {
	st, err := s.a.cl.Status(ctx)
	return st.Records, err
}

func (s *logmeshStore) settle(ctx context.Context) (uint64, error) {
	return countLines(ctx, http.MethodGet, "http://"+s.a.api+"/v1/logs?local=true&count=true", nil, func(b []byte) (uint64, error) {
		var c api.Count
		err := json.Unmarshal(b, &c)
		return uint64(c.Count), err
	})
}

func (s *logmeshStore) wordQuery(ctx context.Context) (int, error) {
	n, err := countLines(ctx, http.MethodGet, "http://"+s.a.api+"/v1/logs?local=true&limit=0&word="+sustainedWord, nil, nil)
	return int(n), err
}

// gcCycles reads go_gc_duration_seconds_count from the agent's metrics.
func (s *logmeshStore) gcCycles(ctx context.Context) int64 {
	return metricCount(ctx, "http://"+s.a.api+"/metrics", "go_gc_duration_seconds_count")
}

// sealed reads logmesh_store_records_sealed_total from the agent's metrics.
func (s *logmeshStore) sealed(ctx context.Context) int64 {
	return metricCount(ctx, "http://"+s.a.api+"/metrics", "logmesh_store_records_sealed_total")
}

func (s *logmeshStore) diskPerLine(ctx context.Context, lines int) (float64, error) {
	if err := s.a.stop(); err != nil {
		return 0, err
	}
	dir := filepath.Join(s.a.dataDir, "store")
	if !isThisBinary(s.a.cmd.Path) {
		// the binary that wrote the store compacts it: this one may not
		// read its format (a compared build of a newer store format)
		perLine, err := compactWith(ctx, s.a.cmd.Path, dir, lines)
		if err == nil {
			return perLine, nil
		}
		if !errors.Is(err, errNoCompactStore) {
			return 0, err
		}
	}
	return compactedBytes(dir, uint64(lines))
}

// errNoCompactStore: a logmesh binary too old to compact a store for the
// bench (`bench --compact-store`); this binary compacts it instead.
var errNoCompactStore = errors.New("bench: the binary has no --compact-store")

// compactWith runs bin's `bench --compact-store dir --lines lines`, which
// compacts the stopped store in dir and prints its bytes per line.
func compactWith(ctx context.Context, bin, dir string, lines int) (float64, error) {
	out, err := exec.CommandContext(ctx, bin, "bench", "--compact-store", dir, "--lines", strconv.Itoa(lines)).CombinedOutput()
	if err != nil {
		if bytes.Contains(out, []byte("flag provided but not defined")) {
			return 0, errNoCompactStore
		}
		return 0, fmt.Errorf("compact the store with %s: %w: %s", bin, err, bytes.TrimSpace(out))
	}
	perLine, err := strconv.ParseFloat(string(bytes.TrimSpace(out)), 64)
	if err != nil {
		return 0, fmt.Errorf("compact the store with %s: it printed %q: %w", bin, out, err)
	}
	return perLine, nil
}

// isThisBinary reports whether bin is the running executable.
func isThisBinary(bin string) bool {
	self, err := os.Executable()
	if err != nil {
		return false
	}
	a, errA := filepath.EvalSymlinks(self)
	b, errB := filepath.EvalSymlinks(bin)
	return errA == nil && errB == nil && a == b
}

// CompactedBytesPerLine opens the stopped store in dir, compacts it and
// returns its disk bytes per line of lines (`logmesh bench --compact-store`).
func CompactedBytesPerLine(dir string, lines int) (float64, error) {
	return compactedBytes(dir, uint64(lines))
}

// victoriaLogs is a VictoriaLogs single-node process under the benchmark.
type victoriaLogs struct {
	cmd          *exec.Cmd
	done         chan error
	http, syslog string
	data         string
	killed       bool
}

func startVictoriaLogs(ctx context.Context, bin, dir string) (*victoriaLogs, error) {
	httpAddr, err := freePort()
	if err != nil {
		return nil, err
	}
	sys, err := freePort()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "victoria-logs.log"))
	if err != nil {
		return nil, err
	}
	v := &victoriaLogs{http: httpAddr, syslog: sys, data: filepath.Join(dir, "data"), done: make(chan error, 1)}
	v.cmd = exec.Command(bin, "-storageDataPath="+v.data, "-httpListenAddr="+httpAddr,
		"-syslog.listenAddr.tcp="+sys, "-retentionPeriod=100y", "-loggerLevel=WARN",
		// its default of 30 s ends the word query over 30 M lines midway
		// (the client then reads a broken chunked body); logmesh's has none
		"-search.maxQueryDuration=30m")
	v.cmd.Stdout, v.cmd.Stderr = logf, logf
	if err := v.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start VictoriaLogs: %w", err)
	}
	go func() { v.done <- v.cmd.Wait(); logf.Close() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + httpAddr + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return v, nil
			}
		}
		select {
		case err := <-v.done:
			v.killed = true
			return nil, fmt.Errorf("VictoriaLogs exited (%v); see %s", err, logf.Name())
		case <-ctx.Done():
			v.kill()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			v.kill()
			return nil, errors.New("VictoriaLogs did not come up")
		}
	}
}

func (v *victoriaLogs) syslogAddr() string { return v.syslog }
func (v *victoriaLogs) pid() int           { return v.cmd.Process.Pid }

func (v *victoriaLogs) kill() {
	if v.killed {
		return
	}
	v.killed = true
	_ = v.cmd.Process.Kill()
	<-v.done
}

// stored is VictoriaLogs's count of rows taken in (they become queryable
// within a second, or at settle's flush).
func (v *victoriaLogs) stored(ctx context.Context) (uint64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+v.http+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), `vl_rows_ingested_total{type="syslog_tcp"} `); ok {
			return strconv.ParseUint(strings.TrimSpace(rest), 10, 64)
		}
	}
	return 0, sc.Err()
}

func (v *victoriaLogs) settle(ctx context.Context) (uint64, error) {
	if err := v.get(ctx, "/internal/force_flush"); err != nil {
		return 0, err
	}
	return countLines(ctx, http.MethodPost, "http://"+v.http+"/select/logsql/query",
		url.Values{"query": {"* | stats count() n"}}, func(b []byte) (uint64, error) {
			var n uint64
			_, err := fmt.Sscanf(strings.TrimSpace(string(b)), `{"n":"%d"}`, &n)
			return n, err
		})
}

func (v *victoriaLogs) wordQuery(ctx context.Context) (int, error) {
	n, err := countLines(ctx, http.MethodPost, "http://"+v.http+"/select/logsql/query", url.Values{"query": {sustainedWord}}, nil)
	return int(n), err
}

// gcCycles is -1: the figure is logmesh's diagnosis, not a comparison.
func (v *victoriaLogs) gcCycles(context.Context) int64 { return -1 }

func (v *victoriaLogs) sealed(context.Context) int64 { return -1 }

func (v *victoriaLogs) diskPerLine(ctx context.Context, lines int) (float64, error) {
	if err := v.get(ctx, "/internal/force_merge"); err != nil {
		return 0, err
	}
	// the merge runs in the background: wait until the size holds still
	last, still := int64(-1), 0
	for still < 5 {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(time.Second):
		}
		if n := dirBytes(v.data); n == last {
			still++
		} else {
			last, still = n, 0
		}
	}
	_ = v.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-v.done:
		v.killed = true
	case <-time.After(60 * time.Second):
		v.kill()
	}
	return float64(dirBytes(v.data)) / float64(lines), nil
}

func (v *victoriaLogs) get(ctx context.Context, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+v.http+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("VictoriaLogs %s: %s", path, resp.Status)
	}
	return nil
}

// countLines sends a request and counts the non-empty lines of its answer,
// or, with parse, parses the whole answer into a number.
func countLines(ctx context.Context, method, u string, form url.Values, parse func([]byte) (uint64, error)) (uint64, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return 0, err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return 0, fmt.Errorf("%s %s: %s %s", method, u, resp.Status, b)
	}
	if parse != nil {
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return 0, err
		}
		return parse(b)
	}
	var n uint64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if bytes.HasPrefix(line, []byte(`{"error":`)) {
			// an answer that ends with an error is incomplete (logmesh's
			// --query-timeout, a failing store): not a count of lines
			var e api.Error
			if json.Unmarshal(line, &e) == nil && e.Error != "" {
				return n, fmt.Errorf("%s %s: the answer ended after %d lines with an error: %s", method, u, n, e.Error)
			}
		}
		if len(line) > 0 {
			n++
		}
	}
	return n, sc.Err()
}

// metricCount returns the value of an unlabelled counter in a Prometheus
// text exposition at u, or -1 when it cannot be read.
func metricCount(ctx context.Context, u, name string) int64 {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return -1
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return -1
			}
			return int64(f)
		}
	}
	return -1
}
