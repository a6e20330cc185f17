package apiserver

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer/streaming"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/kubesvc/kubesvc/internal/storage"
)

// bookmarkInterval is how often a watch with allowWatchBookmarks gets a BOOKMARK.
const bookmarkInterval = time.Minute

func (s *Server) handleWatch(w http.ResponseWriter, r *http.Request, h *resourceHandler, ri requestInfo) {
	wo, err := parseListOptions(r.URL.Query())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	f, err := s.parseFilter(wo, h)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	prefix := h.res.ListPrefix(ri.Namespace)
	if ri.Name != "" { // GET .../name?watch=true: a watch on one object
		prefix = h.res.Key(ri.Namespace, ri.Name)
		f.nameOnly = ri.Name
	}
	rv := wo.ResourceVersion
	sendInitial := wo.SendInitialEvents != nil && *wo.SendInitialEvents
	bookmarks := wo.AllowWatchBookmarks
	var fromRev int64
	if rv != "" && rv != "0" {
		if fromRev, err = strconv.ParseInt(rv, 10, 64); err != nil || fromRev < 0 {
			s.writeError(w, r, apierrors.NewBadRequest("invalid resource version: "+rv))
			return
		}
	}
	opts := storage.WatchOptions{InitialState: sendInitial || fromRev == 0}
	if !opts.InitialState {
		opts.FromRev = fromRev
	}
	if sendInitial && fromRev > 0 {
		if err := s.cache.WaitFor(r.Context(), fromRev); err != nil {
			s.writeError(w, r, toAPIError(err, h.res.GroupResource(), ""))
			return
		}
	}
	// timeoutSeconds as kube-apiserver reads it: unset or 0 is its default (the
	// minimum request timeout, 30 min, times 1 to 2); a negative value ends at once.
	timeout := time.Duration(1800+rand.IntN(1800)) * time.Second
	if wo.TimeoutSeconds != nil && *wo.TimeoutSeconds != 0 {
		timeout = max(time.Duration(*wo.TimeoutSeconds)*time.Second, 0)
	}
	watcher, snapRev, err := s.cache.Watch(r.Context(), prefix, opts)
	if err != nil {
		if storage.IsExpired(err) {
			// Kubernetes answers an expired watch with 200 and an ERROR event.
			s.serveExpiredWatch(w, r, err)
			return
		}
		s.writeError(w, r, toAPIError(err, h.res.GroupResource(), ""))
		return
	}
	defer watcher.Stop()

	n := negotiate(r)
	enc, err := s.newWatchEncoder(w, n.MediaType)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	table := n.Kind == outputTable
	w.Header().Set("Content-Type", enc.contentType)
	w.Header().Set("Cache-Control", "no-cache, private")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	flush := func() {
		if flusher != nil {
			flusher.Flush()
		}
	}
	flush()

	var lastRev int64
	send := func(typ watch.EventType, obj runtime.Object) bool {
		if typ != watch.Bookmark {
			obj = h.res.Served(obj)
		}
		if table {
			t, err := s.toTable(r, h, []runtime.Object{obj}, metav1.ListMeta{ResourceVersion: resourceVersionOf(obj)})
			if err != nil {
				return false
			}
			if typ != watch.Added && typ != watch.Modified && typ != watch.Deleted {
				t.Rows = nil
			}
			obj = t
		} else if n.Kind == outputPartial {
			obj = toPartial(obj)
		}
		s.reqMetrics.watchEvent(h.res.GVR())
		return enc.send(s, typ, obj) == nil
	}
	deliver := func(e *storage.Event) bool {
		typ, ok := f.eventType(e)
		if !ok {
			return true
		}
		lastRev = e.Rev
		return send(typ, e.Object)
	}
	for _, e := range watcher.Initial() {
		if !deliver(e) {
			return
		}
	}
	// The end of the initial events is told by a bookmark when the client takes
	// bookmarks (kube-apiserver's cacher).
	if sendInitial && bookmarks {
		if !send(watch.Bookmark, s.bookmarkObject(h, snapRev, true)) {
			return
		}
	}
	if lastRev < snapRev {
		lastRev = snapRev
	}
	flush()

	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var tick <-chan time.Time
	if bookmarks {
		t := time.NewTicker(bookmarkInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case <-timer.C:
			return
		case <-watcher.Done():
			// Terminated as a slow consumer or by a cache restart: drain what is
			// buffered, then end; the client re-watches from its last version.
			for {
				select {
				case e := <-watcher.Events():
					if !deliver(e) {
						return
					}
				default:
					flush()
					return
				}
			}
		case e := <-watcher.Events():
			if !deliver(e) {
				return
			}
			// Coalesce a burst into one flush.
			for more := true; more; {
				select {
				case e := <-watcher.Events():
					if !deliver(e) {
						return
					}
				default:
					more = false
				}
			}
			flush()
		case <-tick:
			if rev, ok := s.cache.IdleRevision(watcher); ok && rev > lastRev {
				lastRev = rev
			}
			if !send(watch.Bookmark, s.bookmarkObject(h, lastRev, false)) {
				return
			}
			flush()
		}
	}
}

