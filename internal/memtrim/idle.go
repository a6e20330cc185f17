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
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// Periodic trims a long-running process (the node agent) when start-up or a
// burst of work has left pages of the executable it no longer touches: First
// after Run starts, then at most every Every, when the process's file-backed
// resident memory (RssFile) is Growth bytes above its level at rest. RssFile is
// read every Check; the level at rest is the lowest reading (taken Check after
// a trim at the earliest: right after one RssFile is lower still, until the
// pages the process uses at rest have come back). A process at rest then keeps
// about what it uses at rest, also after a burst; one that keeps busy above it
// is trimmed at most every Every (its pages come back on their next use).
type Periodic struct {
	First, Every time.Duration
	// Check is how often RssFile is read (0: Every).
	Check  time.Duration
	Growth int64
	// Random has the first trim mark the executable's mappings MADV_RANDOM
	// (AdviseRandom): the pages the process maps back after a trim then come
	// one at a time rather than with the read-around beside them.
	Random bool
	// NoFaultAround has the first trim also stop the kernel's fault-around on
	// the executable's mappings (NoFaultAround) until Run returns: the pages
	// the process maps back are then only those it touches.
	NoFaultAround bool
	// Log receives each trim (nil: discarded).
	Log *slog.Logger
	// Clock drives the waits (nil: the real clock).
	Clock clock.Clock
	// trim, rssFile, adviseRandom and noFaultAround are Trim, the RssFile of
	// /proc/self/status, AdviseRandom and NoFaultAround (tests replace them).
	trim          func() (int64, error)
	rssFile       func() (int64, error)
	adviseRandom  func() error
	noFaultAround func() (func(), error)
}

// Run trims as described until ctx ends; it returns nil then.
func (p *Periodic) Run(ctx context.Context) error {
	log := p.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	clk := p.Clock
	if clk == nil {
		clk = clock.RealClock{}
	}
	trim, rss := p.trim, p.rssFile
	if trim == nil {
		trim = Trim
	}
	if rss == nil {
		rss = selfRssFile
	}
	advise := p.adviseRandom
	if advise == nil {
		advise = AdviseRandom
	}
	noFaultAround := p.noFaultAround
	if noFaultAround == nil {
		noFaultAround = NoFaultAround
	}
	check := p.Check
	if check <= 0 {
		check = p.Every
	}
	wait := p.First
	var (
		trimmed  bool           // a trim has run
		lastTrim time.Time      // when it ran
		rest     int64     = -1 // RssFile at rest: the lowest reading at a check
	)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-clk.After(wait):
		}
		wait = check
		if trimmed {
			cur, err := rss()
			if err != nil {
				continue
			}
			if rest < 0 || cur < rest {
				rest = cur
			}
			if clk.Since(lastTrim) < p.Every || cur-rest < p.Growth {
				continue
			}
		}
		if p.Random && !trimmed {
			// Before the first trim: the pages it evicts come back one by one.
			if err := advise(); err != nil {
				log.Warn("marking the executable's pages MADV_RANDOM", "err", err)
			}
		}
		if p.NoFaultAround && !trimmed {
			// And those still in the page cache without their neighbours.
			end, err := noFaultAround()
			if err != nil {
				log.Info("fault-around stays on for the executable's pages", "err", err)
			} else {
				defer end()
			}
		}
		n, err := trim()
		trimmed, lastTrim = true, clk.Now()
		if err != nil {
			log.Warn("giving back unused memory", "err", err)
			continue
		}
		after, _ := rss()
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

// FaultAroundOff turns the kernel's fault-around off for the executable
// (NoFaultAround) once, for a process that trims from more than one place;
// Close turns it back on. The zero value is ready to use.
type FaultAroundOff struct {
	once sync.Once
	end  func()
	err  error
	// off is NoFaultAround (tests replace it).
	off func() (func(), error)
}

// Do turns fault-around off, the first time it is called; it returns that
// call's error each time.
func (f *FaultAroundOff) Do() error {
	f.once.Do(func() {
		off := f.off
		if off == nil {
			off = NoFaultAround
		}
		f.end, f.err = off()
	})
	return f.err
}

// Close turns fault-around back on if Do turned it off; Do does nothing
// after it.
func (f *FaultAroundOff) Close() {
	f.once.Do(func() {}) // a later Do must not turn it off again
	if f.end != nil {
		f.end()
		f.end = nil
	}
}
