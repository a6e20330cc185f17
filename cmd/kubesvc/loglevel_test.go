package main

import (
	"log/slog"
	"testing"
)

func TestParseLogLevel(t *testing.T) {
	tests := []struct {
		in      string
		want    slog.Level
		wantErr string
	}{
		{in: "debug", want: slog.LevelDebug},
		{in: "info", want: slog.LevelInfo},
		{in: "INFO", want: slog.LevelInfo},
		{in: "Warn", want: slog.LevelWarn},
		{in: "error", want: slog.LevelError},
		{in: "verbose", wantErr: `--log-level "verbose" is not a log level; use one of debug, info, warn, error`},
		{in: "warning", wantErr: `--log-level "warning" is not a log level; use one of debug, info, warn, error`},
		{in: "info+2", wantErr: `--log-level "info+2" is not a log level; use one of debug, info, warn, error`},
		{in: "", wantErr: `--log-level "" is not a log level; use one of debug, info, warn, error`},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseLogLevel(tc.in)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("parseLogLevel(%q) = %v, %v; want error %q", tc.in, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("parseLogLevel(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
		})
	}
}
