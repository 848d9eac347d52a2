package replicate

import (
	"context"
	"testing"
	"time"

	"github.com/logmesh/logmesh/peer/retire"
	"github.com/logmesh/logmesh/record"
)

// TestHandedOnCopiesWaitForTheirGrace: a hint delivered to every owner, or
// a handed-over copy, is deleted only once its grace has passed, so that a
// query whose parts start at slightly different times on the peers finds
// the record on its owner or here (CI's random schedule 601 answered
// "full" without a record that moved during the query). A copy retired
// under another placement, or of a partition this peer owns again, stays.
// Repair is told what was deleted (a proof made with those copies must not
// leave this peer complete without them).
func TestHandedOnCopiesWaitForTheirGrace(t *testing.T) {
	v := viewOf(1, "p1", "p2", "p3")
	g := newRig(t, v)
	now := time.Unix(1_800_000_000, 0)
	q := retire.New(10*time.Second, func() time.Time { return now })
	g.r.cfg.Retire = q
	told := map[record.ID]bool{}
	open := 0 // deletes told of and not yet over
	g.r.cfg.Deleting = func(ids []record.ID) func() {
		open++
		for _, id := range ids {
			told[id] = true
			if _, err := g.r.db.Get(id); err != nil {
				t.Errorf("repair told of the delete of %s after it: %v", id, err) // a query could find it complete without it
			}
		}
		return func() { open-- }
	}
	notMine := func(p record.Partition) bool { return !v.Owns("p1", p) }
	hint, handed := minted(time.Now(), notMine), minted(time.Now(), notMine)
	g.write(t, hint, handed)
	held := func(id record.ID) bool {
		_, err := g.db.Get(id)
		return err == nil
	}
	q.Add(retire.Hint, v.Gen, []record.ID{hint.ID})
	q.Add(retire.HandedOver, v.Gen, []record.ID{handed.ID})
	ctx := context.Background()
	for _, d := range []time.Duration{0, 9 * time.Second} {
		now = now.Add(d)
		g.r.retireDue(ctx)
		if !held(hint.ID) || !held(handed.ID) {
			t.Fatalf("a copy handed on was deleted %v after, before its grace", d)
		}
	}
	now = now.Add(time.Second)
	g.r.retireDue(ctx)
	if held(hint.ID) || held(handed.ID) {
		t.Fatal("copies handed on are kept after their grace")
	}
	if n := g.r.hintsDel.Load(); n != 1 {
		t.Fatalf("%d hints counted deleted, want 1", n)
	}
	if len(told) != 2 || !told[hint.ID] || !told[handed.ID] || open != 0 {
		t.Fatalf("repair was told of %d deleted copies (%d deletes not over), want the 2 deleted", len(told), open)
	}

	moved := minted(time.Now(), notMine)
	g.write(t, moved)
	q.Add(retire.Hint, v.Gen, []record.ID{moved.ID})
	v2 := viewOf(2, "p1", "p2", "p3", "p4")
	g.cur.Store(v2)
	mine := minted(time.Now(), func(p record.Partition) bool { return v2.Owns("p1", p) })
	g.write(t, mine)
	q.Add(retire.HandedOver, v2.Gen, []record.ID{mine.ID})
	now = now.Add(10 * time.Second)
	g.r.retireDue(ctx)
	if !held(moved.ID) {
		t.Fatal("a hint retired under another placement was deleted")
	}
	if !held(mine.ID) {
		t.Fatal("a copy of a partition this peer owns again was deleted")
	}
	if told[moved.ID] || told[mine.ID] {
		t.Fatal("repair was told of a copy that was kept")
	}
}
