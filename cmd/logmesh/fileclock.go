package main

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

// fileClock is a clock shifted by base plus the duration written in path,
// reread every 100 ms until ctx ends: fault tests step a running agent's
// clock by writing the file. A missing or unreadable file counts as 0.
func fileClock(ctx context.Context, path string, base time.Duration, log *slog.Logger) func() time.Time {
	var off atomic.Int64
	read := func() {
		b, err := os.ReadFile(path)
		if err != nil {
			off.Store(0)
			return
		}
		d, err := time.ParseDuration(strings.TrimSpace(string(b)))
		if err != nil {
			log.Warn("clock offset file does not hold a duration", "file", path, "err", err)
			return
		}
		if old := time.Duration(off.Swap(int64(d))); old != d {
			log.Warn("test clock offset changed", "from", old, "to", d)
		}
	}
	read()
	go func() { // stops with the agent's context (the process)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				read()
			}
		}
	}()
	return func() time.Time { return time.Now().Add(base + time.Duration(off.Load())) }
}
