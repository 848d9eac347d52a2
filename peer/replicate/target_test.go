package replicate

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/logmesh/logmesh/peer/view"
	"github.com/logmesh/logmesh/record"
)

func TestCursorEncodingsRoundTrip(t *testing.T) {
	now := time.UnixMilli(1_800_000_000_000)
	// version 1: a cursor and a "skipped below" mark
	v1 := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, 42), 0)
	c, ok := decodeCursor(v1, now)
	if !ok || c.cursor != 42 || !c.debt.Empty() {
		t.Fatalf("v1 without a skip: %+v %v", c, ok)
	}
	v1 = binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, 42), 40)
	if c, _ = decodeCursor(v1, now); c.debt.Parts.Count() != record.NumPartitions || c.debt.Seq != 40 {
		t.Fatalf("a v1 skip must owe every partition up to it: %+v", c.debt)
	}
	tg := newTarget("p2")
	tg.mu.cursor = 99
	tg.addDebt(view.MaskOf(3, 200), 77, now)
	back, ok := decodeCursor(tg.encode(), now)
	if !ok || back.cursor != 99 || back.debt.Seq != 77 || back.debt.Parts != *view.MaskOf(3, 200) || !back.debt.At.Equal(now) {
		t.Fatalf("v2 round trip: %+v %v", back, ok)
	}
	for _, bad := range [][]byte{nil, {2}, make([]byte, 17)} {
		if _, ok := decodeCursor(bad, now); ok {
			t.Fatalf("decoded %v", bad)
		}
	}
}

func TestDeliveryCountsOnlyPushesUnderTheCurrentPlacement(t *testing.T) {
	g := record.NewGenerator(nil)
	id := g.Next()
	p := id.Partition()
	tg := newTarget("p2")
	tg.mu.cursor, tg.mu.gen, tg.mu.genStart = 50, 3, 20
	f := func(seq, startApplied, gen uint64, want bool) {
		t.Helper()
		tg.mu.Lock()
		got := tg.deliveredLocked(p, seq, gen)
		tg.mu.Unlock()
		if got != want {
			t.Fatalf("delivered(seq %d, gen %d) = %v, want %v", seq, gen, got, want)
		}
		if h := tg.holds(p, []record.ID{id}, seq, startApplied, gen); h != (want && startApplied >= 20) {
			t.Fatalf("holds(seq %d, started after %d, gen %d) = %v", seq, startApplied, gen, h)
		}
	}
	f(30, 25, 3, true)  // pushed under gen 3
	f(15, 10, 3, false) // passed before pushing under gen 3 began
	f(30, 25, 4, false) // the placement changed since
	f(60, 55, 3, false) // not reached yet
	tg.addDebt(view.MaskOf(p), 40, time.Now())
	f(30, 25, 3, false) // owed
	gen := tg.debt().Gen
	if tg.settle(view.MaskOf(p), gen+1) {
		t.Fatal("a stale settlement was taken")
	}
	if !tg.settle(view.MaskOf(p), gen) {
		t.Fatal("settlement refused")
	}
	if d := tg.debt(); !d.Empty() {
		t.Fatalf("settled, yet owes %d partitions", d.Parts.Count())
	}
	f(30, 25, 3, true)
	tg.noteRefused([]record.ID{id})
	if tg.holds(p, []record.ID{id}, 30, 25, 3) {
		t.Fatal("a refused record counts as a copy")
	}
}

func TestInflightWritesStayUndeliveredUntilCounted(t *testing.T) {
	r := &Replicator{}
	r.inflight.m = map[uint64]inflightWrite{}
	t0 := time.UnixMilli(1_800_000_000_000)
	done := r.BeginLocal(t0)
	if got := r.inflight.oldest(0); !got.Equal(t0) {
		t.Fatalf("oldest %v while the write is in the store", got)
	}
	done(7)
	if got := r.inflight.oldest(6); !got.Equal(t0) {
		t.Fatal("a write not yet counted was forgotten")
	}
	if got := r.inflight.oldest(7); !got.IsZero() {
		t.Fatal("a counted write is still in flight")
	}
	r.BeginLocal(t0)(0) // failed: nothing stored
	if !r.inflight.oldest(0).IsZero() {
		t.Fatal("a failed write stays in flight")
	}
}
