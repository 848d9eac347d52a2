package index

import (
	"encoding/binary"
	"maps"
	"sync"
	"sync/atomic"

	"github.com/logmesh/logmesh/record"
)

// Moved slices (store format 5).
//
// Sealing a slice in place deleted every loose record it replaced: a
// tombstone per record, which until compactions merged it with the record
// kept the slice on disk twice, and which Badger's value-log collection can
// undo (settle.go). The sealer now moves a slice instead: it writes the
// slice's records, as blocks, under the slice byte s|movedSpace (keys.go)
// while readers and writers still use s, then, in one transaction inside the
// committer, copies whatever changed meanwhile and switches the slice over
// (its bit in the window's moved marker). From that commit on, readers whose
// snapshot is at or after it read the moved space, older ones keep reading
// the loose records, and writers write into the moved space. Once no
// snapshot older than the switch is in use, maintenance drops the loose
// records with DropPrefix (dropMoved): no tombstones, and nothing for a
// collection to bring back.
//
// A reader asks movedIn with its snapshot's timestamp which slices of a
// window it finds moved; a writer (inside the committer, where switches
// happen) asks movedNow.

// movesMarker is the slice byte of a window's moved marker: its value is the
// set of the window's moved slices, 8 bytes big endian.
const movesMarker = 0xfe

func movesMarkerKey(w record.Window) []byte { return append(windowPrefix(w), movesMarker) }

// movedWindow is what the DB knows of one window's moved slices.
type movedWindow struct {
	set     moved                   // every moved slice
	at      [slicesPerWindow]uint64 // commit timestamp of each slice's switch
	latest  uint64                  // the newest of them
	dropped moved                   // slices whose loose records are dropped
}

// movedSlices is, per window with moved slices, their state. The map is
// replaced whole on every change (rare: a switch per slice, a drop), so
// that writers read it per record without a lock.
type movedSlices struct {
	mu sync.Mutex // serialises changes
	m  atomic.Pointer[map[record.Window]movedWindow]
}

// movedNow is the set of window w's moved slices: where writers write.
func (db *DB) movedNow(w record.Window) moved {
	m := db.moves.m.Load()
	if m == nil {
		return 0
	}
	return (*m)[w].set
}

// movedIn is the set of window w's slices a snapshot at timestamp ts
// finds moved: those switched by a commit at or below ts.
func (db *DB) movedIn(ts uint64, w record.Window) moved {
	m := db.moves.m.Load()
	if m == nil {
		return 0
	}
	mw, ok := (*m)[w]
	if !ok || mw.latest <= ts {
		return mw.set // (the usual case: no switch since the snapshot)
	}
	var set moved
	for s := range slicesPerWindow {
		if t := mw.at[s]; t != 0 && t <= ts {
			set |= moved(sliceBit(uint8(s)))
		}
	}
	return set
}

// changeMoved applies fn to a copy of the state and publishes it.
func (db *DB) changeMoved(fn func(m map[record.Window]movedWindow)) {
	db.moves.mu.Lock()
	defer db.moves.mu.Unlock()
	var next map[record.Window]movedWindow
	if cur := db.moves.m.Load(); cur != nil {
		next = maps.Clone(*cur)
	} else {
		next = map[record.Window]movedWindow{}
	}
	fn(next)
	db.moves.m.Store(&next)
}

// noteMoved records that slice s of window w was switched to the moved
// space by the commit at ts (1 for a switch read from the store at open:
// every snapshot finds it).
func (db *DB) noteMoved(w record.Window, s uint8, ts uint64) {
	db.changeMoved(func(m map[record.Window]movedWindow) {
		mw := m[w]
		mw.set |= moved(sliceBit(s))
		mw.at[s] = ts
		mw.latest = max(mw.latest, ts)
		m[w] = mw
	})
}

// forgetMovedBefore forgets the windows before cutoff (dropped whole).
func (db *DB) forgetMovedBefore(cutoff record.Window) {
	db.changeMoved(func(m map[record.Window]movedWindow) {
		maps.DeleteFunc(m, func(w record.Window, _ movedWindow) bool { return w < cutoff })
	})
}

// movesToDrop lists the moved slices whose loose records are not dropped
// yet and that no snapshot in use, nor any later one, reads: switched at or
// below upTo (discardBelow).
func (db *DB) movesToDrop(upTo uint64) map[record.Window]moved {
	return movesToDropIn(db.moves.m.Load(), upTo)
}

// movesToDropIn is movesToDrop in the moved state m.
func movesToDropIn(m *map[record.Window]movedWindow, upTo uint64) map[record.Window]moved {
	if m == nil {
		return nil
	}
	out := map[record.Window]moved{}
	for w, mw := range *m {
		for s := range slicesPerWindow {
			bit := moved(sliceBit(uint8(s)))
			if mw.set&bit != 0 && mw.dropped&bit == 0 && mw.at[s] <= upTo {
				out[w] |= bit
			}
		}
	}
	return out
}

// noteDropped records that the loose records of window w's slices set are
// dropped: those of the moves listed (switched at listed.at), not of a later
// move of a slice (its window dropped by retention, kept again as the
// cutoff moved back, and moved again).
func (db *DB) noteDropped(w record.Window, set moved, listed movedWindow) {
	db.changeMoved(func(m map[record.Window]movedWindow) {
		if mw, ok := m[w]; ok {
			for s := range slicesPerWindow {
				if mw.at[s] != listed.at[s] {
					set &^= moved(sliceBit(uint8(s)))
				}
			}
			mw.dropped |= set
			m[w] = mw
		}
	})
}

// movedMarkerValue encodes a moved marker.
func movedMarkerValue(set moved) []byte { return binary.BigEndian.AppendUint64(nil, uint64(set)) }

// movedMarkerSet decodes a moved marker's value.
func movedMarkerSet(v []byte) (moved, bool) {
	if len(v) != 8 {
		return 0, false
	}
	return moved(binary.BigEndian.Uint64(v)), true
}

// movedAt is the commit timestamp of the switch of slice s of window w in
// the moved state m (0: not moved).
func movedAt(m *map[record.Window]movedWindow, w record.Window, s uint8) uint64 {
	if m == nil {
		return 0
	}
	return (*m)[w].at[s]
}
