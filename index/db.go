package index

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	badger "github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"

	"github.com/logmesh/logmesh/record"
)

// Errors.
var (
	ErrClosed   = errors.New("index: closed")
	ErrNotFound = errors.New("index: record not found")
)

// DB is a peer's record store. It is safe for concurrent use.
type DB struct {
	cfg Config
	bdb *badger.DB
	dig *digests
	// space refuses writes while the disk is nearly full.
	space *spaceGuard
	// walSync syncs the logs of memtables that filled since the last sync.
	walSync walSyncer
	// ckptMu makes digest checkpoints one at a time.
	ckptMu sync.Mutex

	// collecting keeps value-log collections apart from the writes that
	// must not fall inside one (settle.go): a collection holds it alone.
	collecting sync.RWMutex
	// dropping makes drops of moved slices one at a time (dropMoved), so
	// that two never both drop, and count, the same slices.
	dropping sync.Mutex
	// lastMovedDrop: when maintenance last dropped loose records of moved
	// slices (UnixNano; zero: not since the opening), for DropMovedEvery
	lastMovedDrop atomic.Int64
	// settleSeq numbers the deletes still to settle (settle.go).
	settleSeq atomic.Uint64
	// stamping is held shared by a commit outside the group commit from
	// taking its timestamp until it is applied; allowDiscard takes it
	// alone, so that every timestamp it lets compactions pass is applied
	// and its deletes are seen by settle.
	stamping sync.RWMutex

	reqCh  chan *writeReq
	exclCh chan func() // work run exclusively in the committer (retention)
	pipe   *pipeline
	newest newest // committer goroutine only
	blocks blockWindows
	moves  movedSlices // moved.go
	// storedFormat is the format the store's metadata says (migrate.go),
	// raised by the sealer's first block (seal.go)
	storedFormat atomic.Int32
	// sealedGen maps the windows the sealer sealed whole to their
	// generation then (the sealer's goroutine only)
	sealedGen map[record.Window]uint64
	// sealedSlices maps a window still being written to the first of its
	// slices the sealer has not sealed yet (only the sealer's goroutine
	// uses it)
	sealedSlices map[record.Window]uint8
	sealPasses   atomic.Uint64 // passes of the sealer so far
	// capture holds what the committer stored into the slices the sealer
	// will move (capture.go); nil without the sealer or with
	// Config.SealCaptureBytes < 0
	capture *capture
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
	closed    atomic.Bool

	nextSeq atomic.Uint64 // next journal sequence (used by the committer only, read by others)
	// journalFloor is the lowest journal sequence someone still needs
	// (replication cursors); entries below it and below the checkpoint are pruned.
	journalFloor atomic.Uint64
	floorSet     atomic.Bool
	ckptSeq      atomic.Uint64
	// cutoffW is the first window retention keeps (see cutoff).
	cutoffW atomic.Uint32
	// cutoffBacks counts the times the cutoff moved back (a retention
	// clock that went back), each counted before the lower cutoff is
	// stored: a move whose count did not change saw only cutoffs at or
	// below the one its switch checks (moveSlice).
	cutoffBacks atomic.Uint64
	// expireMu holds one expire (and its update of the cutoff) at a time
	expireMu sync.Mutex
	// storeID identifies this store; fresh: Open created it empty.
	storeID string
	fresh   bool
	applied atomic.Uint64 // last journal sequence applied
	// writes counts the writes made to Badger, each once it has reached
	// Badger's log (a commit's callback, or the return of the call). The
	// periodic sync skips a tick with none since the last one.
	writes atomic.Uint64
	// ts is the last Badger commit timestamp handed out (see commitTs).
	ts atomic.Uint64
	// readTs is the snapshot timestamp of record reads (snapshot.go)
	readTs atomic.Uint64
	snaps  snapshots

	subs struct {
		sync.Mutex
		m    map[int]chan struct{}
		next int
	}

	stats stats
}

