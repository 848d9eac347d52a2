package gossip

import (
	"bytes"
	"context"
	"log"
	"log/slog"
)

// libLogger turns Serf's and memberlist's "[LEVEL] text" lines into slog
// records. Their INFO lines (joins, reconnect attempts) go to debug: the
// membership view logs the changes that matter at info, once. So do the
// warnings in quietWarnings, which say what logmesh does on purpose.
func libLogger(l *slog.Logger) *log.Logger {
	return log.New(&levelWriter{l: l}, "", 0)
}

type levelWriter struct{ l *slog.Logger }

// quietWarnings are library warnings about what logmesh does deliberately:
// Close without Leave is how the demo, the tests and an agent whose leave
// failed (which logs that itself) stop gossip.
var quietWarnings = [][]byte{[]byte("Shutdown without a Leave")}

func (w *levelWriter) Write(p []byte) (int, error) {
	line := bytes.TrimSpace(p)
	level := slog.LevelDebug
	for _, t := range []struct {
		tag string
		lv  slog.Level
	}{{"[ERR]", slog.LevelError}, {"[ERROR]", slog.LevelError}, {"[WARN]", slog.LevelWarn}, {"[INFO]", slog.LevelDebug}, {"[DEBUG]", slog.LevelDebug}} {
		if i := bytes.Index(line, []byte(t.tag)); i >= 0 {
			level = t.lv
			line = bytes.TrimSpace(line[i+len(t.tag):])
			break
		}
	}
	if level == slog.LevelWarn {
		for _, q := range quietWarnings {
			if bytes.Contains(line, q) {
				level = slog.LevelDebug
			}
		}
	}
	if w.l.Enabled(context.Background(), level) {
		w.l.Log(context.Background(), level, string(line))
	}
	return len(p), nil
}
