package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/kubesvc/kubesvc/bench/internal/benchproc"
)

type results struct {
	Meta    meta           `json:"meta"`
	Figures []figure       `json:"figures"`
	Latency *latencyResult `json:"latency,omitempty"`
	Scale   *scaleResult   `json:"scale,omitempty"`
	Errors  []string       `json:"errors,omitempty"`
}

type meta struct {
	Started         string  `json:"started"`
	Finished        string  `json:"finished"`
	Command         string  `json:"command"`
	Binary          string  `json:"binary"`
	GitCommit       string  `json:"git_commit,omitempty"`
	Label           string  `json:"label,omitempty"`
	GoVersion       string  `json:"go_version"`
	CPUs            int     `json:"cpus"`
	CPUModel        string  `json:"cpu_model,omitempty"`
	Kernel          string  `json:"kernel,omitempty"`
	LoadAvgStart    string  `json:"loadavg_start,omitempty"`
	LoadAvgEnd      string  `json:"loadavg_end,omitempty"`
	ServerArgs      string  `json:"server_args,omitempty"`
	ScaleServerArgs string  `json:"scale_server_args,omitempty"`
	GapMs           float64 `json:"gap_ms"`
	// Profiling: the figures come from bench/pprofserver with profiling on; use them
	// to read the profiles, not as results.
	Profiling bool `json:"profiling"`
}

// figure is one row of the summary table.
type figure struct {
	Name   string  `json:"name"`
	Value  float64 `json:"value"`
	Unit   string  `json:"unit"`
	Target float64 `json:"target,omitempty"` // ≤; 0 when there is none
	Met    *bool   `json:"met,omitempty"`
	Note   string  `json:"note,omitempty"`
}

