package index

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sync"
	"time"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/logmesh/logmesh/record"
)

// Entry is an encoded record and its ID.
type Entry struct {
	ID   record.ID
	Data []byte // record.Record.AppendEncode output
}

// Origin says where a write comes from.
type Origin uint8

const (
	// OriginLocal marks records this peer has just minted IDs for (its own
	// ingest). They cannot exist yet, so no existence check is made, and the
	// journal marks them for replication to other peers.
	OriginLocal Origin = iota
	// OriginRemote marks records from another peer (replication, repair).
	// Writes are idempotent: a record already stored is skipped.
	OriginRemote
	// OriginLocalRetry marks this peer's own records written again under
	// the IDs a client's earlier attempt got (an idempotency key): records
	// already stored are skipped, the others are journaled for replication
	// like OriginLocal.
	OriginLocalRetry
)

// WriteResult reports what a write did.
type WriteResult struct {
	// Written counts records newly stored.
	Written int
	// Duplicates counts records that were already stored (or repeated within
	// the write) and were skipped.
	Duplicates int
	// Expired counts records whose time window has expired; they are refused
	// so that replication and repair never resurrect dropped data.
	Expired int
	// Future counts records of another peer stamped more than
	// Config.MaxFuture ahead of the trusted clock: refused too, so that a
	// forged or wild ID (year 10889) neither sorts first in every query
	// nor outlives retention.
	Future int
	// ExpiredIDs lists the refused records (expired or future).
	ExpiredIDs []record.ID
	// Seq is a journal sequence at or after every entry that holds this
	// write's records: once replication has passed Seq, it has passed them.
	Seq uint64
}

type writeReq struct {
	entries []Entry
	origin  Origin
	// remove deletes the entries' IDs instead of writing them (Data unused).
	remove bool
	res    WriteResult
	// err is the committer's until it hands the request to the completer
	// (and the completer's after); commitErr is the completer's alone: a
	// transaction of the request's (or one it counted duplicates of) that
	// failed while the committer was still at work on the request.
	err       error
	commitErr error
	done      chan struct{}
	// waitSeq is the journal sequence after which every write this request
	// depends on (its own, and in-flight ones it found duplicates in) is applied.
	waitSeq uint64
	// metaName and metaValue, when set, are stored in the transaction that
	// holds the request's first record (see WriteMeta).
	metaName  string
	metaValue []byte
	metaTTL   time.Duration
	// metaTxn is the transaction the meta entry went in: before any other
	// transaction of the request is sent, its outcome is waited for
	// (metaCommitted), so that records of the request are never stored
	// without the meta entry (an idempotency key a retry must find).
	metaTxn *txnWork
}

// maxInflightCommits bounds Badger transactions committed but not yet
// acknowledged: the committer prepares the next one while Badger writes the
// previous ones.
const maxInflightCommits = 4

// Write stores entries and returns once they are durable per the fsync
// policy (see Config.FsyncInterval). Concurrent writers share group commits.
// If ctx ends first, Write returns ctx.Err() and the entries may or may not
// have been stored. An error wrapping ErrNoSpace (the disk is nearly full)
// means none was stored; after other errors some may have been.
func (db *DB) Write(ctx context.Context, entries []Entry, origin Origin) (WriteResult, error) {
	if db.closed.Load() {
		return WriteResult{}, ErrClosed
	}
	if len(entries) == 0 {
		return WriteResult{}, nil
	}
	return db.submit(ctx, &writeReq{entries: entries, origin: origin, done: make(chan struct{})})
}

// WriteMeta is Write that also stores the metadata value name (as SetMeta,
// expiring after ttl unless it is 0) atomically with the first of the
// entries: whoever finds the value finds at least part of the write, and a
// retry that finds it can complete it. A write that takes several
// transactions sends the others only once that first one has committed, so
// no part of it is ever stored without the value.
func (db *DB) WriteMeta(ctx context.Context, entries []Entry, origin Origin, name string, value []byte, ttl time.Duration) (WriteResult, error) {
	if db.closed.Load() {
		return WriteResult{}, ErrClosed
	}
	if len(entries) == 0 {
		return WriteResult{}, nil
	}
	return db.submit(ctx, &writeReq{entries: entries, origin: origin, done: make(chan struct{}), metaName: name, metaValue: value, metaTTL: ttl})
}

