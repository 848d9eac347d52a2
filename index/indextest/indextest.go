// Package indextest opens throw-away stores for tests of the packages
// built on index.
package indextest

import (
	"log/slog"
	"testing"

	"github.com/logmesh/logmesh/index"
)

// Open opens a quiet store sized for tests in a temporary directory,
// closed when the test ends.
func Open(t testing.TB) *index.DB {
	t.Helper()
	cfg := index.TestConfig(t.TempDir())
	cfg.Logger = slog.New(slog.DiscardHandler)
	db, err := index.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
