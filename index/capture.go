package index

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/logmesh/logmesh/record"
)

// Sealing from memory. A move (moved.go) used to read every record of a
// slice back from the store to cut its blocks: beside the writes that read
// took the core they needed, and with bodies in the value log it was a
// random read per record. The capture keeps instead what the committer
// stored into each minute slice that began while this process ran, as it
// is applied: a partition's records are cut into blocks and copied into the
// moved space once a block's worth of them is older than captureLag (so a
// record still in flight rarely lands inside a block copied already), and
// the rest are cut when the slice moves. The copies are invisible until the
// slice's switch, which carries over, as before, what changed after the
// move's listing.
//
// The capture is never trusted blindly. At the move, a run is taken from
// memory only if what the capture holds of it (in blocks copied and still
// pending, committed by the listing's snapshot) is as many records as the
// listing counts there, with no block in its loose space; a run changed
// otherwise than by a plain add (a delete, an unseal, a seal in place), or
// that got a record inside a block copied already, is read back from the
// store, as every run was before (its copies are replaced). A slice whose
// loose space held a key when its capture began, or whose copy failed, is
// read back whole and its copies cleared first.

// captureLag is how old (by its ID) a record must be before the capture cuts
// it into a block ahead of the move: later records of a partition rarely
// arrive older than that (the writers' batches in flight).
const captureLag = time.Second

// captureEagerLag is how old a record must be before the capture cuts it
// while over its budget. Cutting the newest records too made a run's cut
// end at the newest ID, so any record of a writer's batch still in flight
// (minted a moment before it) landed inside the block and sent the whole
// run back to be read at its move; at 70 000-120 000 lines/s the partial
// runs alone fill the default budget, and one 8 M-line run after another
// lost every run of a slice that way (docs/architecture.md, "Sealing from
// memory").
const captureEagerLag = captureLag / 4

// blockedCutWait is how long a copy of cut blocks waits for Badger to take
// writes again (writeCuts).
const blockedCutWait = time.Minute

// captureEvery is how often the sealer cuts the blocks the capture holds.
const captureEvery = 250 * time.Millisecond

type sliceRef struct {
	w record.Window
	s uint8
}

// capture is what the committer stored into the slices that began while
// this process ran and are not moved yet (see above).
type capture struct {
	budget int64 // bytes of pending records past which blocks are cut early
	since  int64 // milliseconds: slices that start before it are not captured (the opening's)

	// cutMu is held by a cut from taking its records until their copy is
	// committed (or its slice broken), and by a move while it clears the
	// moved space and while it lists a slice and takes it over (finish):
	// no copy lands in a slice cleared or taken over meanwhile.
	cutMu sync.Mutex

	mu     sync.Mutex
	slices map[sliceRef]*sliceCapture
	// held: slices a move holds off the cuts (holdSlice) until its finish,
	// whether or not their capture has begun yet
	held  map[sliceRef]bool
	bytes int64 // of the pending records
	// shedSlices counts the slices given up for memory (shed)
	shedSlices uint64
}

type sliceCapture struct {
	// broken: read the slice back whole, its copies cleared first (its
	// loose space held keys when the capture began, or a copy failed)
	broken bool
	// closed: the slice's move took it over; later writes are not captured
	closed bool
	runs   map[record.Partition]*runCapture
}

type runCapture struct {
	pending []capturedRecord // not in a block yet
	sorted  bool             // pending is in ID order
	// buf holds the data of the pending records (one allocation without
	// pointers per run, not one per record: the collector scans nothing)
	buf []byte
	// dirty: changed otherwise than by an add, or a record landed at or
	// below cutTo: read back at the move
	dirty bool
	cutTo record.ID // the last ID of the newest block copied (cut > 0)
	cut   int       // records in the blocks copied
}

type capturedRecord struct {
	ts     uint64 // commit timestamp
	ID     record.ID
	off, n uint32 // of its data in the run's buf
}

func (rc *runCapture) data(r capturedRecord) []byte { return rc.buf[r.off : r.off+r.n : r.off+r.n] }

