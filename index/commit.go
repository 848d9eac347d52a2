package index

import (
	"context"
	"errors"
	"fmt"
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
}

type writeReq struct {
	entries []Entry
	origin  Origin
	res     WriteResult
	err     error
	done    chan struct{}
}

// Write stores entries and returns once they are durable per the fsync
// policy (see Config.FsyncInterval). Concurrent writers share group commits.
// If ctx ends first, Write returns ctx.Err() and the entries may or may not
// have been stored.
func (db *DB) Write(ctx context.Context, entries []Entry, origin Origin) (WriteResult, error) {
	if db.closed.Load() {
		return WriteResult{}, ErrClosed
	}
	if len(entries) == 0 {
		return WriteResult{}, nil
	}
	req := &writeReq{entries: entries, origin: origin, done: make(chan struct{})}
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
	}
}

func (db *DB) commitLoop() {
	defer db.wg.Done()
	var batch []*writeReq
	for {
		select {
		case <-db.ctx.Done():
			db.failPending(ErrClosed)
			return
		case fn := <-db.exclCh:
			fn()
			continue
		case req := <-db.reqCh:
			batch = append(batch[:0], req)
		}
		n := len(batch[0].entries)
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
		db.commit(batch)
		for i := range batch {
			batch[i] = nil
		}
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

// commit writes a group of requests in as few transactions as Badger allows,
// each with its journal entry, syncs when the policy says so, applies the
// digests and acknowledges the writers.
func (db *DB) commit(batch []*writeReq) {
	start := time.Now()
	cutoff := db.cutoff()
	var err error
	var entries []JournalEntry
	c := committer{db: db, cutoff: cutoff, seen: make(map[record.ID]struct{})}
	c.begin()
	for _, req := range batch {
		if c.err != nil {
			break
		}
		c.add(req)
	}
	c.flush()
	entries, err = c.journal, c.err
	if err == nil && db.cfg.FsyncInterval == 0 {
		err = db.Sync()
	}
	if err != nil {
		err = fmt.Errorf("index: commit: %w", err)
		db.stats.commitErrors.Add(1)
	}
	// Digests follow what was committed, even when a later part of the group failed.
	db.dig.mu.Lock()
	for i := range entries {
		db.dig.applyLocked(&entries[i], cutoff)
	}
	db.dig.mu.Unlock()
	var written uint64
	for _, req := range batch {
		if err != nil {
			req.err = err
		}
		written += uint64(req.res.Written)
		close(req.done)
	}
	db.stats.commits.Add(1)
	db.stats.recordsWritten.Add(written)
	db.stats.commitNanos.Add(uint64(time.Since(start)))
}

// committer fills Badger transactions, splitting when one grows too big.
type committer struct {
	db      *DB
	cutoff  record.Window
	txn     *badger.Txn
	local   []record.ID
	remote  []record.ID
	seen    map[record.ID]struct{}
	journal []JournalEntry
	err     error
	// pending holds the requests' results to credit once their txn commits.
	pending []pendingCredit
}

type pendingCredit struct {
	req     *writeReq
	written int
}

func (c *committer) begin() {
	c.txn = c.db.bdb.NewTransaction(true)
	c.local, c.remote, c.pending = c.local[:0], c.remote[:0], c.pending[:0]
}

func (c *committer) add(req *writeReq) {
	credit := pendingCredit{req: req}
	for i := range req.entries {
		e := &req.entries[i]
		if e.ID.Window() < c.cutoff {
			req.res.Expired++
			continue
		}
		key := recordKey(e.ID)
		if _, dup := c.seen[e.ID]; dup {
			req.res.Duplicates++
			continue
		}
		if req.origin == OriginRemote {
			_, err := c.txn.Get(key)
			if err == nil {
				req.res.Duplicates++
				continue
			}
			if !errors.Is(err, badger.ErrKeyNotFound) {
				c.err = err
				return
			}
		}
		err := c.txn.Set(key, e.Data)
		if errors.Is(err, badger.ErrTxnTooBig) {
			c.pending = append(c.pending, credit)
			credit = pendingCredit{req: req}
			if c.flush(); c.err != nil {
				return
			}
			c.begin()
			err = c.txn.Set(key, e.Data)
		}
		if err != nil {
			c.err = err
			return
		}
		c.seen[e.ID] = struct{}{}
		credit.written++
		if req.origin == OriginLocal {
			c.local = append(c.local, e.ID)
		} else {
			c.remote = append(c.remote, e.ID)
		}
	}
	c.pending = append(c.pending, credit)
}

// flush commits the current transaction with its journal entry.
func (c *committer) flush() {
	defer func() {
		if c.txn != nil {
			c.txn.Discard()
			c.txn = nil
		}
	}()
	if c.err != nil || len(c.local)+len(c.remote) == 0 {
		return
	}
	seq := c.db.nextSeq.Load()
	je := JournalEntry{Seq: seq, Op: OpAdd, Local: len(c.local),
		IDs: append(append(make([]record.ID, 0, len(c.local)+len(c.remote)), c.local...), c.remote...)}
	if err := c.txn.Set(journalKey(seq), je.encode()); err != nil {
		c.err = err
		return
	}
	if err := c.txn.Commit(); err != nil {
		c.err = err
		return
	}
	c.db.nextSeq.Store(seq + 1)
	c.journal = append(c.journal, je)
	for _, p := range c.pending {
		p.req.res.Written += p.written
	}
	c.pending = c.pending[:0]
}