// submit hands req to the committer and waits until it is durable (or ctx
// ends, or the store closes).
func (db *DB) submit(ctx context.Context, req *writeReq) (WriteResult, error) {
	select {
	case db.reqCh <- req:
	case <-ctx.Done():
		return WriteResult{}, ctx.Err()
	case <-db.ctx.Done():
		return WriteResult{}, ErrClosed
	}
	select {
	case <-req.done:
		return req.res, req.err
	case <-ctx.Done():
		return WriteResult{}, ctx.Err()
	case <-db.pipe.finished:
		// the store closed: everything handed to the committer before it
		// stopped is answered; a request that reached the queue after it
		// drained it never will be
		select {
		case <-req.done:
			return req.res, req.err
		default:
			return WriteResult{}, ErrClosed
		}
	}
}

// txnWork is one Badger transaction in flight.
type txnWork struct {
	ts      uint64 // commit timestamp
	entry   JournalEntry
	credits []credit
	remote  []record.ID // IDs to release from the in-flight set
	// adds are the records it stores into a captured slice's loose space
	// (capture.go), handed to the capture when it is applied
	adds []blockRecord
	err  error
	done bool
}

type credit struct {
	req     *writeReq
	written int
}

// pipeline connects the committer goroutine, which builds transactions, to
// the completer goroutine, which applies their digests in journal order,
// syncs, and acknowledges writers.
type pipeline struct {
	// startSeq is the first journal sequence of this run (set before the
	// committer starts).
	startSeq uint64
	slots    chan struct{} // one per transaction in flight
	doneCh   chan uint64   // journal sequences whose commit finished
	reqCh    chan *writeReq
	// finished is closed when the completer has answered its last request
	// (the store is closing)
	finished chan struct{}

	mu struct {
		sync.Mutex
		work map[uint64]*txnWork
		// remote holds IDs of remote-origin records (and of local ones in
		// groups with a retry, see build) in transactions not yet applied,
		// so concurrent duplicates are recognised, with the transaction
		// that writes or removes each: a request that counts a record a
		// duplicate of it fails if it fails (isDuplicate). An ID without
		// one is in the committer's open transaction (or being checked for
		// it); send names the transaction.
		remote map[record.ID]*txnWork
		// lastSeq is the highest journal sequence handed to Badger.
		lastSeq uint64
	}
}

func newPipeline() *pipeline {
	p := &pipeline{
		slots:    make(chan struct{}, maxInflightCommits),
		doneCh:   make(chan uint64, maxInflightCommits*2),
		reqCh:    make(chan *writeReq, 1024),
		finished: make(chan struct{}),
	}
	p.mu.work = map[uint64]*txnWork{}
	p.mu.remote = map[record.ID]*txnWork{}
	return p
}

func (db *DB) commitLoop() {
	defer db.wg.Done()
	for {
		select {
		case <-db.ctx.Done():
			db.failPending(ErrClosed)
			db.drainInflight()
			close(db.pipe.reqCh)
			return
		case fn := <-db.exclCh:
			db.drainInflight()
			fn()
			continue
		case req := <-db.reqCh:
			batch := []*writeReq{req}
			n := len(req.entries)
		collect:
			for n < db.cfg.MaxBatchRecords {
				select {
				case req := <-db.reqCh:
					batch = append(batch, req)
					n += len(req.entries)
				default:
					break collect
				}
			}
			if db.admit(batch) {
				db.build(batch)
			}
		}
	}
}

// drainInflight waits until every transaction in flight is acknowledged.
func (db *DB) drainInflight() {
	for i := 0; i < maxInflightCommits; i++ {
		db.pipe.slots <- struct{}{}
	}
	for i := 0; i < maxInflightCommits; i++ {
		<-db.pipe.slots
	}
}

func (db *DB) failPending(err error) {
	for {
		select {
		case req := <-db.reqCh:
			req.err = err
			close(req.done)
		default:
			return
		}
	}
}

