// Package retire keeps the copies a peer handed on (hints delivered to
// every owner, partitions handed over to their owners) for a grace period
// before they are deleted.
//
// A query reads each peer from a snapshot that peer takes when its part of
// the query starts, and the parts start at slightly different times. A
// record moving from here to its owner between those times could be in
// neither snapshot: not yet on the owner when the owner's part began, and
// already deleted here when this peer's part began. CI's random schedule
// 601 answered "full" without such a record while a peer handed partitions
// over. Deleting a handed-on copy only after the grace, longer than a
// query's parts take to start, keeps every record in one of the snapshots.
package retire

import (
	"slices"
	"sync"
	"time"

	"github.com/logmesh/logmesh/record"
)

// Kind says what a retired copy was.
type Kind int

// Kinds.
const (
	// Hint: a record this peer took for other owners, delivered to each.
	Hint Kind = iota
	// HandedOver: a copy of a partition this peer no longer owns, which
	// every owner confirmed holding.
	HandedOver
)

// Batch is copies retired together.
type Batch struct {
	Kind Kind
	// Gen is the placement generation under which the owners held them:
	// a batch due under another is not deleted (hand-over asks the owners
	// of the new placement again).
	Gen uint64
	IDs []record.ID
	At  time.Time
}

// Queue holds retired copies until their grace has passed. Its methods are
// safe for concurrent use.
type Queue struct {
	grace time.Duration
	now   func() time.Time
	mu    struct {
		sync.Mutex
		batches []Batch
		ids     int
	}
}

// New returns a queue whose copies are due grace after they were retired
// (at once when grace is zero); now is the clock (nil: time.Now).
func New(grace time.Duration, now func() time.Time) *Queue {
	if now == nil {
		now = time.Now
	}
	return &Queue{grace: grace, now: now}
}

// Add retires ids (copied), held by their owners under placement
// generation gen. A nil queue retires nothing.
func (q *Queue) Add(kind Kind, gen uint64, ids []record.ID) {
	if q == nil || len(ids) == 0 {
		return
	}
	b := Batch{Kind: kind, Gen: gen, IDs: slices.Clone(ids), At: q.now()}
	q.mu.Lock()
	q.mu.batches = append(q.mu.batches, b)
	q.mu.ids += len(b.IDs)
	q.mu.Unlock()
}

// Due removes and returns the batches whose grace has passed, oldest first.
func (q *Queue) Due() []Batch {
	now := q.now()
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for n < len(q.mu.batches) && now.Sub(q.mu.batches[n].At) >= q.grace {
		q.mu.ids -= len(q.mu.batches[n].IDs)
		n++
	}
	if n == 0 {
		return nil
	}
	due := slices.Clone(q.mu.batches[:n])
	q.mu.batches = slices.Delete(q.mu.batches, 0, n)
	return due
}

// Pending returns how many retired copies wait for their grace.
func (q *Queue) Pending() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.mu.ids
}
