package replicate

import (
	"sort"
	"sync"
	"time"
)

// lowStack answers "what is the oldest record this peer took itself in the
// journal entries after seq?" for any seq, in one binary search. It keeps
// the entries whose oldest local record (by ID time) is older than that of
// every later entry: oldest times first, at most one per entry.
//
// ID times mostly rise with the journal, but not always: a clock stepped
// back mints older IDs until the step is measured, and a client may retry
// a batch with the IDs it was given long ago. What a target may still lack
// starts at the oldest record after its cursor, wherever in the backlog
// that record is.
//
// The stack does not look at ownership: its answer is the oldest local
// record after a cursor whatever partition it is in, never later than the
// oldest one a target owns, whenever it gained that partition. Entries
// before the tail it was counted from (the oldest saved cursor at the
// start) are not in it; neither are entries every cursor has passed.
type lowStack struct {
	mu sync.Mutex
	s  []low
}

type low struct {
	seq uint64
	at  int64 // Unix milliseconds of the entry's oldest local record
}

// add notes the oldest local record of journal entry seq (entries come in
// sequence order).
func (l *lowStack) add(seq uint64, at time.Time) {
	ms := at.UnixMilli()
	l.mu.Lock()
	defer l.mu.Unlock()
	// a later entry with an older record hides every earlier one that is not
	// older: whoever waits for those waits for it too
	i := len(l.s)
	for i > 0 && l.s[i-1].at >= ms {
		i--
	}
	l.s = append(l.s[:i], low{seq, ms})
}

// after returns the ID time of the oldest local record in the entries
// after seq that were added (zero: none).
func (l *lowStack) after(seq uint64) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	if i := sort.Search(len(l.s), func(i int) bool { return l.s[i].seq > seq }); i < len(l.s) {
		return time.UnixMilli(l.s[i].at)
	}
	return time.Time{}
}

// prune forgets the entries up to seq (every cursor has passed them).
func (l *lowStack) prune(seq uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if i := sort.Search(len(l.s), func(i int) bool { return l.s[i].seq > seq }); i > 0 {
		l.s = append(l.s[:0], l.s[i:]...)
	}
}