// builder fills Badger transactions for a group of requests, splitting when
// one grows too big, and hands each to Badger asynchronously.
type builder struct {
	db     *DB
	cutoff record.Window
	// future is the last millisecond another peer's record may carry,
	// worked out on the first such record (futureSet)
	future    int64
	futureSet bool
	txn       *badger.Txn
	work      *txnWork
	local     []record.ID
	remote    []record.ID
	// registered lists IDs of the open transaction entered in the pipeline's
	// in-flight set by isDuplicate, released once applied or discarded.
	registered []record.ID
	// retry: the group holds a retry of local writes (OriginLocalRetry);
	// its local records are entered in the in-flight set too, so that the
	// retry finds the ones its first attempt wrote earlier in the group
	retry bool
	keys  []byte // slab the record keys are cut from (Badger keeps them until commit)
	size  int64  // of the open transaction's records, as Badger counts it
	extra int    // entries of the open transaction outside the journal (unsealed records)
	// deletedIn holds the runs the open transaction deletes in (settle.go)
	deletedIn map[string][]byte
	// drained: every transaction of earlier groups is applied (unseal);
	// unsealed maps the blocks this group unsealed to their transaction
	drained  bool
	unsealed map[string]*txnWork
	op       Op // of the open transaction: OpAdd, or OpRemove from removeAll
	err      error
}

func (b *builder) key(id record.ID) []byte {
	if cap(b.keys)-len(b.keys) < recordKeyLen {
		b.keys = make([]byte, 0, 512*recordKeyLen)
	}
	start := len(b.keys)
	b.keys = appendRecordKeyIn(b.keys, b.db.movedNow(id.Window()), id)
	return b.keys[start:len(b.keys):len(b.keys)]
}

func (db *DB) build(batch []*writeReq) {
	b := builder{db: db, cutoff: db.cutoff()}
	b.retry = slices.ContainsFunc(batch, func(r *writeReq) bool { return r.origin == OriginLocalRetry })
	if b.retry {
		// A retry's first attempt was queued before it (submit, FIFO): in
		// this group, or in an earlier one whose transactions may not be
		// visible yet. Wait for those; this group's are found in flight.
		db.drainInflight()
	}
	b.begin()
	for _, req := range batch {
		switch {
		case b.err != nil:
			req.err = b.err
		case req.remove:
			b.removeAll(req)
		default:
			b.add(req)
		}
		db.pipe.mu.Lock()
		req.waitSeq = db.pipe.mu.lastSeq
		db.pipe.mu.Unlock()
		if b.work != nil && len(b.local)+len(b.remote) > 0 {
			// the request's last entries are in the open transaction
			req.waitSeq = db.nextSeq.Load()
		}
	}
	b.send()
	// the requests are handed to the acknowledger only now: a request
	// that failed discards the open transaction (send), and those waiting
	// for its sequence, never used, wait for the last one sent instead
	db.pipe.mu.Lock()
	last := db.pipe.mu.lastSeq
	db.pipe.mu.Unlock()
	for _, req := range batch {
		req.waitSeq = min(req.waitSeq, last)
		db.pipe.reqCh <- req
	}
}

func (b *builder) begin() {
	b.txn = b.db.bdb.NewTransactionAt(readAll, true)
	b.work = &txnWork{}
	b.local, b.remote, b.registered = nil, nil, nil
	b.size, b.extra = 0, 0
	clear(b.deletedIn)
}

// deleting notes that the open transaction deletes key, a record's or a
// block's (settle.go).
func (b *builder) deleting(key []byte) {
	run := runOfKey(key)
	if b.deletedIn == nil {
		b.deletedIn = map[string][]byte{}
	}
	if _, ok := b.deletedIn[string(run)]; !ok {
		b.deletedIn[string(run)] = run
	}
}

// entrySize is Badger's estimate of an entry's share of a transaction.
func entrySize(key, value []byte) int64 { return int64(len(key)+len(value)) + 12 }

// looseSize is entrySize of a loose record whose encoding takes n bytes.
func looseSize(n int) int64 { return int64(recordKeyLen+n) + 12 }

