package record

import (
	"math/rand/v2"
	"testing"
)

func TestDigestIsOrderIndependentAndInvertible(t *testing.T) {
	g := NewGenerator(nil)
	ids := make([]ID, 500)
	g.Fill(ids)
	var a, b Digest
	for _, id := range ids {
		a.Add(id)
	}
	perm := rand.New(rand.NewPCG(1, 2)).Perm(len(ids))
	for _, i := range perm {
		b.Add(ids[i])
	}
	if a != b {
		t.Fatalf("digest depends on order: %+v vs %+v", a, b)
	}
	b.Remove(ids[7])
	if a == b || !a.Minus(b).Matches(ids[7]) {
		t.Fatal("removing one ID is not revealed by Minus")
	}
	for _, id := range ids {
		if id != ids[7] {
			b.Remove(id)
		}
	}
	if !b.IsZero() {
		t.Fatalf("removing every ID leaves %+v", b)
	}
	back, ok := DigestFromBinary(a.AppendBinary(nil))
	if !ok || back != a {
		t.Fatal("binary round trip failed")
	}
}