// CheckOpenSpace reports whether the disk of cfg.Dir has the free space the
// store needs to open: nil, or an error wrapping ErrNoSpace that says how
// much is free and how much is needed. A directory whose free space cannot
// be measured (it does not exist yet) passes.
func CheckOpenSpace(cfg Config) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	return checkOpenSpace(&cfg)
}

func checkOpenSpace(cfg *Config) error {
	minFree := cfg.minFreeDiskBytes()
	if minFree <= 0 {
		return nil
	}
	// Badger replays its log and flushes through memory maps while it
	// opens: on a full disk that is SIGBUS, not an error
	if free, err := cfg.freeBytes(existingAncestor(cfg.Dir)); err == nil && free < minFree {
		return fmt.Errorf("cannot open the store in %s: %d MiB free on its disk, under the %d MiB it needs to open "+
			"without crashing (its log is replayed through memory maps); free space on it: %w",
			cfg.Dir, free>>20, minFree>>20, ErrNoSpace)
	}
	return nil
}

// existingAncestor is dir, or its nearest parent that exists.
func existingAncestor(dir string) string {
	for {
		if _, err := os.Stat(dir); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return dir
		}
		dir = parent
	}
}

// Open opens (or creates) the DB in cfg.Dir, rebuilds its digests from the
// last checkpoint and the journal, and starts its background work. A
// directory that Badger cannot open fails with an error naming it; the
// runbook is to move it aside and let anti-entropy refill the peer.
func Open(cfg Config) (*DB, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("cannot create data directory %s: %w", cfg.Dir, err)
	}
	log := cfg.Logger.With("component", "index")
	if err := checkOpenSpace(&cfg); err != nil {
		return nil, err
	}
	opts := engineOptions(cfg, filepath.Join(cfg.Dir, "badger")).
		WithLogger(badgerLogger{log.With("lib", "badger")})
	// Managed mode: the store picks each commit's timestamp and reads at
	// the newest (readAll). In Badger's own mode every new transaction
	// waits until all earlier commits are in the memtable, which made the
	// committer build each group commit only after Badger had written the
	// one before, on two cores that were then partly idle.
	bdb, err := badger.OpenManaged(opts)
	if err != nil {
		return nil, fmt.Errorf("cannot open store in %s (if it is corrupt, move it aside; anti-entropy refills the peer): %w", cfg.Dir, err)
	}
	cfg.Logger = log
	db := &DB{
		cfg:     cfg,
		bdb:     bdb,
		dig:     newDigests(),
		reqCh:   make(chan *writeReq, 1024),
		exclCh:  make(chan func()),
		pipe:    newPipeline(),
		space:   newSpaceGuard(cfg.Dir, cfg.minFreeDiskBytes(), cfg.freeBytes),
		walSync: walSyncer{syncFile: cfg.syncFile},
	}
	db.ts.Store(bdb.MaxVersion())
	db.ctx, db.cancel = context.WithCancel(context.Background())
	if err := db.loadIdentity(); err != nil {
		bdb.Close()
		return nil, err
	}
	if err := db.recover(); err != nil {
		bdb.Close()
		return nil, err
	}
	if err := db.migrateFormat(); err != nil {
		bdb.Close()
		return nil, err
	}
	if err := db.loadSettleSeq(); err != nil {
		bdb.Close()
		return nil, fmt.Errorf("cannot read the deletes to settle in %s: %w", cfg.Dir, err)
	}
	if err := db.loadBlockWindows(); err != nil {
		bdb.Close()
		return nil, fmt.Errorf("cannot read the sealed windows in %s: %w", cfg.Dir, err)
	}
	if err := db.loadNewest(); err != nil {
		bdb.Close()
		return nil, fmt.Errorf("cannot read the newest records in %s: %w", cfg.Dir, err)
	}
	db.readTs.Store(db.ts.Load()) // what opening wrote (recovery, migration) is applied
	db.pipe.startSeq = db.nextSeq.Load()
	db.applied.Store(db.nextSeq.Load() - 1)
	db.subs.m = map[int]chan struct{}{}
	if err := db.space.check(); err != nil {
		db.logWritable(false)
	}
	if cfg.SealAfter > 0 && cfg.SealCaptureBytes > 0 {
		// before the committer starts: a captured slice sees every write
		since := cfg.captureSince
		if since.IsZero() {
			// from the slice the store opens in: it is captured if it
			// is still empty at its first write (sliceEmptyBefore), as
			// in a fresh store; after a restart it holds records already
			// and is read back
			now := cfg.Now().UnixMilli()
			since = time.UnixMilli(now - now%SliceMillis)
		}
		db.capture = newCapture(cfg.SealCaptureBytes, since)
	}
	db.wg.Add(2)
	go db.commitLoop()
	go db.completeLoop()
	db.every(cfg.DiskCheckInterval, db.recheckSpace)
	db.every(cfg.CheckpointInterval, func() bool {
		db.checkpoint(log)
		return true
	})
	db.every(cfg.MaintenanceInterval, func() bool { db.Maintain(); return true })
	if cfg.SealAfter > 0 {
		db.sealedGen = map[record.Window]uint64{}
		db.sealedSlices = map[record.Window]uint8{}
		if !cfg.noSealLoop {
			db.every(cfg.SealInterval, func() bool { return db.sealPass() != ErrClosed })
			if db.capture != nil {
				db.every(captureEvery, db.cutLoop)
			}
		}
	}
	if cfg.FsyncInterval > 0 {
		db.every(cfg.FsyncInterval, db.periodicSync())
	}
	if p := builderPool(bdb); p != nil {
		db.every(builderPoolDrainEvery, func() bool { drainBuilderPool(p); return true })
	} else {
		log.Warn("cannot reach Badger's table-builder pool; its idle allocators are not released early")
	}
	if cfg.MaxMappedBytes > 0 && pageOutSupported {
		db.every(mappedCheckEvery, db.trimMapped(mapsPrefix(filepath.Join(cfg.Dir, "badger")), cfg.MaxMappedBytes))
	}
	return db, nil
}