func newCapture(budget int64, now time.Time) *capture {
	return &capture{budget: budget, since: now.UnixMilli(), slices: map[sliceRef]*sliceCapture{}}
}

// wants reports whether a record of id written into its loose space would be
// captured (the builder keeps only those for added).
func (c *capture) wants(id record.ID) bool {
	return c != nil && sliceStart(id.Window(), sliceOf(id.Millis())) >= c.since
}

// added takes the records a transaction committed at ts stored into their
// loose space. empty reports whether a slice's loose space held no key
// before ts (asked once per slice, when its capture begins).
func (c *capture) added(ts uint64, recs []blockRecord, empty func(sliceRef) bool) {
	if c == nil || len(recs) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range recs {
		ref := sliceRef{r.ID.Window(), sliceOf(r.ID.Millis())}
		sc := c.slices[ref]
		if sc == nil {
			sc = &sliceCapture{runs: map[record.Partition]*runCapture{}}
			sc.broken = !empty(ref)
			c.slices[ref] = sc
		}
		if sc.broken || sc.closed {
			continue
		}
		p := r.ID.Partition()
		rc := sc.runs[p]
		if rc == nil {
			rc = &runCapture{sorted: true}
			sc.runs[p] = rc
		}
		if rc.dirty {
			continue
		}
		if rc.cut > 0 && record.Compare(r.ID, rc.cutTo) <= 0 {
			c.dropRun(rc) // inside or before a block copied: read back
			continue
		}
		if n := len(rc.pending); n > 0 && record.Compare(r.ID, rc.pending[n-1].ID) <= 0 {
			rc.sorted = false
		}
		rc.pending = append(rc.pending, capturedRecord{ts: ts, ID: r.ID, off: uint32(len(rc.buf)), n: uint32(len(r.Data))})
		rc.buf = append(rc.buf, r.Data...)
		c.bytes += int64(len(r.Data)) + capturedOverhead
		if c.bytes > 2*c.budget {
			c.shed()
		}
	}
}

// shed gives up the slice holding the most pending records, to be read back
// at its move: the sealer cuts blocks between its passes, and a long pass
// (or a sealer that cannot write) must not let the capture grow past twice
// its budget.
func (c *capture) shed() {
	var worst *sliceCapture
	var most int64
	for _, sc := range c.slices {
		if sc.broken || sc.closed {
			continue
		}
		var n int64
		for _, rc := range sc.runs {
			for _, r := range rc.pending {
				n += int64(r.n) + capturedOverhead
			}
		}
		if n > most {
			worst, most = sc, n
		}
	}
	if worst == nil {
		return
	}
	for _, rc := range worst.runs {
		c.dropRun(rc)
	}
	worst.broken = true
	c.shedSlices++
}

// capturedOverhead is what a pending record takes besides its data.
const capturedOverhead = 40

// touched marks the runs of ids changed otherwise than by an add (deleted,
// unsealed, sealed in place): they are read back at the move.
func (c *capture) touched(ids ...record.ID) {
	if c == nil || len(ids) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		c.touchRun(sliceRef{id.Window(), sliceOf(id.Millis())}, id.Partition())
	}
}

// touchedRun is touched for a whole run.
func (c *capture) touchedRun(w record.Window, s uint8, p record.Partition) {
	if c == nil || s&movedSpace != 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.touchRun(sliceRef{w, s}, p)
}

func (c *capture) touchRun(ref sliceRef, p record.Partition) {
	sc := c.slices[ref]
	if sc == nil || sc.closed {
		return
	}
	rc := sc.runs[p]
	if rc == nil {
		rc = &runCapture{}
		sc.runs[p] = rc
	}
	c.dropRun(rc)
}

// dropRun marks rc dirty and lets go of its pending records.
func (c *capture) dropRun(rc *runCapture) {
	for _, r := range rc.pending {
		c.bytes -= int64(r.n) + capturedOverhead
	}
	rc.pending, rc.buf, rc.dirty = nil, nil, true
}

