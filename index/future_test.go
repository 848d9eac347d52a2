package index

import (
	"context"
	"testing"
	"time"

	"github.com/logmesh/logmesh/record"
)

// TestRecordsFromTheFarFutureAreRefused: another peer's record stamped
// more than MaxFuture ahead of the trusted clock is refused (it would sort
// first in every query and never expire); one within the bound, and this
// peer's own writes, are stored.
func TestRecordsFromTheFarFutureAreRefused(t *testing.T) {
	db := openTest(t, t.TempDir())
	at := func(d time.Duration) Entry {
		e := makeEntries(1, time.Now().Add(d), 0, uint64(d))[0]
		return e
	}
	far, near := at(48*time.Hour), at(time.Hour)
	forged := far
	forged.ID = record.NewGenerator(func() time.Time { return time.Date(10889, 1, 1, 0, 0, 0, 0, time.UTC) }).Next()
	res, err := db.Write(context.Background(), []Entry{far, near, forged}, OriginRemote)
	if err != nil {
		t.Fatal(err)
	}
	if res.Future != 2 || res.Written != 1 || len(res.ExpiredIDs) != 2 {
		t.Fatalf("pushed: %+v, want the two far ones refused and the near one written", res)
	}
	if res, err := db.Write(context.Background(), []Entry{far}, OriginLocal); err != nil || res.Written != 1 {
		t.Fatalf("a local write is this peer's own: %+v %v", res, err)
	}
}