// periodicSync returns the fsync-interval tick: it syncs the logs if
// anything was written to Badger since the last sync that succeeded, so an
// idle peer does not flush the disk ten times a second. The first tick
// always syncs (the logs may hold writes of the previous process). The
// count is read before syncing: a write that lands during the sync is
// counted after it and makes the next tick sync again.
func (db *DB) periodicSync() func() bool {
	synced := ^uint64(0) // no count yet: the first tick syncs
	return func() bool {
		n := db.writes.Load()
		if n == synced {
			return true
		}
		if err := db.Sync(); err != nil {
			db.cfg.Logger.Error("periodic sync failed", "err", err)
			return true
		}
		synced = n
		return true
	}
}

// wrote counts a write that has reached Badger's log (see DB.writes).
func (db *DB) wrote() { db.writes.Add(1) }

// update runs fn in a write transaction committed at the next timestamp:
// Badger's Update for managed mode, for the store's own writes outside the
// group commit (checkpoints, metadata, retention). It is counted for the
// periodic sync once it returns, failed or not (a failed one may have
// written some).
func (db *DB) update(fn func(txn *badger.Txn) error) error {
	_, err := db.commitWith(fn)
	return err
}

// commitWith is update, returning the commit timestamp (0 if fn failed).
func (db *DB) commitWith(fn func(txn *badger.Txn) error) (uint64, error) {
	defer db.wrote()
	txn := db.bdb.NewTransactionAt(readAll, true)
	defer txn.Discard()
	if err := fn(txn); err != nil {
		return 0, err
	}
	db.stamping.RLock() // from taking its timestamp until applied
	defer db.stamping.RUnlock()
	ts := db.commitTs()
	return ts, txn.CommitAt(ts, nil)
}

