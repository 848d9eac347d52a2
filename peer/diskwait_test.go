package peer_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/logmesh/logmesh/peer"
	"github.com/logmesh/logmesh/testutil"
)

// TestAPeerWaitingForDiskSpaceSaysSo runs WaitForDiskSpace with a free-space
// floor no disk meets: the peer must answer on its API address (writes 507,
// the rest 503, both saying why; /metrics says it waits) rather than exit,
// and stop serving when its context ends. That it opens its store once
// space is freed is TestDiskFullRefusesHonestlyAndRecoversWithoutRestart's
// (root, a real tmpfs).
func TestAPeerWaitingForDiskSpaceSaysSo(t *testing.T) {
	cfg := peer.DefaultConfig(t.TempDir())
	cfg.Name = "p1"
	cfg.APIAddr = testutil.FreeAddr(t)
	cfg.Index.MinFreeDiskBytes = 1 << 60
	cfg.Logger = slog.New(slog.DiscardHandler)
	p, err := peer.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.WaitForDiskSpace(ctx) }()

	get := func(method, path string) (int, string) {
		req, _ := http.NewRequest(method, "http://"+cfg.APIAddr+path, strings.NewReader(`{"message":"x"}`+"\n"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	testutil.WaitFor(t, 10*time.Second, "the waiting peer answers", func() bool {
		code, _ := get(http.MethodGet, "/healthz")
		return code == http.StatusServiceUnavailable
	})
	if code, body := get(http.MethodPost, "/v1/logs"); code != http.StatusInsufficientStorage ||
		!strings.Contains(body, "nothing was stored") || !strings.Contains(body, "too full to open its store") {
		t.Errorf("write: %d %s", code, body)
	}
	if code, body := get(http.MethodGet, "/v1/logs?q=x"); code != http.StatusServiceUnavailable || !strings.Contains(body, "free space") {
		t.Errorf("query: %d %s", code, body)
	}
	if code, body := get(http.MethodGet, "/metrics"); code != http.StatusOK || !strings.Contains(body, "logmesh_store_waiting_for_space 1") {
		t.Errorf("metrics: %d %s", code, body)
	}
	select {
	case err := <-done:
		t.Fatalf("WaitForDiskSpace returned %v with the disk still under the floor", err)
	default:
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("WaitForDiskSpace after its context ended: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("WaitForDiskSpace did not return after its context ended")
	}
	// the address is free again for the store's own API
	ln, err := net.Listen("tcp", cfg.APIAddr)
	if err != nil {
		t.Fatalf("the API address is still taken after the wait: %v", err)
	}
	ln.Close()
}

// TestWaitForDiskSpaceReturnsAtOnceWithSpace: with space, the wait is no
// detour and listens on nothing.
func TestWaitForDiskSpaceReturnsAtOnceWithSpace(t *testing.T) {
	cfg := peer.DefaultConfig(t.TempDir())
	cfg.Name = "p1"
	cfg.APIAddr = testutil.FreeAddr(t)
	cfg.Index.MinFreeDiskBytes = 1
	cfg.Logger = slog.New(slog.DiscardHandler)
	p, err := peer.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.WaitForDiskSpace(ctx); err != nil {
		t.Fatal(err)
	}
}
