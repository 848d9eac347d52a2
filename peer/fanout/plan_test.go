package fanout

import (
	"errors"
	"io"
	"net/url"
	"slices"
	"testing"

	"github.com/logmesh/logmesh/gossip"
	"github.com/logmesh/logmesh/peer/view"
	"github.com/logmesh/logmesh/placement"
	"github.com/logmesh/logmesh/record"
)

// viewOf builds p1's view of members with the given states, each claiming
// the partitions it owns complete unless listed in filling.
func viewOf(states map[string]gossip.Status, filling map[string]bool, cutoffs map[string]string) *view.View {
	var names []string
	for n := range states {
		names = append(names, n)
	}
	table := placement.Compute(names, 3)
	ms := map[string]gossip.Member{}
	for n, st := range states {
		tags := map[string]string{view.TagAPI: n + ":7070"}
		if !filling[n] {
			m := table.Partitions(n)
			tags[view.TagComplete] = (*view.Mask)(&m).String()
		}
		if c, ok := cutoffs[n]; ok {
			tags[view.TagCutoff] = c
		}
		ms[n] = gossip.Member{Name: n, Status: st, Tags: tags}
	}
	return view.New("p1", ms, table, 1)
}

func TestPlanAssignsOnlyCompleteReadableOwners(t *testing.T) {
	alive := map[string]gossip.Status{"p1": gossip.StatusAlive, "p2": gossip.StatusAlive, "p3": gossip.StatusAlive, "p4": gossip.StatusAlive}
	v := viewOf(alive, nil, nil)
	pl := MakePlan(v, nil, Eligibility{SelfComplete: func(record.Partition) bool { return true }})
	if len(pl.Missing) != 0 {
		t.Fatalf("all complete: missing %v", pl.Missing)
	}
	for p := 0; p < record.NumPartitions; p++ {
		o := pl.Owner[p]
		if !v.Owns(o, record.Partition(p)) {
			t.Fatalf("partition %d assigned to %s, not an owner", p, o)
		}
		if v.Owns("p1", record.Partition(p)) && o != "p1" {
			t.Fatalf("partition %d assigned to %s although this peer owns it", p, o)
		}
	}
	// this peer being filled: its partitions go to other complete owners
	pl = MakePlan(v, nil, Eligibility{SelfComplete: func(record.Partition) bool { return false }})
	for p := 0; p < record.NumPartitions; p++ {
		if pl.Owner[p] == "p1" {
			t.Fatalf("partition %d assigned to this peer while it is being filled", p)
		}
	}
	// p2, p3, p4 filling and this peer filling: nothing is complete
	v = viewOf(alive, map[string]bool{"p2": true, "p3": true, "p4": true}, nil)
	pl = MakePlan(v, nil, Eligibility{SelfComplete: func(record.Partition) bool { return false }})
	if len(pl.Missing) != record.NumPartitions {
		t.Fatalf("no complete owner anywhere, yet %d partitions assigned", record.NumPartitions-len(pl.Missing))
	}
}

func TestPlanAsksSuspectPeersNotFailedOrExcludedOnes(t *testing.T) {
	states := map[string]gossip.Status{"p1": gossip.StatusAlive, "p2": gossip.StatusSuspect, "p3": gossip.StatusFailed, "p4": gossip.StatusAlive}
	v := viewOf(states, nil, nil)
	notSelf := Eligibility{SelfComplete: func(record.Partition) bool { return false }}
	pl := MakePlan(v, map[string]bool{"p4": true}, notSelf)
	for p := 0; p < record.NumPartitions; p++ {
		switch o := pl.Owner[p]; o {
		case "p3", "p4", "p1":
			t.Fatalf("partition %d assigned to %s (failed, excluded or filling)", p, o)
		case "":
			if v.Owns("p2", record.Partition(p)) {
				t.Fatalf("partition %d missing though suspect p2 owns it complete", p)
			}
		}
	}
	if len(pl.Missing) == 0 {
		t.Fatal("partitions owned by none of the usable peers should be missing")
	}
}

func TestPlanSkipsAnOwnerThatDroppedWindowsAnotherKeeps(t *testing.T) {
	alive := map[string]gossip.Status{"p1": gossip.StatusAlive, "p2": gossip.StatusAlive, "p3": gossip.StatusAlive}
	v := viewOf(alive, nil, map[string]string{"p2": "100", "p3": "110"})
	notSelf := Eligibility{SelfComplete: func(record.Partition) bool { return false }, SelfCutoff: 100}
	pl := MakePlan(v, nil, notSelf)
	for p := 0; p < record.NumPartitions; p++ {
		if pl.Owner[p] == "p3" {
			t.Fatalf("partition %d assigned to p3, whose cutoff (110) is past windows p2 keeps (100)", p)
		}
	}
	// a query that starts after p3's cutoff may use it
	pl = MakePlan(v, map[string]bool{"p2": true}, Eligibility{SelfComplete: notSelf.SelfComplete, SelfCutoff: 100, From: 110})
	if len(pl.Missing) != 0 {
		t.Fatalf("a query from window 110 has %d partitions missing", len(pl.Missing))
	}
}

