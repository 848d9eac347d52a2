// Package indexstore serves anti-entropy from a peer's store: the one
// adapter between antientropy.Store and index.DB, for the peer and the
// benchmark alike.
package indexstore

import (
	"context"

	"github.com/logmesh/logmesh/antientropy"
	"github.com/logmesh/logmesh/index"
	"github.com/logmesh/logmesh/record"
)

// Store adapts an index.DB to anti-entropy.
type Store struct{ db *index.DB }

var _ antientropy.Store = Store{}

// New returns the anti-entropy view of db.
func New(db *index.DB) Store { return Store{db} }

// Cutoff is the oldest window retention keeps.
func (s Store) Cutoff() record.Window { return s.db.Cutoff() }

// Windows lists the windows holding data of partition p.
func (s Store) Windows(p record.Partition) []record.Window { return s.db.Windows(p) }

// WindowDigests returns the bucket digests of one window of a partition.
func (s Store) WindowDigests(w record.Window, p record.Partition) ([record.BucketsPerPartition]record.Digest, uint64) {
	return s.db.WindowDigests(w, p)
}

// PartitionIDs streams the IDs of buckets [first, end) of a window of a partition.
func (s Store) PartitionIDs(w record.Window, p record.Partition, first, end record.Bucket, fn func(record.ID) error) error {
	return s.db.PartitionIDs(w, p, first, end, fn)
}

// GetMany streams the encoded records of ids that the store holds.
func (s Store) GetMany(ids []record.ID, fn func(record.ID, []byte) error) error {
	return s.db.GetMany(ids, fn)
}

// Put stores records received from a co-replica (idempotent, as every write).
func (s Store) Put(ctx context.Context, recs []antientropy.Rec) error {
	entries := make([]index.Entry, len(recs))
	for i, r := range recs {
		entries[i] = index.Entry{ID: r.ID, Data: r.Data}
	}
	_, err := s.db.Write(ctx, entries, index.OriginRemote)
	return err
}
