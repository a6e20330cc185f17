package memtrim

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseRssFile(t *testing.T) {
	for _, tc := range []struct {
		name, status string
		want         int64
		wantErr      bool
	}{
		{"present", "Name:\tkubesvc\nVmRSS:\t   65536 kB\nRssAnon:\t    9728 kB\nRssFile:\t   55808 kB\n", 55808 << 10, false},
		{"missing", "Name:\tkubesvc\nVmRSS:\t   65536 kB\n", 0, true},
		{"bad unit", "RssFile:\t   55808 MB\n", 0, true},
		{"bad number", "RssFile:\t   x kB\n", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseRssFile(strings.NewReader(tc.status))
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("parseRssFile = %d, %v; want %d, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

// Periodic trims first, then only when RssFile grew by Growth since.
func TestPeriodic(t *testing.T) {
	var mu sync.Mutex
	rss := int64(100)
	trims := 0
	p := &Periodic{First: time.Millisecond, Every: time.Millisecond, Growth: 50,
		trim: func() (int64, error) {
			mu.Lock()
			defer mu.Unlock()
			trims++
			rss = 10
			return 90, nil
		},
		rssFile: func() (int64, error) {
			mu.Lock()
			defer mu.Unlock()
			return rss, nil
		},
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	state := func() (int, int64) {
		mu.Lock()
		defer mu.Unlock()
		return trims, rss
	}
	waitFor := func(what string, cond func(int) bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			if n, _ := state(); cond(n) {
				return
			}
		}
		n, _ := state()
		t.Fatalf("%s: %d trims", what, n)
	}
	waitFor("the first trim", func(n int) bool { return n == 1 })
	mu.Lock()
	rss = 40 // grew by 30 < Growth
	mu.Unlock()
	time.Sleep(50 * time.Millisecond)
	if n, _ := state(); n != 1 {
		t.Fatalf("trimmed again after a growth below Growth: %d trims", n)
	}
	mu.Lock()
	rss = 70 // grew by 60 >= Growth
	mu.Unlock()
	waitFor("a trim after growth", func(n int) bool { return n == 2 })
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
}
