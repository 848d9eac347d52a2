package index

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/logmesh/logmesh/record"
)

// ScrubResult reports one pass over the store.
type ScrubResult struct {
	// Windows and Records count what was read.
	Windows int
	Records uint64
	// Skipped counts windows that changed while they were read (compared
	// at the next pass).
	Skipped int
	// Buckets counts buckets whose digest said something other than the
	// records stored: the digest now says what is stored, so that
	// anti-entropy fetches what is missing from a replica.
	Buckets int
	// Undecodable lists records whose stored bytes do not decode: they were
	// deleted, for anti-entropy to fetch a good copy.
	Undecodable []record.ID
	// DamagedBlocks counts blocks that did not decode: they were deleted,
	// and the digests no longer count their records.
	DamagedBlocks int
	Took          time.Duration
}

// Scrub reads every record of every live window, checks that it decodes,
// and re-derives the window's digests from what is stored. Digests are kept
// up to date from the journal, never from the data, so a record lost or
// damaged at rest would otherwise stay invisible to anti-entropy: after a
// scrub, the digests describe the store, and a round with any replica
// repairs the difference. Blocks are read with their checksums verified.
// perRecord paces the pass (0: as fast as possible).
func (db *DB) Scrub(ctx context.Context, perRecord time.Duration) (ScrubResult, error) {
	start := time.Now()
	var res ScrubResult
	cutoff := db.cutoff()
	for _, w := range db.AllWindows() {
		if w < cutoff {
			continue
		}
		if err := db.scrubWindow(ctx, w, perRecord, &res); err != nil {
			return res, err
		}
	}
	if len(res.Undecodable) > 0 {
		if _, err := db.Delete(ctx, res.Undecodable); err != nil {
			return res, fmt.Errorf("index: delete undecodable records: %w", err)
		}
	}
	res.Took = time.Since(start)
	db.stats.scrubs.Add(1)
	db.stats.scrubBuckets.Add(uint64(res.Buckets))
	db.stats.scrubUndecodable.Add(uint64(len(res.Undecodable)))
	return res, nil
}

func (db *DB) scrubWindow(ctx context.Context, w record.Window, perRecord time.Duration, res *ScrubResult) error {
	genBefore := db.windowGen(w)
	var found [record.NumBuckets]record.Digest
	var bad []record.ID
	var badBlocks [][]byte
	var n uint64
	err := db.view(func(txn *badger.Txn) error {
		mv := db.movedIn(txn.ReadTs(), w)
		it := txn.NewIterator(badger.IteratorOptions{Prefix: windowPrefix(w), PrefetchValues: false})
		defer it.Close()
		var v record.View
		for it.Rewind(); it.Valid(); it.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			if k := it.Item().Key(); len(k) > 5 && !mv.keyVisible(k) {
				continue // a copy the sealer is writing, loose records not yet dropped, a marker
			}
			id, ok := idFromRecordKey(it.Item().Key())
			if !ok {
				if _, _, isBlock := blockRange(it.Item().Key()); isBlock {
					err := it.Item().Value(func(data []byte) error {
						b, err := decodeBlock(data)
						for _, id := range b.IDs {
							found[id.Bucket()].Add(id)
						}
						n += uint64(len(b.IDs))
						return err
					})
					if err != nil {
						// its records are gone: the digests will say so,
						// and anti-entropy fetches them from a replica
						badBlocks = append(badBlocks, it.Item().KeyCopy(nil))
					}
				}
				continue
			}
			err := it.Item().Value(func(data []byte) error { return v.Reset(data) })
			if err != nil {
				bad = append(bad, id)
			}
			found[id.Bucket()].Add(id)
			n++
			if perRecord > 0 && n%1024 == 0 {
				select { // pacing: a scrub must not take the disk from ingestion
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(perRecord * 1024):
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("index: scrub window %d: %w", w, err)
	}
	if len(badBlocks) > 0 {
		done := make(chan error, 1)
		select {
		case db.exclCh <- func() {
			done <- db.updateRecords(func(txn *badger.Txn) error {
				runs := map[string][]byte{}
				for _, k := range badBlocks {
					runs[string(runOfKey(k))] = runOfKey(k)
				}
				if err := db.settleLater(txn, prefixRanges(slices.Collect(maps.Values(runs)))); err != nil {
					return err
				}
				for _, k := range badBlocks {
					if err := txn.Delete(k); err != nil {
						return err
					}
				}
				return nil
			})
		}:
		case <-db.ctx.Done():
			return ErrClosed
		}
		if err := <-done; err != nil {
			return fmt.Errorf("index: scrub window %d: delete damaged blocks: %w", w, err)
		}
		res.DamagedBlocks += len(badBlocks)
		db.cfg.Logger.Error("scrub: deleted blocks that do not decode; anti-entropy fetches their records from a replica",
			"window", w, "blocks", len(badBlocks))
	}
	res.Windows++
	res.Records += n
	if db.windowGen(w) != genBefore {
		res.Skipped++ // written meanwhile: what was read and the digests may disagree for that reason alone
		return nil
	}
	res.Undecodable = append(res.Undecodable, bad...)
	d := db.dig
	d.mu.Lock()
	defer d.mu.Unlock()
	wd := d.mu.windows[w]
	if wd == nil {
		return nil
	}
	for b := range found {
		if wd.buckets[b] != found[b] {
			res.Buckets++
			db.cfg.Logger.Error("scrub: a bucket's digest disagrees with the records stored; the digest now follows the store and anti-entropy repairs it",
				"window", w, "bucket", b, "digest_count", wd.buckets[b].Count, "stored_count", found[b].Count)
			wd.buckets[b] = found[b]
			d.mu.gen++
			wd.partGen[record.Bucket(b).Partition()] = d.mu.gen
			wd.dirty = true
		}
	}
	return nil
}

// windowGen sums the change generations of a window's partitions: it moves
// whenever any of them changes.
func (db *DB) windowGen(w record.Window) uint64 {
	d := db.dig
	d.mu.Lock()
	defer d.mu.Unlock()
	wd := d.mu.windows[w]
	if wd == nil {
		return 0
	}
	var g uint64
	for _, pg := range wd.partGen {
		g += pg
	}
	return g
}
