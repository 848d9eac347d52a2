package sample

import (
	"testing"
	"time"
)

// A process ID belongs to one service on one host and each pair runs a few
// processes: a store that keys streams by host, service and PID sees a
// bounded number of them, whatever the volume.
func TestProcessIDsBelongToAServiceOnAHost(t *testing.T) {
	g := New(1)
	type pair struct{ host, app string }
	owner := map[int]pair{}
	streams := map[pair]map[int]bool{}
	now := time.Now()
	for range 200_000 {
		e := g.Event(now)
		p := pair{e.Host, e.App}
		if o, ok := owner[e.ProcID]; ok && o != p {
			t.Fatalf("PID %d is %v's and %v's", e.ProcID, o, p)
		}
		owner[e.ProcID] = p
		if streams[p] == nil {
			streams[p] = map[int]bool{}
		}
		streams[p][e.ProcID] = true
	}
	if want := len(hosts) * len(apps); len(streams) != want {
		t.Errorf("%d (host, service) pairs seen, want all %d", len(streams), want)
	}
	for p, pids := range streams {
		if len(pids) != procsPerApp {
			t.Errorf("%v ran %d processes, want %d", p, len(pids), procsPerApp)
		}
	}
}
