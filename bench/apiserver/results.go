package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/kubesvc/kubesvc/bench/internal/benchproc"
)

type results struct {
	Meta    meta           `json:"meta"`
	Figures []figure       `json:"figures"`
	Ready   *readyResult   `json:"ready,omitempty"`
	Idle    *idleResult    `json:"idle,omitempty"`
	Create  []createResult `json:"create,omitempty"`
	List    *listResult    `json:"list,omitempty"`
	Watch   *watchResult   `json:"watch,omitempty"`
	Errors  []string       `json:"errors,omitempty"`
}

type meta struct {
	Started   string `json:"started"`
	Finished  string `json:"finished"`
	Command   string `json:"command"`
	Binary    string `json:"binary"`
	GitCommit string `json:"git_commit,omitempty"` // of the module, when the harness built the binary
	Label     string `json:"label,omitempty"`
	GoVersion string `json:"go_version"`
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpu_model,omitempty"`
	Kernel    string `json:"kernel,omitempty"`
	Kubectl   string `json:"kubectl,omitempty"`
	Clients   int    `json:"clients"`
	// LoadAvg is /proc/loadavg at the start and the end: other work on the machine
	// shows up here and in the figures.
	LoadAvgStart string `json:"loadavg_start,omitempty"`
	LoadAvgEnd   string `json:"loadavg_end,omitempty"`
	ServerArgs   string `json:"server_args,omitempty"`
	// Profiling: the figures come from bench/pprofserver with profiling on; use them
	// to read the profiles, not as results.
	Profiling bool `json:"profiling"`
}

// figure is one row of the summary table.
type figure struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	// Target is kubesvc's goal (≤ for times and memory); 0 when there is none.
	Target float64 `json:"target,omitempty"`
	// Reference is the kube-apiserver (+ etcd) figure from the issue; 0 when none.
	Reference float64 `json:"reference,omitempty"`
	Met       *bool   `json:"met,omitempty"`
	Note      string  `json:"note,omitempty"`
}

type readyRun struct {
	ReadyzSec  float64 `json:"readyz_sec"`
	LogLineSec float64 `json:"log_line_sec"`
	Polls      int     `json:"readyz_polls"`
	Phases     string  `json:"phases,omitempty"`
}

type readyResult struct {
	Runs          int        `json:"runs"`
	Cold          []readyRun `json:"fresh_data_dir"`
	Warm          []readyRun `json:"restart_same_data_dir"`
	ColdMedianSec float64    `json:"fresh_median_sec"`
	WarmMedianSec float64    `json:"restart_median_sec"`
}

type idleResult struct {
	SettleSec float64             `json:"settle_sec"`
	AtReady   benchproc.MemSample `json:"at_ready"`
	After     benchproc.MemSample `json:"after_settle"`
}

type createResult struct {
	Kind            string              `json:"kind"`
	N               int                 `json:"n"`
	OK              int                 `json:"ok"`
	Errors          int                 `json:"errors"`
	FirstError      string              `json:"first_error,omitempty"`
	Clients         int                 `json:"clients"`
	Seconds         float64             `json:"seconds"`
	PerSec          float64             `json:"per_sec"`
	First1000PerSec float64             `json:"first_1000_per_sec,omitempty"`
	After1000PerSec float64             `json:"after_1000_per_sec,omitempty"`
	P50ms           float64             `json:"latency_p50_ms"`
	P99ms           float64             `json:"latency_p99_ms"`
	MemAfter        benchproc.MemSample `json:"mem_after"`
}

type listTiming struct {
	ContentType  string    `json:"content_type"`
	RunsSec      []float64 `json:"client_go_runs_sec"`
	MedianSec    float64   `json:"client_go_median_sec"`
	RawRunsSec   []float64 `json:"bytes_only_runs_sec"`
	RawMedianSec float64   `json:"bytes_only_median_sec"`
	Bytes        int       `json:"bytes"`
}

