// Package leaving orders a leaving peer's last confirmations against the
// deletes other peers make on the strength of its copy.
//
// A peer deletes a copy it does not own once the owners hold the record: a
// hint once pushed to every owner, a handed-over partition once every owner
// confirmed it. If an owner is leaving, its copy is about to go; a delete
// based on it must not land after the leaving peer counted this peer's copy
// as the one that stays. The leaving peer marks itself on every next owner
// as part of the confirmation it asks for (Mark waits for a delete under
// way); a delete checks the marks and runs in the same critical section
// (Delete), so on this peer either the delete came first and the leaving
// peer sees the record missing and sends it again, or the delete skips.
package leaving

import (
	"sync"
	"time"
)

// Hold is how long a mark lasts: a leave that gave up (the peer stops as
// failed) is trusted again after it. A peer seen back after it left is
// cleared at once (Clear). Until then only deletes of extra copies wait.
const Hold = 15 * time.Minute

// Gate holds the marks of leaving peers. The zero value is ready; a nil Gate
// marks nothing and runs deletes unguarded.
type Gate struct {
	mu    sync.Mutex
	marks map[string]time.Time // peer → marked at
	now   func() time.Time
}

// Mark records that peer is leaving, once no delete is under way.
func (g *Gate) Mark(peer string) {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.marks == nil {
		g.marks = map[string]time.Time{}
	}
	g.marks[peer] = g.clock()
}

// Clear forgets peer's mark (it came back: a new process under its name)
// and reports whether there was one.
func (g *Gate) Clear(peer string) bool {
	if g == nil {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	_, ok := g.marks[peer]
	delete(g.marks, peer)
	return ok
}

// Leaving reports whether peer marked itself leaving within Hold.
func (g *Gate) Leaving(peer string) bool {
	if g == nil {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.leavingLocked(peer)
}

func (g *Gate) leavingLocked(peer string) bool {
	at, ok := g.marks[peer]
	if ok && g.clock().Sub(at) > Hold {
		delete(g.marks, peer)
		return false
	}
	return ok
}

// Delete runs del with a predicate telling which peers are leaving; no mark
// is made while it runs. del decides what to delete and deletes it.
func (g *Gate) Delete(del func(leaving func(peer string) bool) error) error {
	if g == nil {
		return del(func(string) bool { return false })
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return del(g.leavingLocked)
}

func (g *Gate) clock() time.Time {
	if g.now != nil {
		return g.now()
	}
	return time.Now()
}
