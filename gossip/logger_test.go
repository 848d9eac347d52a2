package gossip

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestLibLoggerLevels(t *testing.T) {
	var buf bytes.Buffer
	l := libLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	for _, c := range []struct{ in, want string }{
		{"2026/11/26 10:00:00 [ERR] memberlist: failed to send", "level=ERROR msg=\"memberlist: failed to send\""},
		{"[WARN] serf: event queue depth: 2000", "level=WARN msg=\"serf: event queue depth: 2000\""},
		{"[WARN] serf: Shutdown without a Leave", "level=DEBUG msg=\"serf: Shutdown without a Leave\""},
		{"[INFO] serf: EventMemberJoin: p2 10.0.0.2", "level=DEBUG msg=\"serf: EventMemberJoin: p2 10.0.0.2\""},
		{"no tag at all", "level=DEBUG msg=\"no tag at all\""},
	} {
		buf.Reset()
		l.Print(c.in)
		if got := buf.String(); !strings.Contains(got, c.want) {
			t.Errorf("%q logged as %q, want %s", c.in, got, c.want)
		}
	}
}
