package antientropy

import (
	"context"
	"encoding"
	"slices"
	"sync"

	"github.com/logmesh/logmesh/record"
)

// memStore is a Store in memory: a deliberately naive model for tests.
type memStore struct {
	mu     sync.Mutex
	recs   map[record.ID][]byte
	byWin  map[winKey]map[record.ID]bool
	cutoff record.Window
	gen    uint64
}

func newMem() *memStore {
	return &memStore{recs: map[record.ID][]byte{}, byWin: map[winKey]map[record.ID]bool{}, gen: 1}
}

func (m *memStore) Cutoff() record.Window { return m.cutoff }

func (m *memStore) Windows(p record.Partition) []record.Window {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []record.Window
	for k, ids := range m.byWin {
		if k.p == p && k.w >= m.cutoff && len(ids) > 0 {
			out = append(out, k.w)
		}
	}
	slices.Sort(out)
	return out
}

func (m *memStore) WindowDigests(w record.Window, p record.Partition) (ds [record.BucketsPerPartition]record.Digest, gen uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	first, _ := p.Buckets()
	for id := range m.byWin[winKey{w, p}] {
		ds[id.Bucket()-first].Add(id)
	}
	return ds, m.gen
}

func (m *memStore) PartitionIDs(w record.Window, p record.Partition, first, end record.Bucket, fn func(record.ID) error) error {
	m.mu.Lock()
	var ids []record.ID
	for id := range m.byWin[winKey{w, p}] {
		if id.Bucket() >= first && id.Bucket() < end {
			ids = append(ids, id)
		}
	}
	m.mu.Unlock()
	slices.SortFunc(ids, record.Compare)
	for _, id := range ids {
		if err := fn(id); err != nil {
			return err
		}
	}
	return nil
}

func (m *memStore) GetMany(ids []record.ID, fn func(record.ID, []byte) error) error {
	for _, id := range ids {
		m.mu.Lock()
		d, ok := m.recs[id]
		m.mu.Unlock()
		if ok {
			if err := fn(id, d); err != nil {
				return err
			}
		}
	}
	return nil
}

func (m *memStore) Put(ctx context.Context, recs []Rec) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range recs {
		if r.ID.Window() < m.cutoff {
			continue // expired: refused, like the real store
		}
		m.recs[r.ID] = slices.Clone(r.Data)
		k := winKey{r.ID.Window(), r.ID.Partition()}
		if m.byWin[k] == nil {
			m.byWin[k] = map[record.ID]bool{}
		}
		m.byWin[k][r.ID] = true
	}
	m.gen++
	return nil
}

func (m *memStore) ids() []record.ID {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []record.ID
	for id := range m.recs {
		out = append(out, id)
	}
	slices.SortFunc(out, record.Compare)
	return out
}

// direct is a Transport that calls Responders in process, through the
// binary encoding, and counts the bytes on the wire.
type direct struct {
	peers map[string]*Peer
	bytes int
	calls int
}

func roundTrip[T any, PT interface {
	*T
	encoding.BinaryMarshaler
	encoding.BinaryUnmarshaler
}](d *direct, in PT) PT {
	b, err := in.MarshalBinary()
	if err != nil {
		panic(err)
	}
	d.bytes += len(b)
	var out T
	if err := PT(&out).UnmarshalBinary(b); err != nil {
		panic(err)
	}
	return &out
}

func (d *direct) Roots(ctx context.Context, peer string, req *RootsRequest) (*RootsReply, error) {
	d.calls++
	rep, err := d.peers[peer].Roots(ctx, "initiator", roundTrip(d, req))
	if err != nil {
		return nil, err
	}
	return roundTrip(d, rep), nil
}

func (d *direct) Buckets(ctx context.Context, peer string, req *BucketsRequest) (*BucketsReply, error) {
	d.calls++
	rep, err := d.peers[peer].Buckets(ctx, "initiator", roundTrip(d, req))
	if err != nil {
		return nil, err
	}
	return roundTrip(d, rep), nil
}

func (d *direct) Exchange(ctx context.Context, peer string, req *ExchangeRequest) (*ExchangeReply, error) {
	d.calls++
	rep, err := d.peers[peer].Exchange(ctx, "initiator", roundTrip(d, req))
	if err != nil {
		return nil, err
	}
	return roundTrip(d, rep), nil
}