// breakSlice marks a slice to be read back whole (its copies failed).
func (c *capture) breakSlice(ref sliceRef) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if sc := c.slices[ref]; sc != nil && !sc.closed {
		for _, rc := range sc.runs {
			c.dropRun(rc)
		}
		sc.broken = true
	}
}

// forgetBefore lets go of the slices of windows before cutoff (dropped by
// retention).
func (c *capture) forgetBefore(cutoff record.Window) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for ref, sc := range c.slices {
		if ref.w < cutoff {
			for _, rc := range sc.runs {
				c.dropRun(rc)
			}
			delete(c.slices, ref)
		}
	}
}

// lockCuts waits for a cut in progress and holds the next off until the
// returned func is called (nothing without a capture).
func (c *capture) lockCuts() func() {
	if c == nil {
		return func() {}
	}
	c.cutMu.Lock()
	return c.cutMu.Unlock
}

// holdSlice keeps every later cut off slice ref, whose move is about to
// list it and take it over (finish): it waits for a cut in flight, which may
// hold records of it, and notes the slice held, so that no later cut takes
// any until finish, even of a capture that begins meanwhile (a slice empty
// here whose first records arrive before the listing: a review's
// TestACutOfASliceCapturedDuringItsListingLandsBeforeItsSwitch). finish
// must follow, with nothing between that can fail.
// Cuts of the other slices go on meanwhile: a move lists a minute of records
// (seconds at 100 000 lines/s), and a cutter held off all that time let the
// capture of the slice being written pass twice its budget and give it up.
func (c *capture) holdSlice(ref sliceRef) {
	if c == nil {
		return
	}
	c.cutMu.Lock()
	defer c.cutMu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.held == nil {
		c.held = map[sliceRef]bool{}
	}
	c.held[ref] = true
}

// valid reports whether slice ref has a capture its move can use, copies
// in the moved space included (which moveSlices must not clear).
func (c *capture) valid(ref sliceRef) bool {
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	sc := c.slices[ref]
	return sc != nil && !sc.broken && !sc.closed
}

// captureCut is a block the capture cut from a run ahead of its move.
type captureCut struct {
	ref  sliceRef
	p    record.Partition
	recs []blockRecord
}

// cuts takes out of the pending records, run by run, every block's worth
// (per records, at most maxBytes) older than captureLag at now, or, while
// the pending records take more than the budget, every block's worth older
// than captureEagerLag (of a slice that has not begun, whatever its age)
// and then whatever is left of at least fewest records older than that. A cut is
// noted as copied at once: if copying it fails, the caller breaks its
// slice.
func (c *capture) cuts(now time.Time, per, fewest int, maxBytes int64) []captureCut {
	c.mu.Lock()
	defer c.mu.Unlock()
	limit, eagerLimit := now.Add(-captureLag).UnixMilli(), now.Add(-captureEagerLag).UnixMilli()
	var out []captureCut
	for _, eager := range []bool{false, true} {
		if eager && c.bytes <= c.budget {
			break
		}
		for ref, sc := range c.slices {
			if sc.broken || sc.closed || c.held[ref] {
				continue
			}
			for p, rc := range sc.runs {
				if rc.dirty || len(rc.pending) == 0 {
					continue
				}
				rc.sort()
				before := limit
				switch {
				case eager && sliceStart(ref.w, ref.s) > now.UnixMilli():
					// a slice of the future (another peer's records up to
					// MaxFuture ahead): nothing of this process writes into
					// it, and memory matters more
					before = math.MaxInt64
				case eager:
					before = eagerLimit
				}
				ready, _ := slices.BinarySearchFunc(rc.pending, before, func(r capturedRecord, ms int64) int { return cmp.Compare(r.ID.Millis(), ms) })
				taken := 0
				for {
					n, size := 0, int64(0)
					for taken+n < ready && n < per {
						d := looseSize(int(rc.pending[taken+n].n))
						if n > 0 && size+d > maxBytes {
							break
						}
						size += d
						n++
					}
					if n == 0 {
						break
					}
					full := n == per || taken+n < ready // or stopped by maxBytes
					if !full && !(eager && c.bytes > c.budget && n >= fewest) {
						break
					}
					recs := make([]blockRecord, n)
					for i := range n {
						r := rc.pending[taken+i]
						recs[i] = blockRecord{ID: r.ID, Data: rc.data(r)}
						c.bytes -= int64(r.n) + capturedOverhead
					}
					out = append(out, captureCut{ref: ref, p: p, recs: recs})
					rc.cut += n
					rc.cutTo = recs[n-1].ID
					taken += n
				}
				if taken > 0 {
					// the rest into a new buf: the blocks cut keep the old
					// one until they are written
					rest := rc.pending[taken:]
					size := 0
					for _, r := range rest {
						size += int(r.n)
					}
					buf := make([]byte, 0, size+size/2)
					pending := make([]capturedRecord, len(rest), max(len(rest), per))
					for i, r := range rest {
						pending[i] = capturedRecord{ts: r.ts, ID: r.ID, off: uint32(len(buf)), n: r.n}
						buf = append(buf, rc.data(r)...)
					}
					rc.pending, rc.buf = pending, buf
				}
			}
		}
	}
	return out
}

