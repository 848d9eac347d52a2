package antientropy

import (
	"context"
	"slices"

	"github.com/logmesh/logmesh/record"
)

// bucketIDs returns the sorted IDs of one bucket of one window.
func bucketIDs(s Store, ref BucketRef) ([]record.ID, error) {
	var ids []record.ID
	err := s.PartitionIDs(ref.W, ref.B.Partition(), ref.B, ref.B+1, func(id record.ID) error {
		ids = append(ids, id)
		return nil
	})
	slices.SortFunc(ids, record.Compare)
	return ids, err
}

// findOne returns the ID of the bucket's records whose digest is diff (on
// Count and Sum0 only when the digests were shortened).
func findOne(s Store, ref BucketRef, diff record.Digest, full bool) (record.ID, bool, error) {
	var found record.ID
	ok := false
	err := s.PartitionIDs(ref.W, ref.B.Partition(), ref.B, ref.B+1, func(id record.ID) error {
		if !ok && (full && diff.Matches(id) || !full && diff.Count == 1 && diff.Sum0 == id.Hash()) {
			found, ok = id, true
		}
		return nil
	})
	return found, ok, err
}

// minus returns the sorted IDs of a not in b (both sorted).
func minus(a, b []record.ID) []record.ID {
	var out []record.ID
	j := 0
	for _, id := range a {
		for j < len(b) && record.Compare(b[j], id) < 0 {
			j++
		}
		if j < len(b) && b[j] == id {
			continue
		}
		out = append(out, id)
	}
	return out
}

// batch collects records to send up to a byte budget, reading them from the
// store and pacing them through the limiter.
type batch struct {
	store  Store
	limit  *Limiter
	budget int
	recs   []Rec
	bytes  int
	full   bool
}

// add reads ids and keeps them while the budget lasts; it reports false once full.
func (b *batch) add(ctx context.Context, ids []record.ID) (bool, error) {
	if b.full || len(ids) == 0 {
		return !b.full, nil
	}
	err := b.store.GetMany(ids, func(id record.ID, data []byte) error {
		if b.full {
			return nil
		}
		if b.bytes > 0 && b.bytes+len(data) > b.budget {
			b.full = true
			return nil
		}
		if err := b.limit.Wait(ctx, len(data)); err != nil {
			return err
		}
		b.recs = append(b.recs, Rec{ID: id, Data: slices.Clone(data)})
		b.bytes += len(data)
		return nil
	})
	return !b.full, err
}
