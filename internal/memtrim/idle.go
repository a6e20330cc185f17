package memtrim

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"
)

// Periodic trims a long-running process (the node agent) when start-up or a
// burst of work has left pages of the executable it no longer touches: First
// after Run starts, then at most every Every, when the process's file-backed
// resident memory (RssFile) has grown by Growth bytes since the last trim. A
// process at rest then keeps about what it uses at rest; one that keeps busy
// is trimmed at most every Every (its pages come back on their next use).
type Periodic struct {
	First, Every time.Duration
	Growth       int64
	// Log receives each trim (nil: discarded).
	Log *slog.Logger
	// trim and rssFile are Trim and the RssFile of /proc/self/status (tests
	// replace them).
	trim    func() (int64, error)
	rssFile func() (int64, error)
}

// Run trims as described until ctx ends; it returns nil then.
func (p *Periodic) Run(ctx context.Context) error {
	log := p.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	trim, rss := p.trim, p.rssFile
	if trim == nil {
		trim = Trim
	}
	if rss == nil {
		rss = selfRssFile
	}
	wait := p.First
	var after int64 = -1 // RssFile after the last trim; -1: none yet
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = p.Every
		if after >= 0 {
			cur, err := rss()
			if err != nil || cur-after < p.Growth {
				continue
			}
		}
		n, err := trim()
		if err != nil {
			log.Warn("giving back unused memory", "err", err)
			continue
		}
		after, _ = rss()
		log.Debug("gave back unused memory", "executableBytesPagedOut", n, "rssFileAfter", after)
	}
}

// selfRssFile is this process's RssFile in bytes.
func selfRssFile() (int64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("memtrim: %w", err)
	}
	defer f.Close()
	return parseRssFile(f)
}

// parseRssFile reads the "RssFile:" line of a /proc/PID/status listing.
func parseRssFile(r io.Reader) (int64, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "RssFile:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("memtrim: RssFile line %q", sc.Text())
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("memtrim: RssFile line %q: %w", sc.Text(), err)
		}
		return kb << 10, nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("memtrim: %w", err)
	}
	return 0, fmt.Errorf("memtrim: no RssFile line")
}