func (rc *runCapture) sort() {
	if !rc.sorted {
		slices.SortFunc(rc.pending, func(a, b capturedRecord) int { return record.Compare(a.ID, b.ID) })
		rc.sorted = true
	}
}

// capturedRun is what a move takes of a run from the capture.
type capturedRun struct {
	recs []blockRecord // its records not in a block copied yet, in ID order
	cut  int           // records in its blocks copied already
}

// finish hands slice ref over to its move (closing its capture): it returns
// the runs listed (runs, counts: listRuns at listTs) that it holds exactly
// as they are at listTs, with their pending records committed by then, and
// the partitions of the other runs listed or copied, which the move must
// read back; whole is set when the slice must be read back whole (its
// copies cleared first), or its capture did not hold it.
func (c *capture) finish(ref sliceRef, listTs uint64, runs [][2]int, counts []int) (got map[record.Partition]capturedRun, back []record.Partition, whole bool) {
	if c == nil {
		return nil, nil, true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.held, ref)
	sc := c.slices[ref]
	if sc == nil || sc.broken || sc.closed {
		if sc != nil && !sc.closed {
			c.closeSlice(sc)
		}
		return nil, nil, true
	}
	defer c.closeSlice(sc)
	listed := map[record.Partition]int{}
	for i, r := range runs {
		listed[record.Partition(r[1])] = counts[i]
	}
	got = map[record.Partition]capturedRun{}
	for p, rc := range sc.runs {
		if _, ok := listed[p]; !ok && rc.cut > 0 {
			// copies of a run the store no longer has: only a clear
			// removes them
			return nil, nil, true
		}
	}
	for _, r := range runs {
		p := record.Partition(r[1])
		rc := sc.runs[p]
		if rc == nil || rc.dirty {
			back = append(back, p)
			continue
		}
		rc.sort()
		var recs []blockRecord
		dup := false
		for i, cr := range rc.pending {
			if cr.ts > listTs {
				continue // the switch carries it over
			}
			if i > 0 && cr.ID == rc.pending[i-1].ID {
				dup = true
			}
			recs = append(recs, blockRecord{ID: cr.ID, Data: rc.data(cr)})
		}
		if dup || rc.cut+len(recs) != listed[p] {
			back = append(back, p)
			continue
		}
		got[p] = capturedRun{recs: recs, cut: rc.cut}
	}
	return got, back, false
}

// closeSlice ends a slice's capture: its move has it now.
func (c *capture) closeSlice(sc *sliceCapture) {
	for _, rc := range sc.runs {
		c.dropRun(rc)
	}
	sc.runs, sc.closed = nil, true
}

