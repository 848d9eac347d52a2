package replicate

import (
	"context"
	"encoding/binary"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/logmesh/logmesh/peer/view"
	"github.com/logmesh/logmesh/record"
)

// Debt names partitions whose records held here before Seq may be missing
// at a target.
type Debt struct {
	Parts view.Mask
	// Seq: journal entries up to it are covered.
	Seq uint64
	// At is when the debt was last extended (this peer's clock): only a
	// round started after it settles it.
	At time.Time
	// Gen changes whenever the debt is extended.
	Gen uint64
}

// Empty reports whether there is no debt.
func (d *Debt) Empty() bool { return d.Parts.Empty() }

// covers reports whether the debt covers a record of p in entry seq.
func (d *Debt) covers(p record.Partition, seq uint64) bool { return d.Parts[p] && seq <= d.Seq }

// target is one peer this one pushes to.
type target struct {
	name   string
	cancel context.CancelFunc
	done   chan struct{}

	mu struct {
		sync.Mutex
		// cursor: every journal entry up to it is handled for this target.
		cursor uint64
		// gen is the placement generation the latest pushes used, and
		// genStart the cursor when pushing under it began: entries in
		// (genStart, cursor] were pushed under placement gen.
		gen, genStart uint64
		debt          Debt
		lastErr       string
		lastErrAt     time.Time
		// marks count the records of journal entries meant for this
		// target: cum is the running total up to seq. The backlog is the
		// total minus the count up to the cursor, exactly.
		marks []mark
		total int64
		// refused holds records the target refused (their window had
		// expired there): they are no copy.
		refused    map[record.ID]struct{}
		refusedOld []record.ID
	}
	dropped   atomic.Uint64 // times its backlog was dropped for MaxHintsBytes
	delivered atomic.Uint64
	refusedN  atomic.Uint64
	lag       lagStats
}

type mark struct {
	seq uint64
	cum int64
}

func newTarget(name string) *target {
	t := &target{name: name, done: make(chan struct{})}
	t.mu.refused = map[record.ID]struct{}{}
	return t
}

func (t *target) cursor() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.mu.cursor
}

func (t *target) debt() Debt {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.mu.debt
}

// addDebt extends the target's debt.
func (t *target) addDebt(parts *view.Mask, seq uint64, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.mu.debt.Parts.Union(parts)
	t.mu.debt.Seq = max(t.mu.debt.Seq, seq)
	t.mu.debt.At = now
	t.mu.debt.Gen++
}

// settle clears the debt's partitions in parts if it is still at gen, and
// reports whether it did.
func (t *target) settle(parts *view.Mask, gen uint64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mu.debt.Gen != gen {
		return false
	}
	for i, on := range parts {
		if on {
			t.mu.debt.Parts[i] = false
		}
	}
	if t.mu.debt.Parts.Empty() {
		t.mu.debt = Debt{Gen: t.mu.debt.Gen + 1}
	}
	return true
}

// deliveredLocked reports whether the record of partition p in entry seq is
// durable at the target by push under placement generation gen.
func (t *target) deliveredLocked(p record.Partition, seq, gen uint64) bool {
	return t.mu.gen == gen && seq > t.mu.genStart && seq <= t.mu.cursor && !t.mu.debt.covers(p, seq)
}

// count records n records for the target in journal entry seq.
func (t *target) count(seq uint64, n int) {
	if n == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.mu.total += int64(n)
	t.mu.marks = append(t.mu.marks, mark{seq, t.mu.total})
}

// backlog returns the records waiting for the target, and forgets marks the
// cursor has passed.
func (t *target) backlog() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	i := sort.Search(len(t.mu.marks), func(i int) bool { return t.mu.marks[i].seq > t.mu.cursor })
	var done int64
	if i > 0 {
		done = t.mu.marks[i-1].cum
	}
	if i > 1 { // keep one mark below the cursor as the base
		t.mu.marks = append(t.mu.marks[:0], t.mu.marks[i-1:]...)
	}
	return t.mu.total - done
}

const maxRefused = 1 << 16

// noteRefused remembers records the target refused.
func (t *target) noteRefused(ids []record.ID) {
	if len(ids) == 0 {
		return
	}
	t.refusedN.Add(uint64(len(ids)))
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, id := range ids {
		t.mu.refused[id] = struct{}{}
		t.mu.refusedOld = append(t.mu.refusedOld, id)
	}
	for len(t.mu.refusedOld) > maxRefused {
		delete(t.mu.refused, t.mu.refusedOld[0])
		t.mu.refusedOld = t.mu.refusedOld[1:]
	}
}

// Cursor encodings: version 1 was the cursor and a "skipped below" mark
// (16 bytes); version 2 carries the debt.
const cursorV2 = 2

func (t *target) encode() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := []byte{cursorV2}
	b = binary.BigEndian.AppendUint64(b, t.mu.cursor)
	b = binary.BigEndian.AppendUint64(b, t.mu.debt.Seq)
	b = binary.BigEndian.AppendUint64(b, uint64(t.mu.debt.At.UnixMilli()))
	var m [record.NumPartitions / 8]byte
	for i, on := range t.mu.debt.Parts {
		if on {
			m[i/8] |= 1 << (i % 8)
		}
	}
	return append(b, m[:]...)
}

// savedCursor is a cursor read back from the store.
type savedCursor struct {
	cursor uint64
	debt   Debt
}

func decodeCursor(v []byte, now time.Time) (savedCursor, bool) {
	switch {
	case len(v) == 16:
		// version 1: a target whose backlog was skipped owes anti-entropy
		// everything it owns
		c := savedCursor{cursor: binary.BigEndian.Uint64(v)}
		if skipped := binary.BigEndian.Uint64(v[8:]); skipped > 0 {
			for i := range c.debt.Parts {
				c.debt.Parts[i] = true
			}
			c.debt.Seq, c.debt.At = skipped, now
		}
		return c, true
	case len(v) == 1+24+record.NumPartitions/8 && v[0] == cursorV2:
		c := savedCursor{cursor: binary.BigEndian.Uint64(v[1:])}
		c.debt.Seq = binary.BigEndian.Uint64(v[9:])
		c.debt.At = time.UnixMilli(int64(binary.BigEndian.Uint64(v[17:])))
		m := v[25:]
		for i := range c.debt.Parts {
			c.debt.Parts[i] = m[i/8]&(1<<(i%8)) != 0
		}
		return c, true
	}
	return savedCursor{}, false
}
