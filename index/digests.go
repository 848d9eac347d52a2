package index

import (
	"encoding/binary"
	"fmt"
	"sort"
	"sync"

	"github.com/logmesh/logmesh/record"
)

// digests holds the per-(window, bucket) digests of the stored records. It is
// the authoritative, in-memory copy; checkpoints and the journal make it
// durable.
type digests struct {
	mu struct {
		sync.Mutex
		windows map[record.Window]*windowDigests
		// applied is the journal sequence of the last commit applied.
		applied uint64
		// gen counts applied changes; windowDigests remember the gen of their
		// last change per partition, so readers can tell what changed since.
		gen uint64
	}
}

type windowDigests struct {
	buckets [record.NumBuckets]record.Digest
	// partGen is the digests' gen at the last change of each partition.
	partGen [record.NumPartitions]uint64
	dirty   bool // changed since the last checkpoint
}

func newDigests() *digests {
	d := &digests{}
	d.mu.windows = make(map[record.Window]*windowDigests)
	return d
}

// applyLocked applies one journal entry.
func (d *digests) applyLocked(e *JournalEntry, cutoff record.Window) {
	d.mu.gen++
	for _, id := range e.IDs {
		w := id.Window()
		if w < cutoff {
			continue // expired: its window is gone or going
		}
		wd := d.mu.windows[w]
		if wd == nil {
			wd = &windowDigests{}
			d.mu.windows[w] = wd
		}
		b := id.Bucket()
		if e.Op == OpAdd {
			wd.buckets[b].Add(id)
		} else {
			wd.buckets[b].Remove(id)
		}
		wd.partGen[b.Partition()] = d.mu.gen
		wd.dirty = true
	}
	if e.Seq > d.mu.applied {
		d.mu.applied = e.Seq
	}
}

func (d *digests) apply(e *JournalEntry, cutoff record.Window) {
	d.mu.Lock()
	d.applyLocked(e, cutoff)
	d.mu.Unlock()
}

// dropWindows forgets windows before cutoff and returns them.
func (d *digests) dropWindows(cutoff record.Window) []record.Window {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []record.Window
	for w := range d.mu.windows {
		if w < cutoff {
			out = append(out, w)
			delete(d.mu.windows, w)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// checkpoint is a snapshot of the windows changed since the last one.
type checkpoint struct {
	seq     uint64
	windows map[record.Window][]byte // encoded digests
}

func (d *digests) takeCheckpoint() checkpoint {
	d.mu.Lock()
	defer d.mu.Unlock()
	cp := checkpoint{seq: d.mu.applied, windows: map[record.Window][]byte{}}
	for w, wd := range d.mu.windows {
		if wd.dirty {
			cp.windows[w] = encodeWindowDigests(&wd.buckets)
			wd.dirty = false
		}
	}
	return cp
}

// markDirty re-marks windows whose checkpoint failed to be written.
func (d *digests) markDirty(ws map[record.Window][]byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for w := range ws {
		if wd := d.mu.windows[w]; wd != nil {
			wd.dirty = true
		}
	}
}

func encodeWindowDigests(b *[record.NumBuckets]record.Digest) []byte {
	out := []byte{1}
	for i := range b {
		if !b[i].IsZero() {
			out = binary.BigEndian.AppendUint16(out, uint16(i))
			out = b[i].AppendBinary(out)
		}
	}
	return out
}

func decodeWindowDigests(data []byte) (*windowDigests, error) {
	if len(data) < 1 || data[0] != 1 || (len(data)-1)%(2+record.DigestLen) != 0 {
		return nil, fmt.Errorf("index: corrupt digest checkpoint")
	}
	wd := &windowDigests{}
	for p := data[1:]; len(p) > 0; p = p[2+record.DigestLen:] {
		b := binary.BigEndian.Uint16(p)
		if b >= record.NumBuckets {
			return nil, fmt.Errorf("index: corrupt digest checkpoint: bucket %d", b)
		}
		wd.buckets[b], _ = record.DigestFromBinary(p[2:])
	}
	return wd, nil
}
