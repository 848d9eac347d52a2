package index

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/logmesh/logmesh/faults"
	"github.com/logmesh/logmesh/record"
)

// TestWritesRefusedWhileDiskFullResumeWhenSpaceReturns fakes the free space
// the store measures: below the floor a write is refused with ErrNoSpace and
// stores nothing; writers waiting for space resume once it returns, without
// a reopen.
func TestWritesRefusedWhileDiskFullResumeWhenSpaceReturns(t *testing.T) {
	var free atomic.Int64
	free.Store(1000)
	db := openTest(t, t.TempDir(), func(c *Config) {
		c.MinFreeDiskBytes = 800
		c.DiskCheckInterval = 10 * time.Millisecond
		c.freeBytes = func(string) (int64, error) { return free.Load(), nil }
	})
	ctx := context.Background()
	now := time.Now()
	if _, err := db.Write(ctx, makeEntries(10, now, time.Second, 1), OriginLocal); err != nil {
		t.Fatal(err)
	}

	free.Store(799)
	refused := makeEntries(10, now, time.Second, 2)
	_, err := db.Write(ctx, refused, OriginLocal)
	if !errors.Is(err, ErrNoSpace) {
		t.Fatalf("write on a full disk: got %v, want ErrNoSpace", err)
	}
	for _, e := range refused {
		if _, err := db.Get(e.ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("a refused record was stored (Get: %v)", err)
		}
	}
	if st := db.Stats(); st.Writable || st.WritesRefused != 1 || st.FreeDiskBytes != 799 {
		t.Fatalf("stats while full: writable %v, refused %d, free %d", st.Writable, st.WritesRefused, st.FreeDiskBytes)
	}

	waited := make(chan error, 1)
	go func() { waited <- db.WaitWritable(ctx) }()
	free.Store(850) // above the floor, below the resume mark (900): still refused
	if _, err := db.Write(ctx, refused, OriginRemote); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("write just above the floor after a refusal: got %v, want ErrNoSpace (no flapping)", err)
	}
	free.Store(900)
	select {
	case err := <-waited:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("WaitWritable did not return after space came back")
	}
	if _, err := db.Write(ctx, refused, OriginLocal); err != nil {
		t.Fatalf("write after space returned: %v", err)
	}
	if st := db.Stats(); !st.Writable || st.Records != 20 {
		t.Fatalf("after recovery: writable %v, %d records, want true and 20", st.Writable, st.Records)
	}
}

const (
	fullDirEnv   = "LOGMESH_INDEX_FULL_DIR"
	fullGuardEnv = "LOGMESH_INDEX_FULL_GUARD"
)

// TestFullDiskWriterProcess is the child of TestRealFullDisk: it writes
// incompressible records until a write fails (or the process dies), prints
// every acknowledged ID, then waits for space and writes once more.
func TestFullDiskWriterProcess(t *testing.T) {
	dir := os.Getenv(fullDirEnv)
	if dir == "" {
		t.Skip("helper process for TestRealFullDisk")
	}
	cfg := TestConfig(dir)
	cfg.DiskCheckInterval = 50 * time.Millisecond
	if os.Getenv(fullGuardEnv) == "off" {
		cfg.MinFreeDiskBytes = -1
	}
	db, err := Open(cfg)
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	out := bufio.NewWriter(os.Stdout)
	rng := rand.New(rand.NewPCG(1, 2))
	write := func() error {
		es := randomEntries(rng, 200)
		if _, err := db.Write(context.Background(), es, OriginLocal); err != nil {
			return err
		}
		for _, e := range es {
			fmt.Fprintln(out, hex.EncodeToString(e.ID[:]))
		}
		return out.Flush()
	}
	for {
		if err = write(); err != nil {
			break
		}
	}
	fmt.Fprintf(out, "refused: %v\n", err)
	out.Flush()
	if !errors.Is(err, ErrNoSpace) {
		os.Exit(3)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := db.WaitWritable(ctx); err != nil {
		fmt.Println("wait:", err)
		os.Exit(4)
	}
	fmt.Fprintln(out, "writable")
	if err := write(); err != nil {
		fmt.Fprintf(out, "write after space returned: %v\n", err)
	}
	out.Flush()
	if err := db.Close(); err != nil {
		fmt.Println("close:", err)
		os.Exit(5)
	}
	os.Exit(0)
}

func randomEntries(rng *rand.Rand, n int) []Entry {
	g := record.NewGenerator(time.Now)
	msg := make([]byte, 512)
	out := make([]Entry, n)
	for i := range out {
		for j := range msg {
			msg[j] = byte(rng.Uint32())
		}
		r := &record.Record{ID: g.Next(), Hostname: "host", AppName: "app", Message: hex.EncodeToString(msg)}
		out[i] = Entry{ID: r.ID, Data: r.AppendEncode(nil)}
	}
	return out
}

// TestRealFullDisk fills a 48 MiB tmpfs from a child process. Without the
// free-space floor Badger does not fail a write: a page fault on one of its
// memory-mapped files kills the process with SIGBUS (logged, not asserted:
// it is Badger's behaviour, not ours). With the floor, writes are refused
// with ErrNoSpace, the process lives, every acknowledged record is readable,
// and writes resume once the tmpfs grows, without a restart.
func TestRealFullDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes that fill a tmpfs")
	}
	faults.RequireRoot(t, "mount a small tmpfs")
	for _, guard := range []string{"off", "on"} {
		t.Run("guard="+guard, func(t *testing.T) {
			fs := faults.MountTmpFS(t, filepath.Join(t.TempDir(), "disk"), 48<<20)
			acked, lines, exit := runFullDiskChild(t, fs, guard)
			last := ""
			if len(lines) > 0 {
				last = lines[len(lines)-1]
			}
			if guard == "off" {
				t.Logf("without the floor: %d records acknowledged, child %v; its last words: %s",
					len(acked), exit, lastLines(lines, 6))
				return
			}
			if exit != nil {
				t.Fatalf("child with the free-space floor failed: %v; last words: %s", exit, lastLines(lines, 5))
			}
			if last != "writable" && !strings.HasPrefix(last, "write after") && len(acked) == 0 {
				t.Fatalf("child said %q", last)
			}
			// reopen here and read back everything acknowledged
			db := openTest(t, fs.Dir)
			missing := 0
			for _, id := range acked {
				if _, err := db.Get(id); err != nil {
					missing++
				}
			}
			if missing > 0 {
				t.Fatalf("%d of %d acknowledged records missing after the disk filled", missing, len(acked))
			}
			t.Logf("with the floor: %d acknowledged, all readable after reopen", len(acked))
		})
	}
}