type kubectlResult struct {
	Binary            string    `json:"binary"`
	Rows              int       `json:"rows"`
	RunsSec           []float64 `json:"runs_sec"`
	MedianSec         float64   `json:"median_sec"`
	BaselineRunsSec   []float64 `json:"get_ns_runs_sec"`
	BaselineMedianSec float64   `json:"get_ns_median_sec"`
	NoChunkRunsSec    []float64 `json:"chunk_size_0_runs_sec"`
	NoChunkMedianSec  float64   `json:"chunk_size_0_median_sec"`
	// The same paged Table requests without kubectl (server + transfer + JSON parse).
	TablePages          int       `json:"table_pages"`
	TableRows           int       `json:"table_rows"`
	TablePagesRunsSec   []float64 `json:"table_pages_runs_sec"`
	TablePagesMedianSec float64   `json:"table_pages_median_sec"`
}

type listResult struct {
	Services      int                 `json:"services"`
	Fill          createResult        `json:"fill"`
	QuiesceSec    float64             `json:"quiesce_sec"`
	MemAfterFill  benchproc.MemSample `json:"mem_after_fill"`
	JSON          listTiming          `json:"json"`
	Protobuf      listTiming          `json:"protobuf"`
	Kubectl       *kubectlResult      `json:"kubectl,omitempty"`
	MemAfterLists benchproc.MemSample `json:"mem_after_lists"`
}

type watchResult struct {
	Services         int                 `json:"services"`
	Watchers         int                 `json:"watchers"`
	From             string              `json:"watch_from"`
	SettleSec        float64             `json:"settle_sec"`
	Fill             createResult        `json:"fill"`
	QuiesceSec       float64             `json:"quiesce_sec"`
	MemNoWatchers    benchproc.MemSample `json:"mem_no_watchers"`
	OpenSec          float64             `json:"open_sec"`
	InitialEventsSec float64             `json:"initial_events_sec,omitempty"`
	Mem              benchproc.MemSample `json:"mem"`
	FanoutSec        float64             `json:"fanout_sec"`
	FanoutNote       string              `json:"fanout_note,omitempty"`
}