// updateRecords is update for a transaction that changes record keys
// outside the group commit (the sealer's, the scrub's): it must run alone
// inside the committer (db.exclCh), with nothing in flight, so that once it
// is applied readTs may move past it (snapshot.go).
func (db *DB) updateRecords(fn func(txn *badger.Txn) error) error {
	ts, err := db.commitWith(fn)
	db.advanceReadTs(ts) // applied, or failed whole (0 moves nothing)
	return err
}

// readAll is the read timestamp of every transaction: the newest version
// of each key, including writes still on their way into the memtable.
// Reads therefore never wait for commits in flight, and see every write
// acknowledged before they started.
const readAll = math.MaxUint64

// commitTs hands out the next commit timestamp. Writers of the same key
// (the committer for records and the journal, one goroutine each for the
// checkpoint and metadata) take theirs in the order they write, so the
// last write of a key is its newest version.
func (db *DB) commitTs() uint64 { return db.ts.Add(1) }

// every runs fn every d in a goroutine the DB owns, until the DB closes or fn
// returns false.
func (db *DB) every(d time.Duration, fn func() bool) {
	db.wg.Add(1)
	go func() {
		defer db.wg.Done()
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-db.ctx.Done():
				return
			case <-t.C:
				if !fn() {
					return
				}
			}
		}
	}()
}

// recover loads the digest checkpoint and replays the journal after it.
func (db *DB) recover() error {
	start := time.Now()
	cutoff := db.cutoff()
	var ckpt uint64
	err := db.bdb.View(func(txn *badger.Txn) error {
		if item, err := txn.Get(metaKey("ckpt")); err == nil {
			v, _ := item.ValueCopy(nil)
			if len(v) != 8 {
				return fmt.Errorf("index: corrupt checkpoint sequence")
			}
			ckpt = binary.BigEndian.Uint64(v)
		} else if !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixCheckpoint}})
		defer it.Close()
		db.dig.mu.Lock()
		defer db.dig.mu.Unlock()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()
			if len(k) != 5 {
				continue
			}
			w := record.Window(binary.BigEndian.Uint32(k[1:]))
			if w < cutoff {
				continue
			}
			var wd *windowDigests
			err := it.Item().Value(func(v []byte) (err error) { wd, err = decodeWindowDigests(v); return err })
			if err != nil {
				return fmt.Errorf("window %d: %w", w, err)
			}
			for p := range wd.partGen {
				wd.partGen[p] = 1 // generation 0 means "no window"
			}
			db.dig.mu.windows[w] = wd
		}
		db.dig.mu.applied = ckpt
		db.dig.mu.gen = 1
		return nil
	})
	if err != nil {
		return fmt.Errorf("cannot load digest checkpoint from %s: %w", db.cfg.Dir, err)
	}
	replayed, last := 0, ckpt
	err = db.bdb.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixJournal}})
		defer it.Close()
		db.dig.mu.Lock()
		defer db.dig.mu.Unlock()
		for it.Seek(journalKey(ckpt + 1)); it.Valid(); it.Next() {
			seq := binary.BigEndian.Uint64(it.Item().Key()[1:])
			var e JournalEntry
			err := it.Item().Value(func(v []byte) (err error) { e, err = decodeJournal(seq, v); return err })
			if err != nil {
				return err
			}
			db.dig.applyLocked(&e, cutoff)
			replayed++
			last = seq
		}
		// the last journal entry may lie below the checkpoint when all after it were pruned
		it2 := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixJournal}, Reverse: true})
		defer it2.Close()
		it2.Seek(journalKey(^uint64(0)))
		if it2.Valid() {
			if s := binary.BigEndian.Uint64(it2.Item().Key()[1:]); s > last {
				last = s
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("cannot replay journal in %s: %w", db.cfg.Dir, err)
	}
	db.nextSeq.Store(last + 1)
	db.ckptSeq.Store(ckpt)
	var n uint64
	db.dig.mu.Lock()
	for _, wd := range db.dig.mu.windows {
		for i := range wd.buckets {
			n += wd.buckets[i].Count
		}
	}
	db.dig.mu.Unlock()
	db.cfg.Logger.Info("store opened", "dir", db.cfg.Dir, "records", n, "journal_replayed", replayed,
		"took", time.Since(start).Round(time.Millisecond))
	return nil
}