// fits reports whether the open transaction can take one more record (and
// meta bytes of a meta entry with it) and still its journal entry (Badger
// caps a transaction at a share of a memtable).
func (b *builder) fits(key, value []byte, meta int64) bool {
	ids := len(b.local) + len(b.remote)
	if ids == 0 {
		return true
	}
	journal := int64(ids+1)*record.IDLen + 64
	maxSize, maxCount := b.db.bdb.MaxBatchSize(), b.db.bdb.MaxBatchCount()
	// entries: the records, this one, those of unseals (extra), the
	// journal's, a settle key's, a meta entry's, and Badger's own (BitFin)
	return int64(ids+b.extra+5) < maxCount && b.size+entrySize(key, value)+meta+journal < maxSize*9/10
}

// futureLimit is the last millisecond another peer's record may carry
// (see Config.MaxFuture and FutureLimit); math.MaxInt64 for no bound.
func (b *builder) futureLimit() int64 {
	if b.futureSet {
		return b.future
	}
	b.future, b.futureSet = math.MaxInt64, true
	if b.db.cfg.FutureLimit != nil {
		if limit, ok := b.db.cfg.FutureLimit(); ok {
			b.future = limit.UnixMilli()
		}
	} else if now, ok := b.db.retentionNow(); ok && b.db.cfg.MaxFuture > 0 {
		b.future = now.Add(b.db.cfg.MaxFuture).UnixMilli()
	}
	return b.future
}

func (b *builder) add(req *writeReq) {
	cr := credit{req: req}
	for i := range req.entries {
		e := &req.entries[i]
		if e.ID.Window() < b.cutoff {
			req.res.Expired++
			req.res.ExpiredIDs = append(req.res.ExpiredIDs, e.ID)
			continue
		}
		if req.origin != OriginLocal && e.ID.Millis() > b.futureLimit() {
			req.res.Future++
			req.res.ExpiredIDs = append(req.res.ExpiredIDs, e.ID)
			continue
		}
		key := b.key(e.ID)
		if req.origin != OriginLocal {
			if dup, err := b.isDuplicate(e.ID, key, req); err != nil {
				b.err = err
				req.err = err
				return
			} else if dup {
				req.res.Duplicates++
				continue
			}
		}
		if b.db.idMayBeInBlock(e.ID) {
			// a record inside a block's range: the block goes back to loose
			// records first, so the run keeps its rule (seal.go)
			flush := func() error {
				if cr.written > 0 {
					b.work.credits = append(b.work.credits, cr)
				}
				cr = credit{req: req}
				if b.send(); b.err != nil {
					return b.err
				}
				if err := b.metaCommitted(req); err != nil {
					return err // fails the group: an error, never a lie
				}
				b.begin()
				return nil
			}
			if _, err := b.unseal(e.ID, len(b.local)+len(b.remote), flush); err != nil {
				b.err, req.err = err, err
				if req.origin != OriginLocal {
					b.release([]record.ID{e.ID}) // registered by isDuplicate
				}
				return
			}
		}
		var meta int64 // the meta entry goes in with this record
		if req.metaName != "" {
			meta = entrySize(metaKey(req.metaName), req.metaValue)
		}
		if !b.fits(key, e.Data, meta) {
			// Badger refuses transactions past a size: start the next one,
			// keeping room for this one's journal entry
			if cr.written > 0 {
				b.work.credits = append(b.work.credits, cr)
			}
			cr = credit{req: req}
			if b.send(); b.err != nil {
				req.err = b.err
				if req.origin != OriginLocal {
					b.release([]record.ID{e.ID})
				}
				return
			}
			if err := b.metaCommitted(req); err != nil {
				// nothing more of it: what its first transaction held
				// fails with it (applyDone), the rest is not sent
				req.err = err
				if req.origin != OriginLocal {
					b.release([]record.ID{e.ID})
				}
				b.begin()
				return
			}
			b.begin()
		}
		if req.metaName != "" {
			me := badger.NewEntry(metaKey(req.metaName), req.metaValue)
			if req.metaTTL > 0 {
				me = me.WithTTL(req.metaTTL)
			}
			if err := b.txn.SetEntry(me); err != nil {
				b.err, req.err = err, err
				if req.origin != OriginLocal {
					b.release([]record.ID{e.ID}) // registered by isDuplicate
				}
				return
			}
			b.size += entrySize(me.Key, me.Value)
			req.metaName, req.metaTxn = "", b.work
		}
		err := b.txn.Set(key, e.Data)
		if err != nil {
			if req.origin != OriginLocal {
				b.release([]record.ID{e.ID})
			}
			b.err = err
			req.err = err
			return
		}
		cr.written++
		b.size += entrySize(key, e.Data)
		if sliceOfKey(key)&movedSpace == 0 && b.db.capture.wants(e.ID) {
			b.work.adds = append(b.work.adds, blockRecord{ID: e.ID, Data: e.Data})
		}
		b.db.newest.note(e.ID)
		if req.origin == OriginLocal && b.retry {
			// a local record beside a retry: in flight too
			b.db.pipe.mu.Lock()
			if _, ok := b.db.pipe.mu.remote[e.ID]; !ok {
				b.db.pipe.mu.remote[e.ID] = nil
			}
			b.db.pipe.mu.Unlock()
		}
		if req.origin != OriginLocal || b.retry {
			b.registered = append(b.registered, e.ID) // after any split: released with this transaction
		}
		if req.origin != OriginRemote {
			b.local = append(b.local, e.ID)
		} else {
			b.remote = append(b.remote, e.ID)
		}
	}
	if cr.written > 0 {
		b.work.credits = append(b.work.credits, cr)
	}
}

