package view

import (
	"testing"
	"time"

	"github.com/logmesh/logmesh/gossip"
	"github.com/logmesh/logmesh/placement"
)

func TestParseInfoReadsGarbageAsAbsent(t *testing.T) {
	m := MaskOf(0, 7, 255)
	in := ParseInfo(map[string]string{TagComplete: m.String(), TagWitness: "zz", TagDelivered: "1700000000000",
		TagStore: "abc", TagCutoff: "470000"})
	if in.Complete == nil || *in.Complete != *m || in.Witness != nil || !in.Delivered.Equal(time.UnixMilli(1700000000000)) ||
		in.Store != "abc" || !in.HasCutoff || in.Cutoff != 470000 {
		t.Fatalf("%+v", in)
	}
	if in := ParseInfo(map[string]string{TagDelivered: DeliveredAll}); !in.DeliveredAll {
		t.Fatal("delivered all not read")
	}
	if in := ParseInfo(map[string]string{TagDelivered: "-5", TagCutoff: "x"}); !in.Delivered.IsZero() || in.HasCutoff {
		t.Fatalf("garbage read as a value: %+v", in)
	}
	for _, bad := range []string{"", "00", "0g" + m.String()[2:]} {
		if _, err := ParseMask(bad); err == nil {
			t.Fatalf("ParseMask(%q) accepted", bad)
		}
	}
	if got := MaskOf(1, 2).Partitions(); len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Fatalf("partitions %v", got)
	}
}

func TestUniqueAndReadable(t *testing.T) {
	now := time.Now()
	ms := map[string]gossip.Member{
		"p1": {Name: "p1", Status: gossip.StatusAlive, Tags: map[string]string{TagAPI: "a:1"}},
		"p2": {Name: "p2", Status: gossip.StatusSuspect, Tags: map[string]string{TagAPI: "b:1", TagDelivered: FormatDelivered(now)}},
		"p3": {Name: "p3", Status: gossip.StatusFailed, Tags: map[string]string{TagAPI: "c:1", TagDelivered: "0"}},
		"p4": {Name: "p4", Status: gossip.StatusLeft, Tags: map[string]string{TagAPI: "d:1"}},
		"p5": {Name: "p5", Status: gossip.StatusAlive, Tags: map[string]string{TagAPI: "e:1", TagDelivered: DeliveredAll}},
	}
	v := New("p1", ms, placement.Compute([]string{"p1", "p2", "p3", "p5"}, 3), 1)
	v.Departed = map[string]Info{"p9": {Delivered: now}}
	f := func(name string, until time.Time, want bool) {
		t.Helper()
		if got := v.Unique(name, until); got != want {
			t.Fatalf("Unique(%s, %v) = %v, want %v", name, until, got, want)
		}
	}
	f("p2", now.Add(-time.Minute), false) // everything before now is delivered
	f("p2", now.Add(time.Minute), true)
	f("p3", now.Add(-time.Hour), true) // a debt: anything
	f("p4", now, false)                // left
	f("p5", now.Add(time.Hour), false) // left with everything delivered
	f("p9", now.Add(time.Minute), true)
	f("p9", now.Add(-time.Minute), false)
	f("nobody", now, true) // never published: anything
	if !v.Readable("p2") || v.Usable("p2") || v.Readable("p3") || !v.Usable("p1") || !v.Readable("p1") {
		t.Fatal("suspect is readable not usable; failed neither; self both")
	}
	if v.MemberAt("c:1") != "p3" || v.APIAddr("p2") != "b:1" {
		t.Fatal("addresses")
	}
	if shared := v.SharedPartitions("p1", "p2"); len(shared) == 0 || !v.Owns("p2", shared[0]) {
		t.Fatal("shared partitions")
	}
}
