package replicate

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/logmesh/logmesh/gossip"
	"github.com/logmesh/logmesh/index"
	"github.com/logmesh/logmesh/index/indextest"
	"github.com/logmesh/logmesh/peer/view"
	"github.com/logmesh/logmesh/placement"
	"github.com/logmesh/logmesh/record"
)

// TestOldestWaitingIsTheOldestOfEveryEntryAfterTheCursor: ID times do not
// always rise with the journal; the oldest record after any cursor is the
// oldest of all the entries after it, not the first entry's, before and
// after the entries every cursor passed are forgotten.
func TestOldestWaitingIsTheOldestOfEveryEntryAfterTheCursor(t *testing.T) {
	at := func(s int) time.Time { return time.Unix(int64(s), 0) }
	var l lowStack
	times := []int{10, 20, 5, 30, 7, 40, 40} // entries 1..7
	for i, s := range times {
		l.add(uint64(i+1), at(s))
	}
	for cursor := 0; cursor <= len(times); cursor++ {
		want := time.Time{}
		for _, s := range times[cursor:] {
			if want.IsZero() || at(s).Before(want) {
				want = at(s)
			}
		}
		if got := l.after(uint64(cursor)); !got.Equal(want) {
			t.Fatalf("after entry %d: oldest %v, want %v", cursor, got, want)
		}
		l.prune(uint64(cursor))
		if got := l.after(uint64(cursor)); !got.Equal(want) {
			t.Fatalf("after entry %d, once what it passed is forgotten: oldest %v, want %v", cursor, got, want)
		}
	}
	if len(l.s) != 0 {
		t.Fatalf("every entry passed and %d are kept", len(l.s))
	}
}

// rig is a replicator over a real store whose view a test sets, driven by
// hand (no Run goroutine).
type rig struct {
	db  *index.DB
	cur atomic.Pointer[view.View]
	r   *Replicator
}

func newRig(t *testing.T, v *view.View) *rig {
	db := indextest.Open(t)
	g := &rig{db: db}
	g.cur.Store(v)
	g.r = New(Config{Self: "p1", DB: db, View: g.cur.Load, Logger: slog.New(slog.DiscardHandler),
		Watch: func() (<-chan struct{}, func()) { return make(chan struct{}), func() {} }})
	return g
}

// start does what Run does first: load the saved cursors and count from the
// oldest of them.
func (g *rig) start() {
	r := g.r
	r.loadCursors()
	r.tail = g.db.Applied()
	for _, c := range r.mu.saved {
		r.tail = min(r.tail, c.cursor)
	}
	r.counted.Store(r.tail)
	r.from.Store(r.tail)
}

// minted returns a record minted at at whose partition satisfies ok.
func minted(at time.Time, ok func(record.Partition) bool) index.Entry {
	g := record.NewGenerator(func() time.Time { return at })
	for {
		rec := &record.Record{ID: g.Next(), Hostname: "h", AppName: "a", Message: "m"}
		if ok(rec.ID.Partition()) {
			return index.Entry{ID: rec.ID, Data: rec.AppendEncode(nil)}
		}
	}
}

func (g *rig) write(t *testing.T, es ...index.Entry) {
	t.Helper()
	if _, err := g.db.Write(context.Background(), es, index.OriginLocal); err != nil {
		t.Fatal(err)
	}
}

func viewOf(gen uint64, members ...string) *view.View {
	return view.New("p1", map[string]gossip.Member{}, placement.Compute(members, 2), gen)
}

// TestOwedCoversAPartitionGainedAfterCounting: the backlog was counted under
// one placement; the target then gains a partition whose record, minted an
// hour back, waits behind a newer one. What it is owed starts at that record.
func TestOwedCoversAPartitionGainedAfterCounting(t *testing.T) {
	three, two := viewOf(1, "p1", "p2", "p3"), viewOf(2, "p1", "p2")
	g := newRig(t, three)
	g.start()
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); g.r.stopAll() }()
	g.r.syncTargets(ctx)
	now := time.Now().Truncate(time.Millisecond)
	old := now.Add(-time.Hour)
	g.write(t, minted(now, func(p record.Partition) bool { return three.Owns("p2", p) }),
		minted(old, func(p record.Partition) bool { return !three.Owns("p2", p) && two.Owns("p2", p) }))
	g.r.countBacklog()
	g.cur.Store(two) // p3 is gone: p2 gains the old record's partition
	if o := g.r.OwedTo("p2"); o.Since.IsZero() || o.Since.After(old) {
		t.Fatalf("p2 owns a waiting record minted at %s; owed since %v", old, o.Since)
	}
}

// TestOwedCoversASavedCursorWhoseTargetComesLate: after a restart the
// backlog is counted before gossip knows the other peers; a target that
// appears later, from its saved cursor, is still owed what waits after it.
func TestOwedCoversASavedCursorWhoseTargetComesLate(t *testing.T) {
	alone, both := viewOf(1, "p1"), viewOf(2, "p1", "p2")
	g := newRig(t, alone)
	if err := g.db.SetMeta(metaCursor+"p2", newTarget("p2").encode()); err != nil { // saved at 0
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	g.write(t, minted(old, func(record.Partition) bool { return true }))
	g.start()
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); g.r.stopAll() }()
	g.r.syncTargets(ctx) // nobody else known yet
	g.r.countBacklog()
	g.r.updateFloor()
	g.cur.Store(both)
	g.r.syncTargets(ctx) // p2, from its saved cursor
	if c := g.r.targetsSnapshot()["p2"].cursor(); c != 0 {
		t.Fatalf("p2's cursor is %d, not its saved 0", c)
	}
	if o := g.r.OwedTo("p2"); o.Since.IsZero() || o.Since.After(old) {
		t.Fatalf("a record minted at %s waits for p2; owed since %v", old, o.Since)
	}
	if dt := g.r.DeliveredThrough(); !dt.Before(old) {
		t.Fatalf("delivered through %s, though a record of %s waits for p2", dt, old)
	}
}
