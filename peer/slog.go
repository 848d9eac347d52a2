package peer

import (
	"log"
	"log/slog"
)

// slogLogger bridges a standard-library logger (net/http's ErrorLog) to slog.
func slogLogger(l *slog.Logger) *log.Logger {
	return slog.NewLogLogger(l.Handler(), slog.LevelWarn)
}