// cutoff returns the first window retention keeps. It moves only when
// maintenance reads a trusted retention clock (see Config.RetentionClock),
// and is kept across restarts, so a clock that is wrong at start-up neither
// drops windows early nor refuses their records.
func (db *DB) cutoff() record.Window { return record.Window(db.cutoffW.Load()) }

// Cutoff returns the first time window that has not expired; records in
// earlier windows are refused and never compared.
func (db *DB) Cutoff() record.Window { return db.cutoff() }

// retentionNow is the time retention is computed from, and whether it can
// be trusted now.
func (db *DB) retentionNow() (time.Time, bool) {
	if db.cfg.RetentionClock != nil {
		return db.cfg.RetentionClock()
	}
	return db.cfg.Now(), true
}

// updateCutoff recomputes the cutoff from the retention clock, when it can
// be trusted, and keeps it. It reports the cutoff in force.
func (db *DB) updateCutoff() record.Window {
	now, ok := db.retentionNow()
	if !ok {
		return db.cutoff()
	}
	c := record.WindowOf(now.Add(-db.cfg.Retention).UnixMilli())
	if old := db.cutoff(); old != c {
		if c < old {
			db.cutoffBacks.Add(1)
			db.cfg.Logger.Warn("the retention cutoff moved back: the retention clock went back", "from", old, "to", c)
		}
		db.cutoffW.Store(uint32(c))
		if err := db.SetMeta(metaCutoff, binary.BigEndian.AppendUint32(nil, uint32(c))); err != nil {
			db.cfg.Logger.Warn("cannot save the retention cutoff", "err", err)
		}
	}
	return c
}

const (
	metaCutoff = "cutoff"
	metaStore  = "sid"
)

// loadIdentity reads the store's identity and retention cutoff, creating
// the identity of a new store.
func (db *DB) loadIdentity() error {
	v, err := db.GetMeta(metaCutoff)
	if err != nil {
		return err
	}
	if len(v) == 4 {
		db.cutoffW.Store(binary.BigEndian.Uint32(v))
	} else if now, ok := db.retentionNow(); ok {
		db.cutoffW.Store(uint32(record.WindowOf(now.Add(-db.cfg.Retention).UnixMilli())))
	}
	sid, err := db.GetMeta(metaStore)
	if err != nil {
		return err
	}
	if len(sid) > 0 {
		db.storeID = string(sid)
		return nil
	}
	empty := true
	err = db.bdb.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if k := it.Item().Key(); len(k) > 0 && k[0] != prefixMeta {
				empty = false
				break
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("cannot read store %s: %w", db.cfg.Dir, err)
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return fmt.Errorf("index: store identity: %w", err)
	}
	db.storeID, db.fresh = hex.EncodeToString(b[:]), empty
	// synced with the next commit or checkpoint; a store that crashes
	// before that holds nothing and gets a new identity
	return db.SetMeta(metaStore, []byte(db.storeID))
}

// StoreID identifies this store: a new data directory gets a new one.
func (db *DB) StoreID() string { return db.storeID }

// Fresh reports whether this Open created the store (it held nothing).
func (db *DB) Fresh() bool { return db.fresh }

// Close stops background work, checkpoints the digests and closes the store.
// It is idempotent; writes after Close fail with ErrClosed.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		db.closed.Store(true)
		db.cancel()
		db.wg.Wait()
		err1 := db.writeCheckpoint()
		err2 := db.bdb.Sync()
		err3 := db.bdb.Close()
		db.closeErr = errors.Join(err1, err2, err3)
	})
	return db.closeErr
}