// removeAll deletes the request's IDs in a transaction of their own, with a
// journal entry that removes them from the digests. Records written or
// removed by a commit still in flight are skipped (the caller sees them
// uncounted in Written, and deletes them again later if it still wants to).
func (b *builder) removeAll(req *writeReq) {
	b.send() // adds before the removal commit first
	b.begin()
	var gone []record.ID
	for i := range req.entries {
		id := req.entries[i].ID
		key := b.key(id)
		if len(gone) > 0 && (int64(2*len(gone)+b.extra+3) >= b.db.bdb.MaxBatchCount()/2 ||
			b.size+int64(len(gone))*(2*record.IDLen+40) >= b.db.bdb.MaxBatchSize()/2) {
			// a long removal goes in several transactions
			b.remote = gone
			b.work.credits = append(b.work.credits, credit{req: req, written: len(gone)})
			b.op = OpRemove
			b.send()
			b.op = OpAdd
			b.begin()
			gone = nil
			if b.err != nil {
				req.err = b.err
				break
			}
		}
		// A record being written or removed by a commit still in flight is
		// left alone: its key may not read as it will be, and removing it
		// twice would take it out of the digests twice.
		p := b.db.pipe
		p.mu.Lock()
		_, busy := p.mu.remote[id]
		if !busy {
			p.mu.remote[id] = nil // the open transaction's until it is sent
		}
		p.mu.Unlock()
		if busy {
			continue
		}
		if b.db.idMayBeInBlock(id) {
			// in a block: it goes back to loose records, and this one is
			// deleted with them
			flush := func() error {
				if len(gone) > 0 {
					b.remote = gone
					b.work.credits = append(b.work.credits, credit{req: req, written: len(gone)})
					b.op = OpRemove
				}
				b.send()
				b.op = OpAdd
				gone = nil
				if b.err != nil {
					return b.err
				}
				b.begin()
				return nil
			}
			if _, err := b.unseal(id, len(gone), flush); err != nil {
				b.err, req.err = err, err
				b.release([]record.ID{id})
				break
			}
		}
		if _, err := b.txn.Get(key); errors.Is(err, badger.ErrKeyNotFound) {
			// nothing to delete: a write of it is no duplicate
			b.release([]record.ID{id})
			continue
		} else if err != nil {
			b.err, req.err = err, err
			b.release([]record.ID{id})
			break
		}
		b.db.capture.touched(id) // whether or not this transaction commits: read back
		if err := b.txn.Delete(key); err != nil {
			b.err, req.err = err, err
			b.release([]record.ID{id})
			break
		}
		b.registered = append(b.registered, id) // released with this transaction
		b.deleting(key)
		gone = append(gone, id)
	}
	if b.err == nil && len(gone) > 0 {
		b.remote = gone
		b.work.credits = append(b.work.credits, credit{req: req, written: len(gone)})
		b.op = OpRemove
	}
	b.send()
	b.op = OpAdd
	b.begin()
}