func TestRequestForReadsWhatEachPeerMayHold(t *testing.T) {
	alive := map[string]gossip.Status{"p1": gossip.StatusAlive, "p2": gossip.StatusAlive, "p3": gossip.StatusAlive, "p4": gossip.StatusAlive}
	v := viewOf(alive, nil, nil)
	pl := MakePlan(v, nil, Eligibility{SelfComplete: func(record.Partition) bool { return true }})
	pl.Owner[7], pl.Missing = "", append(pl.Missing, 7) // as if nobody could answer for partition 7
	for _, name := range []string{"p1", "p2", "p3", "p4"} {
		req := RequestFor(v, &pl, name)
		for p := 0; p < record.NumPartitions; p++ {
			pt := record.Partition(p)
			owns := v.Owns(name, pt)
			var recentFor string
			for o, m := range req.Recent {
				if m[p] {
					recentFor = o
				}
			}
			switch {
			case !owns && !req.Parts[p]:
				t.Fatalf("%s is not asked for partition %d, which it may hold as hints", name, p)
			case p == 7 && owns && !req.Parts[p]:
				t.Fatalf("%s is not asked for all of partition 7, which has no complete owner", name)
			case owns && pl.Owner[p] == name && !req.Parts[p]:
				t.Fatalf("%s is not asked for partition %d, assigned to it", name, p)
			case owns && pl.Owner[p] != "" && pl.Owner[p] != name && recentFor != pl.Owner[p]:
				t.Fatalf("%s is asked for its recent records of %d for %q, want for %s", name, p, recentFor, pl.Owner[p])
			}
		}
		req.IDsOnly = name == "p2" // a count's part
		params := url.Values{}
		EncodeRequest(params, req)
		back, err := DecodeRequest(params)
		if err != nil || back.Parts != req.Parts || len(back.Recent) != len(req.Recent) || back.IDsOnly != req.IDsOnly {
			t.Fatalf("request of %s does not round-trip: %v", name, err)
		}
		for o, m := range req.Recent {
			if *back.Recent[o] != *m {
				t.Fatalf("recent mask for %s does not round-trip", o)
			}
		}
		if len(params) != 0 {
			t.Fatalf("DecodeRequest left %v in the parameters", params)
		}
	}
	for _, bad := range []url.Values{{"partitions": {"zz"}}, {"recent": {"nocolon"}}, {"recent": {"p1:00"}}, {"ids_only": {"maybe"}}} {
		if _, err := DecodeRequest(bad); err == nil {
			t.Fatalf("DecodeRequest accepted %v", bad)
		}
	}
}

// slice is a source over a fixed list, failing at fail (if >= 0).
type slice struct {
	ids  []record.ID
	fail int
	i    int
}

func (s *slice) Next() (record.ID, []byte, error) {
	if s.i == s.fail {
		return record.ID{}, nil, errors.New("broken")
	}
	if s.i >= len(s.ids) {
		return record.ID{}, nil, io.EOF
	}
	s.i++
	return s.ids[s.i-1], nil, nil
}
func (s *slice) Close() {}

func TestMergeOrdersDropsDuplicatesAndNamesAFailure(t *testing.T) {
	g := record.NewGenerator(nil)
	all := make([]record.ID, 30)
	g.Fill(all)
	a, b := []record.ID{}, []record.ID{}
	for i, id := range all {
		if i%2 == 0 || i%5 == 0 {
			a = append(a, id)
		}
		if i%2 == 1 || i%5 == 0 {
			b = append(b, id)
		}
	}
	merge := func(reverse bool, limit int, srcs ...Named) ([]record.ID, error) {
		var got []record.ID
		err := Merge(srcs, reverse, limit, func(id record.ID, _ []byte) error { got = append(got, id); return nil })
		return got, err
	}
	got, err := merge(false, 0, Named{"a", &slice{ids: a, fail: -1}}, Named{"b", &slice{ids: b, fail: -1}})
	if err != nil || !slices.Equal(got, all) {
		t.Fatalf("ascending merge: %d ids (%v), want all %d once in order", len(got), err, len(all))
	}
	rev := slices.Clone(all)
	slices.Reverse(rev)
	ra, rb := slices.Clone(a), slices.Clone(b)
	slices.Reverse(ra)
	slices.Reverse(rb)
	got, _ = merge(true, 10, Named{"a", &slice{ids: ra, fail: -1}}, Named{"b", &slice{ids: rb, fail: -1}})
	if !slices.Equal(got, rev[:10]) {
		t.Fatalf("descending merge with limit 10: %v", got)
	}
	_, err = merge(false, 0, Named{"a", &slice{ids: a, fail: -1}}, Named{"b", &slice{ids: b, fail: 3}})
	var se *SourceError
	if !errors.As(err, &se) || se.Name != "b" {
		t.Fatalf("a failing source gave %v, want a SourceError naming b", err)
	}
}

func TestCoverageHeaders(t *testing.T) {
	f := func(c Coverage, state, missing, unread string) {
		t.Helper()
		h := make(map[string][]string)
		c.Header(h)
		get := func(k string) string {
			if v := h[k]; len(v) > 0 {
				return v[0]
			}
			return ""
		}
		if get(HeaderCoverage) != state || get(HeaderMissing) != missing || get(HeaderUnread) != unread {
			t.Fatalf("%+v: %v", c, h)
		}
	}
	f(Coverage{}, "full", "", "")
	f(Coverage{Missing: []record.Partition{3, 9}}, "partial", "3,9", "")
	f(Coverage{Unread: []Unread{{Peer: "p4"}}}, "partial", "", "p4@-")
	f(Coverage{Failed: errors.New("x")}, "partial", "", "")
}
