package record

import (
	"crypto/rand"
	"encoding/binary"
	"sync"
	"time"
)

// Generator assigns IDs. IDs from one generator strictly increase, even when
// the clock steps backwards (the generator then keeps the last millisecond and
// counts on). Generators are safe for concurrent use.
type Generator struct {
	now      func() time.Time
	instance [6]byte

	mu struct {
		sync.Mutex
		lastMs int64
		seq    uint32
	}
}

// NewGenerator returns a generator whose instance tag is random, so that two
// generators (two peers, or one peer before and after a restart with a clock
// that went backwards) never mint the same ID. now supplies receive times; nil
// means time.Now.
func NewGenerator(now func() time.Time) *Generator {
	if now == nil {
		now = time.Now
	}
	g := &Generator{now: now}
	if _, err := rand.Read(g.instance[:]); err != nil {
		panic("BUG: crypto/rand failed: " + err.Error())
	}
	return g
}

// Instance returns the random instance tag of the generator.
func (g *Generator) Instance() [6]byte { return g.instance }

// Next returns a new ID.
func (g *Generator) Next() ID {
	var ids [1]ID
	g.Fill(ids[:])
	return ids[0]
}

// Fill assigns new, increasing IDs to every element of dst, reading the clock once.
func (g *Generator) Fill(dst []ID) {
	ms := g.now().UnixMilli()
	g.mu.Lock()
	defer g.mu.Unlock()
	for i := range dst {
		if ms > g.mu.lastMs {
			g.mu.lastMs = ms
			g.mu.seq = 0
		} else {
			g.mu.seq++
			if g.mu.seq == 0 { // 2^32 IDs in one millisecond: borrow the next one
				g.mu.lastMs++
			}
		}
		id := &dst[i]
		putMillis(id, g.mu.lastMs)
		copy(id[6:12], g.instance[:])
		binary.BigEndian.PutUint32(id[12:16], g.mu.seq)
	}
}