// isDuplicate reports whether a record a remote (or retried) write
// carries is stored or in flight: in a transaction not yet applied, of an
// earlier group or of this one. A record in flight is counted a duplicate
// of that transaction's write, so req fails if that transaction fails: it
// must not be told the record is stored when it is not. A record found
// neither way stays entered in the in-flight set for req's write.
func (b *builder) isDuplicate(id record.ID, key []byte, req *writeReq) (bool, error) {
	p := b.db.pipe
	p.mu.Lock()
	holder, inflight := p.mu.remote[id]
	if inflight && holder != nil && holder.entry.Op == OpRemove {
		// being deleted, not written: once the delete is applied, the
		// record is not stored and this write stores it again
		p.mu.Unlock()
		b.db.drainInflight()
		return b.isDuplicate(id, key, req)
	}
	if inflight {
		if holder == nil {
			holder = b.work // the open transaction, not sent yet
		}
		// not applied yet: applyDone reads credits only after it removed
		// the transaction's IDs, under this lock
		holder.credits = append(holder.credits, credit{req: req})
	}
	if !inflight {
		p.mu.remote[id] = nil
	}
	p.mu.Unlock()
	if inflight {
		return true, nil
	}
	if b.db.newest.isNew(id) {
		return false, nil
	}
	var err error
	if b.db.idMayBeInBlock(id) {
		// stored loose, or in the block whose range holds it
		// (a read-only view: an iterator of the open transaction would sort
		// its pending writes every time)
		rtxn := b.db.bdb.NewTransactionAt(readAll, false)
		mv := b.db.movedNow(id.Window())
		it := rtxn.NewIterator(badger.IteratorOptions{Prefix: idRunPrefixIn(mv, id)})
		var found bool
		found, err = findInRun(it, mv, id, func([]byte) error { return nil })
		it.Close()
		rtxn.Discard()
		if err == nil && !found {
			err = badger.ErrKeyNotFound
		}
	} else {
		_, err = b.txn.Get(key)
	}
	switch {
	case err == nil:
		b.release([]record.ID{id})
		return true, nil
	case errors.Is(err, badger.ErrKeyNotFound):
		return false, nil
	default:
		b.release([]record.ID{id})
		return false, err
	}
}

// send commits the open transaction with its journal entry, asynchronously.
func (b *builder) send() {
	txn, work := b.txn, b.work
	b.txn, b.work = nil, nil
	if txn == nil {
		return
	}
	if b.err != nil || len(b.local)+len(b.remote) == 0 {
		txn.Discard()
		for _, c := range work.credits { // a request failed: nothing of this transaction is stored
			if c.req.err == nil && b.err != nil {
				c.req.err = fmt.Errorf("index: commit: not written, since another write of its group failed: %w", b.err)
			}
		}
		b.release(b.registered)
		return
	}
	db := b.db
	seq := db.nextSeq.Load()
	op := b.op
	if op == 0 {
		op = OpAdd
	}
	work.entry = JournalEntry{Seq: seq, Op: op, Local: len(b.local),
		IDs: append(append(make([]record.ID, 0, len(b.local)+len(b.remote)), b.local...), b.remote...)}
	work.remote = b.registered
	err := db.settleLater(txn, prefixRanges(slices.Collect(maps.Values(b.deletedIn))))
	if err == nil {
		err = txn.Set(journalKey(seq), work.entry.encode())
	}
	if err != nil {
		txn.Discard()
		b.err = err
		for _, c := range work.credits { // nothing of this transaction was stored
			if c.req.err == nil {
				c.req.err = fmt.Errorf("index: commit: %w", err)
			}
		}
		b.release(b.registered)
		return
	}
	db.pipe.slots <- struct{}{} // bound transactions in flight
	db.nextSeq.Store(seq + 1)
	db.pipe.mu.Lock()
	db.pipe.mu.work[seq] = work
	db.pipe.mu.lastSeq = seq
	for _, id := range work.remote {
		db.pipe.mu.remote[id] = work
	}
	db.pipe.mu.Unlock()
	start := time.Now()
	work.ts = db.commitTs()
	txn.CommitAt(work.ts, func(err error) {
		db.wrote()
		db.stats.commitNanos.Add(uint64(time.Since(start)))
		db.pipe.mu.Lock()
		work.err, work.done = err, true
		db.pipe.mu.Unlock()
		db.pipe.doneCh <- seq
	})
	if b.extra > 0 {
		// it unsealed blocks: until it is applied, what is committed shows
		// a block deleted and its records not yet loose, and the duplicate
		// check and the next unseal read what is committed
		db.drainInflight()
	}
}