// Sync makes every committed write durable now.
//
// A committed write sits in a memory-mapped log: the write-ahead log of a
// memtable (*.mem) or, for a large value, the value log (*.vlog). On Linux
// Sync fdatasyncs those files itself (fdatasync writes back the pages
// dirtied through Badger's shared memory map, as Badger's msync does)
// instead of calling Badger's DB.Sync, for two reasons:
//   - Badger's Sync holds its DB lock (read side) while it msyncs the active
//     log, and Badger's writer takes that lock (write side) for every batch
//     it writes: each periodic sync held up all writes for as long as the
//     disk took to take the interval's log pages.
//   - Badger's Sync covers only the active memtable's log. A commit written
//     just before its memtable filled sits in the log of a now immutable
//     memtable until that memtable is flushed to a table, and would stay
//     unsynced: acknowledged writes could vanish at a power cut.
//
// Elsewhere (syncLogsByDescriptor false) Badger's Sync syncs the active logs
// and the syncer the filled memtable logs.
func (db *DB) Sync() error {
	db.stats.syncs.Add(1)
	if !syncLogsByDescriptor {
		if err := db.bdb.Sync(); err != nil {
			return db.space.noteErr(fmt.Errorf("index: sync: %w", err))
		}
	}
	opts := db.bdb.Opts()
	if err := db.walSync.sync(opts.Dir, opts.ValueDir, syncLogsByDescriptor); err != nil {
		return db.space.noteErr(fmt.Errorf("index: sync: %w", err))
	}
	return nil
}

// walSyncer syncs Badger's logs (*.mem in the directory, *.vlog in the value
// directory). The newest log of each kind is the one Badger writes to: it is
// synced every time (when active is set). An older log takes no more
// writes, so it is synced once (an immutable memtable's log is deleted once
// its table is durable). Badger syncs the directory itself when it creates
// a log.
type walSyncer struct {
	mu     sync.Mutex
	synced map[string]bool // older logs synced since they stopped taking writes
	// syncFile syncs a file's data (syncFileData; tests record the calls).
	syncFile func(path string) error
}

// logFid orders Badger's log names by file id (zero-padded, longer past the
// padding's width): the newest log is last.
func logFid(name string) int64 {
	base := filepath.Base(name)
	n, _ := strconv.ParseInt(strings.TrimSuffix(base, filepath.Ext(base)), 10, 64)
	return n
}

// sync syncs the logs that need it. The lock covers only the bookkeeping,
// not the syncs: a commit's sync does not wait behind a checkpoint's, and a
// log is marked synced only once its sync has returned.
func (w *walSyncer) sync(dir, valueDir string, active bool) error {
	syncFile := w.syncFile
	if syncFile == nil {
		syncFile = syncFileData
	}
	var todo []string   // logs to sync now
	var filled []string // those of them that take no more writes
	present := map[string]bool{}
	w.mu.Lock()
	if w.synced == nil {
		w.synced = map[string]bool{}
	}
	for _, pattern := range []string{filepath.Join(dir, "*.mem"), filepath.Join(valueDir, "*.vlog")} {
		logs, err := filepath.Glob(pattern)
		if err != nil {
			w.mu.Unlock()
			return err
		}
		sort.Slice(logs, func(i, j int) bool { return logFid(logs[i]) < logFid(logs[j]) })
		for i, name := range logs {
			present[name] = true
			switch {
			case i == len(logs)-1:
				if active {
					todo = append(todo, name)
				}
			case !w.synced[name]:
				todo = append(todo, name)
				filled = append(filled, name)
			}
		}
	}
	for name := range w.synced {
		if !present[name] {
			delete(w.synced, name)
		}
	}
	w.mu.Unlock()

	done := make(map[string]bool, len(filled))
	for _, name := range todo {
		err := syncFile(name)
		if errors.Is(err, os.ErrNotExist) {
			continue // flushed to a table (or collected) and deleted meanwhile
		} else if err != nil {
			return err
		}
		done[name] = true
	}
	w.mu.Lock()
	for _, name := range filled {
		if done[name] {
			w.synced[name] = true
		}
	}
	w.mu.Unlock()
	return nil
}

