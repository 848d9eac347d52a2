package antientropy

import (
	"context"

	"github.com/logmesh/logmesh/record"
)

// Store is what reconciliation needs from a peer's store.
type Store interface {
	// Cutoff is the first time window that has not expired.
	Cutoff() record.Window
	// Windows lists, in order, the live windows holding records of partition p.
	Windows(p record.Partition) []record.Window
	// WindowDigests returns the digests of partition p's buckets in window w,
	// and a generation that changes whenever they do.
	WindowDigests(w record.Window, p record.Partition) ([record.BucketsPerPartition]record.Digest, uint64)
	// PartitionIDs calls fn with the IDs of partition p's records in window w
	// whose bucket lies in [first, end).
	PartitionIDs(w record.Window, p record.Partition, first, end record.Bucket, fn func(record.ID) error) error
	// GetMany calls fn with the encoding of each stored record of ids.
	GetMany(ids []record.ID, fn func(id record.ID, data []byte) error) error
	// Put stores records (idempotently) and returns once they are durable.
	Put(ctx context.Context, recs []Rec) error
}

// Rec is an encoded record and its ID.
type Rec struct {
	ID   record.ID
	Data []byte
}