// pendingBytes returns what the pending records take, and how many slices
// were given up for memory.
func (c *capture) pendingBytes() (int64, uint64) {
	if c == nil {
		return 0, 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes, c.shedSlices
}

// sliceEmptyBefore reports whether slice ref held no key at ts-1, loose or
// in its moved space (a capture that begins at ts then sees all it will
// hold, and no copy an earlier process cut and never switched lies where
// its own go: an earlier process may have cut a slice of the future, from
// another peer's records or by a clock that was ahead).
func (db *DB) sliceEmptyBefore(ts uint64) func(sliceRef) bool {
	return func(ref sliceRef) bool {
		txn := db.bdb.NewTransactionAt(ts-1, false)
		defer txn.Discard()
		for _, s := range []uint8{ref.s, ref.s | movedSpace} {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: slicePrefix(ref.w, s), PrefetchValues: false})
			it.Rewind()
			found := it.Valid()
			it.Close()
			if found {
				return false
			}
		}
		return true
	}
}

// cutLoop cuts, every captureEvery, the blocks the capture holds ready,
// beside the sealer's passes (a pass may take minutes). forgetBefore and
// cutCaptured must stay one after the other on this one goroutine: a cut
// whose window retention expires while it is copied commits stale copies
// into the moved space, and they stay harmless only because no capture of
// that slice begins before the cut has committed (sliceEmptyBefore then sees
// them and the capture is never trusted). A forget run during a cut lets a
// move trust a capture beside those copies, and records retention deleted
// read again (TestALateCutIntoAnExpiredWindowLeavesNothingVisible guards the
// order as it is; a review made the other one fail).
func (db *DB) cutLoop() bool {
	db.capture.forgetBefore(db.cutoff())
	if err := db.cutCaptured(); err != nil {
		if errors.Is(err, ErrClosed) || db.closed.Load() {
			return false
		}
		db.cfg.Logger.Warn("sealer: cannot copy the blocks cut from memory; their slices are read back when they move", "err", err)
	}
	return true
}

// cutCaptured cuts the blocks the capture holds ready and copies them into
// the moved space.
func (db *DB) cutCaptured() error {
	if db.capture == nil || !db.space.writable.Load() {
		return nil
	}
	defer db.capture.lockCuts()()
	// a block must fit, as loose records, in a quarter of a transaction
	// (an unseal writes them all back at once), as the sealer's do
	maxBytes, maxCount := db.bdb.MaxBatchSize()/4, int(db.bdb.MaxBatchCount()/4)
	cuts := db.capture.cuts(db.cfg.Now(), min(db.cfg.SealBlockRecords, maxCount), db.cfg.SealMinRecords, maxBytes)
	if len(cuts) == 0 {
		return nil
	}
	// every cut is counted copied already: one that is not written breaks
	// its slice (read back whole at its move, its copies cleared first)
	var encodeErr error
	plans := make([]sealPlan, 0, len(cuts))
	for _, cut := range cuts {
		blk, err := writeBlock(nil, cut.recs)
		if err != nil {
			db.capture.breakSlice(cut.ref)
			encodeErr = cmp.Or(encodeErr, fmt.Errorf("index: cut captured blocks of window %d slice %d: %w", cut.ref.w, cut.ref.s, err))
			continue
		}
		plans = append(plans, sealPlan{w: cut.ref.w, s: cut.ref.s, to: cut.ref.s | movedSpace, p: cut.p,
			groups: []sealGroup{{units: []runUnit{{recs: cut.recs, loose: true}}, first: cut.recs[0].ID, last: cut.recs[len(cut.recs)-1].ID, blk: blk}}})
	}
	if err := db.writeCuts(plans); err != nil {
		for _, plan := range plans {
			db.capture.breakSlice(sliceRef{plan.w, plan.s})
		}
		return err
	}
	db.stats.capturedBlocks.Add(uint64(len(plans)))
	return encodeErr
}