// summarise derives the summary rows from the scenario results.
func (r *results) summarise() {
	add := func(name string, v float64, unit string, target, ref float64, note string) {
		f := figure{Name: name, Value: v, Unit: unit, Target: target, Reference: ref, Note: note}
		if target > 0 {
			met := v <= target
			f.Met = &met
		}
		r.Figures = append(r.Figures, f)
	}
	if x := r.Ready; x != nil {
		add("ready (exec → /readyz 200), fresh data dir, median", x.ColdMedianSec, "s", 0.5, 3.30,
			fmt.Sprintf("runs %s", fmtSecs(readyz(x.Cold))))
		add("ready, restart on existing data dir, median", x.WarmMedianSec, "s", 0, 0,
			fmt.Sprintf("runs %s", fmtSecs(readyz(x.Warm))))
	}
	if x := r.Idle; x != nil {
		add(fmt.Sprintf("idle RSS, %gs after ready", x.SettleSec), x.After.RSSMiB, "MiB", 77, 268+40,
			fmt.Sprintf("anon %.1f, file %.1f MiB; ref = 268 apiserver + 40 etcd", x.After.RSSAnonMiB, x.After.RSSFileMiB))
	}
	for _, c := range r.Create {
		note := fmt.Sprintf("%d clients, p50 %.1f ms, p99 %.1f ms", c.Clients, c.P50ms, c.P99ms)
		if c.Errors > 0 {
			note += fmt.Sprintf(", %d errors", c.Errors)
		}
		add(fmt.Sprintf("creates/s, %d %s", c.N, c.Kind), c.PerSec, "/s", 0, 0, note)
		if c.First1000PerSec > 0 {
			add(fmt.Sprintf("  %s 1..1000", c.Kind), c.First1000PerSec, "/s", 0, 0, "")
			add(fmt.Sprintf("  %s 1000..%d", c.Kind, c.OK), c.After1000PerSec, "/s", 0, 0, "")
		}
	}
	if x := r.List; x != nil {
		f := x.Fill
		note := fmt.Sprintf("p50 %.1f ms, p99 %.1f ms", f.P50ms, f.P99ms)
		if f.First1000PerSec > 0 {
			note = fmt.Sprintf("1..1000 %.0f/s, 1000..%d %.0f/s, ", f.First1000PerSec, f.OK, f.After1000PerSec) + note
		}
		if x.QuiesceSec > 0 {
			note += fmt.Sprintf("; server idle %.1fs after the fill", x.QuiesceSec)
		}
		add(fmt.Sprintf("creates/s, %d services (list fill)", f.N), f.PerSec, "/s", 0, 0, note)
		add(fmt.Sprintf("LIST %d services, client-go JSON, median", x.Services), x.JSON.MedianSec, "s", 0.1, 0.50,
			fmt.Sprintf("runs %s; bytes only %.3fs, %.1f MB", fmtSecs(x.JSON.RunsSec), x.JSON.RawMedianSec, float64(x.JSON.Bytes)/1e6))
		add(fmt.Sprintf("LIST %d services, client-go protobuf, median", x.Services), x.Protobuf.MedianSec, "s", 0.1, 0.50,
			fmt.Sprintf("runs %s; bytes only %.3fs, %.1f MB", fmtSecs(x.Protobuf.RunsSec), x.Protobuf.RawMedianSec, float64(x.Protobuf.Bytes)/1e6))
		if k := x.Kubectl; k != nil && len(k.RunsSec) > 0 {
			add(fmt.Sprintf("kubectl get svc -A (%d rows), median", k.Rows), k.MedianSec, "s", 0, 3.2,
				fmt.Sprintf("runs %s; kubectl get ns %.3fs; its %d Table pages without kubectl %.3fs",
					fmtSecs(k.RunsSec), k.BaselineMedianSec, k.TablePages, k.TablePagesMedianSec))
			add("kubectl get svc -A --chunk-size=0, median", k.NoChunkMedianSec, "s", 0, 0,
				fmt.Sprintf("runs %s (one request: no client-side throttling)", fmtSecs(k.NoChunkRunsSec)))
		}
		add(fmt.Sprintf("RSS with %d services, after the lists", x.Services), x.MemAfterLists.RSSMiB, "MiB", 0, 0,
			fmt.Sprintf("peak (VmHWM) %.1f MiB", x.MemAfterLists.HWMMiB))
	}
	if x := r.Watch; x != nil {
		add(fmt.Sprintf("RSS, %d services, no watchers", x.Services), x.MemNoWatchers.RSSMiB, "MiB", 0, 0, "")
		note := fmt.Sprintf("watch from %s; opened in %.2fs; peak %.1f MiB; one create reached all in %.1f ms; ref = 465 + 75 etcd",
			x.From, x.OpenSec, x.Mem.HWMMiB, x.FanoutSec*1000)
		add(fmt.Sprintf("RSS, %d services + %d watchers", x.Services, x.Watchers), x.Mem.RSSMiB, "MiB", 135, 465+75, note)
	}
}

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
	fmt.Fprintln(tw, "figure\tkubesvc\ttarget\tkube-apiserver\tmet\tnote")
	for _, f := range r.Figures {
		val := fmtVal(f.Value, f.Unit)
		tgt, ref, met := "", "", ""
		if f.Target > 0 {
			tgt = "≤ " + fmtVal(f.Target, f.Unit)
		}
		if f.Reference > 0 {
			ref = fmtVal(f.Reference, f.Unit)
		}
		if f.Met != nil {
			met = map[bool]string{true: "yes", false: "NO"}[*f.Met]
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", f.Name, val, tgt, ref, met, f.Note)
	}
	tw.Flush()
	if len(r.Errors) > 0 {
		fmt.Fprintf(w, "\nscenario errors:\n  %s\n", strings.Join(r.Errors, "\n  "))
	}
}

func fmtVal(v float64, unit string) string {
	switch unit {
	case "s":
		return fmt.Sprintf("%.3f s", v)
	case "MiB":
		return fmt.Sprintf("%.1f MiB", v)
	case "/s":
		return fmt.Sprintf("%.0f/s", v)
	}
	return fmt.Sprintf("%g %s", v, unit)
}