// runFullDiskChild runs the writer child on fs and grows fs by 32 MiB once
// the child says its write was refused. It returns the acknowledged IDs, the
// child's other lines, and its exit error.
func runFullDiskChild(t *testing.T, fs *faults.TmpFS, guard string) (acked []record.ID, lines []string, exit error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestFullDiskWriterProcess$")
	cmd.Env = append(os.Environ(), fullDirEnv+"="+fs.Dir, fullGuardEnv+"="+guard)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	var grown time.Time
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		s := strings.TrimSpace(sc.Text())
		if b, err := hex.DecodeString(s); err == nil && len(b) == record.IDLen {
			acked = append(acked, record.ID(b))
			continue
		}
		lines = append(lines, s)
		switch {
		case strings.HasPrefix(s, "refused: "):
			t.Logf("write refused after %d records, %d bytes free: %s", len(acked), faults.FreeBytes(t, fs.Dir),
				strings.TrimPrefix(s, "refused: "))
			grown = time.Now()
			fs.Resize(80 << 20)
		case s == "writable":
			t.Logf("writable again %v after the tmpfs grew", time.Since(grown).Round(time.Millisecond))
		}
	}
	exit = cmd.Wait()
	if exit != nil {
		lines = append(lines, crashSummary(stderr.String())...)
	}
	return acked, lines, exit
}

func lastLines(lines []string, n int) string {
	return strings.Join(lines[max(0, len(lines)-n):], " | ")
}

// crashSummary keeps the lines of a Go crash report that say what happened
// and where: the first three, and the first frames outside the runtime.
func crashSummary(stderr string) []string {
	all := strings.Split(strings.TrimSpace(stderr), "\n")
	out := all[:min(3, len(all))]
	for i, l := range all {
		if strings.Contains(l, "[running]") {
			for _, f := range all[i+1:] {
				if len(out) >= 6 {
					break
				}
				if !strings.HasPrefix(f, "\t") && !strings.HasPrefix(f, "runtime.") {
					out = append(out, f)
				}
			}
			break
		}
	}
	return out
}

// TestOpenOnAFullDiskRefuses: a store whose disk is under the free-space
// floor refuses to open, with ErrNoSpace and a message saying what to do,
// instead of letting Badger replay its log into memory maps (SIGBUS); with
// space back it opens with what it held.
func TestOpenOnAFullDiskRefuses(t *testing.T) {
	dir := t.TempDir()
	db := openTest(t, dir)
	entries := makeEntries(50, time.Now(), time.Second, 3)
	if _, err := db.Write(context.Background(), entries, OriginLocal); err != nil {
		t.Fatal(err)
	}
	db.Close()
	var ids []record.ID
	for _, e := range entries {
		ids = append(ids, e.ID)
	}
	var free atomic.Int64
	free.Store(1 << 20)
	cfg := TestConfig(dir)
	cfg.Logger = slog.New(slog.DiscardHandler)
	cfg.freeBytes = func(string) (int64, error) { return free.Load(), nil }
	if _, err := Open(cfg); !errors.Is(err, ErrNoSpace) || !strings.Contains(err.Error(), "free space on it") {
		t.Fatalf("open with 1 MiB free: %v, want ErrNoSpace saying what to do", err)
	}
	free.Store(1 << 40)
	db, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, id := range ids {
		if _, err := db.Get(id); err != nil {
			t.Fatalf("after space returned, %s: %v", id, err)
		}
	}
}
