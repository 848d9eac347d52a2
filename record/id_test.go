package record

import (
	"sort"
	"testing"
	"time"
)

func TestGeneratorIncreasesWhenClockStepsBackALittle(t *testing.T) {
	clock := time.UnixMilli(1_700_000_000_000)
	g := NewGenerator(func() time.Time { return clock })
	var prev ID
	for i := 0; i < 1000; i++ {
		if i == 500 {
			clock = clock.Add(-MaxClockStepBack / 2) // an NTP slew-sized step back
		}
		if i%100 == 0 {
			clock = clock.Add(time.Millisecond)
		}
		id := g.Next()
		if Compare(id, prev) <= 0 {
			t.Fatalf("id %d (%s) not after previous (%s)", i, id, prev)
		}
		prev = id
	}
	if g.Retags() != 0 {
		t.Fatalf("a step back of %v took a new instance tag", MaxClockStepBack/2)
	}
}

// TestGeneratorFollowsABigStepBackWithANewTag: after the clock steps back an
// hour, new IDs carry the new (true) time instead of counting on in the
// future for an hour, and still never repeat an earlier ID.
func TestGeneratorFollowsABigStepBackWithANewTag(t *testing.T) {
	clock := time.UnixMilli(1_700_000_000_000)
	g := NewGenerator(func() time.Time { return clock })
	seen := map[ID]bool{}
	before := g.Instance()
	for i := 0; i < 3000; i++ {
		if i == 1000 {
			clock = clock.Add(-time.Hour)
		}
		if i%7 == 0 {
			clock = clock.Add(time.Millisecond)
		}
		id := g.Next()
		if seen[id] {
			t.Fatalf("id %d (%s) repeats an earlier one", i, id)
		}
		seen[id] = true
		if i >= 1000 && id.Millis() != clock.UnixMilli() {
			t.Fatalf("id %d carries %d, the clock says %d: the generator did not follow the step", i, id.Millis(), clock.UnixMilli())
		}
	}
	if g.Retags() != 1 || g.Instance() == before {
		t.Fatalf("retags %d, instance changed %v: want one new tag", g.Retags(), g.Instance() != before)
	}
}

func TestRetagNeverReusesTheTagAndRestartsTheSequence(t *testing.T) {
	clock := func() time.Time { return time.UnixMilli(1_700_000_000_000) }
	g := NewGenerator(clock)
	a := g.Next()
	g.Retag()
	b := g.Next()
	if [6]byte(a[6:12]) == [6]byte(b[6:12]) || a == b {
		t.Fatalf("retag kept the tag: %s then %s", a, b)
	}
}

func TestTwoGeneratorsNeverCollide(t *testing.T) {
	clock := func() time.Time { return time.UnixMilli(1_700_000_000_000) }
	a, b := NewGenerator(clock), NewGenerator(clock)
	seen := map[ID]bool{}
	for i := 0; i < 10000; i++ {
		for _, id := range []ID{a.Next(), b.Next()} {
			if seen[id] {
				t.Fatalf("duplicate ID %s", id)
			}
			seen[id] = true
		}
	}
}

func TestIDTextRoundTripAndOrder(t *testing.T) {
	g := NewGenerator(nil)
	ids := make([]ID, 200)
	g.Fill(ids)
	texts := make([]string, len(ids))
	for i, id := range ids {
		texts[i] = id.String()
		back, err := ParseID(texts[i])
		if err != nil || back != id {
			t.Fatalf("ParseID(%q) = %v, %v; want %v", texts[i], back, err, id)
		}
	}
	if !sort.StringsAreSorted(texts) {
		t.Fatal("text forms of increasing IDs are not sorted")
	}
	for _, bad := range []string{"", "short", "0123456789abcdefghjkmnpqrs!", "zzzzzzzzzzzzzzzzzzzzzzzzzz"} {
		if _, err := ParseID(bad); err == nil {
			t.Errorf("ParseID(%q) succeeded", bad)
		}
	}
}

func TestIDTimeAndWindow(t *testing.T) {
	ms := int64(1_700_000_123_456)
	id := MinID(ms)
	if id.Millis() != ms || id.Time().UnixMilli() != ms {
		t.Fatalf("Millis = %d, want %d", id.Millis(), ms)
	}
	w := id.Window()
	if w.Start() > ms || w.End() <= ms {
		t.Fatalf("window %d [%d,%d) does not hold %d", w, w.Start(), w.End(), ms)
	}
	if Compare(MinID(ms), MaxID(ms)) >= 0 || Compare(MaxID(ms), MinID(ms+1)) >= 0 {
		t.Fatal("MinID/MaxID do not bracket the millisecond")
	}
}

func TestPartitionsAreContiguousBucketRuns(t *testing.T) {
	g := NewGenerator(nil)
	for i := 0; i < 20000; i++ {
		id := g.Next()
		b, p := id.Bucket(), id.Partition()
		if b.Partition() != p {
			t.Fatalf("bucket %d maps to partition %d, ID's partition is %d", b, b.Partition(), p)
		}
		first, end := p.Buckets()
		if b < first || b >= end {
			t.Fatalf("bucket %d outside partition %d's run [%d,%d)", b, p, first, end)
		}
	}
}

func TestHashSpreadsSequentialIDsEvenly(t *testing.T) {
	g := NewGenerator(func() time.Time { return time.UnixMilli(1_700_000_000_000) })
	const n = NumPartitions * 400
	var counts [NumPartitions]int
	for i := 0; i < n; i++ {
		counts[g.Next().Partition()]++
	}
	for p, c := range counts {
		if c < 250 || c > 550 { // mean 400, sd 20: far outside means a broken mix
			t.Fatalf("partition %d got %d of %d sequential IDs (want about 400)", p, c, n)
		}
	}
}
