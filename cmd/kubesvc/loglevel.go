package main

import (
	"fmt"
	"log/slog"
	"strings"
)

// parseLogLevel turns a --log-level value (any case) into a slog level. Any other
// value, "" included, is an error that lists the valid ones: a typo must not quietly
// leave a server at the default level.
func parseLogLevel(s string) (slog.Level, error) {
	logLevels := []struct {
		name  string
		level slog.Level
	}{
		{"debug", slog.LevelDebug},
		{"info", slog.LevelInfo},
		{"warn", slog.LevelWarn},
		{"error", slog.LevelError},
	}
	names := make([]string, len(logLevels))
	for i, l := range logLevels {
		if strings.EqualFold(s, l.name) {
			return l.level, nil
		}
		names[i] = l.name
	}
	return 0, fmt.Errorf("--log-level %q is not a log level; use one of %s", s, strings.Join(names, ", "))
}
