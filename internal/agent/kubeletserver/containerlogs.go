package kubeletserver

import (
	"bufio"
	"net/http"
	"net/url"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// serveContainerLogs serves GET /containerLogs/{namespace}/{pod}/{container}, with
// kubelet's answers: 400 `{"message": "Unable to decode query."}`, 422
// `{"message": "Invalid request."}`, 404 for the pod or container, 400 with the
// LogLocator's message; then 200 and the output, flushed as it is read.
func (s *Server) serveContainerLogs(w http.ResponseWriter, r *http.Request) {
	namespace, pod, container := r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("container")
	o, err := decodeLogOptions(r.URL.Query())
	if err != nil {
		http.Error(w, `{"message": "Unable to decode query."}`, http.StatusBadRequest)
		return
	}
	if !validLogOptions(o) {
		http.Error(w, `{"message": "Invalid request."}`, http.StatusUnprocessableEntity)
		return
	}
	log, err := s.cfg.Logs.ContainerLog(r.Context(), namespace, pod, container, o.Previous)
	switch {
	case IsNotFound(err):
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	case err != nil:
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusOK)
	out := &flushWriter{Writer: bufio.NewWriterSize(w, 32<<10), rc: http.NewResponseController(w)}
	if err := ReadLogs(r.Context(), log, readOptions(o, s.cfg.Now()), out); err != nil && r.Context().Err() == nil {
		// The status is sent: all that is left is to end the stream.
		s.cfg.Log.Warn("kubelet server: reading container logs", "pod", namespace+"/"+pod, "container", container, "err", err)
	}
}

// flushWriter buffers the response and flushes it to the client on Flush.
type flushWriter struct {
	*bufio.Writer
	rc *http.ResponseController
}

func (f *flushWriter) Flush() error {
	if err := f.Writer.Flush(); err != nil {
		return err
	}
	return f.rc.Flush()
}

// decodeLogOptions decodes the query into v1.PodLogOptions as kubelet does (with
// apimachinery's conversions: booleans per queryBool, integers base 10, sinceTime
// RFC 3339), with kubelet's legacy tail=N|all.
func decodeLogOptions(v url.Values) (*corev1.PodLogOptions, error) {
	if tail := v.Get("tail"); tail != "" {
		v = cloneValues(v)
		v.Set("tailLines", tail)
		if tail == "all" {
			v.Del("tailLines")
		}
	}
	o := &corev1.PodLogOptions{Follow: queryBool(v, "follow"), Previous: queryBool(v, "previous"),
		Timestamps: queryBool(v, "timestamps")}
	for _, n := range []struct {
		key string
		dst **int64
	}{{"tailLines", &o.TailLines}, {"limitBytes", &o.LimitBytes}, {"sinceSeconds", &o.SinceSeconds}} {
		if s := v[n.key]; len(s) > 0 && s[0] != "" {
			i, err := strconv.ParseInt(s[0], 10, 64)
			if err != nil {
				return nil, err
			}
			*n.dst = &i
		}
	}
	if s := v.Get("sinceTime"); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return nil, err
		}
		o.SinceTime = &metav1.Time{Time: t}
	}
	return o, nil
}

// validLogOptions is ValidatePodLogOptions.
func validLogOptions(o *corev1.PodLogOptions) bool {
	return !(o.TailLines != nil && *o.TailLines < 0) && !(o.LimitBytes != nil && *o.LimitBytes < 1) &&
		!(o.SinceSeconds != nil && o.SinceTime != nil) && !(o.SinceSeconds != nil && *o.SinceSeconds < 1)
}

// readOptions are o as ReadLogs takes them (kubelet's NewLogOptions): sinceSeconds
// counts back from now; of it and sinceTime the later wins.
func readOptions(o *corev1.PodLogOptions, now time.Time) LogOptions {
	opts := LogOptions{Follow: o.Follow, Timestamps: o.Timestamps, TailLines: -1}
	if o.TailLines != nil {
		opts.TailLines = *o.TailLines
	}
	if o.LimitBytes != nil {
		opts.LimitBytes = *o.LimitBytes
	}
	if o.SinceSeconds != nil {
		opts.Since = now.Add(-time.Duration(*o.SinceSeconds) * time.Second)
	}
	if o.SinceTime != nil && o.SinceTime.After(opts.Since) {
		opts.Since = o.SinceTime.Time
	}
	return opts
}

// queryBool is apimachinery's Convert_Slice_string_To_bool: absent is false, and
// so are "0" and "false" in any case; anything else, "" included, is true.
func queryBool(v url.Values, key string) bool {
	var b bool
	s := v[key]
	_ = runtime.Convert_Slice_string_To_bool(&s, &b, nil) // it cannot fail
	return b
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}
