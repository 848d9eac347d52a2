package retire

import (
	"testing"
	"time"

	"github.com/logmesh/logmesh/record"
)

func TestCopiesAreDueOnlyAfterTheirGrace(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	q := New(10*time.Second, func() time.Time { return now })
	g := record.NewGenerator(nil)
	a, b := g.Next(), g.Next()
	ids := []record.ID{a}
	q.Add(Hint, 3, ids)
	ids[0] = b // the queue keeps its own copy
	now = now.Add(4 * time.Second)
	q.Add(HandedOver, 4, []record.ID{b})
	q.Add(Hint, 4, nil)
	if q.Pending() != 2 {
		t.Fatalf("pending %d, want 2", q.Pending())
	}
	now = now.Add(6*time.Second - time.Nanosecond)
	if due := q.Due(); len(due) != 0 {
		t.Fatalf("due before the grace: %+v", due)
	}
	now = now.Add(time.Nanosecond)
	due := q.Due()
	if len(due) != 1 || due[0].Kind != Hint || due[0].Gen != 3 || len(due[0].IDs) != 1 || due[0].IDs[0] != a {
		t.Fatalf("after the first batch's grace: %+v", due)
	}
	if q.Pending() != 1 || len(q.Due()) != 0 {
		t.Fatal("the second batch is due with the first, or was lost")
	}
	now = now.Add(4 * time.Second)
	if due := q.Due(); len(due) != 1 || due[0].Kind != HandedOver || due[0].IDs[0] != b || q.Pending() != 0 {
		t.Fatalf("after the second batch's grace: %+v", due)
	}
	var none *Queue
	none.Add(Hint, 1, []record.ID{a}) // a nil queue retires nothing, and does not panic
}
