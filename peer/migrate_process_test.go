package peer_test

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/logmesh/logmesh/query"
	"github.com/logmesh/logmesh/record"
	"github.com/logmesh/logmesh/testutil"
)

// TestAnOldFormatDataDirectoryIsMigratedByARealAgent starts today's agent on
// a data directory the agent of the previous store format wrote
// (testdata/store-format1.tar.gz: 1000 records "format one record NNNN of
// 1000" taken over HTTP by the agent of commit 147150d, then SIGTERM). The
// agent says in its log that it migrates the store, every record is there
// and found by a word, and after a SIGKILL it starts without migrating again
// and still holds them all.
func TestAnOldFormatDataDirectoryIsMigratedByARealAgent(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	// the records are as old as the fixture: keep them whatever today is
	p := testutil.NewProcess(t, "p1", "--retention", "36500d")
	extractTarGz(t, filepath.Join("testdata", "store-format1.tar.gz"), p.Dir)
	p.Start()
	logText := func() string {
		b, err := os.ReadFile(p.LogPath())
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if l := logText(); !strings.Contains(l, "migrating the store to a new key format") || !strings.Contains(l, `msg="store migrated"`) ||
		!strings.Contains(l, "records=1000") {
		t.Fatalf("the agent did not say it migrated 1000 records; its log:\n%s", l)
	}
	cl := procClient(t, p)
	check := func(when string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := cl.Count(ctx, query.Query{Local: true})
		if err != nil {
			t.Fatalf("%s: count: %v", when, err)
		}
		if c.Count != 1000 {
			t.Fatalf("%s: %d records, want the fixture's 1000", when, c.Count)
		}
		var got []string
		if _, err := cl.Query(ctx, query.Query{Local: true, Contains: "record 0042 of", Limit: 10}, func(j *record.JSON) error {
			got = append(got, j.Message)
			return nil
		}); err != nil {
			t.Fatalf("%s: query: %v", when, err)
		}
		if len(got) != 1 || !strings.HasSuffix(got[0], "format one record 0042 of 1000") {
			t.Fatalf("%s: a word query found %q, want the one record 0042", when, got)
		}
	}
	check("after the migration")
	p.Kill()
	p.Start()
	if n := strings.Count(logText(), `msg="store migrated"`); n != 1 {
		t.Fatalf("the store was migrated %d times, want once", n)
	}
	check("after a SIGKILL and a restart")
}

// extractTarGz unpacks a gzipped tar of regular files and directories into dir.
func extractTarGz(t *testing.T, path, dir string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, filepath.FromSlash(h.Name))
		if !strings.HasPrefix(dst, filepath.Clean(dir)+string(os.PathSeparator)) {
			t.Fatalf("%s: %q leaves the directory", path, h.Name)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(dst, 0o755); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				t.Fatal(err)
			}
			out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode)&0o777)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(out, tr); err != nil {
				t.Fatal(err)
			}
			if err := out.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
}