// bookmarkObject is an empty object of the resource's kind carrying only a version.
func (s *Server) bookmarkObject(h *resourceHandler, rev int64, initialEnd bool) runtime.Object {
	obj := h.res.New()
	obj.GetObjectKind().SetGroupVersionKind(h.res.GVK())
	m := objectMeta(obj)
	m.ResourceVersion = strconv.FormatInt(rev, 10)
	if initialEnd {
		m.Annotations = map[string]string{metav1.InitialEventsAnnotationKey: "true"}
	}
	return obj
}

func (s *Server) serveExpiredWatch(w http.ResponseWriter, r *http.Request, err error) {
	enc, eerr := s.newWatchEncoder(w, negotiate(r).MediaType)
	if eerr != nil {
		s.writeError(w, r, eerr)
		return
	}
	st := toAPIError(err, schema.GroupResource{}, "").(apierrors.APIStatus).Status()
	st.Kind, st.APIVersion = "Status", "v1"
	w.Header().Set("Content-Type", enc.contentType)
	w.WriteHeader(http.StatusOK)
	_ = enc.send(s, watch.Error, &st)
}

// watchEncoder writes framed WatchEvents.
type watchEncoder struct {
	contentType string
	embedded    runtime.Encoder
	stream      streaming.Encoder
	buf         bytes.Buffer
}

func (s *Server) newWatchEncoder(w http.ResponseWriter, mediaType string) (*watchEncoder, error) {
	info, ok := runtime.SerializerInfoForMediaType(s.codecs.Factory.SupportedMediaTypes(), mediaType)
	if !ok || info.StreamSerializer == nil {
		info, ok = runtime.SerializerInfoForMediaType(s.codecs.Factory.SupportedMediaTypes(), runtime.ContentTypeJSON)
		if !ok {
			return nil, fmt.Errorf("no JSON serializer")
		}
	}
	fw := info.StreamSerializer.Framer.NewFrameWriter(w)
	return &watchEncoder{
		contentType: info.MediaType,
		embedded:    info.Serializer,
		stream:      streaming.NewEncoder(fw, info.StreamSerializer.Serializer),
	}, nil
}

func (e *watchEncoder) send(s *Server, typ watch.EventType, obj runtime.Object) error {
	if obj.GetObjectKind().GroupVersionKind().Empty() {
		if err := s.codecs.SetGVK(obj); err != nil {
			return err
		}
	}
	e.buf.Reset()
	if err := e.embedded.Encode(obj, &e.buf); err != nil {
		return err
	}
	ev := &metav1.WatchEvent{Type: string(typ), Object: runtime.RawExtension{Raw: e.buf.Bytes()}}
	return e.stream.Encode(ev)
}