// writeCuts writes the blocks of plans (cut from memory, for the moved space)
// in transactions of up to half what Badger takes in one, beside the writes:
// not inside the committer, which would wait for every transaction in flight
// and hold the writes off meanwhile. Nothing reads a slice's moved space
// before its switch, which runs inside the committer after the cut that
// copied them (cutMu). A transaction refused while maintenance drops a
// prefix (Badger blocks writes then) is tried again, for as long as
// blockedCutWait: a switch's drop has blocked writes for seven seconds in a
// sustained run, and a copy that gave up after two broke every slice it cut
// from (read back whole at their moves).
func (db *DB) writeCuts(plans []sealPlan) error {
	maxBytes, maxCount := db.bdb.MaxBatchSize()/2, db.bdb.MaxBatchCount()/2
	for i := 0; i < len(plans); {
		j, size := i, int64(0)
		for j < len(plans) && (j == i || (size+plans[j].groups[0].sizeIn(plans[j]) <= maxBytes && int64(j-i) < maxCount-1)) {
			size += plans[j].groups[0].sizeIn(plans[j])
			j++
		}
		batch := plans[i:j]
		i = j
		cutoff := db.cutoff()
		for _, plan := range batch {
			if plan.w < cutoff {
				// counted copied and not written: should the cutoff move
				// back, the slice is read back whole at its move
				db.capture.breakSlice(sliceRef{plan.w, plan.s})
			}
		}
		blockedSince := time.Time{}
		for {
			if !db.space.writable.Load() {
				return errNoSpaceToMove
			}
			upgrade := db.storedFormat.Load() < formatVersion
			err := db.update(func(txn *badger.Txn) error {
				if err := sealTxnStart(txn, upgrade); err != nil {
					return err
				}
				for _, plan := range batch {
					if plan.w < cutoff {
						continue // dropped meanwhile
					}
					g := plan.groups[0]
					if err := txn.Set(appendBlockKey(nil, plan.w, plan.to, plan.p, g.first, g.last), g.blk); err != nil {
						return err
					}
				}
				return nil
			})
			if err == nil {
				if upgrade {
					db.storedFormat.Store(formatVersion)
				}
				break
			}
			if blockedSince.IsZero() {
				blockedSince = time.Now()
			}
			if !errors.Is(err, badger.ErrBlockedWrites) || time.Since(blockedSince) > blockedCutWait {
				return fmt.Errorf("index: copy blocks cut from memory: %w", err)
			}
			if !sleepCtx(db.ctx, 20*time.Millisecond) {
				return ErrClosed
			}
		}
	}
	return nil
}

// sizeIn is what writing the group's block takes in a transaction.
func (g *sealGroup) sizeIn(plan sealPlan) int64 {
	size, _ := g.size(plan.w, plan.to, plan.p)
	return size
}

// capturedPlan is the rest of a run taken from the capture at its move:
// blocks of its pending records, and those too few for a block of their
// own copied loose, into the moved space behind the blocks copied already.
func (db *DB) capturedPlan(w record.Window, s uint8, p record.Partition, listTs uint64, recs []blockRecord) (sealPlan, error) {
	plan := sealPlan{w: w, s: s, to: s | movedSpace, p: p, ts: listTs}
	maxBytes, maxCount := db.bdb.MaxBatchSize()/4, int(db.bdb.MaxBatchCount()/4)
	per := min(db.cfg.SealBlockRecords, maxCount)
	fewest := min(db.cfg.SealMinRecords, per)
	for i := 0; i < len(recs); {
		j, size := i, int64(0)
		for j < len(recs) {
			d := looseSize(len(recs[j].Data))
			if j > i && (j-i >= per || size+d > maxBytes) {
				break
			}
			size += d
			j++
		}
		group := recs[i:j]
		i = j
		if len(group) < fewest {
			units := make([]runUnit, len(group))
			for k, r := range group {
				units[k] = runUnit{key: appendRunKey(nil, w, s, p, r.ID), recs: []blockRecord{r}, loose: true}
			}
			plan.groups = append(plan.groups, sealGroup{units: units, loose: true})
			continue
		}
		blk, err := writeBlock(nil, group)
		if err != nil {
			return plan, fmt.Errorf("index: window %d slice %d partition %d: %w", w, s, p, err)
		}
		plan.groups = append(plan.groups, sealGroup{units: []runUnit{{recs: group, loose: true}}, first: group[0].ID, last: group[len(group)-1].ID, blk: blk})
	}
	return plan, nil
}
