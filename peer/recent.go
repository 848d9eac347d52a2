package peer

import (
	"sync"

	"github.com/logmesh/logmesh/record"
)

// recentCache keeps the encoded records of the last few ingested batches so
// that replication pushes them without reading them back from the store (a
// point read can cost a table-block decompression). It holds whole batches,
// evicted oldest first once it holds more than max bytes.
type recentCache struct {
	max int64

	mu      sync.RWMutex
	m       map[record.ID][]byte
	batches []*ingestBuf
	bytes   int64
}

func newRecentCache(max int64) *recentCache {
	return &recentCache{max: max, m: map[record.ID][]byte{}}
}

// add takes ownership of a batch's buffers; evicted ones go back to the pool.
func (c *recentCache) add(b *ingestBuf) {
	size := int64(cap(b.buf))
	if c.max <= 0 || size > c.max {
		ingestBufs.Put(b)
		return
	}
	c.mu.Lock()
	for i, e := range b.entries {
		c.m[e.ID] = b.entries[i].Data
	}
	c.batches = append(c.batches, b)
	c.bytes += size
	var evicted []*ingestBuf
	for c.bytes > c.max && len(c.batches) > 1 {
		old := c.batches[0]
		c.batches = c.batches[1:]
		c.bytes -= int64(cap(old.buf))
		for _, e := range old.entries {
			delete(c.m, e.ID)
		}
		evicted = append(evicted, old)
	}
	c.mu.Unlock()
	for _, old := range evicted {
		ingestBufs.Put(old)
	}
}

// AppendTo calls fn with the cached encoding of each of ids (under the read
// lock: fn must copy) and returns the IDs not cached.
func (c *recentCache) AppendTo(ids []record.ID, fn func(record.ID, []byte) error) ([]record.ID, error) {
	var misses []record.ID
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, id := range ids {
		data, ok := c.m[id]
		if !ok {
			misses = append(misses, id)
			continue
		}
		if err := fn(id, data); err != nil {
			return nil, err
		}
	}
	return misses, nil
}
