package controller

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// anyValue in a wanted sample means "present, whatever its value".
const anyValue = -1

func TestWorkqueueMetricsRecordQueueActivity(t *testing.T) {
	reg := prometheus.NewRegistry()
	p, err := NewWorkqueueMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{calls: map[string]int{}, failures: map[string]int{"ns/a": 1}, done: make(chan string, 10)}
	q := NewQueue(QueueConfig[string]{Name: "test_metrics", NewRateLimiter: fastLimiter, Metrics: p})
	run := func(syncs int, keys ...string) {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan struct{})
		q.Start(keys...)
		go func() {
			defer close(done)
			q.runWorkers(ctx, 1, r.sync)
		}()
		for range syncs {
			select {
			case <-r.done:
			case <-time.After(30 * time.Second):
				t.Fatalf("syncs did not happen; calls so far: %v", r.calls)
			}
		}
		cancel()
		<-done // runWorkers waits for the workers, so every Done has been counted
	}

	// ns/a fails once and is retried: three adds, one retry, three syncs.
	run(3, "ns/a", "ns/b")
	for _, tc := range []struct {
		family string
		want   float64
	}{
		{family: "workqueue_adds_total", want: 3},
		{family: "workqueue_retries_total", want: 1},
		{family: "workqueue_depth", want: 0},
		{family: "workqueue_work_duration_seconds", want: 3},
		{family: "workqueue_queue_duration_seconds", want: 3},
		// Set from a ticker while keys are processed: only their presence is certain.
		{family: "workqueue_unfinished_work_seconds", want: anyValue},
		{family: "workqueue_longest_running_processor_seconds", want: anyValue},
	} {
		if got, ok := queueSample(t, reg, tc.family, "test_metrics"); !ok || (tc.want != anyValue && got != tc.want) {
			t.Errorf("%s{name=test_metrics} = %v (present %v), want %v", tc.family, got, ok, tc.want)
		}
	}

	// A queue re-created after ShutDown reports into the same series.
	run(1, "ns/c")
	if got, _ := queueSample(t, reg, "workqueue_adds_total", "test_metrics"); got != 4 {
		t.Errorf("workqueue_adds_total after a restart = %v, want 4", got)
	}
}

func TestNewWorkqueueMetricsErrors(t *testing.T) {
	if _, err := NewWorkqueueMetrics(nil); err == nil {
		t.Error("NewWorkqueueMetrics(nil) succeeded")
	}
	reg := prometheus.NewRegistry()
	if _, err := NewWorkqueueMetrics(reg); err != nil {
		t.Fatal(err)
	}
	_, err := NewWorkqueueMetrics(reg)
	var are prometheus.AlreadyRegisteredError
	if !errors.As(err, &are) {
		t.Errorf("second registration: err = %v, want an AlreadyRegisteredError", err)
	}
}

// queueSample returns the value (a histogram's sample count) of family's series
// labelled name=queue.
func queueSample(t *testing.T, reg *prometheus.Registry, family, queue string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != family {
			continue
		}
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != 1 || m.GetLabel()[0].GetName() != "name" || m.GetLabel()[0].GetValue() != queue {
				continue
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				return m.GetCounter().GetValue(), true
			case dto.MetricType_GAUGE:
				return m.GetGauge().GetValue(), true
			case dto.MetricType_HISTOGRAM:
				return float64(m.GetHistogram().GetSampleCount()), true
			}
		}
	}
	return 0, false
}