// metaCommitted waits, once, for the transaction that holds req's meta
// entry if it was just sent and more of req's records follow in other
// transactions, and returns its error: those must not be stored when the
// meta entry is not.
func (b *builder) metaCommitted(req *writeReq) error {
	w := req.metaTxn
	if w == nil {
		return nil
	}
	req.metaTxn = nil
	b.db.drainInflight()
	b.db.pipe.mu.Lock()
	defer b.db.pipe.mu.Unlock()
	if w.err != nil {
		return fmt.Errorf("index: commit of the transaction with the meta entry: %w", w.err)
	}
	return nil
}

func (b *builder) release(ids []record.ID) {
	p := b.db.pipe
	p.mu.Lock()
	for _, id := range ids {
		delete(p.mu.remote, id)
	}
	p.mu.Unlock()
}

// completeLoop applies finished transactions in journal order, syncs when
// the policy says so, and acknowledges writers whose writes are all applied.
func (db *DB) completeLoop() {
	defer db.wg.Done()
	defer close(db.pipe.finished)
	p := db.pipe
	var waiting []*writeReq // in waitSeq order
	applied := p.startSeq - 1
	reqOpen := true
	for reqOpen || len(waiting) > 0 {
		select {
		case req, ok := <-p.reqCh:
			if !ok {
				reqOpen = false
				break
			}
			waiting = append(waiting, req)
		case <-p.doneCh:
		}
		// drain whatever else is ready without blocking
	more:
		for {
			select {
			case req, ok := <-p.reqCh:
				if !ok {
					reqOpen = false
					break more
				}
				waiting = append(waiting, req)
			case <-p.doneCh:
			default:
				break more
			}
		}
		if next := db.applyDone(applied); next != applied {
			applied = next
			db.applied.Store(applied)
			db.notifyChanges()
		}
		n := 0
		for n < len(waiting) && waiting[n].waitSeq <= applied {
			n++
		}
		if n == 0 {
			if !reqOpen && len(waiting) > 0 && db.inflight() == 0 {
				n = len(waiting) // closing: nothing more will complete
			} else {
				continue
			}
		}
		if db.cfg.FsyncInterval == 0 {
			if err := db.Sync(); err != nil {
				for _, req := range waiting[:n] {
					if req.err == nil {
						req.err = fmt.Errorf("index: commit: %w", err)
					}
				}
			}
		}
		var written uint64
		for _, req := range waiting[:n] {
			if req.err == nil {
				req.err = req.commitErr
			}
			written += uint64(req.res.Written)
			req.res.Seq = req.waitSeq
			close(req.done)
		}
		db.stats.recordsWritten.Add(written)
		// shifted down and the tail zeroed: a re-slice would keep every
		// answered request (and its batch) reachable from the array
		waiting = slices.Delete(waiting, 0, n)
	}
}

func (db *DB) inflight() int {
	db.pipe.mu.Lock()
	defer db.pipe.mu.Unlock()
	return len(db.pipe.mu.work)
}

// applyDone applies, in journal order, every finished transaction after
// applied, and returns the new last applied sequence.
func (db *DB) applyDone(applied uint64) uint64 {
	p := db.pipe
	cutoff := db.cutoff()
	for {
		p.mu.Lock()
		w := p.mu.work[applied+1]
		if w == nil || !w.done {
			p.mu.Unlock()
			return applied
		}
		delete(p.mu.work, applied+1)
		for _, id := range w.remote {
			delete(p.mu.remote, id)
		}
		p.mu.Unlock()
		applied++
		if w.err == nil && len(w.adds) > 0 {
			// before readTs passes it: a move's listing at or after w.ts
			// finds its records captured
			db.capture.added(w.ts, w.adds, db.sliceEmptyBefore(w.ts))
		}
		w.adds = nil
		db.advanceReadTs(w.ts) // before any of its writers is acknowledged
		<-p.slots
		db.stats.commits.Add(1)
		if w.err != nil {
			db.stats.commitErrors.Add(1)
			err := db.space.noteErr(fmt.Errorf("index: commit: %w", w.err))
			for _, c := range w.credits {
				if c.req.commitErr == nil {
					c.req.commitErr = err
				}
			}
			continue
		}
		db.dig.apply(&w.entry, cutoff)
		for _, c := range w.credits {
			c.req.res.Written += c.written
		}
	}
}

