package record

import (
	"crypto/rand"
	"encoding/binary"
	"sync"
	"time"
)

// MaxClockStepBack is how far the clock may step backwards before a
// generator stops counting on from its last millisecond and takes a new
// instance tag instead (see Generator).
const MaxClockStepBack = time.Second

// Generator assigns IDs. IDs from one instance tag strictly increase. When
// the clock steps backwards by up to MaxClockStepBack the generator keeps
// the last millisecond and counts on; when it steps back further it takes a
// new random instance tag and follows the clock again, so that IDs keep
// carrying the true receive time (rather than a time in the future for as
// long as the step was) and still never repeat. Generators are safe for
// concurrent use.
type Generator struct {
	now func() time.Time

	mu struct {
		sync.Mutex
		instance [6]byte
		lastMs   int64
		seq      uint32
		retags   uint64
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
	g.mu.instance = randomInstance()
	return g
}

func randomInstance() [6]byte {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("BUG: crypto/rand failed: " + err.Error())
	}
	return b
}

// Instance returns the generator's current instance tag.
func (g *Generator) Instance() [6]byte {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.mu.instance
}

// Retags returns how many times the generator took a new instance tag.
func (g *Generator) Retags() uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.mu.retags
}

// SetInstance makes the generator mint IDs with instance tag inst from now
// on (tests that need two generators to collide; tools).
func (g *Generator) SetInstance(inst [6]byte) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.mu.instance, g.mu.seq = inst, 0
}

// Retag takes a new random instance tag (another generator was found using
// this one).
func (g *Generator) Retag() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.retagLocked()
}

func (g *Generator) retagLocked() {
	old := g.mu.instance
	for g.mu.instance == old {
		g.mu.instance = randomInstance()
	}
	g.mu.seq = 0
	g.mu.retags++
}

// Next returns a new ID.
func (g *Generator) Next() ID {
	var ids [1]ID
	g.Fill(ids[:])
	return ids[0]
}

// Fill assigns new IDs to every element of dst, reading the clock once;
// they increase unless the clock stepped back by more than MaxClockStepBack.
func (g *Generator) Fill(dst []ID) {
	ms := g.now().UnixMilli()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.mu.lastMs-ms > MaxClockStepBack.Milliseconds() {
		// a step back: a new tag keeps IDs unique while following the clock
		g.retagLocked()
		g.mu.lastMs = ms - 1
	}
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
		copy(id[6:12], g.mu.instance[:])
		binary.BigEndian.PutUint32(id[12:16], g.mu.seq)
	}
}