// checkpoint writes a checkpoint (writeCheckpoint) and logs a failure. One
// refused because a drop of moved slices or of a window holds Badger's writes
// (DropPrefix) is routine: its windows stay dirty and the next checkpoint
// writes them, so that is logged at debug level, not as an error.
func (db *DB) checkpoint(log *slog.Logger) {
	err := db.writeCheckpoint()
	switch {
	case err == nil:
	case errors.Is(err, badger.ErrBlockedWrites):
		log.Debug("digest checkpoint deferred: a drop holds the writes", "err", err)
	default:
		log.Error("digest checkpoint failed", "err", err)
	}
}

// writeCheckpoint writes the windows changed since the last checkpoint and the
// journal sequence they cover, in one transaction.
func (db *DB) writeCheckpoint() error {
	if !db.space.backgroundOK() {
		return nil // the journal covers the digests meanwhile
	}
	// The checkpoint loop, Maintain and Compact all write checkpoints: one at
	// a time, so an older snapshot never lands after a newer one.
	db.ckptMu.Lock()
	defer db.ckptMu.Unlock()
	cp := db.dig.takeCheckpoint()
	if len(cp.windows) == 0 && cp.seq == db.ckptSeq.Load() {
		return nil
	}
	err := db.update(func(txn *badger.Txn) error {
		for w, v := range cp.windows {
			if err := txn.Set(checkpointKey(w), v); err != nil {
				return err
			}
		}
		return txn.Set(metaKey("ckpt"), binary.BigEndian.AppendUint64(nil, cp.seq))
	})
	if err == nil {
		// durable before the journal it covers may be pruned: a prune that
		// survived a crash without its checkpoint would leave digests short
		err = db.Sync()
	}
	if err != nil {
		db.dig.markDirty(cp.windows)
		return fmt.Errorf("index: write checkpoint: %w", err)
	}
	db.ckptSeq.Store(cp.seq)
	return nil
}

// engineOptions are the Badger settings of a store in dir: the DB's and,
// so that the benchmarks compare like with like, the Baseline's.
func engineOptions(cfg Config, dir string) badger.Options {
	compression := options.ZSTD
	if cfg.UncompressedTables {
		compression = options.None
	}
	return badger.DefaultOptions(dir).
		WithSyncWrites(false). // syncs are explicit: per group commit or per interval
		WithDetectConflicts(false).
		WithCompression(compression).WithZSTDCompressionLevel(cfg.CompressionLevel).
		WithMemTableSize(cfg.MemTableBytes).
		WithNumMemtables(cfg.NumMemTables).
		WithNumLevelZeroTables(cfg.L0Tables).WithBaseLevelSize(cfg.BaseLevelBytes).
		WithNumLevelZeroTablesStall(2 * cfg.L0Tables).
		WithBlockCacheSize(cfg.BlockCacheBytes).
		WithIndexCacheSize(cfg.IndexCacheBytes).
		WithBlockSize(cfg.BlockBytes).WithBaseTableSize(cfg.BaseTableBytes).
		WithNumCompactors(2).
		WithValueThreshold(valueThreshold(cfg)).
		WithValueLogFileSize(cfg.ValueLogFileBytes).
		WithMetricsEnabled(false).
		// every block read checks its CRC: a damaged table is an error, not data
		WithChecksumVerificationMode(options.OnBlockRead)
}

// valueThreshold keeps records and journal entries in the LSM tree (where they
// are compressed and need no value-log GC) while staying below Badger's limit
// of 15% of a memtable.
func valueThreshold(cfg Config) int64 {
	if cfg.ValueThreshold > 0 {
		return cfg.ValueThreshold
	}
	return min(256<<10, cfg.MemTableBytes*15/100/2)
}

// FsyncAlways reports whether every commit is synced before it is
// acknowledged (no FsyncInterval).
func (db *DB) FsyncAlways() bool { return db.cfg.FsyncInterval == 0 }
