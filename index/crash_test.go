package index

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/logmesh/logmesh/record"
)

const crashDirEnv = "LOGMESH_INDEX_CRASH_DIR"

// TestCrashWriterProcess is the child of TestSIGKILLKeepsAckedWritesAndDigestsInStep.
func TestCrashWriterProcess(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("helper process for the SIGKILL test")
	}
	cfg := TestConfig(dir)
	cfg.CheckpointInterval = 200 * time.Millisecond // checkpoints race with the kill too
	db, err := Open(cfg)
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	out := bufio.NewWriter(os.Stdout)
	for i := uint64(0); ; i++ {
		es := makeEntries(200, time.Now().Add(-30*time.Minute), 30*time.Minute, i+100)
		if _, err := db.Write(context.Background(), es, OriginLocal); err != nil {
			fmt.Println("write:", err)
			os.Exit(1)
		}
		for _, e := range es { // acknowledged: report it
			fmt.Fprintln(out, hex.EncodeToString(e.ID[:]))
		}
		out.Flush()
	}
}

func TestSIGKILLKeepsAckedWritesAndDigestsInStep(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashWriterProcess$")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var acked []record.ID
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && len(acked) < 20000 {
		b, err := hex.DecodeString(strings.TrimSpace(sc.Text()))
		if err != nil || len(b) != record.IDLen {
			t.Fatalf("child said %q", sc.Text())
		}
		acked = append(acked, record.ID(b))
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for sc.Scan() { // drain what the child acknowledged before it died
		if b, err := hex.DecodeString(strings.TrimSpace(sc.Text())); err == nil && len(b) == record.IDLen {
			acked = append(acked, record.ID(b))
		}
	}
	_ = cmd.Wait()
	if len(acked) < 20000 {
		t.Fatalf("child acknowledged only %d records before dying", len(acked))
	}

	db := openTest(t, dir)
	missing := 0
	for _, id := range acked {
		if _, err := db.Get(id); err != nil {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged records lost after SIGKILL", missing, len(acked))
	}
	// the digests rebuilt from checkpoint + journal equal the digests of the data on disk
	var fromData record.Digest
	n := 0
	if err := db.Scan(context.Background(), ScanOptions{}, func(id record.ID, _ []byte) error {
		fromData.Add(id)
		n++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got := db.Digest(); got != fromData {
		t.Fatalf("digests out of step with data after SIGKILL: digests count %d, data %d", got.Count, n)
	}
	t.Logf("%d acknowledged, %d on disk, digests in step", len(acked), n)
}
