package main

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
)

// memSeries is the agent's memory sampled at a fixed interval over an idle
// period: what a single reading at one moment misses (the executable's pages
// its periodic work maps back after a trim).
type memSeries struct {
	Every   string   `json:"every"`
	Samples int      `json:"samples"`
	RSS     memStats `json:"rss_mib"`
	Anon    memStats `json:"rss_anon_mib"`
	File    memStats `json:"rss_file_mib"`
	// PSS is the proportional set size (smaps_rollup): a page mapped by n
	// processes counts 1/n. When the API server runs the same executable on
	// the same machine, the agent's RSS counts whole the binary's pages both
	// map; its PSS counts its share of them.
	PSS memStats `json:"pss_mib"`
	// Over30 counts the samples whose VmRSS was above 30 MiB (issue 8's
	// target for an idle agent); PSSOver30 those whose PSS was.
	Over30    int `json:"samples_over_30_mib"`
	PSSOver30 int `json:"samples_pss_over_30_mib"`
	// Faults are the agent's page faults over the period: what mapping its
	// pages back costs (a major fault reads the page from the file).
	Faults faults `json:"faults"`
	// Series is every sample: seconds since the period began, VmRSS, RssAnon,
	// RssFile, PSS (MiB).
	Series [][5]float64 `json:"series"`
}

type memStats struct {
	Min  float64 `json:"min"`
	Mean float64 `json:"mean"`
	Max  float64 `json:"max"`
}

// idle waits d; with every > 0 it samples pid's memory every `every` meanwhile
// (the first sample at once) and returns the series, nil otherwise.
func idle(pid int, d, every time.Duration) (*memSeries, error) {
	if every <= 0 {
		time.Sleep(d)
		return nil, nil
	}
	s := &memSeries{Every: every.String()}
	f0, err := readFaults(pid)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	for next := start; ; next = next.Add(every) {
		time.Sleep(time.Until(next))
		m, err := sampleMem(pid)
		if err != nil {
			return nil, fmt.Errorf("sampling the agent's memory: %w", err)
		}
		s.Series = append(s.Series, [5]float64{round1(time.Since(start).Seconds()), m.RSSMiB, m.RSSAnonMiB, m.RSSFileMiB, m.PSSMiB})
		if time.Since(start)+every > d {
			break
		}
	}
	f1, err := readFaults(pid)
	if err != nil {
		return nil, err
	}
	s.Faults = f1.sub(f0)
	s.Samples = len(s.Series)
	s.RSS, s.Anon, s.File, s.PSS = stats(s.Series, 1), stats(s.Series, 2), stats(s.Series, 3), stats(s.Series, 4)
	for _, x := range s.Series {
		if x[1] > 30 {
			s.Over30++
		}
		if x[4] > 30 {
			s.PSSOver30++
		}
	}
	return s, nil
}

// stats summarises column col of the series.
func stats(series [][5]float64, col int) memStats {
	if len(series) == 0 {
		return memStats{}
	}
	st := memStats{Min: math.Inf(1), Max: math.Inf(-1)}
	var sum float64
	for _, x := range series {
		v := x[col]
		st.Min, st.Max = min(st.Min, v), max(st.Max, v)
		sum += v
	}
	st.Mean = round1(sum / float64(len(series)))
	return st
}

// faults are a process's page faults: minor (the page was in memory) and
// major (read from the file).
type faults struct {
	Minor int64 `json:"minor"`
	Major int64 `json:"major"`
}

func (f faults) sub(g faults) faults { return faults{f.Minor - g.Minor, f.Major - g.Major} }

// readFaults reads minflt and majflt of /proc/PID/stat.
func readFaults(pid int) (faults, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return faults{}, err
	}
	// The command name (field 2) may contain spaces; the fields after ")" are fixed.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return faults{}, errors.New("malformed /proc/PID/stat")
	}
	f := strings.Fields(string(b)[i+1:])
	if len(f) < 10 {
		return faults{}, errors.New("short /proc/PID/stat")
	}
	minor, err1 := strconv.ParseInt(f[7], 10, 64) // field 10, minflt
	major, err2 := strconv.ParseInt(f[9], 10, 64) // field 12, majflt
	if err := errors.Join(err1, err2); err != nil {
		return faults{}, fmt.Errorf("/proc/PID/stat: %w", err)
	}
	return faults{minor, major}, nil
}
