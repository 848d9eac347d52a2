package placement

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/logmesh/logmesh/record"
)

func names(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("peer-%d", i+1)
	}
	return out
}

func TestSameViewSamePlacementWhateverTheOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for trial := 0; trial < 50; trial++ {
		ms := names(1 + rng.IntN(12))
		r := 1 + rng.IntN(4)
		a := Compute(ms, r)
		shuffled := slices.Clone(ms)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		shuffled = append(shuffled, shuffled[0]) // a duplicate in the view
		if b := Compute(shuffled, r); !a.Equal(b) {
			t.Fatalf("trial %d: placement depends on the order of the view", trial)
		}
		for p := 0; p < record.NumPartitions; p++ {
			set := a.Replicas(record.Partition(p))
			if len(set) != min(r, len(ms)) {
				t.Fatalf("partition %d has %d replicas, want %d", p, len(set), min(r, len(ms)))
			}
			if len(slices.Compact(slices.Sorted(slices.Values(set)))) != len(set) {
				t.Fatalf("partition %d lists a replica twice: %v", p, set)
			}
		}
	}
}

func TestFewerPeersThanReplicasMeansEveryoneHoldsEverything(t *testing.T) {
	tb := Compute(names(2), 3)
	for p := 0; p < record.NumPartitions; p++ {
		if !tb.Owns("peer-1", record.Partition(p)) || !tb.Owns("peer-2", record.Partition(p)) {
			t.Fatalf("partition %d not on both peers", p)
		}
	}
}

// moved counts replica slots that differ between two tables.
func moved(a, b *Table) (slots, parts int) {
	for p := 0; p < record.NumPartitions; p++ {
		sa, sb := a.Replicas(record.Partition(p)), b.Replicas(record.Partition(p))
		d := 0
		for _, m := range sb {
			if !slices.Contains(sa, m) {
				d++
			}
		}
		slots += d
		if d > 0 {
			parts++
		}
	}
	return slots, parts
}

func TestMembershipChangeMovesOnlyWhatItMust(t *testing.T) {
	for _, n := range []int{3, 4, 5, 8, 16} { // n >= r
		const r = 3
		before := Compute(names(n), r)
		after := Compute(names(n+1), r) // peer-(n+1) joins
		newcomer := fmt.Sprintf("peer-%d", n+1)
		slots, _ := moved(before, after)
		for p := 0; p < record.NumPartitions; p++ {
			sa, sb := before.Replicas(record.Partition(p)), after.Replicas(record.Partition(p))
			if !slices.Equal(slices.Sorted(slices.Values(sa)), slices.Sorted(slices.Values(sb))) && !slices.Contains(sb, newcomer) {
				t.Fatalf("n=%d partition %d changed without involving the newcomer: %v -> %v", n, p, sa, sb)
			}
		}
		// the newcomer takes one slot in about r/(n+1) of the partitions: 1/(n+1) of all slots
		frac := float64(slots) / float64(record.NumPartitions*r)
		want := 1 / float64(n+1)
		if frac < want*0.7 || frac > want*1.3 {
			t.Fatalf("n=%d -> %d: %.3f of replica slots moved, want about %.3f", n, n+1, frac, want)
		}
		// and removal is the mirror image
		if back, _ := moved(after, before); back != slots {
			t.Fatalf("n=%d: leaving moves %d slots, joining moved %d", n, back, slots)
		}
	}
}
