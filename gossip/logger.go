package gossip

import (
	"bytes"
	"context"
	"log"
	"log/slog"
)

// libLogger turns Serf's and memberlist's "[LEVEL] text" lines into slog
// records. Their INFO lines (joins, reconnect attempts) go to debug: the
// membership view logs the changes that matter at info, once.
func libLogger(l *slog.Logger) *log.Logger {
	return log.New(&levelWriter{l: l}, "", 0)
}

type levelWriter struct{ l *slog.Logger }

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
	if w.l.Enabled(context.Background(), level) {
		w.l.Log(context.Background(), level, string(line))
	}
	return len(p), nil
}