// unseal turns the block whose range holds id, if there is one, back into
// loose records in the open transaction (calling flush to start the next
// transaction first when it has no room for them), and reports whether id
// is one of them. It reads what is committed, after waiting once per group
// for every transaction in flight: a block that an earlier transaction
// changed must not be read as it was (its records written loose again would
// bring back one that transaction deleted). A block this group already
// unsealed is not unsealed twice: in the open transaction its records are
// pending; in one sent before, flush and wait until it is applied.
func (b *builder) unseal(id record.ID, ids int, flush func() error) (bool, error) {
	if !b.drained {
		b.db.drainInflight()
		b.drained = true
	}
	bk, blk, err := b.db.coveringBlock(id)
	if bk == nil || err != nil {
		return false, err
	}
	in := slices.Contains(blk.IDs, id)
	if w, ok := b.unsealed[string(bk)]; ok {
		if w == b.work {
			return in, nil
		}
		if err := flush(); err != nil {
			return false, err
		}
		b.db.drainInflight()
		if bk, blk, err = b.db.coveringBlock(id); bk == nil || err != nil {
			return false, err
		}
		in = slices.Contains(blk.IDs, id)
	}
	mv := b.db.movedNow(id.Window())
	key := recordKeyIn(mv, id)
	var size int64
	for _, d := range blk.Data {
		size += entrySize(key, d)
	}
	// ids: the open transaction's records (a removal's deletes); each
	// record an unseal writes back and a removal then deletes counts twice
	maxSize, maxCount := b.db.bdb.MaxBatchSize(), b.db.bdb.MaxBatchCount()
	if ids+b.extra > 0 && (int64(2*ids+b.extra+len(blk.IDs)+4) >= maxCount/2 || b.size+size+int64(ids+1)*(2*record.IDLen+40) >= maxSize/2) {
		if err := flush(); err != nil {
			return false, err
		}
	}
	b.db.capture.touched(id) // its run is read back when it moves
	if err := b.txn.Delete(bk); err != nil {
		return false, err
	}
	b.deleting(bk)
	for i, rid := range blk.IDs {
		if err := b.txn.Set(recordKeyIn(mv, rid), blk.Data[i]); err != nil {
			return false, err
		}
	}
	if b.unsealed == nil {
		b.unsealed = map[string]*txnWork{}
	}
	b.unsealed[string(bk)] = b.work
	b.extra += len(blk.IDs) + 1
	b.size += size
	b.db.stats.blocksUnsealed.Add(1)
	return in, nil
}

// coveringBlock returns the key and the records of the committed block
// whose range holds id, or a nil key.
func (db *DB) coveringBlock(id record.ID) ([]byte, decodedBlock, error) {
	mv := db.movedNow(id.Window()) // inside the committer: what writers use
	key := recordKeyIn(mv, id)
	txn := db.bdb.NewTransactionAt(readAll, false)
	defer txn.Discard()
	it := txn.NewIterator(badger.IteratorOptions{Prefix: idRunPrefixIn(mv, id)})
	defer it.Close()
	it.Seek(key)
	if !it.Valid() {
		return nil, decodedBlock{}, nil
	}
	item := it.Item()
	k := item.Key()
	first, last, ok := blockRange(k)
	if !ok || !bytes.HasPrefix(k, runOfKey(key)) || record.Compare(id, first) < 0 || record.Compare(id, last) > 0 {
		return nil, decodedBlock{}, nil
	}
	bk := item.KeyCopy(nil)
	var blk decodedBlock
	err := item.Value(func(v []byte) error {
		var err error
		blk, err = blockRecords(bk, v, false)
		return err
	})
	return bk, blk, err
}