// dist summarises a set of samples in milliseconds.
type dist struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_ms"`
	P90 float64 `json:"p90_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

func distOf(xs []float64) dist {
	if len(xs) == 0 {
		return dist{}
	}
	return dist{N: len(xs), P50: percentile(xs, 50), P90: percentile(xs, 90), P99: percentile(xs, 99), Max: percentile(xs, 100)}
}

func (d dist) String() string {
	return fmt.Sprintf("p50 %.1f, p90 %.1f, p99 %.1f, max %.1f ms (n=%d)", d.P50, d.P90, d.P99, d.Max, d.N)
}

// flipDists summarises flips.
type flipDists struct {
	Slice             dist `json:"slice"`
	Endpoints         dist `json:"endpoints"`
	SliceFromSend     dist `json:"slice_from_send"`
	EndpointsFromSend dist `json:"endpoints_from_send"`
	Write             dist `json:"write"`
	PodEvent          dist `json:"pod_event"`
}

func flipDistsOf(fs []flip) flipDists {
	get := func(f func(flip) float64) dist {
		xs := make([]float64, len(fs))
		for i, x := range fs {
			xs[i] = f(x)
		}
		return distOf(xs)
	}
	return flipDists{
		Slice:             get(func(f flip) float64 { return f.SliceMs }),
		Endpoints:         get(func(f flip) float64 { return f.EndpointsMs }),
		SliceFromSend:     get(func(f flip) float64 { return f.SliceFromSendMs }),
		EndpointsFromSend: get(func(f flip) float64 { return f.EndpointsFromSendMs }),
		Write:             get(func(f flip) float64 { return f.WriteMs }),
		PodEvent:          get(func(f flip) float64 { return f.PodEventMs }),
	}
}

type latencyResult struct {
	Steps        int                 `json:"steps"`
	GapMs        float64             `json:"gap_ms"`
	QuiesceSec   float64             `json:"quiesce_sec"`
	Ready        flipDists           `json:"ready"`
	NotReady     dist                `json:"running_not_ready_slice"`
	NotReadyEp   dist                `json:"running_not_ready_endpoints"`
	ScaleToBound dist                `json:"scale_to_bound"`
	CPU          cpuUse              `json:"cpu"`
	Mem          benchproc.MemSample `json:"mem_end"`
	Samples      []latencyStep       `json:"samples"`
}

func (r *latencyResult) summarise() {
	var fs []flip
	var nr, nre, sb []float64
	for _, s := range r.Samples {
		fs = append(fs, s.flip)
		nr = append(nr, s.NotReadySliceMs)
		nre = append(nre, s.NotReadyEndpointsMs)
		sb = append(sb, s.ScaleToBoundMs)
	}
	r.Ready = flipDistsOf(fs)
	r.NotReady, r.NotReadyEp, r.ScaleToBound = distOf(nr), distOf(nre), distOf(sb)
}

type scaleResult struct {
	Services       int     `json:"services"`
	PodsPerService int     `json:"pods_per_service"`
	Pods           int     `json:"pods"`
	Nodes          int     `json:"nodes"`
	NodePodCIDR    string  `json:"node0_pod_cidr"`
	Clients        int     `json:"clients"`
	GapMs          float64 `json:"gap_ms"`
	// Phase A: Services → an empty slice and an Endpoints each.
	ServicesCreateSec       float64 `json:"services_create_sec"`
	ServicesSlicesSec       float64 `json:"services_all_have_slice_sec"`
	ServicesEndpointsSec    float64 `json:"services_all_have_endpoints_sec"`
	ServicesSliceEvents     int     `json:"services_slice_writes"`
	ServicesEndpointsEvents int     `json:"services_endpoints_writes"`
	QuiesceAfterServicesSec float64 `json:"quiesce_after_services_sec"`
	// Phase B: pods created and marked Ready → complete slices and Endpoints. Times
	// are from the first pod write to the arrival of the last event needed.
	PodWritesSec            float64             `json:"pod_writes_sec"`
	PodWriteErrors          int                 `json:"pod_write_errors"`
	SlicesCompleteSec       float64             `json:"slices_complete_sec"`
	EndpointsCompleteSec    float64             `json:"endpoints_complete_sec"`
	SlicesLagSec            float64             `json:"slices_lag_after_writes_sec"`
	EndpointsLagSec         float64             `json:"endpoints_lag_after_writes_sec"`
	SliceEvents             int                 `json:"slice_writes"`
	EndpointsEvents         int                 `json:"endpoints_writes"`
	SliceServicesPerSec     float64             `json:"slice_services_per_sec"`
	SliceAddressesPerSec    float64             `json:"slice_addresses_per_sec"`
	SliceWritesPerSec       float64             `json:"slice_writes_per_sec"`
	EndpointsServicesPerSec float64             `json:"endpoints_services_per_sec"`
	EndpointsAddrsPerSec    float64             `json:"endpoints_addresses_per_sec"`
	EndpointsWritesPerSec   float64             `json:"endpoints_writes_per_sec"`
	QuiesceAfterPodsSec     float64             `json:"quiesce_after_pods_sec"`
	FillCPU                 cpuUse              `json:"fill_cpu"`
	MemAfterFill            benchproc.MemSample `json:"mem_after_fill"`
	// Phase C: single-pod flips.
	Ready    flipDists           `json:"ready"`
	NotReady flipDists           `json:"not_ready"`
	FlipsCPU cpuUse              `json:"flips_cpu"`
	MemEnd   benchproc.MemSample `json:"mem_end"`
	Flips    []flipSample        `json:"flips"`
}

func (r *scaleResult) summarise() {
	if r.SlicesCompleteSec > 0 {
		r.SliceServicesPerSec = float64(r.Services) / r.SlicesCompleteSec
		r.SliceAddressesPerSec = float64(r.Pods) / r.SlicesCompleteSec
		r.SliceWritesPerSec = float64(r.SliceEvents) / r.SlicesCompleteSec
	}
	if r.EndpointsCompleteSec > 0 {
		r.EndpointsServicesPerSec = float64(r.Services) / r.EndpointsCompleteSec
		r.EndpointsAddrsPerSec = float64(r.Pods) / r.EndpointsCompleteSec
		r.EndpointsWritesPerSec = float64(r.EndpointsEvents) / r.EndpointsCompleteSec
	}
	var ready, notReady []flip
	for _, f := range r.Flips {
		ready = append(ready, f.Ready)
		notReady = append(notReady, f.NotReady)
	}
	r.Ready, r.NotReady = flipDistsOf(ready), flipDistsOf(notReady)
}

// The target from the issue: a pod's Ready transition reaches its Service's
// EndpointSlice within 100 ms at p99, at 10,000 pods and 1,000 Services.
const targetP99ms = 100

func (r *results) summarise() {
	r.Figures = nil
	add := func(name string, v float64, unit string, target float64, note string) {
		f := figure{Name: name, Value: v, Unit: unit, Target: target, Note: note}
		if target > 0 {
			met := v <= target
			f.Met = &met
		}
		r.Figures = append(r.Figures, f)
	}
	if x := r.Latency; x != nil && x.Ready.Slice.N > 0 {
		n := fmt.Sprintf("%d steps", x.Ready.Slice.N)
		add("latency: Ready → EndpointSlice, p50 ("+n+")", x.Ready.Slice.P50, "ms", 0, "")
		add("latency: Ready → EndpointSlice, p99", x.Ready.Slice.P99, "ms", targetP99ms, fmt.Sprintf("max %.1f ms", x.Ready.Slice.Max))
		add("latency: Ready → Endpoints, p50", x.Ready.Endpoints.P50, "ms", 0, "")
		add("latency: Ready → Endpoints, p99", x.Ready.Endpoints.P99, "ms", targetP99ms, fmt.Sprintf("max %.1f ms", x.Ready.Endpoints.Max))
		add("latency: status write round trip, p50", x.Ready.Write.P50, "ms", 0, "p99 "+f1(x.Ready.Write.P99)+" ms")
		add("latency: pod event on a watch, p50 (from send)", x.Ready.PodEvent.P50, "ms", 0, "p99 "+f1(x.Ready.PodEvent.P99)+" ms")
		add("latency: Running (not ready) → EndpointSlice, p50", x.NotReady.P50, "ms", 0, "p99 "+f1(x.NotReady.P99)+" ms")
		add("latency: scale → pod bound, p50", x.ScaleToBound.P50, "ms", 0, "p99 "+f1(x.ScaleToBound.P99)+" ms")
	}
	if x := r.Scale; x != nil {
		sz := fmt.Sprintf("%d Services", x.Services)
		if x.ServicesSlicesSec > 0 {
			add(fmt.Sprintf("scale: %s → every one has a slice", sz), x.ServicesSlicesSec, "s", 0,
				fmt.Sprintf("creates took %.2f s; %d slice writes", x.ServicesCreateSec, x.ServicesSliceEvents))
			add(fmt.Sprintf("scale: %s → every one has an Endpoints", sz), x.ServicesEndpointsSec, "s", 0,
				fmt.Sprintf("%d Endpoints writes", x.ServicesEndpointsEvents))
		}
		if x.SlicesCompleteSec > 0 {
			pods := fmt.Sprintf("%d pods", x.Pods)
			add("scale: "+pods+" → slices complete", x.SlicesCompleteSec, "s", 0,
				fmt.Sprintf("pod writes took %.2f s; %.2f s after the last", x.PodWritesSec, x.SlicesLagSec))
			add("scale:   Services with complete slices /s", x.SliceServicesPerSec, "/s", 0,
				fmt.Sprintf("%.0f addresses/s", x.SliceAddressesPerSec))
			add("scale:   EndpointSlice writes /s", x.SliceWritesPerSec, "/s", 0, fmt.Sprintf("%d writes", x.SliceEvents))
			add("scale: "+pods+" → Endpoints complete", x.EndpointsCompleteSec, "s", 0,
				fmt.Sprintf("%.2f s after the last pod write", x.EndpointsLagSec))
			add("scale:   Services with complete Endpoints /s", x.EndpointsServicesPerSec, "/s", 0,
				fmt.Sprintf("%.0f addresses/s", x.EndpointsAddrsPerSec))
			add("scale:   Endpoints writes /s", x.EndpointsWritesPerSec, "/s", 0, fmt.Sprintf("%d writes", x.EndpointsEvents))
			add("scale:   CPU during the fill, server", x.FillCPU.ServerCores, "cores", 0,
				fmt.Sprintf("benchmark process %.2f cores, over %.1f s", x.FillCPU.BenchCores, x.FillCPU.WallSec))
			add("scale: server RSS after the fill", x.MemAfterFill.RSSMiB, "MiB", 0, fmt.Sprintf("peak %.1f MiB", x.MemAfterFill.HWMMiB))
		}
		if x.Ready.Slice.N > 0 {
			n := fmt.Sprintf("%d flips", x.Ready.Slice.N)
			add("scale: Ready → EndpointSlice, p50 ("+n+")", x.Ready.Slice.P50, "ms", 0, "")
			add("scale: Ready → EndpointSlice, p99", x.Ready.Slice.P99, "ms", targetP99ms, fmt.Sprintf("max %.1f ms", x.Ready.Slice.Max))
			add("scale: Ready → Endpoints, p50", x.Ready.Endpoints.P50, "ms", 0, "")
			add("scale: Ready → Endpoints, p99", x.Ready.Endpoints.P99, "ms", targetP99ms, fmt.Sprintf("max %.1f ms", x.Ready.Endpoints.Max))
			add("scale: not ready → EndpointSlice, p50", x.NotReady.Slice.P50, "ms", 0,
				fmt.Sprintf("p99 %.1f ms; Endpoints p50 %.1f, p99 %.1f ms", x.NotReady.Slice.P99, x.NotReady.Endpoints.P50, x.NotReady.Endpoints.P99))
			add("scale: status write round trip, p50", x.Ready.Write.P50, "ms", 0, "p99 "+f1(x.Ready.Write.P99)+" ms")
			add("scale: pod event on a watch, p50 (from send)", x.Ready.PodEvent.P50, "ms", 0, "p99 "+f1(x.Ready.PodEvent.P99)+" ms")
		}
	}
}

func f1(v float64) string { return fmt.Sprintf("%.1f", v) }

func printTable(w io.Writer, r *results) {
	r.summarise()
	if r.Meta.Profiling {
		fmt.Fprintln(w, "NOTE: profiling run (bench/pprofserver); figures are not comparable results.")
	}
	what := r.Meta.Label
	if r.Meta.GitCommit != "" {
		what = strings.TrimSpace("commit " + r.Meta.GitCommit + " " + what)
	}
	fmt.Fprintf(w, "%s %s\n%d CPUs (%s), %s; load average %s at start, %s at end\n\n", r.Meta.Binary, what,
		r.Meta.CPUs, r.Meta.CPUModel, r.Meta.GoVersion, r.Meta.LoadAvgStart, r.Meta.LoadAvgEnd)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "figure\tkubesvc\ttarget\tmet\tnote")
	for _, f := range r.Figures {
		val := fmtVal(f.Value, f.Unit)
		tgt, met := "", ""
		if f.Target > 0 {
			tgt = "≤ " + fmtVal(f.Target, f.Unit)
		}
		if f.Met != nil {
			met = map[bool]string{true: "yes", false: "NO"}[*f.Met]
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", f.Name, val, tgt, met, f.Note)
	}
	tw.Flush()
	if len(r.Errors) > 0 {
		fmt.Fprintf(w, "\nscenario errors:\n  %s\n", strings.Join(r.Errors, "\n  "))
	}
}

func fmtVal(v float64, unit string) string {
	switch unit {
	case "s":
		return fmt.Sprintf("%.2f s", v)
	case "ms":
		return fmt.Sprintf("%.1f ms", v)
	case "cores":
		return fmt.Sprintf("%.2f cores", v)
	case "MiB":
		return fmt.Sprintf("%.1f MiB", v)
	case "/s":
		return fmt.Sprintf("%.0f/s", v)
	}
	return fmt.Sprintf("%g %s", v, unit)
}

// percentile by the nearest-rank method on a sorted copy (50: the middle element for
// an odd count, the mean of the two middle ones for an even count; 100: the maximum).
// The same as bench/apiserver.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if p == 50 {
		m := len(s) / 2
		if len(s)%2 == 1 {
			return s[m]
		}
		return (s[m-1] + s[m]) / 2
	}
	i := int(p/100*float64(len(s))+0.5) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(s) {
		i = len(s) - 1
	}
	return s[i]
}
